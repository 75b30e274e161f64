import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import fc from 'fast-check'
import {
  ConfigFileError, configDirFiles, fileOptionReader, findFileValue, parseOsloConfig, readConfigFiles, substituteOptions,
  type ConfigFileSource, type InvalidLineReason, type OsloSections, type ParsedConfigFile,
} from '../../../src/config/oslo-config-file.ts'

const FILE = '/etc/cloudkitty/cloudkitty.conf'

function dirOf (t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'scopekeeper-oslo-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Sections as plain nested arrays, in order: what the Python side prints too. */
type SectionsJson = Array<[string, Array<[string, string[]]>]>
function toJson (sections: OsloSections): SectionsJson {
  return [...sections].map(([name, keys]) => [name, [...keys]])
}

function parse (text: string): SectionsJson {
  return toJson(parseOsloConfig(text, FILE))
}

function parseError (text: string): ConfigFileError {
  try {
    parseOsloConfig(text, FILE)
  } catch (error) {
    assert.ok(error instanceof ConfigFileError)
    return error
  }
  assert.fail(`parsed without an error: ${JSON.stringify(text)}`)
}

describe('parseOsloConfig', () => {
  const cases: Array<[string, string, SectionsJson]> = [
    ['keeps # and ; inside a value', '[database]\npassword = S3cr#t;pw\n', [['database', [['password', ['S3cr#t;pw']]]]]],
    ['keeps every = after the first', '[DEFAULT]\na=b=c\n', [['DEFAULT', [['a', ['b=c']]]]]],
    ['accepts key: value', '[api]\nhost_ip: 0.0.0.0\n', [['api', [['host_ip', ['0.0.0.0']]]]]],
    ['splits at = when it comes before :', '[ks]\nauth_url = http://keystone:5000\n', [['ks', [['auth_url', ['http://keystone:5000']]]]]],
    ['splits at : when it comes before =', '[ks]\nurl: a=b\n', [['ks', [['url', ['a=b']]]]]],
    ['strips key and value, keeping inner spaces', '[s]\nkey one \t=  two  words \t \n', [['s', [['key one', ['two  words']]]]]],
    ['removes one pair of matching quotes', '[s]\na = "x # y"\nb = \'\'\'q\'\'\'\nc = "x\'\nd = "\n', [['s', [['a', ['x # y']], ['b', ["''q''"]], ['c', ['"x\'']], ['d', ['']]]]]],
    ['keeps an empty value', '[s]\na =\nb:\n', [['s', [['a', ['']], ['b', ['']]]]]],
    ['joins continuation lines with newlines, stripped on the left', '[s]\na = one\n  two\n\t three  \n    # four\n', [['s', [['a', ['one\ntwo\nthree\n# four']]]]]],
    ['continues an empty first line', '[s]\na =\n  x\n', [['s', [['a', ['\nx']]]]]],
    ['ends a value at a blank line', '[s]\na = 1\n   \nb = 2\n', [['s', [['a', ['1']], ['b', ['2']]]]]],
    ['reads # and ; in the first column as comments', '# top\n[s]\n#a = 1\n;b = 2\nc = 3 # not a comment\n', [['s', [['c', ['3 # not a comment']]]]]],
    ['merges repeated sections and keeps every value of a key', '[DEFAULT]\na = 1\n[api]\nport = 1\n[DEFAULT]\na = 2\nb = 3\n[api]\nport = 2\n', [['DEFAULT', [['a', ['1', '2']], ['b', ['3']]]], ['api', [['port', ['1', '2']]]]]],
    ['keeps section names and keys as written', '[ API ]\nPort = 1\n[api]]\nx = 1\n', [[' API ', [['Port', ['1']]]], ['api]', [['x', ['1']]]]]],
    ['keeps an empty section', '[a]\n[b]\nx = 1\n', [['a', []], ['b', [['x', ['1']]]]]],
    ['reads \\r\\n and \\r line ends', '[s]\r\na = 1\r\n  2\rb = 3\r', [['s', [['a', ['1\n2']], ['b', ['3']]]]]],
    ["strips Python's whitespace, not JavaScript's", '[s]\na = \x1cv\x85\n\ufeffb = w\u3000\n', [['s', [['a', ['v']], ['\ufeffb', ['w']]]]]],
    ['reads an empty file', '', []],
  ]
  for (const [name, text, expected] of cases) {
    it(name, () => assert.deepEqual(parse(text), expected))
  }

  const errors: Array<[string, string, number, InvalidLineReason, RegExp]> = [
    ['a line with no = or :', '[s]\na = 1\nfoo\n', 3, 'no-separator', /^Invalid line 3 in \/etc\/cloudkitty\/cloudkitty\.conf: no '=' or ':' in "foo"$/],
    ['an empty key', '[s]\n= 1\n: 2\n', 2, 'empty-key', /^Invalid line 2 in .*: empty key before '=' in "= 1"$/],
    ['an indented line after a section header', '[s]\n  # indented comment\n', 2, 'unexpected-continuation', /^Invalid line 2 in .*: indented line with no option above it to continue .*: "  # indented comment"$/],
    ['an indented line after a blank line', '[s]\na = 1\n\n  b\n', 4, 'unexpected-continuation', /^Invalid line 4 /],
    ['an indented line after a comment', '[s]\na = 1\n# c\n  b\n', 4, 'unexpected-continuation', /^Invalid line 4 /],
    ['an unclosed section header', '[s]\n[api # comment\n', 2, 'no-section-end', /^Invalid line 2 in .*: section header that does not end with '\]': "\[api # comment"$/],
    ['an empty section name', '[]\n', 1, 'empty-section-name', /^Invalid line 1 in .*: empty section name in "\[\]"$/],
    ['an option before any section', '# c\nfoo = bar\n  baz\n[s]\n', 2, 'no-section', /^Invalid line 2 in .*: option before any \[section\] header in "foo = bar"$/],
  ]
  for (const [name, text, line, reason, message] of errors) {
    it(`refuses ${name}, naming the file and the line`, () => {
      const error = parseError(text)
      assert.equal(error.line, line)
      assert.equal(error.reason, reason)
      assert.match(error.message, message)
      assert.equal(error.message.includes('\n'), false)
    })
  }
})

describe('readConfigFiles and findFileValue', () => {
  it('lets a later file win, and a later value within a file', (t) => {
    const dir = dirOf(t)
    writeFileSync(join(dir, 'a.conf'), '[api]\nport = 1\nhost_ip = a\n[API]\nport = 2\n')
    writeFileSync(join(dir, 'b.conf'), '[Api]\nport = 3\n')
    const files = readConfigFiles([{ file: join(dir, 'a.conf') }, { file: join(dir, 'b.conf') }])
    assert.deepEqual(findFileValue(files, 'api', 'port'), { value: '3', file: join(dir, 'b.conf') })
    assert.deepEqual(findFileValue(files, 'api', 'host_ip'), { value: 'a', file: join(dir, 'a.conf') })
    assert.deepEqual(findFileValue(readConfigFiles([{ file: join(dir, 'a.conf') }]), 'api', 'port')?.value, '2')
    assert.equal(findFileValue(files, 'api', 'Port'), undefined, 'keys are case-sensitive')
  })

  it('reads [DEFAULT] only when written so', (t) => {
    const dir = dirOf(t)
    writeFileSync(join(dir, 'a.conf'), '[default]\na = 1\n')
    const files = readConfigFiles([{ file: join(dir, 'a.conf') }])
    assert.equal(findFileValue(files, 'DEFAULT', 'a'), undefined)
    assert.equal(findFileValue(files, 'default', 'a')?.value, '1')
  })

  it("reads a config dir's *.conf in sorted order, skipping dot files and other names", (t) => {
    const dir = dirOf(t)
    for (const name of ['20-b.conf', '10-a.conf', 'B.conf', '.hidden.conf', 'x.conf.bak', 'notes.txt', 'é.conf']) writeFileSync(join(dir, name), `[s]\nwho = ${name}\n`)
    assert.deepEqual(configDirFiles(dir).map((f) => f.slice(dir.length + 1)), ['10-a.conf', '20-b.conf', 'B.conf', 'é.conf'])
    assert.equal(findFileValue(readConfigFiles([{ dir }]), 's', 'who')?.value, 'é.conf')
  })

  it('reads --config-file and --config-dir in the order given', (t) => {
    const dir = dirOf(t)
    mkdirSync(join(dir, 'conf.d'))
    writeFileSync(join(dir, 'conf.d', 'x.conf'), '[s]\nwho = dir\n')
    writeFileSync(join(dir, 'main.conf'), '[s]\nwho = file\n')
    const file = { file: join(dir, 'main.conf') }
    const confDir = { dir: join(dir, 'conf.d') }
    assert.equal(findFileValue(readConfigFiles([file, confDir]), 's', 'who')?.value, 'dir')
    assert.equal(findFileValue(readConfigFiles([confDir, file]), 's', 'who')?.value, 'file')
  })

  it('names every missing file in one line, after a parse error of a later file wins', (t) => {
    const dir = dirOf(t)
    writeFileSync(join(dir, 'bad.conf'), '[s]\nfoo\n')
    assert.throws(() => readConfigFiles([{ file: join(dir, 'no1.conf') }, { file: join(dir, 'no2.conf') }]),
      (e: Error) => e instanceof ConfigFileError && e.message === `Config files not found: ${join(dir, 'no1.conf')}, ${join(dir, 'no2.conf')}`)
    assert.throws(() => readConfigFiles([{ file: join(dir, 'no1.conf') }, { file: join(dir, 'bad.conf') }]), /^Error: Invalid line 2 in .*bad\.conf/)
    symlinkSync(join(dir, 'gone'), join(dir, 'dangling.conf'))
    assert.throws(() => readConfigFiles([{ dir }]), /^Error: Invalid line 2 in .*bad\.conf/)
    rmSync(join(dir, 'bad.conf'))
    assert.throws(() => readConfigFiles([{ dir }]), /^Error: Config file not found: .*dangling\.conf$/)
  })

  it('refuses a missing, unreadable or non-directory config dir, and a directory as a file', (t) => {
    const dir = dirOf(t)
    writeFileSync(join(dir, 'a.conf'), '[s]\n')
    assert.throws(() => readConfigFiles([{ dir: join(dir, 'absent') }]), (e: Error) => e instanceof ConfigFileError && e.message === `Config directory not found: ${join(dir, 'absent')}`)
    assert.throws(() => readConfigFiles([{ dir: join(dir, 'a.conf') }]), /Cannot read config directory .*a\.conf: it is not a directory/)
    assert.throws(() => readConfigFiles([{ file: dir }]), /Cannot read config file .*: it is a directory/)
    writeFileSync(join(dir, 'latin1.conf'), Buffer.from([0x5b, 0x73, 0x5d, 0x0a, 0x61, 0x3d, 0xe9, 0x0a]))
    assert.throws(() => readConfigFiles([{ file: join(dir, 'latin1.conf') }]), /latin1\.conf: it is not UTF-8 text/)
  })

  it('names an unreadable file (as a user other than root)', (t) => {
    if (process.getuid?.() === 0) return t.skip('root reads every file')
    const dir = dirOf(t)
    writeFileSync(join(dir, 'secret.conf'), '[s]\n')
    chmodSync(join(dir, 'secret.conf'), 0o000)
    assert.throws(() => readConfigFiles([{ file: join(dir, 'secret.conf') }]), /^Error: Config file not readable \(permission denied\): .*secret\.conf$/)
  })
})

describe('substituteOptions', () => {
  const options: Record<string, string> = { 'DEFAULT a': 'A', 'g b': 'B', 'g a': 'GA', 'DEFAULT x.y': 'never' }
  const lookup = (group: string, name: string): string | undefined => options[`${group} ${name}`]
  const cases: Array<[string, string, string]> = [
    ['pa$$w0rd', 'DEFAULT', 'pa$w0rd'],
    ['x\\$y', 'DEFAULT', 'x$y'],
    ['\\$$', 'DEFAULT', '$$'],
    ['$a-${a}', 'DEFAULT', 'A-A'],
    ['$a', 'g', 'GA'],
    ['$b', 'g', 'B'],
    ['${g.b}!', 'DEFAULT', 'B!'],
    ['$1 $ ${ ${} $-', 'DEFAULT', '$1 $ ${ ${} $-'],
    ['S3cr#t;pw', 'DEFAULT', 'S3cr#t;pw'],
  ]
  for (const [raw, group, expected] of cases) {
    it(`reads ${JSON.stringify(raw)} in [${group}] as ${JSON.stringify(expected)}`, () => assert.equal(substituteOptions(raw, group, lookup, '[s] k'), expected))
  }
  it('refuses a name it does not know, and ${DEFAULT.name}', () => {
    assert.throws(() => substituteOptions('p$x', 'DEFAULT', lookup, '[database] connection in f'), /^Error: \[database\] connection in f refers to \$x, an option scopekeeper does not know; write \$\$ for a literal \$$/)
    assert.throws(() => substituteOptions('${DEFAULT.a}', 'g', lookup, 'w'), /refers to \$\{DEFAULT\.a\}/)
  })
  it('refuses options that refer to each other', (t) => {
    const dir = dirOf(t)
    writeFileSync(join(dir, 'a.conf'), '[DEFAULT]\na = $b\nb = ${a}\n')
    const read = fileOptionReader(readConfigFiles([{ file: join(dir, 'a.conf') }]), () => true, () => '')
    assert.throws(() => read('DEFAULT', 'a'), /^Error: Options refer to each other in a cycle: \[DEFAULT\] a -> \[DEFAULT\] b -> \[DEFAULT\] a$/)
  })
})

// ---- The same files, read by oslo.config itself ----------------------------

const PYTHON = '/usr/bin/python3'

// Debian's python and oslo.config, whatever a developer's PYTHON* variables
// say; files are UTF-8 whatever the locale.
const PYTHON_ENV = {
  ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('PYTHON'))),
  PYTHONUTF8: '1',
}

