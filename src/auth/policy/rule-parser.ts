/**
 * A `%(key)s` template of oslo.policy's right-hand side: literal text and
 * target keys, in order. `%%` is a literal `%`.
 */
export type MatchTemplate = ReadonlyArray<string | { key: string }>

/**
 * A parsed oslo.policy rule: the tree oslo.policy's `_parser` builds.
 *
 * - `true` / `false`: `@` (or the empty rule) and `!`;
 * - `not`, `and`, `or`: the operators (`not` binds tightest, then `and`);
 * - `rule`: `rule:name`, another rule by name;
 * - `role`: `role:X`, a role of the caller (case-insensitive);
 * - `generic`: `key:value`, a credential (dotted path) compared to a
 *   value, where `literal` is set when the left side is a Python literal
 *   (`'admin':%(role)s`, `True:%(flag)s`) compared to the target instead.
 */
export type Rule =
  | { kind: 'true' }
  | { kind: 'false' }
  | { kind: 'not', rule: Rule }
  | { kind: 'and', rules: Rule[] }
  | { kind: 'or', rules: Rule[] }
  | { kind: 'rule', name: string }
  | { kind: 'role', match: MatchTemplate }
  | { kind: 'generic', path: string[], literal?: string, match: MatchTemplate }

/** A rule as a policy file may write it: the rule language, or oslo.policy's old list of lists. */
export type RuleSource = string | ReadonlyArray<string | readonly string[]>

/** A rule that does not parse; the message says which part and why. */
export class RuleSyntaxError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'RuleSyntaxError'
  }
}

type Token =
  | { type: '(' | ')' | 'and' | 'or' | 'not' }
  | { type: 'string', text: string }
  | { type: 'check', rule: Rule }

// `%(name)s` or `%%`; any other `%` form is refused at parse time (Python
// would fail, or format differently, only when the rule is checked).
const PLACEHOLDER = /%(?:\(([^)]*)\)s|%)/g

function parseTemplate (text: string, where: string): MatchTemplate {
  const parts: Array<string | { key: string }> = []
  let literal = ''
  let last = 0
  for (const m of text.matchAll(PLACEHOLDER)) {
    const before = text.slice(last, m.index)
    if (before.includes('%')) throw new RuleSyntaxError(`unsupported '%' in '${where}': only %(name)s and %% are allowed`)
    literal += before
    if (m[0] === '%%') {
      literal += '%'
    } else {
      if (literal !== '') parts.push(literal)
      literal = ''
      parts.push({ key: m[1] })
    }
    last = m.index + m[0].length
  }
  const rest = text.slice(last)
  if (rest.includes('%')) throw new RuleSyntaxError(`unsupported '%' in '${where}': only %(name)s and %% are allowed`)
  literal += rest
  if (literal !== '' || parts.length === 0) parts.push(literal)
  return parts
}

const PY_STRING_ESCAPES: Record<string, string> = { '\\': '\\', "'": "'", '"': '"', n: '\n', t: '\t', r: '\r', 0: '\0' }

/**
 * The `str()` of a Python literal on the left of a check, as
 * `ast.literal_eval` reads it, or undefined when `kind` is not one (then it
 * names a credential). Throws on a literal we cannot read exactly.
 */
function pythonLiteral (kind: string, where: string): string | undefined {
  if (kind === 'True' || kind === 'False' || kind === 'None') return kind
  const quote = kind[0]
  if (quote === "'" || quote === '"') {
    if (kind.length < 2 || kind[kind.length - 1] !== quote) throw new RuleSyntaxError(`unterminated string literal in '${where}'`)
    let out = ''
    const body = kind.slice(1, -1)
    for (let i = 0; i < body.length; i++) {
      const c = body[i]
      if (c === quote) throw new RuleSyntaxError(`unescaped quote inside the string literal of '${where}'`)
      if (c !== '\\') { out += c; continue }
      const escaped = PY_STRING_ESCAPES[body[++i]]
      if (escaped === undefined) throw new RuleSyntaxError(`unsupported escape in the string literal of '${where}'`)
      out += escaped
    }
    return out
  }
  if (/^[-+]?(?:0|[1-9][0-9]*)$/.test(kind)) return String(BigInt(kind))
  if (/^[-+.0-9]/.test(kind)) throw new RuleSyntaxError(`unsupported literal '${kind}' in '${where}': use a string, an integer, True, False or None`)
  return undefined
}

