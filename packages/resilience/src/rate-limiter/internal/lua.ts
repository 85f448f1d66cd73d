/**
 * The Lua scripts of the Redis store: the algorithms of `algorithms.ts`,
 * formula for formula, run atomically inside Redis.
 *
 * A decision script takes one key and
 * `ARGV = [now?, cost, maxDelay, limit, window, burst|capacity?]`: `now`
 * only when the store uses the application's clock (with Redis' clock the
 * script reads `TIME`: one clock for every process, so skewed application
 * hosts cannot disagree about a window), the last one only for the
 * algorithms that have it. The expiry slack is written into the script, one
 * variant per clock. It answers with as few integers as the decision needs:
 *
 * ```text
 * { 0, remaining, reset }                  allowed now
 * { delay, remaining, reset, at, frac }    allowed after `delay` ms, holding the reservation (at, frac)
 * { -1 - retryAfter, remaining, reset }    rejected
 * ```
 *
 * Every argument and every value sent back is encoded, sent and parsed on
 * the hot path, and each costs Redis' single thread too (`tonumber` alone
 * is tens of nanoseconds); so is a Lua closure, which is why the helpers
 * below are spliced in as text rather than defined as local functions.
 *
 * A refund script takes the key and
 * `ARGV = [now, cost, at, frac, limit, window, burst|capacity]` (`now < 0`:
 * read `TIME`) and answers 1 when it gave the reservation back, 0 when it
 * left the state alone. It keeps the key's time-to-live (`KEEPTTL`): a
 * refund only brings the time the state matters closer.
 *
 * State is packed as IEEE doubles with `struct.pack` (no decimal
 * round-trip), and every value stays an integer below 2^53, so Lua's doubles
 * compute exactly what JavaScript computes. State expires `reset + slack`
 * milliseconds after it was last written; a state past its reset decides
 * like no state at all.
 *
 * @internal
 */

/**
 * Where a decision script takes the time from, and how long state outlives
 * its reset (a whole number of milliseconds).
 *
 * @internal
 */
export interface Clock {
  readonly source: "redis" | "local"
  readonly slack: number
}

const redisTime = `
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

const prologue = (clock: Clock, extra: boolean): string => {
  const at = clock.source === "redis" ? 0 : 1
  return `${clock.source === "redis" ? redisTime : "\nlocal now = tonumber(ARGV[1])\n"}
local cost = tonumber(ARGV[${at + 1}])
local maxDelay = tonumber(ARGV[${at + 2}])
local L = tonumber(ARGV[${at + 3}])
local W = tonumber(ARGV[${at + 4}])
${extra ? `local B = tonumber(ARGV[${at + 5}])` : ""}
local slack = ${Math.trunc(clock.slack)}
local key = KEYS[1]
`
}

/** Statements answering an admission (see the formats above). */
const admitted = (delay: string, remaining: string, reset: string, at: string, frac: string): string =>
  `if ${delay} == 0 then return { 0, ${remaining}, ${reset} } end
  return { ${delay}, ${remaining}, ${reset}, ${at}, ${frac} }`

/** A statement answering a rejection. */
const rejected = (remaining: string, reset: string, retryAfter: string): string =>
  `return { -1 - (${retryAfter}), ${remaining}, ${reset} }`

const refundPrologue = `
local now = tonumber(ARGV[1])
if now < 0 then
  local t = redis.call("TIME")
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local cost = tonumber(ARGV[2])
local resAt = tonumber(ARGV[3])
local resFrac = tonumber(ARGV[4])
local L = tonumber(ARGV[5])
local W = tonumber(ARGV[6])
local B = tonumber(ARGV[7])
local key = KEYS[1]
`

/** @internal */
export const tokenBucket = (clock: Clock): string =>
  `${prologue(clock, true)}
local full = B * W
local tokens = full
local at = now
local raw = redis.call("GET", key)
if raw then
  tokens, at = struct.unpack("dd", raw)
  if now > at then
    tokens = math.min(full, tokens + (now - at) * L)
    at = now
  end
end
local need = cost * W
local wait = 0
if tokens < need then wait = math.ceil((need - tokens) / L) end
local admitAt = at + wait
local delay = admitAt - now
if delay <= maxDelay then
  local left = math.min(full, tokens + wait * L) - need
  local reset = delay + math.ceil((full - left) / L)
  redis.call("SET", key, struct.pack("dd", left, admitAt), "PX", reset + slack)
  ${admitted("delay", "math.floor(left / W)", "reset", "admitAt", "0")}
end
${
    rejected(
      "math.max(0, math.floor((tokens - (at - now) * L) / W))",
      "at - now + math.ceil((full - tokens) / L)",
      "delay"
    )
  }
