import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'

export default class Check extends BaseCommand {
  static override description = 'Check snapshots (director and realservers) for load-balancer pitfalls'
  static override strict = false
  static override args = {
    snapshot: Args.string({description: 'snapshot directory, .tar.gz or bare file (one per host); none: this host'}),
  }
  static override flags = {
    json: Flags.boolean({description: 'print the JSON report of the contract'}),
    format: Flags.option({options: ['text', 'json', 'markdown'] as const, description: 'output format'})(),
    'fail-on': Flags.option({options: ['error', 'warning', 'info', 'none'] as const, default: 'error', description: 'exit 1 when a finding is at or above this severity'})(),
    ignore: Flags.string({multiple: true, multipleNonGreedy: true, description: 'rule id to leave out (repeatable)'}),
    keep: Flags.string({description: 'with no snapshot argument: keep the live snapshot in this directory'}),
    vip: Flags.string({multiple: true, multipleNonGreedy: true, description: 'a service connection to check is served too, IP:PORT (repeatable)'}),
    proto: Flags.option({options: ['tcp', 'udp'] as const, default: 'tcp', description: 'protocol of the --vip flows'})(),
    client: Flags.string({description: 'client address of the --vip flows (default 203.0.113.10, port 40000)'}),
  }
  static override examples = ['<%= config.bin %> check fixtures/lvs-howto-29.1/director', '<%= config.bin %> check --json director/ rs1/ rs2/', '<%= config.bin %> check --vip 198.51.100.100:80 director/ rs1/']

  public async run(): Promise<void> {
    const {argv, flags} = await this.parse(Check)
    const {runCheck} = await import('../services/check-command.js')
    process.exitCode = await runCheck(argv as string[], {
      format: flags.json ? 'json' : (flags.format ?? 'text'),
      failOn: flags['fail-on'],
      ignore: flags.ignore ?? [],
      keep: flags.keep,
      vips: flags.vip ?? [],
      proto: flags.proto,
      client: flags.client,
      version: this.config.version,
    })
  }
}
