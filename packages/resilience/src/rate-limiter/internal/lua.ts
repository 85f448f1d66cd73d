/**
 * The Lua scripts of the Redis store: the algorithms of `algorithms.ts`,
 * formula for formula, run atomically inside Redis.
 *
 * Every script takes one key and
 * `ARGV = [now, cost, maxDelay, limit, window, burst|capacity, slack]` and
 * returns `{ allowed, delay, remaining, reset, retryAfter }` as integers.
 * `now < 0` means "read the clock with `TIME`": one clock for every process,
 * so skewed application hosts cannot disagree about a window. State is
 * packed as IEEE doubles with `struct.pack` (no decimal round-trip), and
 * every value stays an integer below 2^53, so Lua's doubles compute exactly
 * what JavaScript computes. State expires `reset + slack` milliseconds after
 * it was last written; a state past its reset decides like no state at all.
 *
 * @internal
 */

const prologue = `
local now = tonumber(ARGV[1])
if now < 0 then
  local t = redis.call("TIME")
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local cost = tonumber(ARGV[2])
local maxDelay = tonumber(ARGV[3])
local L = tonumber(ARGV[4])
local W = tonumber(ARGV[5])
local B = tonumber(ARGV[6])
local slack = tonumber(ARGV[7])
local key = KEYS[1]
`

/** @internal */
export const tokenBucket = `${prologue}
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
  return { 1, delay, math.floor(left / W), reset, 0 }
end
return { 0, 0, math.max(0, math.floor((tokens - (at - now) * L) / W)), at - now + math.ceil((full - tokens) / L), delay }
`

/** @internal */
export const fixedWindow = `${prologue}
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
  return { 1, delay, math.max(0, L - after), reset, 0 }
end
return { 0, 0, math.max(0, L - count), start + math.max(1, math.ceil(count / L)) * W - now, delay }
`

/**
 * One sorted-set member per unit, scored by its admission time; members are
 * zero-padded hexadecimal sequence numbers, so the last member (highest
 * score, then highest name) carries the highest sequence.
 *
 * @internal
 */
export const slidingWindowLog = `${prologue}
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
  redis.call("PEXPIRE", key, at + W - now + slack)
  return { 1, delay, math.max(0, L - (total + cost)), at + W - now, 0 }
end
local reset = 0
if total > 0 then reset = last + W - now end
return { 0, 0, math.max(0, L - total), reset, delay }
`

/** @internal */
export const slidingWindowCounter = `${prologue}
local current = now - (now % W)
local start, prev, cur, nxt, last = current, 0, 0, 0, -math.huge
local raw = redis.call("GET", key)
if raw then
  start, prev, cur, nxt, last = struct.unpack("ddddd", raw)
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
end
local function slot(s, p, c, from)
  if c + cost > L then return math.huge end
  if p == 0 then return from end
  return math.max(from, s + W - math.floor(((L - c - cost) * W) / p))
end
local function estimate(c)
  return math.max(0, math.floor((L * W - prev * (W - (now - start)) - c * W) / W))
end
local function resetOf(c, n)
  if n > 0 then return start + 3 * W - now end
  if c > 0 then return start + 2 * W - now end
  if prev > 0 then return start + W - now end
  return 0
end
local from = math.max(now, last)
local nextStart = start + W
local at = math.huge
local inNext = false
if nxt == 0 and from < nextStart then at = slot(start, prev, cur, from) end
if at >= nextStart then
  inNext = true
  at = slot(nextStart, cur, nxt, math.max(from, nextStart))
  if at == math.huge then at = math.max(from, nextStart + W) end
end
local delay = at - now
if at < nextStart + W and delay <= maxDelay then
  local newCur, newNext = cur, nxt
  if inNext then newNext = nxt + cost else newCur = cur + cost end
  local reset = resetOf(newCur, newNext)
  redis.call("SET", key, struct.pack("ddddd", start, prev, newCur, newNext, at), "PX", reset + slack)
  return { 1, delay, estimate(newCur + newNext), reset, 0 }
end
return { 0, 0, estimate(cur + nxt), resetOf(cur, nxt), delay }
`

const tatPrologue = `
local ahead = 0
local raw = redis.call("GET", key)
if raw then
  local a, f = struct.unpack("dd", raw)
  ahead = math.max(0, (a - now) * L + f)
end
local function store(after, reset)
  local whole = math.floor(after / L)
  redis.call("SET", key, struct.pack("dd", now + whole, after - whole * L), "PX", reset + slack)
end
`

/** @internal */
export const gcra = `${prologue}${tatPrologue}
local tolerance = B * W
local early = ahead + cost * W - tolerance
local wait = 0
if early > 0 then wait = math.ceil(early / L) end
if wait <= maxDelay then
  local after = math.max(ahead, wait * L) + cost * W
  local reset = math.ceil(after / L)
  store(after, reset)
  return { 1, wait, math.floor((tolerance - after + wait * L) / W), reset, 0 }
end
return { 0, 0, math.max(0, math.floor((tolerance - ahead) / W)), math.ceil(ahead / L), wait }
`

/** @internal */
export const leakyBucket = `${prologue}${tatPrologue}
local room = B * W
local wait = math.ceil(ahead / L)
if ahead + cost * W <= room and wait <= maxDelay then
  local after = wait * L + cost * W
  local reset = math.ceil(after / L)
  store(after, reset)
  return { 1, wait, math.max(0, math.floor((room - after) / W)), reset, 0 }
end
return { 0, 0, math.max(0, math.floor((room - ahead) / W)), wait, wait }
`
