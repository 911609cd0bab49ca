"""Webhooks in Redis: the consumer group on the event stream, and the deliveries. A mixin of
:class:`videogen.store.Store`; the relay that uses it is :mod:`videogen.webhook_relay`.

- Events are read from :data:`~videogen.redis_keys.EVENTS` through one consumer group, so each
  entry goes to one relay however many routers run; an entry is acknowledged only once its
  deliveries are stored, and a crashed relay's unacknowledged entries are claimed by another
  (``XAUTOCLAIM``). Reading one twice is harmless: a delivery's id is its idempotency key and
  it is created only once.
- A delivery is a hash (``vg:webhook:{id}``); the pending ones are in a sorted set by the time
  of their next attempt. A relay takes due ones by pushing their time forward in one script
  (two relays never send one at once), and records each outcome in another (counted per
  destination, once, only while the delivery is still pending).
"""

from __future__ import annotations

import json
from typing import Any

import redis

from . import redis_keys as keys
from .webhooks import Delivery

RECENT_KEPT = 1000
"""Deliveries ``videogen webhooks`` can list (the index is trimmed; pending ones stay)."""
DELIVERED_TTL = 7 * 24 * 3600
"""Seconds a delivered delivery's record is kept (for people; nothing reads it again)."""
DEAD_TTL = 30 * 24 * 3600
"""Seconds a dead delivery is kept, to be looked at and sent again by hand."""

_ADD = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -tonumber(ARGV[4]) - 1)
return 1
"""
"""KEYS: delivery hash, due, recent. ARGV: id, created, due at, recent kept, field pairs."""

_CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
return ids
"""
"""KEYS: due. ARGV: now, held until, limit. Due ids, held for this relay until then."""

_OUTCOME = """
local cur = redis.call('HMGET', KEYS[1], 'state', 'attempts')
if cur[1] ~= 'pending' then return false end
local tries = tonumber(cur[2] or '0')
local id, now, dest = ARGV[1], ARGV[2], ARGV[3]
redis.call('HSET', KEYS[1], 'attempts', tries + 1)
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'last_status', ARGV[5]) end
local outcome = 'retrying'
if ARGV[6] == '' then
  outcome = 'delivered'
elseif ARGV[4] == '' then
  outcome = 'dead'
end
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[1], 'last_error', ARGV[6])
  redis.call('HINCRBY', KEYS[4], 'failed_attempts|' .. dest, 1)
  redis.call('HSET', KEYS[5], dest, cjson.encode({error = ARGV[6], status = ARGV[5],
    at = tonumber(now), delivery = id}))
end
if outcome == 'retrying' then
  redis.call('HSET', KEYS[1], 'next_at', ARGV[4])
  redis.call('ZADD', KEYS[2], ARGV[4], id)
  if tries == 0 then redis.call('HINCRBY', KEYS[4], 'retrying|' .. dest, 1) end
  return outcome
end
redis.call('HSET', KEYS[1], 'state', outcome, 'finished_at', now)
redis.call('HDEL', KEYS[1], 'next_at')
redis.call('ZREM', KEYS[2], id)
redis.call('HINCRBY', KEYS[4], outcome .. '|' .. dest, 1)
if tries > 0 then redis.call('HINCRBY', KEYS[4], 'retrying|' .. dest, -1) end
if outcome == 'dead' then
  redis.call('ZADD', KEYS[3], now, id)
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', tonumber(now) - tonumber(ARGV[8]))
  redis.call('EXPIRE', KEYS[1], ARGV[8])
else
  redis.call('EXPIRE', KEYS[1], ARGV[7])
end
return outcome
"""
"""KEYS: delivery hash, due, dead, stats, errors. ARGV: id, now, destination (for counts),
next attempt ('' = none left), HTTP status ('' = none), error ('' = delivered), delivered TTL,
dead TTL. Returns delivered, retrying or dead; nil when it was not pending any more."""