function osloConfigSkipReason (): string | undefined {
  try {
    execFileSync(PYTHON, ['-c', 'import oslo_config.cfg'], { env: PYTHON_ENV, stdio: 'pipe' })
    return undefined
  } catch (error) {
    const missing = `${PYTHON} cannot import oslo_config (${(error as Error).message.split('\n')[0]}); install Debian's python3-oslo.config`
    if (process.env.CI === 'true') throw new Error(`oslo.config is required when CI=true: ${missing}`)
    process.stderr.write(`\n!!! SKIPPED oslo.config comparison tests: ${missing}\n`)
    return `SKIPPED: ${missing}`
  }
}

// cfg.ConfigParser fills `sections` exactly as ConfigOpts does for each file.
const PARSE_SCRIPT = `
import json, sys
from oslo_config import cfg, iniparser
out = []
for path in json.load(sys.stdin):
    sections = {}
    try:
        cfg.ConfigParser(path, sections).parse()
        out.append({'sections': [[s, [[k, v] for k, v in keys.items()]] for s, keys in sections.items()]})
    except iniparser.ParseError as e:
        out.append({'error': {'lineno': e.lineno, 'msg': e.msg}})
json.dump(out, sys.stdout)
`

// A whole ConfigOpts: --config-file/--config-dir arguments and StrOpts.
const READ_SCRIPT = `
import json, sys
from oslo_config import cfg
out = []
for case in json.load(sys.stdin):
    conf = cfg.ConfigOpts()
    for group, name in case['options']:
        conf.register_opt(cfg.StrOpt(name), group=None if group == 'DEFAULT' else group)
    try:
        conf(args=case['args'], default_config_files=[], default_config_dirs=[], use_env=False)
    except cfg.Error as e:
        out.append({'error': type(e).__name__})
        continue
    values = []
    for group, name in case['options']:
        try:
            values.append(conf[name] if group == 'DEFAULT' else conf[group][name])
        except Exception as e:
            values.append({'error': type(e).__name__})
    out.append({'values': values})
json.dump(out, sys.stdout)
`

