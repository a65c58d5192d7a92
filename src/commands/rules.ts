import {Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'

export default class Rules extends BaseCommand {
  static override description = 'List the checks `lvsdoctor check` runs: id, severity, title'
  static override flags = {
    json: Flags.boolean({description: 'print the catalogue as JSON (id, title, severity, description, sources, doc)'}),
  }
  static override examples = ['<%= config.bin %> rules', '<%= config.bin %> rules --json']

  public async run(): Promise<void> {
    const {flags} = await this.parse(Rules)
    const {listRules, renderRulesText} = await import('../services/rules.js')
    const list = listRules()
    if (flags.json) {
      const {renderJson} = await import('../render/json.js')
      process.stdout.write(renderJson(list))
    } else process.stdout.write(renderRulesText(list))
  }
}
