import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type { InvalidOptionsError } from "../../Failure.js"
import * as Options from "../../internal/options.js"
import type * as RetryBudget from "../RetryBudget.js"

/** @internal */
export const defaults = {
  ratio: 0.2,
  minRetriesPerSecond: 10,
  window: Duration.seconds(10)
} as const

const component = "RetryBudget"

/**
 * Per-second buckets over the window: deposits (calls) and withdrawals
 * (retries) older than the window expire, as Finagle's deposits do after
 * their TTL. Every update is synchronous, so it is atomic for the JS thread
 * and needs no lock or STM.
 */
class Ledger {
  readonly seconds: number
  readonly stamps: Float64Array
  readonly calls: Float64Array
  readonly retries: Float64Array

  constructor(seconds: number) {
    this.seconds = seconds
    this.stamps = new Float64Array(seconds).fill(-1)
    this.calls = new Float64Array(seconds)
    this.retries = new Float64Array(seconds)
  }

  private bucket(now: number): number {
    const second = Math.floor(now / 1000)
    const index = second % this.seconds
    if (this.stamps[index] !== second) {
      this.stamps[index] = second
      this.calls[index] = 0
      this.retries[index] = 0
    }
    return index
  }

  deposit(now: number): void {
    const index = this.bucket(now)
    this.calls[index] = (this.calls[index] ?? 0) + 1
  }

  totals(now: number): { readonly calls: number; readonly retries: number } {
    const second = Math.floor(now / 1000)
    let calls = 0
    let retries = 0
    for (let i = 0; i < this.seconds; i++) {
      const stamp = this.stamps[i] ?? -1
      if (stamp > second - this.seconds && stamp <= second) {
        calls += this.calls[i] ?? 0
        retries += this.retries[i] ?? 0
      }
    }
    return { calls, retries }
  }

  withdraw(now: number): void {
    const index = this.bucket(now)
    this.retries[index] = (this.retries[index] ?? 0) + 1
  }
}

/** @internal */
export const make = (
  options: RetryBudget.RetryBudget.Options = {}
): Effect.Effect<RetryBudget.RetryBudget, InvalidOptionsError> =>
  Effect.flatMap(
    Either.all({
      name: Options.name({ component, option: "name" }, options.name ?? "default"),
      ratio: Options.number({ component, option: "ratio" }, options.ratio ?? defaults.ratio, { min: 0, max: 1000 }),
      minRetriesPerSecond: Options.number(
        { component, option: "minRetriesPerSecond" },
        options.minRetriesPerSecond ?? defaults.minRetriesPerSecond,
        { min: 0, max: 1_000_000 }
      ),
      window: Either.flatMap(
        Options.duration({ component, option: "window" }, options.window ?? defaults.window, { allowZero: false }),
        (window) => {
          const seconds = Duration.toSeconds(window)
          return Number.isInteger(seconds) && seconds >= 1 && seconds <= 60
            ? Either.right(window)
            : Either.left(
              Options.invalid({ component, option: "window" }, options.window, "a whole number of seconds from 1 to 60")
            )
        }
      )
    }),
    (valid) =>
      Effect.sync(() => {
        const windowSeconds = Duration.toSeconds(valid.window)
        const ledger = new Ledger(windowSeconds)
        const reserve = valid.minRetriesPerSecond * windowSeconds
        const balance = (now: number) => {
          const { calls, retries } = ledger.totals(now)
          return reserve + valid.ratio * calls - retries
        }
        const budget: RetryBudget.RetryBudget = {
          name: valid.name,
          ratio: valid.ratio,
          minRetriesPerSecond: valid.minRetriesPerSecond,
          window: valid.window,
          deposit: Effect.clockWith((clock) => Effect.sync(() => ledger.deposit(clock.unsafeCurrentTimeMillis()))),
          tryWithdraw: Effect.clockWith((clock) =>
            Effect.sync(() => {
              const now = clock.unsafeCurrentTimeMillis()
              if (balance(now) < 1) return false
              ledger.withdraw(now)
              return true
            })
          ),
          available: Effect.clockWith((clock) =>
            Effect.sync(() => Math.max(0, Math.floor(balance(clock.unsafeCurrentTimeMillis()))))
          )
        }
        return budget
      })
  )