type OsloParse = { sections: SectionsJson } | { error: { lineno: number, msg: string } }

function python<T> (script: string, input: unknown): T {
  return JSON.parse(execFileSync(PYTHON, ['-c', script], { env: PYTHON_ENV, input: JSON.stringify(input), maxBuffer: 256 * 1024 * 1024 }).toString()) as T
}

const REASON_OF_MESSAGE: Record<string, InvalidLineReason> = {
  "No ':' or '=' found in assignment": 'no-separator',
  'Key cannot be empty': 'empty-key',
  'Unexpected continuation line': 'unexpected-continuation',
  'Invalid section (must end with ])': 'no-section-end',
  'Empty section name': 'empty-section-name',
  'Section must be started before assignment': 'no-section',
}

type Ours = { sections: SectionsJson } | { error: { line?: number, reason?: InvalidLineReason } }

function ours (text: string): Ours {
  try {
    return { sections: toJson(parseOsloConfig(text, FILE)) }
  } catch (error) {
    assert.ok(error instanceof ConfigFileError, String(error))
    return { error: { line: error.line, reason: error.reason } }
  }
}

/** Ours in oslo.config's terms: the same sections, or the same error on the same line. */
function theirsAsOurs (theirs: OsloParse): Ours {
  if ('sections' in theirs) return theirs
  const reason = REASON_OF_MESSAGE[theirs.error.msg]
  assert.ok(reason !== undefined, `unknown oslo.config message ${theirs.error.msg}`)
  // oslo.config names the line where an option before any section ended;
  // we name the option's own line (compared by the table tests above).
  return { error: { line: reason === 'no-section' ? undefined : theirs.error.lineno, reason } }
}