class WebhookStore:
    r: Any

    def _register_webhooks(self) -> None:
        self._hook_add = self.r.register_script(_ADD)
        self._hook_claim = self.r.register_script(_CLAIM)
        self._hook_outcome = self.r.register_script(_OUTCOME)

    # -- the event stream ------------------------------------------------------------------

    def take_events(
        self, consumer: str, count: int, claim_idle: float
    ) -> list[tuple[str, dict[str, str]]]:
        """Entries a crashed relay left unacknowledged for ``claim_idle`` seconds, then new
        ones, ``count`` at most of each; the group is made on first use (from the stream's
        start: no event written before the first relay ran is missed)."""
        try:
            return self._take_events(consumer, count, claim_idle)
        except redis.ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            self._make_group()
            return self._take_events(consumer, count, claim_idle)

    def _take_events(
        self, consumer: str, count: int, claim_idle: float
    ) -> list[tuple[str, dict[str, str]]]:
        group, idle = keys.WEBHOOK_GROUP, int(claim_idle * 1000)
        claimed = self.r.xautoclaim(keys.EVENTS, group, consumer, idle, "0-0", count=count)
        fresh = self.r.xreadgroup(group, consumer, {keys.EVENTS: ">"}, count=count)
        entries = list(claimed[1]) + [e for _, batch in fresh or [] for e in batch]
        return [(entry_id, dict(fields or {})) for entry_id, fields in entries]

    def _make_group(self) -> None:
        try:
            self.r.xgroup_create(keys.EVENTS, keys.WEBHOOK_GROUP, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):  # another relay made it first
                raise

    def ack_events(self, entry_ids: list[str]) -> None:
        if entry_ids:
            self.r.xack(keys.EVENTS, keys.WEBHOOK_GROUP, *entry_ids)

    # -- deliveries ------------------------------------------------------------------------

    def add_delivery(self, delivery: Delivery, due_at: float) -> bool:
        """Store a new delivery, due at ``due_at``; False when it exists already."""
        args: list[Any] = [delivery.id, delivery.created_at, due_at, RECENT_KEPT]
        for name, value in delivery.fields().items():
            args += [name, value]
        hash_key = keys.webhook(delivery.id)
        return bool(
            self._hook_add(keys=[hash_key, keys.WEBHOOKS_DUE, keys.WEBHOOKS_RECENT], args=args)
        )

    def claim_deliveries(self, now: float, hold: float, limit: int) -> list[str]:
        """Ids of due deliveries, held for the caller for ``hold`` seconds (its attempt's
        longest time: if it dies meanwhile, they come due again after that)."""
        return list(self._hook_claim(keys=[keys.WEBHOOKS_DUE], args=[now, now + hold, limit]))

    def delivery(self, delivery_id: str) -> Delivery | None:
        data = self.r.hgetall(keys.webhook(delivery_id))
        return Delivery.parse(data) if data else None

    def deliveries(self, ids: list[str]) -> list[Delivery]:
        pipe = self.r.pipeline(transaction=False)
        for delivery_id in ids:
            pipe.hgetall(keys.webhook(delivery_id))
        return [Delivery.parse(d) for d in pipe.execute() if d] if ids else []

    def record_attempt(
        self,
        delivery: Delivery,
        destination: str,
        now: float,
        *,
        error: str = "",
        status: int | None = None,
        retry_at: float | None = None,
    ) -> str | None:
        """Count one attempt: delivered (no ``error``), retrying at ``retry_at``, or dead
        (an error and no ``retry_at``); ``None`` when another relay already settled it."""
        args = [
            delivery.id, now, destination, "" if retry_at is None else retry_at,
            "" if status is None else status, error, DELIVERED_TTL, DEAD_TTL,
        ]  # fmt: skip
        hook_keys = [
            keys.webhook(delivery.id), keys.WEBHOOKS_DUE, keys.WEBHOOKS_DEAD,
            keys.WEBHOOKS_STATS, keys.WEBHOOKS_ERRORS,
        ]  # fmt: skip
        outcome = self._hook_outcome(keys=hook_keys, args=args)
        return str(outcome) if outcome else None

    def drop_due(self, delivery_id: str) -> None:
        """Forget a due entry whose delivery is gone or settled."""
        self.r.zrem(keys.WEBHOOKS_DUE, delivery_id)

    def recent_deliveries(self, limit: int = 20) -> list[Delivery]:
        return self.deliveries(list(self.r.zrevrange(keys.WEBHOOKS_RECENT, 0, limit - 1)))

    def dead_deliveries(self, limit: int = 20) -> list[Delivery]:
        return self.deliveries(list(self.r.zrevrange(keys.WEBHOOKS_DEAD, 0, limit - 1)))

    def webhook_stats(self) -> dict[str, Any]:
        """Pending and dead deliveries, and per destination: delivered, retrying, dead,
        failed attempts, and its latest error."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(keys.WEBHOOKS_STATS)
        pipe.hgetall(keys.WEBHOOKS_ERRORS)
        pipe.zcard(keys.WEBHOOKS_DUE)
        pipe.zcard(keys.WEBHOOKS_DEAD)
        counts, errors, pending, dead = pipe.execute()
        rows: dict[str, dict[str, Any]] = {}
        for field, value in counts.items():
            counter, _, dest = field.partition("|")
            rows.setdefault(dest, _empty_row())[counter] = int(value)
        for dest, raw in errors.items():
            rows.setdefault(dest, _empty_row())["last_error"] = json.loads(raw)
        return {"pending": int(pending), "dead": int(dead), "destinations": rows}


def _empty_row() -> dict[str, Any]:
    return {"delivered": 0, "retrying": 0, "dead": 0, "failed_attempts": 0, "last_error": None}
