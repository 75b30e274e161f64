import type { TestContext } from 'node:test'

const stacks = new WeakMap<object, Array<() => unknown>>()

/**
 * Registers `fn` to run after the test, in reverse order of registration
 * (node:test runs `t.after` hooks first-in, first-out): a database is then
 * dropped only after the app and connections that use it have closed.
 */
export function deferCleanup (t: TestContext, fn: () => unknown): void {
  let stack = stacks.get(t)
  if (stack === undefined) {
    const created: Array<() => unknown> = []
    stack = created
    stacks.set(t, created)
    t.after(async () => {
      while (created.length > 0) await created.pop()!()
    })
  }
  stack.push(fn)
}
