/**
 * The rate-limit headers of one response, for every policy it was checked
 * against (draft-ietf-httpapi-ratelimit-headers): `RateLimit-Policy` and
 * `RateLimit` as structured-field lists with one member per policy, and the
 * legacy `X-RateLimit-*` trio for the policy that binds first.
 *
 * The middleware records each limiter's state in a fiber-local list as it
 * decides, and renders the whole list when the response goes out: every
 * decision of a request is made before its response exists, so whichever
 * pre-response handler runs sees all of them, and each renders the same.
 *
 * @internal
 */
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Duration from "effect/Duration"
import * as FiberRef from "effect/FiberRef"
import { globalValue } from "effect/GlobalValue"
import type { Decision, Policy, RateLimitedError, RateLimiter } from "../RateLimiter.js"
import type { PolicyState } from "../RateLimiterHttp.js"

/** Whole seconds, rounded up: a client waiting this long is never early. */
export const seconds = (duration: Duration.Duration): number => Math.ceil(Duration.toMillis(duration) / 1000)

/** An sf-string (RFC 8941 §3.3.3): printable ASCII with `\` and `"` escaped. */
const sfString = (value: string): string => `"${value.replace(/[^\x20-\x7e]/g, "").replace(/[\\"]/g, "\\$&")}"`

/**
 * A `RateLimit-Policy` member: quota `q` per window `w` seconds.
 *
 * @internal
 */
export const policyItem = (name: string, policy: Pick<Policy, "quota" | "window">): string =>
  `${sfString(name)};q=${policy.quota};w=${seconds(policy.window)}`

/**
 * A `RateLimit` member: remaining units `r` and seconds `t` until they are whole again.
 *
 * @internal
 */
export const limitItem = (name: string, remaining: number, reset: Duration.Duration): string =>
  `${sfString(name)};r=${remaining};t=${seconds(reset)}`

/**
 * The state a decision or a refusal advertises; none when the store's
 * failure policy decided, since its numbers are made up.
 *
 * @internal
 */
export const stateOf = (
  limiter: RateLimiter,
  outcome: Decision | RateLimitedError,
  options: { readonly policyName?: string | undefined } = {}
): PolicyState => {
  const known = "_tag" in outcome ? outcome.reason === "LimitExceeded" : !outcome.degraded
  return {
    name: options.policyName ?? limiter.name,
    policy: limiter.policy,
    state: known ? { remaining: outcome.remaining, reset: outcome.reset } : undefined
  }
}

/** The members of an sf-list as text; commas inside strings do not split. */
const members = (list: string): Array<string> => {
  const out: Array<string> = []
  let start = 0
  let quoted = false
  for (let i = 0; i < list.length; i++) {
    const c = list[i]
    if (quoted && c === "\\") i++
    else if (c === "\"") quoted = !quoted
    else if (!quoted && c === ",") {
      out.push(list.slice(start, i).trim())
      start = i + 1
    }
  }
  out.push(list.slice(start).trim())
  return out.filter((member) => member.length > 0)
}

/** A member's name: its leading sf-string unescaped, else its bare item. */
const nameOf = (member: string): string => {
  if (!member.startsWith("\"")) {
    const semicolon = member.indexOf(";")
    return semicolon === -1 ? member : member.slice(0, semicolon)
  }
  let name = ""
  for (let i = 1; i < member.length; i++) {
    const c = member[i]
    if (c === "\"") break
    name += c === "\\" ? (member[++i] ?? "") : c
  }
  return name
}

/**
 * `list` (a response's field, maybe set by someone else) with our members:
 * each replaces the member of its name in place, or is appended; names in
 * `drop` are taken out (a state we no longer know).
 */
const mergeList = (
  list: string | undefined,
  ours: ReadonlyArray<readonly [string, string]>,
  drop: ReadonlyArray<string> = []
): string => {
  const merged: Array<readonly [string, string]> = list === undefined
    ? []
    : members(list).map((member) => [nameOf(member), member] as const)
  for (const [name, item] of ours) {
    const at = merged.findIndex(([other]) => other === name)
    if (at === -1) merged.push([name, item])
    else merged[at] = [name, item]
  }
  return merged.filter(([name]) => !drop.includes(name)).map(([, item]) => item).join(", ")
}

/** `states` with `state` in place of the one of its name, or appended: a limiter run twice is listed once. */
export const upsert = (states: ReadonlyArray<PolicyState>, state: PolicyState): ReadonlyArray<PolicyState> => {
  const at = states.findIndex((other) => other.name === state.name)
  return at === -1 ? [...states, state] : states.map((other, i) => (i === at ? state : other))
}

/**
 * The policy a client runs into first: the fewest units left, and among
 * those the latest reset (it needs every policy to have room). `undefined`
 * when a state is unknown, since the binding one may be that one.
 */
const binding = (states: ReadonlyArray<PolicyState>) => {
  let best: { readonly policy: PolicyState["policy"]; readonly remaining: number; readonly reset: number } | undefined
  for (const { policy, state } of states) {
    if (state === undefined) return undefined
    const reset = Duration.toMillis(state.reset)
    if (
      best === undefined || state.remaining < best.remaining ||
      (state.remaining === best.remaining && reset > best.reset)
    ) {
      best = { policy, remaining: state.remaining, reset }
    }
  }
  return best
}

/**
 * The headers for `states`, merged into `existing` (a response's own
 * `RateLimit-Policy` / `RateLimit` members are kept, ours replace the ones
 * of their names). Lower-case names.
 *
 * @internal
 */
export const render = (
  states: ReadonlyArray<PolicyState>,
  existing: { readonly policies?: string | undefined; readonly limits?: string | undefined } = {}
): Record<string, string> => {
  const headers: Record<string, string> = {
    "ratelimit-policy": mergeList(existing.policies, states.map((s) => [s.name, policyItem(s.name, s.policy)]))
  }
  const known: Array<readonly [string, string]> = []
  const unknown: Array<string> = []
  for (const { name, state } of states) {
    if (state === undefined) unknown.push(name)
    else known.push([name, limitItem(name, state.remaining, state.reset)])
  }
  const limits = mergeList(existing.limits, known, unknown)
  if (limits.length > 0) headers["ratelimit"] = limits
  const tightest = binding(states)
  if (tightest !== undefined) {
    headers["x-ratelimit-limit"] = String(tightest.policy.quota)
    headers["x-ratelimit-remaining"] = String(tightest.remaining)
    headers["x-ratelimit-reset"] = String(seconds(Duration.millis(tightest.reset)))
  }
  return headers
}

/**
 * The states the limiters of the current request recorded, outermost first.
 * A fresh fiber per request starts it empty.
 *
 * @internal
 */
export const currentStates: FiberRef.FiberRef<ReadonlyArray<PolicyState>> = globalValue(
  Symbol.for("@bulwark/resilience/RateLimiterHttp/currentStates"),
  () => FiberRef.unsafeMake<ReadonlyArray<PolicyState>>([])
)

/**
 * Renders the request's states onto its response, keeping members others set.
 *
 * @internal
 */
export const renderOnto = (
  response: HttpServerResponse.HttpServerResponse,
  states: ReadonlyArray<PolicyState>
): Record<string, string> =>
  render(states, { policies: response.headers["ratelimit-policy"], limits: response.headers["ratelimit"] })
