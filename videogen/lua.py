"""The store's Lua scripts: what several workers change at once, changed atomically.

Redis runs each script alone, timed by the server's clock (``TIME``), so hosts' clocks never
matter for leases. The transition script is generated from :data:`videogen.states.TABLE`.
"""

from __future__ import annotations

from . import redis_keys as keys
from .states import Event, lua_table, lua_terminal, sources

_NOW_MS = "local t = redis.call('TIME'); local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"

APPLY = (
    f"local TABLE = {lua_table()}\nlocal TERMINAL = {lua_terminal()}\n"
    + f"local QUEUED = '{keys.queued('')}'\n"
    + f"local EVENTS = '{keys.EVENTS}'\n"
    + """
-- KEYS: scene hash, live set, lease zset of the guarded backend (or any key), backlog
--       class zset (or any key).
-- ARGV: event, scene id, guard backend ('' = any), guard lease token ('' = any),
--       backlog score ('' = none), settlement ('' = none, settle, release or keep),
--       settled micro-dollars, number of fields to set n, then n name/value pairs, then
--       names to delete.
local cur = redis.call('HMGET', KEYS[1], 'state', 'backend', 'lease', 'reserved', 'job_id')
if not cur[1] then return false end
if ARGV[3] ~= '' and cur[2] ~= ARGV[3] then return false end
if ARGV[4] ~= '' and cur[3] ~= ARGV[4] then return false end
local to = TABLE[cur[1] .. ':' .. ARGV[1]]
if not to then return false end
local n = tonumber(ARGV[8])
redis.call('HSET', KEYS[1], 'state', to, unpack(ARGV, 9, 8 + 2 * n))
if #ARGV > 8 + 2 * n then redis.call('HDEL', KEYS[1], unpack(ARGV, 9 + 2 * n)) end
if ARGV[6] ~= '' and cur[4] and cur[4] ~= '' then
  local res = cjson.decode(cur[4])
  local paid = tonumber(ARGV[7])
  if paid < 0 then paid = res.usd end
  for _, k in ipairs(res.keys) do
    if ARGV[6] == 'keep' then
      redis.call('HINCRBY', k, 'held', res.usd)
    else
      redis.call('HINCRBY', k, 'reserved', -res.usd)
      if ARGV[6] == 'settle' then
        redis.call('HINCRBY', k, 'settled', paid)
        redis.call('HINCRBY', k, 'baseline', res.base or paid)
      end
    end
  end
  if ARGV[6] == 'settle' then redis.call('HINCRBY', KEYS[1], 'spent', paid) end
  if ARGV[6] == 'keep' then redis.call('HINCRBY', KEYS[1], 'held', res.usd) end
  redis.call('HSET', KEYS[1], 'reserved', '')
end
if TERMINAL[cur[1]] and not TERMINAL[to] then redis.call('SADD', KEYS[2], ARGV[2]) end
if TERMINAL[to] then
  redis.call('SREM', KEYS[2], ARGV[2])
  redis.call('XADD', EVENTS, 'MAXLEN', '~', 100000, '*', 'scene', ARGV[2], 'job', cur[5] or '',
    'state', to)
end
if ARGV[4] ~= '' and to ~= 'running' then redis.call('ZREM', KEYS[3], ARGV[2]) end
if cur[1] == 'routed' and to ~= 'routed' then
  redis.call('ZREM', QUEUED .. (cur[2] or ''), ARGV[2])
end
if ARGV[5] ~= '' and to == 'pending' then redis.call('ZADD', KEYS[4], ARGV[5], ARGV[2]) end
return to
"""
)
"""Move a scene by an event, if the table allows it from its state now; a move away from
running by the lease holder gives its slot back in the same step, a move away from routed
gives back the slot it had reserved, and a move back to pending can put the scene into its
backlog class in the same step; a settlement resolves the try's reservation on every ledger
it was made on (:mod:`videogen.spend`), once. A move to a terminal state is appended to the
event stream (:data:`videogen.redis_keys.EVENTS`) in the same step: an outbox."""

_STARTABLE = "{" + ", ".join(f'["{s.value}"]=true' for s in sources(Event.START)) + "}"

