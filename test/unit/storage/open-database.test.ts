import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { engineOfUrl, redactUrl, supportsSkipLocked } from '../../../src/storage/open-database.ts'

describe('open-database', () => {
  it('reads every URL form cloudkitty.conf uses', () => {
    const cases: Array<[string, string]> = [
      ['sqlite:////var/lib/cloudkitty/cloudkitty.sqlite', 'sqlite'],
      ['postgresql://u:p@db/ck', 'postgres'], ['postgres://db/ck', 'postgres'], ['postgresql+psycopg2://u:p@db/ck', 'postgres'],
      ['mysql://u:p@db/ck', 'mysql'], ['mariadb://db/ck', 'mysql'], ['mysql+pymysql://u:p@db/ck?charset=utf8', 'mysql'],
    ]
    for (const [url, engine] of cases) assert.equal(engineOfUrl(url), engine, url)
    assert.throws(() => engineOfUrl('oracle://u:secret@db/x'), (e: Error) => /Unsupported database URL/.test(e.message) && !e.message.includes('secret'))
  })

  it('hides passwords when it names a URL', () => {
    assert.equal(redactUrl('mysql+pymysql://ck:s3cr3t@db:3306/ck?charset=utf8'), 'mysql+pymysql://ck:***@db:3306/ck?charset=utf8')
    assert.equal(redactUrl('postgresql://db/ck'), 'postgresql://db/ck')
  })

  it('knows which server versions have SKIP LOCKED', () => {
    const cases: Array<[string, boolean]> = [
      ['10.11.19-MariaDB-0+deb12u1', true], ['10.6.1-MariaDB', true], ['10.5.22-MariaDB', false], ['11.4.2-MariaDB', true],
      ['8.0.36', true], ['5.7.44-log', false],
    ]
    for (const [version, expected] of cases) assert.equal(supportsSkipLocked(version), expected, version)
  })
})
