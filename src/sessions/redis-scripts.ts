/**
 * The Redis store's Lua, as TypeScript strings (only dist/ ships). Layout: ./redis-layout.ts,
 * whose offsets the scripts are built from; the rules mirror ./rotation.ts. Session scripts
 * touch only keys tagged `{T}` of one user: a key not passed in KEYS is built from the same
 * tag, so it lies in the same Cluster slot. Times come from the caller's clock (ARGV), TTLs are
 * relative (PX), never absolute.
 */
import { AT, HEAD_BYTES, OLDER_HASH_BYTES, STORED_HASH_BYTES } from './redis-layout.js'

const at = (offset: number): number => offset + 1 // Lua strings count from 1

/** Reading and writing a session (layout version 2, ./redis-layout.ts) and its keys. */
const PRELUDE = `
local HEAD, W = ${HEAD_BYTES}, ${OLDER_HASH_BYTES}
local NONE = string.rep(string.char(0), ${STORED_HASH_BYTES})
local function uint(v, i, n)
  local x = 0
  for k = i, i + n - 1 do x = x * 256 + string.byte(v, k) end
  return x
end
local function bytes(x, n)
  local out = {}
  for k = n, 1, -1 do
    out[k] = x % 256
    x = (x - out[k]) / 256
  end
  return string.char(unpack(out))
end
local function parse(v)
  if #v < HEAD or string.sub(v, 1, 1) ~= '2' then return nil end
  local older = HEAD + string.byte(v, ${at(AT.olderCount)}) * W
  local a = string.find(v, '\\n', older + 1, true)
  local b = a and string.find(v, '\\n', a + 1, true)
  if not b then return nil end
  return {
    current = string.sub(v, ${at(AT.current)}, ${AT.previous}), previous = string.sub(v, ${at(AT.previous)}, ${AT.nonce}),
    nonce = string.sub(v, ${at(AT.nonce)}, ${AT.lastUsedAt}), used = uint(v, ${at(AT.lastUsedAt)}, 6),
    idle = uint(v, ${at(AT.idleExpiresAt)}, 6), absolute = uint(v, ${at(AT.absoluteExpiresAt)}, 6),
    created = string.sub(v, ${at(AT.createdAt)}, ${AT.windowEnd}), windowEnd = uint(v, ${at(AT.windowEnd)}, 6),
    count = uint(v, ${at(AT.windowCount)}, 4), older = string.sub(v, HEAD + 1, older),
    client = string.sub(v, older + 1, a - 1), rest = string.sub(v, a), subject = string.sub(v, b + 1),
  }
end
local function pack(f)
  return '2' .. f.current .. f.previous .. f.nonce .. bytes(f.used, 6) .. bytes(f.idle, 6) .. bytes(f.absolute, 6)
    .. f.created .. bytes(f.windowEnd, 6) .. bytes(math.min(f.count, 4294967295), 4) .. string.char(#f.older / W) .. f.older
    .. f.client .. f.rest
end
local function live(f, now) return now < math.min(f.idle, f.absolute) end
local function px(ms) return string.format('%.0f', math.max(1, ms)) end
local function sessionKey(prefix, sid)
  return prefix .. 's:{' .. string.sub(sid, 1, 6) .. '}' .. string.sub(sid, 7)
end
local function drop(key, prefix, sid, f)
  redis.call('DEL', key)
  redis.call('ZREM', prefix .. 'u:{' .. string.sub(sid, 1, 6) .. '}' .. f.subject, sid)
end
`

/**
 * KEYS: session. ARGV: prefix, sid, presented, successor, nonce (the three as stored bytes),
 * now, refreshTokenTtl, refreshReuseGrace, client JSON, historySize, limit max (0: no limit),
 * limit window. Returns {kind, value}, or {'limited', ms until the window ends}.
 *
 * The refresh limit is counted here rather than in a counter key of its own, so that a
 * refresh is one round trip; the order of the checks is ./rotation.ts decideRotation's.
 */