function comparable (result: Ours): Ours {
  return 'error' in result && result.error.reason === 'no-section' ? { error: { reason: 'no-section', line: undefined } } : result
}

function parsedByOslo (dir: string, texts: string[]): Ours[] {
  const paths = texts.map((text, i) => {
    const path = join(dir, `${i}.conf`)
    writeFileSync(path, text)
    return path
  })
  return python<OsloParse[]>(PARSE_SCRIPT, paths).map(theirsAsOurs)
}

// Shapes that trip INI parsers, kolla-ansible's cloudkitty.conf.j2 among them.
const SAMPLES = [
  `[DEFAULT]
debug = False
log_dir = /var/log/kolla/cloudkitty
transport_url = rabbit://openstack:R4bb#t;pw@10.0.0.1:5672,openstack:R4bb#t;pw@10.0.0.2:5672//
auth_strategy = keystone

[database]
connection = mysql+pymysql://cloudkitty:S3cr#t;pw@10.0.0.9:3306/cloudkitty?ssl_ca=/etc/ssl/ca.pem
max_retries = -1

[keystone_authtoken]
www_authenticate_uri = https://keystone:5000
auth_url = https://keystone:5000
auth_type = password
project_domain_id = default
user_domain_id = default
project_name = service
username = cloudkitty
password = pa$$w0rd"with;odd#chars=and:colons
memcache_security_strategy = ENCRYPT
memcached_servers = 10.0.0.1:11211,10.0.0.2:11211

[oslo_messaging_notifications]
driver = noop

[collect]
collector = prometheus
metrics_conf = /etc/kolla/cloudkitty-api/metrics.yml

[orchestrator]
coordination_url = mysql://cloudkitty:S3cr#t;pw@10.0.0.9:3306/cloudkitty
`,
  '[s]\na = "quoted"\nb = \'single\'\nc = "mixed\'\nd = ""\ne = "\nf = \'x\' \ng = " spaced "\n',
  '[s]\nmulti = first\n  second # kept\n\tthird ; kept\n   \nafter = blank\n',
  '[s]\nk:v=w\nk2=v:w\n: empty\n',
  '[s]\n  leading\n',
  '[s]\na = 1\n#c\n  x\n',
  '[s\n',
  '[]\n',
  'orphan = 1\n[s]\n',
  'orphan = 1\n  more\n\n[s]\n',
  '[s]\nnoseparator\n',
  '[s]\n= v\n',
  '[a]\nx = 1\n[b]\nx = 2\n[a]\nx = 3\ny = 4\n',
  '[s]\r\na = 1\r\n  2\r\n\r\nb = 3',
  '[s]\ra = 1\r  2\rb = 3\r',
  '[s]\na = \x0b\x0cv\x1c\x1d\x1e\x1f\x85\xa0\u2000\u3000\n\x0cb = w\n\ufeffc = x\nd = \ufeffy\ufeff\n',
  '\ufeff[DEFAULT]\na = 1\n',
  '[ s ]\n\tcontinued\n',
  '[s]\n[t]\n[s]\n',
  '[s]\nunicode = é😀 — ok\n😀 = key\n',
  '[s]\na = 1\n\n\n  \n\t\nb = 2\n',
  '[s]\n__proto__ = x\nconstructor = y\n[__proto__]\nz = 1\n',
  '',
  '\n\n',
  '# only a comment',
  '[s]\nlast = no newline',
]

