import {Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'

export default class Snapshot extends BaseCommand {
  static override description = 'Collect this host (read-only) into a snapshot directory or .tar.gz for check and trace'
  static override flags = {
    output: Flags.string({char: 'o', description: 'directory, or FILE.tar.gz (default: ./lvsdoctor-snapshot-<host>-<UTC time>)'}),
    name: Flags.string({description: 'host name to record (default: this host name)'}),
    role: Flags.option({options: ['director', 'realserver', 'client', 'router', 'auto'] as const, default: 'auto', description: 'role of this host'})(),
    json: Flags.boolean({description: 'print a JSON summary (no progress)'}),
    'capture-seconds': Flags.integer({min: 1, max: 3600, description: 'also capture packets for N seconds (capture.pcap), once the rest is collected; filtered to this host\'s IPVS/DNAT services when it has some'}),
    iface: Flags.string({dependsOn: ['capture-seconds'], description: 'with --capture-seconds: the interface to capture on (default: the default route\'s; `any` for all)'}),
  }
  static override examples = [
    '<%= config.bin %> snapshot',
    '<%= config.bin %> snapshot -o director.tar.gz --role director',
    'sudo <%= config.bin %> snapshot -o /tmp/rs1 --name rs1',
    'sudo <%= config.bin %> snapshot --capture-seconds 10 --iface eth0',
  ]

  public async run(): Promise<void> {
    const {flags} = await this.parse(Snapshot)
    const {runSnapshot} = await import('../services/snapshot.js')
    process.exitCode = await runSnapshot({
      output: flags.output,
      name: flags.name,
      role: flags.role,
      json: flags.json,
      ...(flags['capture-seconds'] !== undefined ? {capture: {seconds: flags['capture-seconds'], ...(flags.iface ? {iface: flags.iface} : {})}} : {}),
      version: this.config.version,
    })
  }
}