export const ROTATE =
  PRELUDE +
  `
local v = redis.call('GET', KEYS[1])
local f = v and parse(v)
if not f then return {'unknown'} end
local p = ARGV[3]
local which
if p == f.current then which = 'current'
elseif f.previous ~= NONE and p == f.previous then which = 'previous'
else
  local short = string.sub(p, 1, W)
  for i = 1, #f.older, W do
    if string.sub(f.older, i, i + W - 1) == short then which = 'older' break end
  end
end
-- A hash this session never issued changes nothing: a sid alone must not end a session,
-- nor spend its refresh limit.
if not which then return {'unknown'} end
local now, max = math.floor(tonumber(ARGV[6])), tonumber(ARGV[11])
if max > 0 then
  if now >= f.windowEnd then
    f.windowEnd, f.count = now + tonumber(ARGV[12]), 1
  else
    f.count = f.count + 1
  end
  -- Past the limit nothing changes, not even the count: it is already over for this window.
  if f.count > max then return {'limited', f.windowEnd - now} end
end
if not live(f, now) then
  drop(KEYS[1], ARGV[1], ARGV[2], f)
  return {'expired', v}
end
if which == 'current' then
  if f.previous ~= NONE then
    f.older = string.sub(string.sub(f.previous, 1, W) .. f.older, 1, math.max(0, tonumber(ARGV[10]) - 1) * W)
  end
  f.previous, f.current, f.nonce = f.current, ARGV[4], ARGV[5]
  f.used = now
  f.idle = math.min(now + tonumber(ARGV[7]), f.absolute)
  f.client = ARGV[9]
  local nv = pack(f)
  redis.call('SET', KEYS[1], nv, 'PX', px(f.idle - now))
  return {'rotated', nv}
end
-- Only the immediate predecessor, only within the window, gets the nonce back (SPEC "Refresh").
-- The last rotation is when the session was last used: nothing else moves lastUsedAt.
if which == 'previous' and now <= f.used + tonumber(ARGV[8]) then
  -- Answered with tokens, so counted like a rotation; the expiry stays where it was.
  if max > 0 then redis.call('SET', KEYS[1], pack(f), 'PX', px(math.min(f.idle, f.absolute) - now)) end
  return {'grace', v}
end
drop(KEYS[1], ARGV[1], ARGV[2], f)
return {'reused', v}
`

/**
 * KEYS: index, session. ARGV: prefix, sid, value, createdAt, now, maxSessionsPerUser,
 * session PX, index PX. Returns the evicted sids.
 */
export const CREATE =
  PRELUDE +
  `
if not redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[7], 'NX') then
  return redis.error_reply('ERR session id already exists')
end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[8]) then redis.call('PEXPIRE', KEYS[1], ARGV[8]) end
local now, max = tonumber(ARGV[5]), tonumber(ARGV[6])
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
if #members <= max then return {} end
local alive = {}
for _, sid in ipairs(members) do
  local key = sessionKey(ARGV[1], sid)
  local v = redis.call('GET', key)
  local f = v and parse(v)
  if f and live(f, now) then alive[#alive + 1] = sid
  else
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[1], sid)
  end
end
local evicted, excess = {}, #alive - max
for _, sid in ipairs(alive) do
  if excess <= 0 then break end
  -- The new session is never its own victim, even if its clock is behind the others'.
  if sid ~= ARGV[2] then
    redis.call('DEL', sessionKey(ARGV[1], sid))
    redis.call('ZREM', KEYS[1], sid)
    evicted[#evicted + 1] = sid
    excess = excess - 1
  end
end
return evicted
`

/**
 * KEYS: session. ARGV: prefix, sid, now, mode ('any' | 'subject' | 'refresh'), subject or
 * presented hash (as stored). Returns the ended session's value, or nil (an expired one is just removed).
 */
export const END =
  PRELUDE +
  `
local v = redis.call('GET', KEYS[1])
local f = v and parse(v)
if not f then return false end
if ARGV[4] == 'subject' and f.subject ~= ARGV[5] then return false end
if ARGV[4] == 'refresh' and ARGV[5] ~= f.current and (f.previous == NONE or ARGV[5] ~= f.previous) then return false end
drop(KEYS[1], ARGV[1], ARGV[2], f)
if not live(f, tonumber(ARGV[3])) then return false end
return v
`

/**
 * KEYS: index. ARGV: prefix, now, subject. Ends every session of the subject created at or
 * before `now` (the index is scored by createdAt), so that replaying a logout-all whose answer
 * was lost ends what existed then and never a session signed in since. Returns live ids.
 */
