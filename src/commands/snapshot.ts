import {Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'

export default class Snapshot extends BaseCommand {
  static override description = 'Collect this host (read-only) into a snapshot directory or .tar.gz for check and trace'
  static override flags = {
    output: Flags.string({char: 'o', description: 'directory, or FILE.tar.gz (default: ./lvsdoctor-snapshot-<host>-<UTC time>)'}),
    name: Flags.string({description: 'host name to record (default: this host name)'}),
    role: Flags.option({options: ['director', 'realserver', 'client', 'router', 'auto'] as const, default: 'auto', description: 'role of this host'})(),
    json: Flags.boolean({description: 'print a JSON summary (no progress)'}),
  }
  static override examples = ['<%= config.bin %> snapshot', '<%= config.bin %> snapshot -o director.tar.gz --role director', 'sudo <%= config.bin %> snapshot -o /tmp/rs1 --name rs1']

  public async run(): Promise<void> {
    const {flags} = await this.parse(Snapshot)
    const {runSnapshot} = await import('../services/snapshot.js')
    process.exitCode = await runSnapshot({
      output: flags.output,
      name: flags.name,
      role: flags.role,
      json: flags.json,
      version: this.config.version,
    })
  }
}
