/**
 * Every generated block of docs/reference/: the page it lives in, its name, and what it holds.
 * scripts/docs-reference.ts writes them; test/docs/reference.test.ts fails while a committed
 * page differs from what this generates.
 */
import { blockBody, replaceBlock } from './blocks.js'
import { cliHelpMarkdown } from './cli-help.js'
import { errorsMarkdown } from './errors.js'
import { metricsMarkdown } from './metrics.js'
import { settingsMarkdown } from './settings.js'

export interface Block {
  /** Relative to docs/reference/. */
  page: string
  name: string
  source: string
  render(): string | Promise<string>
}

export const BLOCKS: readonly Block[] = [
  { page: 'configuration.md', name: 'settings', source: 'src/config/schema.ts', render: settingsMarkdown },
  { page: 'errors.md', name: 'errors', source: 'src/errors.ts', render: errorsMarkdown },
  { page: 'metrics.md', name: 'metrics', source: 'src/ops/metrics.ts', render: metricsMarkdown },
  { page: 'cli.md', name: 'cli-help', source: 'src/cli.ts', render: cliHelpMarkdown },
]

/** `page` (the text of `block.page`) with that block regenerated. */
export async function regenerate(page: string, block: Block): Promise<string> {
  return replaceBlock(page, block.name, blockBody(block.source, await block.render()))
}
