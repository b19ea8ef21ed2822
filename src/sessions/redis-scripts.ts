/**
 * The Redis store's Lua, as TypeScript strings (only dist/ ships). Layout: ./redis-layout.ts;
 * the rules mirror ./rotation.ts. Session scripts touch only keys tagged `{T}` of one user: a
 * key not passed in KEYS is built from the same tag, so it lies in the same Cluster slot.
 * Times come from the caller's clock (ARGV), TTLs are relative (PX), never absolute.
 */

const PRELUDE = `
local W = 16
local function parse(v)
  local f, i = {}, 1
  for n = 1, 11 do
    local j = string.find(v, '\\n', i, true)
    if not j then return nil end
    f[n] = string.sub(v, i, j - 1)
    i = j + 1
  end
  f[12] = string.sub(v, i)
  if f[1] ~= '1' then return nil end
  return f
end
local DIGITS = '0123456789abcdefghijklmnopqrstuvwxyz'
local function t36(n)
  n = math.max(0, math.floor(n))
  local s = ''
  repeat
    local d = n % 36
    s = string.sub(DIGITS, d + 1, d + 1) .. s
    n = (n - d) / 36
  until n == 0
  return s
end
local function n36(s) return tonumber(s, 36) or 0 end
local function live(f, now) return now < math.min(n36(f[6]), n36(f[7])) end
local function sessionKey(prefix, sid)
  return prefix .. 's:{' .. string.sub(sid, 1, 6) .. '}' .. string.sub(sid, 7)
end
local function drop(key, prefix, sid, f)
  redis.call('DEL', key)
  redis.call('ZREM', prefix .. 'u:{' .. string.sub(sid, 1, 6) .. '}' .. f[12], sid)
end
`

/**
 * KEYS: session. ARGV: prefix, sid, presented, successor, nonce, now, refreshTokenTtl,
 * refreshReuseGrace, client JSON, historySize. Returns {kind, value}.
 */
export const ROTATE = PRELUDE + `
local v = redis.call('GET', KEYS[1])
local f = v and parse(v)
if not f then return {'unknown'} end
local p = ARGV[3]
local short = string.sub(p, 1, W)
local which
if p == f[2] then which = 'current'
elseif f[3] ~= '' and p == f[3] then which = 'previous'
else
  for i = 1, #f[9], W do
    if string.sub(f[9], i, i + W - 1) == short then which = 'older' break end
  end
end
-- A hash this session never issued changes nothing: a sid alone must not end a session.
if not which then return {'unknown'} end
local now = tonumber(ARGV[6])
if not live(f, now) then
  drop(KEYS[1], ARGV[1], ARGV[2], f)
  return {'expired', v}
end
if which == 'current' then
  if f[3] ~= '' then f[9] = string.sub(string.sub(f[3], 1, W) .. f[9], 1, math.max(0, tonumber(ARGV[10]) - 1) * W) end
  f[3] = f[2]
  f[2] = ARGV[4]
  f[4] = ARGV[5]
  f[5] = t36(now)
  local idle = math.min(now + tonumber(ARGV[7]), n36(f[7]))
  f[6] = t36(idle)
  f[10] = ARGV[9]
  local nv = table.concat(f, '\\n')
  redis.call('SET', KEYS[1], nv, 'PX', string.format('%.0f', math.max(1, idle - now)))
  return {'rotated', nv}
end
-- Only the immediate predecessor, only within the window, gets the nonce back (SPEC "Refresh").
-- The last rotation is when the session was last used: nothing else moves lastUsedAt.
if which == 'previous' and now <= n36(f[5]) + tonumber(ARGV[8]) then return {'grace', v} end
drop(KEYS[1], ARGV[1], ARGV[2], f)
return {'reused', v}
`

/**
 * KEYS: index, session. ARGV: prefix, sid, value, createdAt, now, maxSessionsPerUser,
 * session PX, index PX. Returns the evicted sids.
 */
export const CREATE = PRELUDE + `
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
 * presented hash. Returns the ended session's value, or nil (an expired one is just removed).
 */
export const END = PRELUDE + `
local v = redis.call('GET', KEYS[1])
local f = v and parse(v)
if not f then return false end
if ARGV[4] == 'subject' and f[12] ~= ARGV[5] then return false end
if ARGV[4] == 'refresh' and ARGV[5] ~= f[2] and (f[3] == '' or ARGV[5] ~= f[3]) then return false end
drop(KEYS[1], ARGV[1], ARGV[2], f)
if not live(f, tonumber(ARGV[3])) then return false end
return v
`

/** KEYS: index. ARGV: prefix, now, subject. Ends every session of the subject; returns live ids. */
export const END_ALL = PRELUDE + `
local ended, now = {}, tonumber(ARGV[2])
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = sessionKey(ARGV[1], sid)
  local v = redis.call('GET', key)
  local f = v and parse(v)
  if f and f[12] == ARGV[3] then
    redis.call('DEL', key)
    if live(f, now) then ended[#ended + 1] = sid end
  end
end
redis.call('DEL', KEYS[1])
return ended
`

/** KEYS: index. ARGV: prefix. Returns {sid, value, ...} newest first; drops dangling entries. */
export const LIST = PRELUDE + `
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
 * notBefore, sids... Publishes {"seq":n,"events":...}: a listener that sees a number skipped
 * knows it missed a message (pub/sub is at-most-once) and resyncs.
 */
export const REVOKE = PRUNE + `
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
redis.call('PUBLISH', ARGV[3], '{"seq":' .. seq .. ',"events":' .. ARGV[4] .. '}')
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