`

/** @internal */
export const refundTokenBucket = `${refundPrologue}
local raw = redis.call("GET", key)
if not raw then return 0 end
local tokens, at = struct.unpack("dd", raw)
if at ~= resAt then return 0 end
redis.call("SET", key, struct.pack("dd", math.min(B * W, tokens + cost * W), at), "KEEPTTL")
return 1
`

/** @internal */
export const fixedWindow = (clock: Clock): string =>
  `${prologue(clock, false)}
local current = now - (now % W)
local start = current
local count = 0
local raw = redis.call("GET", key)
if raw then
  start, count = struct.unpack("dd", raw)
  if start < current then
    count = math.max(0, count - ((current - start) / W) * L)
    start = current
  end
end
local index = math.floor(count / L)
local target = index
local after = count + cost
if count - index * L + cost > L then
  target = index + 1
  after = (index + 1) * L + cost
end
local delay = math.max(0, start + target * W - now)
if delay <= maxDelay then
  local reset = start + math.max(1, math.ceil(after / L)) * W - now
  redis.call("SET", key, struct.pack("dd", start, after), "PX", reset + slack)
  ${admitted("delay", "math.max(0, L - after)", "reset", "now + delay", "0")}
end
${rejected("math.max(0, L - count)", "start + math.max(1, math.ceil(count / L)) * W - now", "delay")}
`

/** @internal */
export const refundFixedWindow = `${refundPrologue}
local raw = redis.call("GET", key)
if not raw then return 0 end
local start, count = struct.unpack("dd", raw)
local current = now - (now % W)
if start < current then
  count = math.max(0, count - ((current - start) / W) * L)
  start = current
end
local index = (resAt - start) / W
if count == 0 or index ~= math.floor((count - 1) / L) or count - index * L < cost then return 0 end
redis.call("SET", key, struct.pack("dd", start, count - cost), "KEEPTTL")
return 1
`

/**
 * One sorted-set member per unit, scored by its admission time; members are
 * zero-padded hexadecimal sequence numbers, so the last member (highest
 * score, then highest name) carries the highest sequence.
 *
 * @internal
 */
export const slidingWindowLog = (clock: Clock): string =>
  `${prologue(clock, false)}
redis.call("ZREMRANGEBYSCORE", key, "-inf", now - W)
local total = redis.call("ZCARD", key)
local last = nil
local seq = 0
if total > 0 then
  local top = redis.call("ZRANGE", key, -1, -1, "WITHSCORES")
  seq = tonumber(top[1], 16) + 1
  last = tonumber(top[2])
end
local at = now
if last and last > at then at = last end
local excess = total + cost - L
if excess > 0 then
  local unit = redis.call("ZRANGE", key, excess - 1, excess - 1, "WITHSCORES")
  local free = tonumber(unit[2]) + W
  if free > at then at = free end
end
local delay = at - now
if delay <= maxDelay then
  if cost == 1 then
    redis.call("ZADD", key, at, string.format("%012x", seq))
  else
    local i = 0
    while i < cost do
      local args = {}
      local n = math.min(cost - i, 500)
      for j = 0, n - 1 do
        args[2 * j + 1] = at
        args[2 * j + 2] = string.format("%012x", seq + i + j)
      end
      redis.call("ZADD", key, unpack(args))
      i = i + n
    end
  end
  redis.call("PEXPIRE", key, at + W - now + slack)
  ${admitted("delay", "math.max(0, L - (total + cost))", "at + W - now", "at", "0")}
end
local reset = 0
if total > 0 then reset = last + W - now end
${rejected("math.max(0, L - total)", "reset", "delay")}
`

/**
 * Any `cost` members scored at the reservation's time go (units admitted at
 * one time are indistinguishable); the sequence of later members continues
 * from the highest one left, which only ever grows past removed names.
 *
 * @internal
 */
export const refundSlidingWindowLog = `${refundPrologue}
local removed = 0
while removed < cost do
  local members = redis.call("ZRANGEBYSCORE", key, resAt, resAt, "LIMIT", 0, math.min(cost - removed, 500))
  if #members == 0 then break end
  redis.call("ZREM", key, unpack(members))
  removed = removed + #members
end
if removed > 0 then return 1 end
return 0
`

// The counter's helpers, as Lua expressions (`a and b or c` is a conditional: no value here is false or nil).

/** The earliest slot from `from` in the window starting at `s` (`math.huge` when `c + cost > L`). */
const counterSlot = (s: string, p: string, c: string, from: string): string =>
  `((${c} + cost > L) and math.huge or ((${p} == 0) and ${from} or ` +
  `math.max(${from}, ${s} + W - math.floor(((L - ${c} - cost) * W) / ${p}))))`

/** Units left under the weighted estimate at `now`. */
const counterEstimate = (counted: string): string =>
  `math.max(0, math.floor((L * W - prev * (W - (now - start)) - (${counted}) * W) / W))`

/** Until every count has left the sliding window. */
const counterReset = (c: string, n: string): string =>
  `((${n}) > 0 and start + 3 * W - now or ((${c}) > 0 and start + 2 * W - now or ` +
  `(prev > 0 and start + W - now or 0)))`

const counterRotate = `
  if start < current then
    local elapsed = (current - start) / W
    if elapsed == 1 then
      prev = cur
      cur = nxt
    elseif elapsed == 2 then
      prev = nxt
      cur = 0
    else
      prev = 0
      cur = 0
    end
    nxt = 0
    start = current
  end