/** One check: `@`, `!` or `kind:match`. */
function parseCheck (text: string): Rule {
  if (text === '@') return { kind: 'true' }
  if (text === '!') return { kind: 'false' }
  const colon = text.indexOf(':')
  if (colon === -1) throw new RuleSyntaxError(`'${text}' is not a check: expected kind:match, @ or !`)
  const kind = text.slice(0, colon)
  const match = text.slice(colon + 1)
  if (kind === '') throw new RuleSyntaxError(`'${text}' has nothing before ':'`)
  if (kind === 'rule') {
    if (match === '') throw new RuleSyntaxError(`'${text}' names no rule`)
    return { kind: 'rule', name: match }
  }
  if (kind === 'http' || kind === 'https') throw new RuleSyntaxError(`'${text}': remote ${kind}: checks are not supported`)
  if (kind === 'role') return { kind: 'role', match: parseTemplate(match, text) }
  const literal = pythonLiteral(kind, text)
  if (literal !== undefined) return { kind: 'generic', path: [], literal, match: parseTemplate(match, text) }
  return { kind: 'generic', path: kind.split('.'), match: parseTemplate(match, text) }
}

// oslo.policy's tokenizer: split on whitespace, then peel parentheses off
// both ends of each piece, since `%(x)s` can hold them only in the middle.
function * tokenize (text: string): Generator<Token> {
  for (const piece of text.split(/\s+/)) {
    if (piece === '') continue
    const tok = piece.replace(/^\(+/, '')
    for (let i = 0; i < piece.length - tok.length; i++) yield { type: '(' }
    if (tok === '') continue
    const clean = tok.replace(/\)+$/, '')
    const trail = tok.length - clean.length
    const lowered = clean.toLowerCase()
    if (lowered === 'and' || lowered === 'or' || lowered === 'not') {
      yield { type: lowered }
    } else if (clean !== '') {
      if (tok.length >= 2 && (tok[0] === '"' || tok[0] === "'") && tok[tok.length - 1] === tok[0]) yield { type: 'string', text: tok.slice(1, -1) }
      else yield { type: 'check', rule: parseCheck(clean) }
    }
    for (let i = 0; i < trail; i++) yield { type: ')' }
  }
}

type Symbol = '(' | ')' | 'and' | 'or' | 'not' | 'string' | 'check' | 'and_expr' | 'or_expr'

/**
 * oslo.policy's greedy shift-reduce parser, rule for rule, so that a rule
 * groups here exactly as it does there (`a or b and c` is `a or (b and c)`).
 */
class ParseState {
  readonly symbols: Symbol[] = []
  readonly values: Array<Rule | undefined> = []

  shift (token: Token): void {
    this.symbols.push(token.type)
    this.values.push(token.type === 'check' ? token.rule : undefined)
    this.reduce()
  }

  private replace (count: number, symbol: Symbol, value: Rule): void {
    this.symbols.splice(-count, count, symbol)
    this.values.splice(-count, count, value)
  }

