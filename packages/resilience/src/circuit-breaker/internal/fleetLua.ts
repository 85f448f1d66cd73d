/**
 * The Lua scripts of a breaker shared through Redis (`RedisCircuitBreaker`).
 * Each runs atomically on **Redis server time** (`TIME`), so instances with
 * skewed clocks agree on when the fleet half-opens.
 *
 * One hash per breaker, `KEYS[1]` (`<prefix>{<name>}:state`):
 *
 * ```text
 * g   generation: max(previous + 1, now in ms), so it grows even after the key expired
 * s   "o" open (half-open once `u` has passed) or "c" closed (also: no key)
 * u   when the open period ends, Redis time in ms; the probe round starts then
 * p   probe permits granted in this round;  ok / ko: probes that succeeded / failed
 * ```
 *
 * Every script takes `ARGV[1]` (how long the key outlives its last write, in
 * ms) and `ARGV[2]` (the channel) first, and answers `{ code, generation, value }`:
 *
 * ```text
 * { 0, g, 0 }          closed
 * { 1, g, remaining }  open for `remaining` ms more; ≤ 0: half-open, probes decide
 * { 2, g, granted }    a probe permit (the `granted`-th of the round)
 * { 3, g, left }       no permit: the round's permits are taken; it runs out in `left` ms
 * { 4, g, 0 }          the probe was counted; the round has not decided
 * ```
 *
 * A script that opens or closes the fleet also publishes
 * `"<generation> o <open ms>"` or `"<generation> c 0"` on the channel, in the
 * same atomic step as the write, so no instance sees a state nobody announced.
 *
 * @internal
 */

const prologue = `
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local key = KEYS[1]
local keep = tonumber(ARGV[1])
local channel = ARGV[2]
local h = redis.call("HMGET", key, "g", "s", "u", "p", "ok", "ko")
local gen = tonumber(h[1]) or 0
local st = h[2] or "c"
local untilAt = tonumber(h[3]) or 0
local probes = tonumber(h[4]) or 0
local ok = tonumber(h[5]) or 0
local ko = tonumber(h[6]) or 0
local function text(n) return string.format("%.0f", n) end
local function status()
  if st ~= "o" then return { 0, gen, 0 } end
  return { 1, gen, untilAt - now }
end
local function openFleet(openFor)
  gen = math.max(gen + 1, now)
  redis.call("HSET", key, "g", text(gen), "s", "o", "u", text(now + openFor), "p", 0, "ok", 0, "ko", 0)
  redis.call("PEXPIRE", key, openFor + keep)
  redis.call("PUBLISH", channel, text(gen) .. " o " .. text(openFor))
  return { 1, gen, openFor }
end
local function closeFleet()
  gen = math.max(gen + 1, now)
  redis.call("HSET", key, "g", text(gen), "s", "c", "u", 0, "p", 0, "ok", 0, "ko", 0)
  redis.call("PEXPIRE", key, keep)
  redis.call("PUBLISH", channel, text(gen) .. " c 0")
  return { 0, gen, 0 }
end
`

/** The fleet's state. `ARGV = [keep, channel]`. @internal */
export const read = `${prologue}
return status()
`

/**
 * An instance's breaker tripped: open the fleet for `openFor` ms, unless it
 * is open already (then the caller adopts that opening). `ARGV = [keep, channel, openFor]`.
 *
 * @internal
 */
export const open = `${prologue}
if st == "o" and now < untilAt then return status() end
return openFleet(tonumber(ARGV[3]))
`

/**
 * A permit for one probe call: at most `permits` per round across the fleet.
 * A round that has not decided within `round` ms (its probes were lost with
 * their instance) gives way to a new round, with a new generation.
 * `ARGV = [keep, channel, permits, round]`.
 *
 * @internal
 */
export const probe = `${prologue}
if st ~= "o" or now < untilAt then return status() end
local permits = tonumber(ARGV[3])
local round = tonumber(ARGV[4])
if now >= untilAt + round then
  gen = math.max(gen + 1, now)
  untilAt = now
  probes = 0
  redis.call("HSET", key, "g", text(gen), "u", text(now), "p", 0, "ok", 0, "ko", 0)
  redis.call("PEXPIRE", key, round + keep)
end
if probes < permits then
  redis.call("HINCRBY", key, "p", 1)
  return { 2, gen, probes + 1 }
end
return { 3, gen, untilAt + round - now }
`

/**
 * How a probe of generation `gen` ended; the fleet closes after `closeAfter`
 * successes, reopens for `openFor` ms after `failureLimit` failures or once
 * every permit has reported: the rule of the local half-open state
 * (`transition.ts`), over the whole fleet's probes. A report of another
 * generation changes nothing. `ARGV = [keep, channel, gen, failed, permits, closeAfter, failureLimit, openFor]`.
 *
 * @internal
 */
export const report = `${prologue}
if st ~= "o" or now < untilAt or tonumber(ARGV[3]) ~= gen then return status() end
if ARGV[4] == "1" then
  ko = redis.call("HINCRBY", key, "ko", 1)
else
  ok = redis.call("HINCRBY", key, "ok", 1)
end
if ok >= tonumber(ARGV[6]) then return closeFleet() end
if ko >= tonumber(ARGV[7]) or ok + ko >= tonumber(ARGV[5]) then return openFleet(tonumber(ARGV[8])) end
return { 4, gen, 0 }
`

/**
 * A probe of generation `gen` ended uncounted (interrupted, ignored): its
 * permit goes back to the round. `ARGV = [keep, channel, gen]`.
 *
 * @internal
 */
export const release = `${prologue}
if st == "o" and now >= untilAt and tonumber(ARGV[3]) == gen and probes > 0 then
  redis.call("HINCRBY", key, "p", -1)
end
return status()
`
