import {Args} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'

export default class Explain extends BaseCommand {
  static override description = 'Print the documentation of a rule: the problem, an example, why it breaks, the fix, exceptions, sources'
  static override args = {
    id: Args.string({description: 'rule id (see `lvsdoctor rules`)', required: true}),
  }
  static override examples = ['<%= config.bin %> explain dr-stateful-filter']

  public async run(): Promise<void> {
    const {args} = await this.parse(Explain)
    const {explainRule} = await import('../services/rules.js')
    process.stdout.write(explainRule(args.id))
  }
}
