import { DEFAULT_RULES, type DefaultRule } from './default-rules.ts'

function wrapComment (text: string, width = 70): string[] {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(`# ${line}`)
      line = word
    } else {
      line = line === '' ? word : `${line} ${word}`
    }
  }
  lines.push(line === '' ? '#' : `# ${line}`)
  return lines
}

/**
 * The default rules as a commented YAML policy file, in the layout of
 * oslo.policy's `oslopolicy-sample-generator`: per rule, its description,
 * the operations it guards (`# GET  /v2/scope`), then the rule itself
 * commented out. Uncommenting a line overrides that rule.
 */
export function policySample (rules: readonly DefaultRule[] = DEFAULT_RULES): string {
  const blocks = rules.map((rule) => [
    ...wrapComment(rule.description),
    ...rule.operations.map((op) => `# ${op.method}  ${op.path}`),
    `#${JSON.stringify(rule.name)}: ${JSON.stringify(rule.check)}`,
    '',
  ].join('\n'))
  return `${blocks.join('\n')}`
}
