/**
 * A closed-loop HTTP load generator, as wrk drives a server: `connections`
 * keep-alive connections, each sending its next request as soon as the
 * previous answer arrived, for `durationMillis`. Each request is a
 * `POST /payments` with a new `Idempotency-Key`. A refused connection
 * either asks again at once, as wrk does (`honourRetryAfter: false`), or, as
 * a well-behaved client does, waits the `Retry-After` of the 503 first, with
 * jitter (uniform in `Retry-After × [1 − jitter, 1 + jitter]`, so refused
 * clients do not all come back in the same instant); the refused request
 * itself is not retried either way (the next one has a new key).
 *
 * Latencies are kept per answer, so the percentiles of accepted requests
 * (2xx) are reported apart from those of refusals.
 */
import { randomUUID } from "node:crypto"
import * as Http from "node:http"

export interface LoadOptions {
  readonly url: string
  readonly connections: number
  readonly durationMillis: number
  /** Per-request timeout; a request that takes longer counts as `timedOut`. Default 30 s. */
  readonly timeoutMillis?: number
  /** Whether a connection waits a 503's `Retry-After` before its next request. Default false (as wrk). */
  readonly honourRetryAfter?: boolean
  /**
   * How long the connections run before answers count, ms (default 0). The same connections go on into the
   * measurement, as wrk's do: a fresh run opening all its connections at once measures that burst, not the load.
   */
  readonly warmupMillis?: number
  /** How far a connection honouring `Retry-After` spreads its wait around it, as a fraction. Default 0.5. */
  readonly retryAfterJitter?: number
}

export interface LoadResult {
  readonly connections: number
  readonly seconds: number
  /** Answers by status. */
  readonly statuses: Readonly<Record<number, number>>
  /** 2xx answers (201 charged, 202 pending, 402 declined counted apart). */
  readonly accepted: number
  readonly refused: number
  /** 503 answers without a `Retry-After`. */
  readonly refusedWithoutRetryAfter: number
  readonly errors: number
  readonly timedOut: number
  /** Accepted requests a second. */
  readonly throughput: number
  /** Percentiles of accepted requests' latency, ms. */
  readonly p50: number
  readonly p99: number
  readonly max: number
  /** Percentiles of refusals' latency, ms. */
  readonly refusedP50: number
  readonly refusedP99: number
  /** The ids of accepted payments (from `Location`). */
  readonly acceptedIds: ReadonlyArray<string>
}

const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0

const body = JSON.stringify({ amount: 1000, currency: "EUR", customer: "load" })

export const run = (options: LoadOptions): Promise<LoadResult> => {
  const target = new URL("/payments", options.url)
  const agent = new Http.Agent({ keepAlive: true, maxSockets: options.connections })
  const timeoutMillis = options.timeoutMillis ?? 30_000
  const jitter = options.retryAfterJitter ?? 0.5
  const statuses: Record<number, number> = {}
  const accepted: Array<number> = []
  const refused: Array<number> = []
  const acceptedIds: Array<string> = []
  let refusedWithoutRetryAfter = 0
  let errors = 0
  let timedOut = 0
  const warmedUp = performance.now() + (options.warmupMillis ?? 0)
  const started = warmedUp
  const until = warmedUp + options.durationMillis

  /** What the last answer asks the connection to wait, ms. */
  const one = (): Promise<number> =>
    new Promise((resolve) => {
      const sent = performance.now()
      const request = Http.request(target, {
        method: "POST",
        agent,
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          "idempotency-key": randomUUID()
        },
        timeout: timeoutMillis
      }, (response) => {
        response.resume()
        response.on("end", () => {
          const status = response.statusCode ?? 0
          const retryAfter = response.headers["retry-after"]
          const wait = status === 503 && retryAfter !== undefined && options.honourRetryAfter === true
            ? Number(retryAfter) * 1000 * (1 - jitter + 2 * jitter * Math.random())
            : 0
          if (sent < warmedUp) return resolve(wait)
          const latency = performance.now() - sent
          statuses[status] = (statuses[status] ?? 0) + 1
          if (status >= 200 && status < 300) {
            accepted.push(latency)
            const location = response.headers["location"]
            if (typeof location === "string") acceptedIds.push(location.slice(location.lastIndexOf("/") + 1))
          } else if (status === 503) {
            refused.push(latency)
            if (retryAfter === undefined) refusedWithoutRetryAfter++
          }
          resolve(wait)
        })
        response.on("error", () => {
          if (sent >= warmedUp) errors++
          resolve(0)
        })
      })
      request.on("timeout", () => {
        if (sent >= warmedUp) timedOut++
        request.destroy()
      })
      request.on("error", () => {
        if (sent >= warmedUp) errors++
        resolve(0)
      })
      request.end(body)
    })

  const connection = async (): Promise<void> => {
    while (performance.now() < until) {
      const wait = Math.min(await one(), until - performance.now())
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
    }
  }

  return Promise.all(Array.from({ length: options.connections }, connection)).then(() => {
    agent.destroy()
    const seconds = (performance.now() - started) / 1000
    const sortedAccepted = [...accepted].sort((a, b) => a - b)
    const sortedRefused = [...refused].sort((a, b) => a - b)
    return {
      connections: options.connections,
      seconds,
      statuses,
      accepted: accepted.length,
      refused: refused.length,
      refusedWithoutRetryAfter,
      errors,
      timedOut,
      throughput: accepted.length / seconds,
      p50: percentile(sortedAccepted, 50),
      p99: percentile(sortedAccepted, 99),
      max: sortedAccepted[sortedAccepted.length - 1] ?? 0,
      refusedP50: percentile(sortedRefused, 50),
      refusedP99: percentile(sortedRefused, 99),
      acceptedIds
    }
  })
}