  private reduce (): void {
    for (;;) {
      const [a, b, c] = this.symbols.slice(-3)
      const v = this.values.slice(-3)
      if (this.symbols.length >= 3 && a === '(' && c === ')' && (b === 'check' || b === 'and_expr' || b === 'or_expr')) {
        this.replace(3, 'check', v[1]!)
      } else if (this.symbols.length >= 3 && a === 'check' && b === 'and' && c === 'check') {
        this.replace(3, 'and_expr', { kind: 'and', rules: [v[0]!, v[2]!] })
      } else if (this.symbols.length >= 3 && a === 'and_expr' && b === 'and' && c === 'check') {
        const and = v[0] as { kind: 'and', rules: Rule[] }
        this.replace(3, 'and_expr', { kind: 'and', rules: [...and.rules, v[2]!] })
      } else if (this.symbols.length >= 3 && a === 'or_expr' && b === 'and' && c === 'check') {
        // 'A or B and C': the last operand of the or takes the and.
        const or = v[0] as { kind: 'or', rules: Rule[] }
        const last = or.rules[or.rules.length - 1]
        const and: Rule = last.kind === 'and' ? { kind: 'and', rules: [...last.rules, v[2]!] } : { kind: 'and', rules: [last, v[2]!] }
        this.replace(3, 'or_expr', { kind: 'or', rules: [...or.rules.slice(0, -1), and] })
      } else if (this.symbols.length >= 3 && (a === 'check' || a === 'and_expr') && b === 'or' && c === 'check') {
        this.replace(3, 'or_expr', { kind: 'or', rules: [v[0]!, v[2]!] })
      } else if (this.symbols.length >= 3 && a === 'or_expr' && b === 'or' && c === 'check') {
        const or = v[0] as { kind: 'or', rules: Rule[] }
        this.replace(3, 'or_expr', { kind: 'or', rules: [...or.rules, v[2]!] })
      } else if (this.symbols.length >= 2 && this.symbols[this.symbols.length - 2] === 'not' && this.symbols[this.symbols.length - 1] === 'check') {
        this.replace(2, 'check', { kind: 'not', rule: this.values[this.values.length - 1]! })
      } else {
        return
      }
    }
  }
}

function parseText (text: string): Rule {
  // The empty rule allows everyone, as in oslo.policy.
  if (text === '') return { kind: 'true' }
  const state = new ParseState()
  for (const token of tokenize(text)) state.shift(token)
  if (state.symbols.length === 1 && state.values[0] !== undefined) return state.values[0]
  if (state.symbols.length === 0) throw new RuleSyntaxError('the rule is blank; write "" or @ to allow everyone')
  if (state.symbols.includes('string')) throw new RuleSyntaxError('a quoted string cannot stand alone; compare it, as in \'admin\':%(role)s')
  throw new RuleSyntaxError(`cannot parse: unbalanced parentheses or a misplaced ${state.symbols.find((s) => ['and', 'or', 'not', '(', ')'].includes(s)) ?? 'operator'}`)
}

function parseList (list: ReadonlyArray<string | readonly string[]>): Rule {
  // oslo.policy's old syntax: the outer list is an or of and-lists; [] allows everyone.
  if (list.length === 0) return { kind: 'true' }
  const alternatives: Rule[] = []
  for (const inner of list) {
    const checks = typeof inner === 'string' ? [inner] : inner
    if (!Array.isArray(checks) || checks.some((c) => typeof c !== 'string')) throw new RuleSyntaxError('a list rule holds strings or lists of strings')
    if (checks.length === 0) continue
    const parsed = checks.map(parseCheck)
    alternatives.push(parsed.length === 1 ? parsed[0] : { kind: 'and', rules: parsed })
  }
  if (alternatives.length === 0) return { kind: 'false' }
  return alternatives.length === 1 ? alternatives[0] : { kind: 'or', rules: alternatives }
}

/**
 * Parses a rule of oslo.policy's language into a {@link Rule} tree.
 *
 * Accepts what oslo.policy accepts, with the same grouping: `@`, `!`,
 * `rule:name`, `role:X`, `key:%(target_key)s`, literal comparisons such as
 * `'admin':%(role)s`, `not`, `and`, `or` and parentheses; the empty string
 * allows everyone. Where oslo.policy would log and deny (a rule that does not
 * parse, a check without a `:`), this throws a {@link RuleSyntaxError}, so a
 * broken policy file stops the start instead. Remote `http:` checks are
 * refused.
 */
export function parseRule (source: RuleSource): Rule {
  return typeof source === 'string' ? parseText(source) : parseList(source)
}

/** Every `rule:name` a rule refers to, in order of appearance. */
export function referencedRules (rule: Rule): string[] {
  switch (rule.kind) {
    case 'rule': return [rule.name]
    case 'not': return referencedRules(rule.rule)
    case 'and': case 'or': return rule.rules.flatMap(referencedRules)
    default: return []
  }
}
