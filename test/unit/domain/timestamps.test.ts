import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { formatTimestamp, fromStored, isTimestamp, parseTimestamp, startOfMonth, toStoredText } from '../../../src/domain/timestamps.ts'

const iso = (value: string) => parseTimestamp(value, 'last_processed_timestamp').toISOString()

describe('timestamps', () => {
  it('reads the extended form with Z, an offset, or none as UTC', () => {
    assert.equal(iso('2019-07-16T08:55:01Z'), '2019-07-16T08:55:01.000Z')
    assert.equal(iso('2019-07-16T08:55:01+02:00'), '2019-07-16T06:55:01.000Z')
    assert.equal(iso('2019-07-16T08:55:01-0130'), '2019-07-16T10:25:01.000Z')
    assert.equal(iso('2019-07-16T08:55:01'), '2019-07-16T08:55:01.000Z')
    assert.equal(iso('2019-07-16 08:55:01'), '2019-07-16T08:55:01.000Z')
    assert.equal(iso('2019-07-16T08:55'), '2019-07-16T08:55:00.000Z')
  })

  it('reads the basic form', () => {
    assert.equal(iso('20190716T085501Z'), '2019-07-16T08:55:01.000Z')
    assert.equal(iso('20190716T085501+0200'), '2019-07-16T06:55:01.000Z')
    assert.equal(iso('20190716'), '2019-07-16T00:00:00.000Z')
  })

  it('reads a date alone as midnight UTC and drops fractions of a second', () => {
    assert.equal(iso('2019-07-16'), '2019-07-16T00:00:00.000Z')
    assert.equal(iso('2019-07-16T08:55:01.999999Z'), '2019-07-16T08:55:01.000Z')
  })

  it('crosses a day boundary when the offset says so', () => {
    assert.equal(iso('2019-01-01T00:30:00+01:00'), '2018-12-31T23:30:00.000Z')
  })

  it('refuses anything else, naming the field', () => {
    for (const bad of ['', 'yesterday', '2019-13-01', '2019-02-30', '2019-07-16T25:00:00', '2019-07-16T08:61:00',
      '2019-07-16T08:55:01+25:00', '16/07/2019', '2019-07-16T08:55:01ZZ', '0999-12-31', '10000-01-01', '1563267301']) {
      assert.throws(() => parseTimestamp(bad, 'state'), /Invalid state/, bad)
      assert.equal(isTimestamp(bad), false, bad)
    }
  })

  it('formats output with +00:00 and stores SQLAlchemy SQLite text', () => {
    const at = new Date('2019-07-16T08:55:01Z')
    assert.equal(formatTimestamp(at), '2019-07-16T08:55:01+00:00')
    assert.equal(toStoredText(at), '2019-07-16 08:55:01.000000')
  })

  it('reads every stored form back', () => {
    const expected = new Date('2019-07-16T08:55:01Z').getTime()
    for (const stored of ['2019-07-16 08:55:01.000000', '2019-07-16 08:55:01', '2019-07-16T08:55:01', '2019-07-16 08:55:01.123456']) {
      assert.equal(fromStored(stored).getTime(), expected, stored)
    }
    assert.equal(fromStored(new Date(expected + 500)).getTime(), expected)
    assert.throws(() => fromStored('garbage'))
  })

  it('finds the start of the month in UTC', () => {
    assert.equal(startOfMonth(new Date('2026-11-29T13:00:00Z')).toISOString(), '2026-11-01T00:00:00.000Z')
    assert.equal(startOfMonth(new Date('2026-01-01T00:00:00Z')).toISOString(), '2026-01-01T00:00:00.000Z')
  })

  it('round-trips any instant through every output and input form', () => {
    const instants = fc.date({ min: new Date('1000-01-02T00:00:00Z'), max: new Date('9999-12-30T00:00:00Z'), noInvalidDate: true })
      .map((d) => new Date(Math.floor(d.getTime() / 1000) * 1000))
    fc.assert(fc.property(instants, fc.integer({ min: -23 * 60, max: 23 * 60 }), (at, offsetMinutes) => {
      assert.equal(parseTimestamp(formatTimestamp(at), 'f').getTime(), at.getTime())
      assert.equal(fromStored(toStoredText(at)).getTime(), at.getTime())
      // The same instant written in another zone reads back identically.
      const local = new Date(at.getTime() + offsetMinutes * 60_000).toISOString().slice(0, 19)
      const sign = offsetMinutes < 0 ? '-' : '+'
      const abs = Math.abs(offsetMinutes)
      const offset = `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`
      const year = Number(local.slice(0, 4))
      if (year >= 1000 && year <= 9999) assert.equal(parseTimestamp(local + offset, 'f').getTime(), at.getTime())
      const basic = local.replace(/[-:]/g, '') + offset.replace(':', '')
      if (year >= 1000 && year <= 9999) assert.equal(parseTimestamp(basic, 'f').getTime(), at.getTime())
    }))
  })
})
