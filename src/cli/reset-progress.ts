import type { ResetJobReply } from './wire.ts'

/** Where progress goes: the CLI passes stderr, so stdout keeps only the result. */
export interface ProgressStream {
  write: (text: string) => unknown
  isTTY?: boolean
  columns?: number
}

const BAR_WIDTH = 30
const CLEAR_LINE = '\r\x1b[2K'

function percent (job: ResetJobReply): number {
  if (job.status === 'done') return 100
  return job.scopes_total === 0 ? 0 : Math.floor(100 * job.scopes_applied / job.scopes_total)
}

/** One sentence about a job's state: `running, 40/100 scopes applied`. */
export function describeJob (job: ResetJobReply): string {
  const waiting = job.scopes_waiting > 0 ? `, ${job.scopes_waiting} waiting on CloudKitty's processing lock` : ''
  const counts = `${job.scopes_applied}/${job.scopes_total} scopes applied${waiting}`
  if (job.status === 'cancelled') return `cancelled, ${counts}; the other scopes were left as they were`
  if (job.status === 'failed') return `failed after ${job.attempts} attempt${job.attempts === 1 ? '' : 's'}, ${counts}: ${job.last_error ?? 'no error recorded'}`
  if (job.status === 'pending' && job.last_error !== null && job.attempts > 0) {
    return `pending, ${counts}; attempt ${job.attempts} of ${job.max_attempts} failed (${job.last_error}), retrying`
  }
  if (job.status === 'running' && typeof job.cancel_requested_at === 'string') return `running, ${counts}; cancelling after the current batch`
  return `${job.status}, ${counts}`
}

/**
 * Shows a reset job's progress while `--wait` polls it: on a terminal, one
 * line redrawn in place with a bar; elsewhere (a pipe, a log file), one
 * plain line each time the status or the count changes.
 */
export class ResetProgress {
  private last = ''
  private drawn = false
  private readonly tty: boolean

  constructor (private readonly stream: ProgressStream, options: { tty?: boolean } = {}) {
    this.tty = options.tty ?? stream.isTTY === true
  }

  /** Shows one reading of the job. */
  update (job: ResetJobReply): void {
    if (this.tty) {
      this.stream.write(CLEAR_LINE + this.barLine(job))
      this.drawn = true
      return
    }
    const line = `Reset ${job.id}: ${describeJob(job)}`
    if (line === this.last) return
    this.last = line
    this.stream.write(line + '\n')
  }

  /** Shows the last reading and ends the display. */
  finish (job: ResetJobReply): void {
    this.update(job)
    this.end()
  }

  /** Ends the display, for instance when waiting stops early: on a terminal, moves past the bar's line. */
  end (): void {
    if (this.tty && this.drawn) this.stream.write('\n')
    this.drawn = false
  }

  private barLine (job: ResetJobReply): string {
    const done = percent(job)
    const filled = Math.round(BAR_WIDTH * done / 100)
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}]`
    const line = `Reset ${job.id} ${bar} ${String(done).padStart(3)}% ${describeJob(job)}`
    const columns = this.stream.columns ?? 0
    // Never wrap: a wrapped line cannot be redrawn in place.
    return columns > 1 && [...line].length >= columns ? [...line].slice(0, columns - 2).join('') + '…' : line
  }
}
