import {Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'

export default class Capture extends BaseCommand {
  static override description = 'Capture live (libpcap) or read a pcap/pcapng file, and show the symptoms of a broken load-balanced service'
  static override flags = {
    iface: Flags.string({description: 'capture live on this interface (needs libpcap and the optional pcap module)', exclusive: ['read']}),
    read: Flags.string({description: 'read this pcap/pcapng file instead of capturing', exclusive: ['iface']}),
    vip: Flags.string({description: 'virtual service IP:PORT (repeatable): live capture filters on it, symptoms name it', multiple: true}),
    seconds: Flags.integer({description: 'stop the live capture after N seconds (default 10)', min: 1, exclusive: ['count']}),
    count: Flags.integer({description: 'stop the live capture after N packets', min: 1, exclusive: ['seconds']}),
    w: Flags.string({char: 'w', description: 'also write the live capture to this pcap file'}),
    'gue-port': Flags.integer({description: 'also decode UDP to this port as GUE (IPVS --tun-port; 6080 always is), repeatable', multiple: true, min: 1, max: 65535}),
    json: Flags.boolean({description: 'print the JSON report'}),
  }
  static override examples = [
    '<%= config.bin %> capture --read capture.pcap --vip 192.0.2.10:80',
    '<%= config.bin %> capture --iface eth0 --vip 192.0.2.10:80 --seconds 30 -w lb.pcap',
  ]

  public async run(): Promise<void> {
    const {flags} = await this.parse(Capture)
    const {runCapture} = await import('../services/capture.js')
    process.exitCode = await runCapture({
      ...(flags.read ? {read: flags.read} : {}),
      ...(flags.iface ? {iface: flags.iface} : {}),
      vips: flags.vip ?? [],
      ...(flags.seconds !== undefined ? {seconds: flags.seconds} : {}),
      ...(flags.count !== undefined ? {count: flags.count} : {}),
      ...(flags.w ? {write: flags.w} : {}),
      ...(flags['gue-port']?.length ? {guePorts: flags['gue-port']} : {}),
      json: flags.json,
      version: this.config.version,
    })
  }
}