const skipOslo = osloConfigSkipReason()

describe('parseOsloConfig against oslo.config (cfg.ConfigParser)', { skip: skipOslo }, () => {
  it('parses tricky sample files exactly as oslo.config does', (t) => {
    const theirs = parsedByOslo(dirOf(t), SAMPLES)
    SAMPLES.forEach((text, i) => assert.deepEqual(comparable(ours(text)), theirs[i], `sample ${i}: ${JSON.stringify(text)}`))
  })

  it('parses generated files exactly as oslo.config does', (t) => {
    const dir = dirOf(t)
    const char = fc.oneof(
      { weight: 12, arbitrary: fc.constantFrom(...' abcXYZ019_-./@#;=:"\'[]$\\{}%!') },
      { weight: 3, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }) },
      { weight: 1, arbitrary: fc.constantFrom('\t', '\x0b', '\x0c', '\x1c', '\x85', '\xa0', '\u2028', '\u3000', '\ufeff', 'é', '😀', '\r') },
    )
    const chars = (maxLength: number) => fc.array(char, { maxLength }).map((c) => c.join(''))
    const line = fc.oneof(
      { weight: 2, arbitrary: fc.tuple(fc.constantFrom('[', '[['), chars(8), fc.constantFrom(']', '', ']]', '] ')).map((p) => p.join('')) },
      { weight: 6, arbitrary: fc.tuple(chars(6), fc.constantFrom('=', ':', ' = ', ': ', ' :', '=:', ':='), chars(20)).map((p) => p.join('')) },
      { weight: 3, arbitrary: fc.tuple(fc.constantFrom(' ', '\t', '  ', ' \t'), chars(16)).map((p) => p.join('')) },
      { weight: 2, arbitrary: fc.tuple(fc.constantFrom('#', ';', '# ', ';;'), chars(16)).map((p) => p.join('')) },
      { weight: 2, arbitrary: fc.constantFrom('', ' ', '\t', ' \t ') },
      { weight: 1, arbitrary: chars(20) },
    )
    const file = fc.tuple(
      fc.constantFrom('[DEFAULT]', '[s]', ''),
      fc.array(line, { maxLength: 14 }),
      fc.constantFrom('\n', '\r\n', '\r'),
      fc.boolean(),
    ).map(([first, lines, eol, trailing]) => [first, ...lines].join(eol) + (trailing ? eol : ''))
    const runs = { numRuns: 1500, seed: Number(process.env.FC_SEED ?? Date.now() % 1_000_000) }
    // One python for the whole batch; a shrunk file not in it costs one call of its own.
    const sampled = fc.sample(file, runs)
    const batch = parsedByOslo(dir, sampled)
    const known = new Map(sampled.map((text, i) => [text, batch[i]]))
    fc.assert(fc.property(file, (text) => {
      const theirs = known.get(text) ?? parsedByOslo(dir, [text])[0]
      assert.deepEqual(comparable(ours(text)), theirs, JSON.stringify(text))
    }), runs)
  })
})