export const END_ALL =
  PRELUDE +
  `
local ended, now = {}, tonumber(ARGV[2])
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])) do
  local key = sessionKey(ARGV[1], sid)
  local v = redis.call('GET', key)
  local f = v and parse(v)
  if f and f.subject == ARGV[3] then
    redis.call('DEL', key)
    if live(f, now) then ended[#ended + 1] = sid end
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
return ended
`

/** KEYS: index. ARGV: prefix. Returns {sid, value, ...} newest first; drops dangling entries. */
export const LIST =
  PRELUDE +
  `
local out = {}
for _, sid in ipairs(redis.call('ZREVRANGE', KEYS[1], 0, -1)) do
  local v = redis.call('GET', sessionKey(ARGV[1], sid))
  if v then
    out[#out + 1] = sid
    out[#out + 1] = v
  else
    redis.call('ZREM', KEYS[1], sid)
  end
end
return out
`

const PRUNE = `
local function prune(now)
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  for _, subject in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do
    redis.call('HDEL', KEYS[3], subject)
    redis.call('ZREM', KEYS[2], subject)
  end
end
`

/**
 * KEYS: revoked sessions, user marks (forgetAfter), user marks (notBefore), sequence.
 * ARGV: now, forgetAfter, channel, events JSON, '1' if a user mark follows, subject,
 * notBefore, sids... Publishes {"seq":n,"at":ms,"events":...}: a listener that sees a number
 * skipped knows it missed a message (pub/sub is at-most-once) and resyncs; `at` is Redis's own
 * clock at the publish, from which every instance measures how long the message took to arrive.
 */
export const REVOKE =
  PRUNE +
  `
local now, fa = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 8, #ARGV do redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[i]) end
if ARGV[5] == '1' then
  if tonumber(ARGV[7]) > tonumber(redis.call('HGET', KEYS[3], ARGV[6]) or '0') then
    redis.call('HSET', KEYS[3], ARGV[6], ARGV[7])
  end
  redis.call('ZADD', KEYS[2], 'GT', ARGV[2], ARGV[6])
end
prune(ARGV[1])
local seq = redis.call('INCR', KEYS[4])
for k = 1, 4 do
  local ttl = redis.call('PTTL', KEYS[k])
  if ttl ~= -2 and ttl < fa - now then redis.call('PEXPIRE', KEYS[k], string.format('%.0f', fa - now)) end
end
local t = redis.call('TIME')
redis.call('PUBLISH', ARGV[3], '{"seq":' .. seq .. ',"at":' .. (t[1] * 1000 + math.floor(t[2] / 1000)) .. ',"events":' .. ARGV[4] .. '}')
return seq
`

/**
 * One page of a full resync. KEYS: a revocation ZSET, the notBefore hash. ARGV: cursor, count,
 * now, '1' to add each subject's notBefore. Returns {next cursor, {member, [notBefore,]
 * forgetAfter, ...}}: the entries still live at `now`. The resync reads nothing else and writes
 * nothing (REVOKE prunes), so each page costs O(count) in Redis whatever the set's size.
 *
 * Why ZSCAN rather than ZRANGE BYSCORE … LIMIT: a score cursor cannot order the many entries
 * that share one forgetAfter (an endAll, a burst in one millisecond) without an offset, and
 * an offset shifts when ZADD GT moves an entry already read to a higher score, skipping a live
 * one. ZSCAN walks the members, not the scores: every member present from the first page to
 * the last is returned (the SCAN guarantee, which holds while the table resizes), whatever
 * happens to its score. Pruning only removes dead entries (score <= a caller's now); an entry
 * added meanwhile may be missed, but REVOKE publishes it in the same script that adds it, and a
 * lost message is a gap, which queues another resync. The marks' page reads both structures in
 * one script, so a notBefore never comes with the forgetAfter of an older mark.
 */
export const REVOCATION_PAGE = `
local page = redis.call('ZSCAN', KEYS[1], ARGV[1], 'COUNT', ARGV[2])
local now, flat, out = tonumber(ARGV[3]), page[2], {}
for i = 1, #flat, 2 do
  if tonumber(flat[i + 1]) > now then
    out[#out + 1] = flat[i]
    if ARGV[4] == '1' then out[#out + 1] = redis.call('HGET', KEYS[2], flat[i]) or '0' end
    out[#out + 1] = flat[i + 1]
  end
end
return {page[1], out}
`