START = (
    _NOW_MS
    + f"local STARTABLE = {_STARTABLE}\n"
    + """
-- KEYS: scene hash, lease zset, queued zset.
-- ARGV: scene id, backend, token, ttl ms, cap, time (the caller's clock, for the record).
-- Returns {outcome, the scene hash as a flat list}; outcome is started, gone, busy or full.
local flat = redis.call('HGETALL', KEYS[1])
local s = {}
for i = 1, #flat, 2 do s[flat[i]] = flat[i + 1] end
if s.backend ~= ARGV[2] or not STARTABLE[s.state or ''] then return {'gone', flat} end
local held = false
if s.lease and s.lease ~= '' then
  local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
  held = score and tonumber(score) > now
end
if held then return {'busy', flat} end
if redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf') >= tonumber(ARGV[5]) then
  return {'full', flat}
end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[1])
local deliveries = tonumber(s.deliveries or '0') + 1
redis.call('HSET', KEYS[1], 'state', 'running', 'lease', ARGV[3], 'deliveries', deliveries,
  'started_at', ARGV[6], 'updated_at', ARGV[6])
redis.call('ZREM', KEYS[3], ARGV[1])
return {'started', flat}
"""
)
"""Take a slot for a scene and mark it running, counting the delivery (crash-loop guard).
``busy``: another worker holds its live lease (a duplicate message); ``full``: no slot."""

RENEW = (
    _NOW_MS
    + """
if redis.call('HGET', KEYS[1], 'lease') ~= ARGV[2] then return 0 end
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
return 1
"""
)
"""KEYS: scene hash, lease zset. ARGV: scene id, token, ttl ms. Extend our lease while it is
ours and still there (a reaped lease is not brought back: its slot may be someone else's)."""

RELEASE = """
if redis.call('HGET', KEYS[1], 'lease') ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
for _, name in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if redis.call('ZCARD', ARGV[3] .. name) > 0 then
    if ARGV[4] ~= '' and redis.call('SET', KEYS[4], ARGV[4], 'NX', 'PX', ARGV[5]) then
      return 3
    end
    return 2
  end
end
return 1
"""
"""KEYS: scene hash, lease zset, backlog class set, dispatch flag. ARGV: scene id, token,
backlog class key prefix, the time to ask for a dispatch step at ('' not to ask), the flag's
ms. Give our slot back, if ours: 0 it was not, 1 given back and the backlog is empty, 2 given
back and scenes wait (a dispatch step has work), 3 that, and this asked for the step (the
caller sends it)."""

REAP = (
    _NOW_MS
    + """
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, id in ipairs(dead) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], ARGV[1], id)
end
return dead
"""
)
"""KEYS: lease zset, queued zset. ARGV: time. Remove expired leases (their workers died) and
keep each one's slot reserved (queued) for its resume; returns their scene ids."""

WITHDRAW = """
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v and string.find(v, ARGV[2], 1, true) then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
"""

LOCK_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

LOCK_DROP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