`

/** @internal */
export const slidingWindowCounter = (clock: Clock): string =>
  `${prologue(clock, false)}
local current = now - (now % W)
local start, prev, cur, nxt, last = current, 0, 0, 0, -math.huge
local raw = redis.call("GET", key)
if raw then
  start, prev, cur, nxt, last = struct.unpack("ddddd", raw)
${counterRotate}
end
local from = math.max(now, last)
local nextStart = start + W
local at = math.huge
local inNext = false
if nxt == 0 and from < nextStart then at = ${counterSlot("start", "prev", "cur", "from")} end
if at >= nextStart then
  inNext = true
  local fromNext = math.max(from, nextStart)
  at = ${counterSlot("nextStart", "cur", "nxt", "fromNext")}
  if at == math.huge then at = math.max(from, nextStart + W) end
end
local delay = at - now
if at < nextStart + W and delay <= maxDelay then
  local newCur, newNext = cur, nxt
  if inNext then newNext = nxt + cost else newCur = cur + cost end
  local reset = ${counterReset("newCur", "newNext")}
  redis.call("SET", key, struct.pack("ddddd", start, prev, newCur, newNext, at), "PX", reset + slack)
  ${admitted("delay", counterEstimate("newCur + newNext"), "reset", "at", "0")}
end
${rejected(counterEstimate("cur + nxt"), counterReset("cur", "nxt"), "delay")}
`

/** @internal */
export const refundSlidingWindowCounter = `${refundPrologue}
local raw = redis.call("GET", key)
if not raw then return 0 end
local start, prev, cur, nxt, last = struct.unpack("ddddd", raw)
local current = now - (now % W)
${counterRotate}
local window = resAt - (resAt % W)
if window == start then
  cur = math.max(0, cur - cost)
elseif window == start + W then
  nxt = math.max(0, nxt - cost)
elseif window == start - W then
  prev = math.max(0, prev - cost)
else
  return 0
end
redis.call("SET", key, struct.pack("ddddd", start, prev, cur, nxt, last), "KEEPTTL")
return 1
`

const ticksAhead = `
local ahead = 0
local raw = redis.call("GET", key)
if raw then
  local a, f = struct.unpack("dd", raw)
  ahead = math.max(0, (a - now) * L + f)
end
`

/** Statements storing the arrival time `after` ticks from now, as `at` and `frac`. */
const storeTat = (after: string, reset: string): string =>
  `local whole = math.floor(${after} / L)
  local at, frac = now + whole, ${after} - whole * L
  redis.call("SET", key, struct.pack("dd", at, frac), "PX", ${reset} + slack)`

/** @internal */
export const gcra = (clock: Clock): string =>
  `${prologue(clock, true)}${ticksAhead}
local tolerance = B * W
local early = ahead + cost * W - tolerance
local wait = 0
if early > 0 then wait = math.ceil(early / L) end
if wait <= maxDelay then
  local after = math.max(ahead, wait * L) + cost * W
  local reset = math.ceil(after / L)
  ${storeTat("after", "reset")}
  ${admitted("wait", "math.floor((tolerance - after + wait * L) / W)", "reset", "at", "frac")}
end
${rejected("math.max(0, math.floor((tolerance - ahead) / W))", "math.ceil(ahead / L)", "wait")}
`

/** @internal */
export const leakyBucket = (clock: Clock): string =>
  `${prologue(clock, true)}${ticksAhead}
local room = B * W
local wait = math.ceil(ahead / L)
if ahead + cost * W <= room and wait <= maxDelay then
  local after = wait * L + cost * W
  local reset = math.ceil(after / L)
  ${storeTat("after", "reset")}
  ${admitted("wait", "math.max(0, math.floor((room - after) / W))", "reset", "at", "frac")}
end
${rejected("math.max(0, math.floor((room - ahead) / W))", "wait", "wait")}
`

/**
 * GCRA and the leaky bucket: only the latest reservation (the state is the
 * very time it moved the key to) gives back its `cost · T`.
 *
 * @internal
 */
export const refundTat = `${refundPrologue}
local raw = redis.call("GET", key)
if not raw then return 0 end
local a, f = struct.unpack("dd", raw)
if a ~= resAt or f ~= resFrac then return 0 end
local ticks = f - cost * W
local whole = math.floor(ticks / L)
redis.call("SET", key, struct.pack("dd", a + whole, ticks - whole * L), "KEEPTTL")
return 1
`