describe('readConfigFiles, findFileValue and substitution against oslo.config (ConfigOpts)', { skip: skipOslo }, () => {
  interface Case { name: string, sources: ConfigFileSource[], options: Array<[string, string]> }

  function cases (dir: string): Case[] {
    const write = (name: string, text: string): string => {
      const path = join(dir, name)
      mkdirSync(join(path, '..'), { recursive: true })
      writeFileSync(path, text)
      return path
    }
    const a = write('a.conf', '[DEFAULT]\nwho = a\nonly_a = 1\n[API]\nport = 1\n[api]\nport = 2\n[default]\nwho = lower\n')
    const b = write('b.conf', '[DEFAULT]\nwho = b\n[Api]\nhost = b\n')
    write('d/20-x.conf', '[DEFAULT]\nwho = d20\n')
    write('d/10-x.conf', '[DEFAULT]\nwho = d10\nonly_d = 1\n')
    write('d/.30-hidden.conf', '[DEFAULT]\nwho = hidden\n')
    write('d/40-x.conf.orig', '[DEFAULT]\nwho = orig\n')
    write('d/Z.conf', '[DEFAULT]\nwho = Z\n')
    const subst = write('subst.conf', [
      '[DEFAULT]',
      'a = A',
      'dollar = pa$$w0rd',
      'backslash = x\\$y',
      'ref = <$a> <${a}> <${g.b}>',
      'literal = $1 $ ${ ${} $-',
      'unknown = p$nope',
      'default_dotted = ${DEFAULT.a}',
      'cycle = $cycle2',
      'cycle2 = ${cycle}',
      '[g]',
      'b = B $a',
      'c = $b/$a',
      'd = ${g.c}.',
      'e = $g.d',
      'a = GA',
      'f = $a',
    ].join('\n'))
    const options: Array<[string, string]> = [['DEFAULT', 'who'], ['DEFAULT', 'only_a'], ['DEFAULT', 'only_d'], ['api', 'port'], ['api', 'host'], ['default', 'who']]
    const substOptions: Array<[string, string]> = [
      ...['a', 'dollar', 'backslash', 'ref', 'literal', 'unknown', 'default_dotted', 'cycle', 'cycle2', 'unset'].map((k): [string, string] => ['DEFAULT', k]),
      ...['a', 'b', 'c', 'd', 'e', 'f'].map((k): [string, string] => ['g', k]),
    ]
    const d = join(dir, 'd')
    return [
      { name: 'one file', sources: [{ file: a }], options },
      { name: 'a later file wins', sources: [{ file: a }, { file: b }], options },
      { name: 'an earlier file loses', sources: [{ file: b }, { file: a }], options },
      { name: 'a dir, sorted', sources: [{ dir: d }], options },
      { name: 'a file, then a dir', sources: [{ file: a }, { dir: d }], options },
      { name: 'a dir, then a file', sources: [{ dir: d }, { file: a }], options },
      { name: 'interleaved', sources: [{ file: b }, { dir: d }, { file: a }, { file: b }], options },
      { name: 'a missing file', sources: [{ file: join(dir, 'nope.conf') }, { file: a }], options },
      { name: 'a missing dir', sources: [{ file: a }, { dir: join(dir, 'nope.d') }], options },
      { name: 'substitution', sources: [{ file: subst }], options: substOptions },
    ]
  }

  type OsloRead = { values: Array<string | null | { error: string }> } | { error: string }

  function ourRead (c: Case): OsloRead {
    let files: ParsedConfigFile[]
    try {
      files = readConfigFiles(c.sources)
    } catch (error) {
      assert.ok(error instanceof ConfigFileError, String(error))
      if (error.message.startsWith('Config file')) return { error: 'ConfigFilesNotFoundError' }
      if (error.message.startsWith('Config directory not found')) return { error: 'ConfigDirNotFoundError' }
      return { error: error.message }
    }
    const registered = new Set(c.options.map(([g, k]) => `${g} ${k}`))
    const read = fileOptionReader(files, (g, k) => registered.has(`${g} ${k}`), () => '')
    return {
      values: c.options.map(([g, k]) => {
        try {
          // An unset StrOpt is None; we give its default, '' here.
          return findFileValue(files, g, k) === undefined ? null : read(g, k).value
        } catch (error) {
          assert.ok(error instanceof ConfigFileError, String(error))
          return { error: 'refused' }
        }
      }),
    }
  }

  // NoSuchOptError for a name it does not know, RecursionError for a cycle:
  // both are a refusal here.
  function theirsAsOurs (theirs: OsloRead): OsloRead {
    if ('error' in theirs) return theirs
    return { values: theirs.values.map((v) => typeof v === 'object' && v !== null ? { error: 'refused' } : v) }
  }

  it('reads files, dirs, their order and $ substitution exactly as oslo.config does', (t) => {
    const all = cases(dirOf(t))
    const args = (c: Case) => c.sources.flatMap((s) => 'dir' in s ? ['--config-dir', s.dir] : ['--config-file', s.file])
    const theirs = python<OsloRead[]>(READ_SCRIPT, all.map((c) => ({ args: args(c), options: c.options })))
    all.forEach((c, i) => assert.deepEqual(ourRead(c), theirsAsOurs(theirs[i]), c.name))
    // The comparison means something: oslo.config read what we expect.
    const values = (name: string) => (theirs[all.findIndex((c) => c.name === name)] as { values: unknown[] }).values
    assert.deepEqual(values('a file, then a dir').slice(0, 4), ['Z', '1', '1', '2'])
    assert.deepEqual(values('a dir, then a file').slice(0, 1), ['a'])
    assert.deepEqual(values('substitution').slice(1, 5), ['pa$w0rd', 'x$y', '<A> <A> <B GA>', '$1 $ ${ ${} $-'])
  })
})
