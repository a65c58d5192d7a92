import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'

export default class Trace extends BaseCommand {
  static override description = `Replay one whole connection (TCP: handshake, request, response, close; UDP: request and response) across the snapshots and show where it fails
The client is 203.0.113.10 port 40000 (an outside host) unless --client names another address; a client address that belongs to a host originates on that host's own stack.`
  static override strict = false
  static override args = {
    snapshot: Args.string({description: 'snapshot directory, .tar.gz or bare file (one per host)', required: true}),
  }
  static override flags = {
    vip: Flags.string({description: 'the service address, IP:PORT', required: true}),
    proto: Flags.option({options: ['tcp', 'udp'] as const, default: 'tcp', description: 'protocol'})(),
    client: Flags.string({description: 'client address (default 203.0.113.10, port 40000)'}),
    fix: Flags.boolean({description: "apply check's fixes to copies of the snapshots and replay again (the hosts are never touched)"}),
    json: Flags.boolean({description: 'print the JSON of the contract'}),
  }
  static override examples = [
    '<%= config.bin %> trace --vip 203.0.113.100:80 director/ rs1/ rs2/',
    '<%= config.bin %> trace --vip 10.0.0.5:3306 --client 127.0.0.1 --fix --json db-proxy/',
  ]

  public async run(): Promise<void> {
    const {argv, flags} = await this.parse(Trace)
    const {runTrace} = await import('../services/trace-command.js')
    process.exitCode = await runTrace(argv as string[], {vip: flags.vip, proto: flags.proto, client: flags.client, fix: flags.fix, json: flags.json})
  }
}