DISPATCH = (
    _NOW_MS
    + """
-- KEYS: vtime, dispatch lags list, then per pick: lease zset, queued zset, backlog class zset.
-- ARGV: scene key prefix, time (the caller's clock), job key prefix, spend key prefix, the
--       step's dispatch lag ('' when nobody asked for it), lags kept, then per pick:
--       backend, cap, reason, class name, cost (micro-dollars), ledgers (JSON
--       [[key, limit, name], ...]; limit 0: uncapped), the default strategy's expected cost.
-- Binds each pick's best pending scene to its backend while the backend has a free slot
-- (live leases plus scenes sent but not started under its cap), reserving its cost on every
-- ledger (the scene's job's too) unless a capped one would pass its budget. Returns
-- {id, pick index, ...}; a scene a budget stops stays at its place and comes back as
-- {id, -1 - pick index, JSON {name, used, limit, cost, job}}. A step that binds a scene
-- keeps its dispatch lag.
local vtime = tonumber(redis.call('GET', KEYS[1]) or '0')
local out = {}
local bound = false
local picks = (#KEYS - 2) / 3
for i = 0, picks - 1 do
  local lease, queued, class = KEYS[3 + 3 * i], KEYS[4 + 3 * i], KEYS[5 + 3 * i]
  local a = 6 + 7 * i
  local backend, cap, cost = ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 5])
  local used = redis.call('ZCOUNT', lease, '(' .. now, '+inf') + redis.call('ZCARD', queued)
  while used < cap do
    local head = redis.call('ZRANGE', class, 0, 0, 'WITHSCORES')
    if #head == 0 then break end
    local id = head[1]
    redis.call('ZREM', class, id)
    local key = ARGV[1] .. id
    local cur = redis.call('HMGET', key, 'state', 'tried', 'queue', 'job_id')
    if cur[1] == 'pending' and cur[3] == ARGV[a + 4] then
      local ledgers = cjson.decode(ARGV[a + 6])
      local limit = tonumber(redis.call('HGET', ARGV[3] .. cur[4], 'max_cost_micro') or '0')
      ledgers[#ledgers + 1] = {ARGV[4] .. 'job:' .. cur[4], limit, 'job'}
      local over = nil
      for _, l in ipairs(ledgers) do
        if l[2] > 0 then
          local v = redis.call('HMGET', l[1], 'reserved', 'settled')
          local spent = tonumber(v[1] or '0') + tonumber(v[2] or '0')
          if spent + cost > l[2] then
            over = {name = l[3], key = l[1], used = spent, limit = l[2], cost = cost,
              job = cur[4]}
            break
          end
        end
      end
      if over then
        redis.call('ZADD', class, head[2], id)
        out[#out + 1] = id
        out[#out + 1] = -1 - i
        out[#out + 1] = cjson.encode(over)
        break
      end
      local names = {}
      for _, l in ipairs(ledgers) do
        redis.call('HINCRBY', l[1], 'reserved', cost)
        names[#names + 1] = l[1]
      end
      local tried = cjson.decode((cur[2] and cur[2] ~= '') and cur[2] or '[]')
      tried[#tried + 1] = backend
      redis.call('HSET', key, 'state', 'routed', 'backend', backend,
        'route_reason', ARGV[a + 3], 'tried', cjson.encode(tried), 'retries', 0,
        'deliveries', 0, 'queue', '', 'blocked', '', 'updated_at', ARGV[2],
        'bound_at', ARGV[2],
        'reserved', cjson.encode({usd = cost, keys = names, backend = backend,
          base = tonumber(ARGV[a + 7])}))
      redis.call('ZADD', queued, ARGV[2], id)
      local round = math.floor((tonumber(head[2]) % 35184372088832) / 16384)
      if round > vtime then vtime = round end
      out[#out + 1] = id
      out[#out + 1] = i
      out[#out + 1] = ''
      bound = true
      break
    end
  end
end
redis.call('SET', KEYS[1], vtime)
if bound and ARGV[5] ~= '' then
  redis.call('LPUSH', KEYS[2], ARGV[5])
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[6]) - 1)
end
return out
"""
)
"""Bind waiting scenes to backends with a free slot, atomically: however many routers run
at once, a slot is never given twice and a scene never bound twice (a stale backlog entry,
whose scene moved on, is dropped on the way)."""

CACHE_PUT = """
-- KEYS: entry, lru zset, refs hash, stats hash. ARGV: entry JSON, key, time, sha256, bytes.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
if redis.call('HINCRBY', KEYS[3], ARGV[4], 1) == 1 then
  redis.call('HINCRBY', KEYS[4], 'bytes', ARGV[5])
end
return 1
"""
"""Add a result-cache entry unless its key has one (the first video stored wins), counting
its file once however many keys point at it."""

CACHE_DROP = """
-- KEYS: entry, lru zset, refs hash, stats hash, uses list. ARGV: key.
-- Returns the content hash when no key points at its file any more ('' otherwise).
local v = redis.call('GET', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if not v then return '' end
local e = cjson.decode(v)
redis.call('DEL', KEYS[1], KEYS[5])
if redis.call('HINCRBY', KEYS[3], e.sha256, -1) > 0 then return '' end
redis.call('HDEL', KEYS[3], e.sha256)
redis.call('HINCRBY', KEYS[4], 'bytes', -e.size_bytes)
return e.sha256
"""
"""Forget a result-cache entry; the caller deletes the file when this was its last key."""
