"""The typed configuration: the schema only (pure pydantic, no I/O, no environment).

:func:`videogen.loading.load_config` builds a :class:`Settings` from the config file and the
environment. The file keeps the original design's keys (``video_generation.load_balancing``,
``fallback_enabled``, ``backends.<name>.{enabled, priority, max_concurrent_tasks, base_url,
api_key, timeout}``); each backend module adds its own typed keys, and its vendor's facts
(default endpoint, key variables, whether it needs a key), through its settings class.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from .constants import DEFAULT_REDIS_URL, HTTP_TIMEOUT_SECONDS, MAX_VIDEO_BYTES, ROUTER_QUEUE
from .errors import ConfigError
from .pricing import Pricing
from .redis_url import check_redis_url
from .webhooks import ALL_EVENTS, Backoff, WebhookEvent, destination_problem

WORKER_NAME = r"^[a-z0-9][a-z0-9_-]*$"
"""A worker group's name: it goes into process, log and Celery node names."""

DEFAULT_BACKENDS: dict[str, dict[str, Any]] = {
    "svd": {"priority": 1, "max_concurrent_tasks": 2},
    "runway": {"priority": 2, "max_concurrent_tasks": 3},
    "pika": {"priority": 3, "max_concurrent_tasks": 2},
    "luma": {"priority": 4, "max_concurrent_tasks": 2},
    "veo": {"enabled": False, "priority": 5, "max_concurrent_tasks": 2},
    "replicate": {"enabled": False, "priority": 6, "max_concurrent_tasks": 2},
    "wan": {"enabled": False, "priority": 7, "max_concurrent_tasks": 1},
    "seedance": {"enabled": False, "priority": 8, "max_concurrent_tasks": 2},
    "fal": {"enabled": False, "priority": 9, "max_concurrent_tasks": 2},
    "kling": {"enabled": False, "priority": 10, "max_concurrent_tasks": 2},
    "minimax": {"enabled": False, "priority": 11, "max_concurrent_tasks": 2},
}
"""The original design's backends, used when a config names none (or there is no file), and
the ones added since, off until enabled (DashScope allows few concurrent tasks per model:
UNCONFIRMED numbers, so one)."""


class Strategy(StrEnum):
    """How free slots take waiting scenes (:func:`videogen.scheduler.plan`)."""

    PRIORITY = "priority"
    """The best-priority backend that is free; spill over only when the better ones are full."""
    ROUND_ROBIN = "round_robin"
    EARLIEST_FINISH = "earliest_finish"
    """Each scene where it finishes soonest, by learned job times (minimises makespan)."""
    LEAST_LOADED = "least_loaded"
    """The original design's name for load balancing: now the same as ``earliest_finish``."""
    CHEAPEST = "cheapest"
    """The cheapest capable backend; a dearer one only when waiting for the cheaper ones
    would miss the job's deadline (without a deadline: only when no cheaper one is up)."""


class BudgetAction(StrEnum):
    """What a scene does when reserving its estimate would take spend past a budget."""

    FAIL = "fail"
    """Fail at once, with the budget's name and figures as the reason."""
    WAIT = "wait"
    """Wait in the backlog (another backend may take it, spend may be released, the period
    may end); it fails with the budget's name after ``route_wait_limit``."""


class Budget(BaseModel):
    """Caps on spend per UTC period (estimates reserved plus costs settled)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    daily_usd: float | None = Field(default=None, gt=0)
    monthly_usd: float | None = Field(default=None, gt=0)


class JobOptions(BaseModel):
    """What a job may ask for itself, beside its priority (``submit`` options, the API)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: Strategy | None = None
    """Overrides the config's strategy for this job's scenes."""
    deadline: float | None = Field(default=None, gt=0)
    """Seconds from the submit by which every scene should be done; ``cheapest`` spends more
    only to meet it."""
    max_cost_usd: float | None = Field(default=None, gt=0)
    """The job's budget: reserved plus spent never passes it."""
    max_cost_per_second: float | None = Field(default=None, gt=0)
    """Backends dearer than this (USD per output second) are skipped for the job."""
    no_cache: bool | None = None
    """Generate every scene anew: no cached video is reused, no duplicate waits for another
    (``None``: the cache is used, when the config enables it)."""
    webhook: str | None = None
    """A URL that gets every event of this job (signed with ``webhook_secret``, else the
    config's ``webhook_delivery.job_secret``)."""
    webhook_secret: SecretStr | None = None
    """Kept on the job's hash in Redis only: never in a message, a log or an error."""

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        return None if value is None else checked_url(value)


def checked_url(url: str) -> str:
    """``url`` if webhooks may go there (:func:`videogen.webhooks.destination_problem`)."""
    problem = destination_problem(url.strip())
    if problem:
        raise ValueError(f"webhook URL refused: {problem}")
    return url.strip()


class WebhookSettings(BaseModel):
    """One configured webhook (``video_generation.webhooks``): every job's events go there."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    secret: SecretStr | None = None
    """The signing secret; better kept out of the file: ``secret_env``."""
    secret_env: str | None = None
    """The environment variable holding the secret (read where the router runs)."""
    events: frozenset[WebhookEvent] = ALL_EVENTS
    """Which events it gets (``scene.succeeded``, ``scene.failed``, ``scene.cancelled``,
    ``job.finished``); all by default."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return checked_url(value)

    @model_validator(mode="after")
    def _has_secret(self) -> WebhookSettings:
        if self.secret is None and not self.secret_env:
            raise ValueError("a webhook needs a signing secret: secret_env (or secret)")
        return self


class WebhookDelivery(BaseModel):
    """How webhooks are delivered (``video_generation.webhook_delivery``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(default=8, ge=1, le=50)
    """Attempts before a delivery is dead (kept, and shown by ``videogen webhooks --dead``)."""
    base_delay: float = Field(default=5.0, gt=0)
    """Seconds before the first retry; each next one waits twice as long, up to ``max_delay``
    (5 s and 8 attempts: retries over ~10 minutes)."""
    max_delay: float = Field(default=300.0, gt=0)
    jitter: float = Field(default=0.2, ge=0, lt=1)
    timeout: float = Field(default=5.0, gt=0)
    """Seconds one attempt may take: a slow receiver delays other deliveries, never scenes."""
    interval: float = Field(default=1.0, gt=0)
    """Seconds between the relay's looks at new events and due deliveries."""
    batch: int = Field(default=100, ge=1)
    """Events read, and deliveries sent, per look at most."""
    claim_idle: float = Field(default=30.0, gt=0)
    """Seconds after which events a crashed relay had read are taken over by another."""
    job_secret: SecretStr | None = None
    """Signs per-job webhooks (``submit --webhook``) that bring no secret of their own."""
    job_secret_env: str | None = None
    """The environment variable holding ``job_secret``."""

    @property
    def backoff(self) -> Backoff:
        return Backoff(self.max_attempts, self.base_delay, self.max_delay, self.jitter)


class CacheSettings(BaseModel):
    """The result cache (``video_generation.cache``, :mod:`videogen.cache`): a scene identical
    to one already generated reuses its video instead of paying a vendor again."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    max_bytes: int | None = Field(default=20 * 2**30, gt=0)
    """Total size of the stored videos; the sweep evicts the least recently used past it
    (``None``: no limit)."""
    max_age_days: float | None = Field(default=30.0, gt=0)
    """Videos unused for this long are evicted by the sweep (``None``: kept however old)."""
    unseeded: bool = True
    """Reuse videos for scenes without a seed too. On by default: resubmitting a scene file
    (after a crash, a change to one shot) must not pay again for the shots it already has,
    and most scene files carry no seeds. ``false`` (or ``--no-cache``, or a scene's
    ``no_cache``) asks each unseeded scene for a fresh random take."""


class TokenScope(StrEnum):
    """What an HTTP API token may do."""

    READ = "read"
    """Read jobs, scenes, videos, backends, statistics and events."""
    FULL = "full"
    """Also submit, cancel and retry."""


class ApiToken(BaseModel):
    """One bearer token of the HTTP API (``video_generation.api.tokens``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    """Who holds it, for people and logs (the token itself is never logged)."""
    token: SecretStr | None = None
    """The token; better kept out of the file: ``token_env``."""
    token_env: str | None = None
    """The environment variable holding the token (read when the config is loaded)."""
    scope: TokenScope = TokenScope.READ

    @model_validator(mode="after")
    def _has_token(self) -> ApiToken:
        if self.token is None and not self.token_env:
            raise ValueError(f"API token {self.name!r} needs token_env (or token)")
        return self


class ApiSettings(BaseModel):
    """The HTTP API (``videogen api``): where it listens and who may use it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    """Anything beyond loopback needs at least one token (as Flower needs its basic auth)."""
    port: int = Field(default=8000, ge=0, le=65535)
    tokens: list[ApiToken] = Field(default_factory=list)
    """Bearer tokens; none: the API is open, and then only on loopback."""


class BackendSettings(BaseModel):
    """Keys every backend has; backend modules subclass this for their own."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    default_base_url: ClassVar[str] = ""
    """The vendor's endpoint, used unless ``base_url`` is set (each backend's class sets it)."""
    key_env: ClassVar[tuple[str, ...]] = ()
    """The vendor SDK's own environment variables for the key."""
    key_pair_env: ClassVar[tuple[str, str] | None] = None
    """Two variables that together make the key, ``first:second`` (Kling's access key and
    secret key), for vendors whose credentials come in two parts."""
    requires_key: ClassVar[bool] = True
    path_fields: ClassVar[tuple[str, ...]] = ()
    """Keys holding file paths: relative ones are resolved against the config file's folder."""
    gpu_usd_per_hour: ClassVar[float | None] = None
    """A local GPU backend's default hourly cost (its jobs cost GPU time, not a list price)."""

    enabled: bool = True
    priority: int = Field(default=100, ge=0)
    """Lower numbers are tried first."""
    max_concurrent_tasks: int = Field(default=1, ge=1, le=1000)
    """In-flight vendor jobs allowed at once, across all workers."""
    base_url: str | None = None
    """Overrides the vendor host (a sandbox, a proxy, a self-hosted ComfyUI)."""
    api_key: SecretStr | None = None
    timeout: float = Field(default=600.0, gt=0)
    """Seconds one generation may take, counted from the vendor job's creation (a resumed or
    redelivered job keeps its first deadline) to a stored file."""
    unknown_grace: float = Field(default=180.0, gt=0)
    """Seconds a running vendor job may go unanswered (5xx, refused connections, timeouts,
    garbage on poll) before its scene fails over; until then it keeps its slot and is polled
    with backoff. The job left behind is an orphan the sweeper keeps asking about and
    cancelling (README, Guarantees, says why 180 s)."""
    expected_seconds: float = Field(default=120.0, gt=0)
    """The job time the scheduler assumes until it has learned this backend's own (from its
    finished jobs)."""
    request_timeout: float = Field(default=HTTP_TIMEOUT_SECONDS, gt=0)
    """Seconds one HTTP request may take."""
    poll_interval: float = Field(default=5.0, gt=0)
    """Seconds between status polls (Runway: expect no update more often than every 5 s)."""
    max_download_bytes: int = Field(default=MAX_VIDEO_BYTES, gt=0)
    pricing: Pricing = Field(default_factory=Pricing)
    """Overrides of the backend's published prices (:mod:`videogen.pricing`)."""
    budget: Budget = Field(default_factory=Budget)
    """Caps on this backend's spend per UTC day and month."""
    worker: str | None = Field(default=None, pattern=WORKER_NAME)
    """The worker process that serves this backend. Backends naming the same one share a
    process (``videogen up`` starts it as ``worker-<name>``; by hand: ``videogen worker
    <name>``) that consumes all their queues, with as many threads as their caps together;
    each cap is still enforced by its own leases. Unset: a worker of its own, named after the
    backend. One process instead of several saves its start time and memory (a worker is
    ~100 MB): group the HTTP backends, which only wait on vendors."""

    key_source: str = Field(default="none", exclude=True)
    """Where the key came from (``env:FAL_KEY``, ``file``), or why there is none."""

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"base_url {value!r} must start with http:// or https://")
        return value.rstrip("/")

    @property
    def has_key(self) -> bool:
        return self.api_key is not None

    @classmethod
    def key_problem(cls, key: str) -> str | None:
        """Why a key of this shape cannot work with the vendor (Kling's has two parts), or
        ``None``; such a key counts as none, and the reason says why (never the key)."""
        return None


class VideoGenerationSettings(BaseModel):
    """The ``video_generation`` section of ``config.json``."""

    model_config = ConfigDict(extra="forbid")

    load_balancing: bool = False
    """Original design's switch: ``true`` means the ``earliest_finish`` strategy."""
    fallback_enabled: bool = True
    """Re-route a scene to the next backend when one fails it."""
    strategy: Strategy | None = None
    output_dir: str = "output"
    """Relative to the config file's folder (to the current folder without a file)."""
    health_check_interval: float = Field(default=30.0, gt=0)
    """Seconds between health probes of every backend (celery beat)."""
    health_check_crontab: str | None = Field(default=None, pattern=r"^\S+( \S+){4}$")
    """Instead of the interval, a crontab (``"*/5 * * * *"``: minute hour day month weekday)."""
    sweep_interval: float = Field(default=10.0, gt=0)
    """Seconds between sweeps for scenes whose worker or router died."""
    lease_ttl: float = Field(default=60.0, gt=0)
    """Seconds a worker's slot lasts unrenewed; a dead worker's scene resumes after this."""
    route_claim_timeout: float = Field(default=30.0, gt=0)
    """A scene whose step's message was lost (a worker or Redis died) is sent again after
    this long without a change."""
    route_wait_limit: float = Field(default=600.0, ge=0)
    """Seconds a scene waits for a capable backend that is down (unhealthy, circuit open)
    before it fails; scenes no backend could ever take fail at once."""
    max_retries: int = Field(default=3, ge=0)
    """Transient errors retried on the same backend before failing over."""
    max_attempts: int = Field(default=10, ge=1)
    """Failed tries a scene gets, across backends and retries, before it fails for good."""
    retry_base_delay: float = Field(default=1.0, ge=0)
    circuit_failure_threshold: int = Field(default=3, ge=1)
    """Consecutive failures (jobs or probes) that stop routing to a backend."""
    circuit_cooldown: float = Field(default=30.0, ge=0)
    budgets: Budget = Field(default_factory=Budget)
    """Caps on all backends' spend together per UTC day and month."""
    cache: CacheSettings = Field(default_factory=CacheSettings)
    on_budget: BudgetAction = BudgetAction.FAIL
    budget_alert_fraction: float = Field(default=0.8, gt=0, lt=1)
    """A log line and a metric when a budget is this much used (and again when full)."""
    webhooks: list[WebhookSettings] = Field(default_factory=list)
    """Destinations for every job's events (``job.finished``, ``scene.failed``...)."""
    webhook_delivery: WebhookDelivery = Field(default_factory=WebhookDelivery)
    api: ApiSettings = Field(default_factory=ApiSettings)
    """The HTTP API: address, port, bearer tokens (``videogen api``)."""
    backends: dict[str, BackendSettings] = Field(default_factory=dict)

    @property
    def effective_strategy(self) -> Strategy:
        if self.strategy is not None:
            return self.strategy
        return Strategy.EARLIEST_FINISH if self.load_balancing else Strategy.PRIORITY

    def enabled_backends(self) -> list[str]:
        """Enabled backend names, by priority (ties keep file order)."""
        names = [name for name, b in self.backends.items() if b.enabled]
        return sorted(names, key=lambda name: self.backends[name].priority)

    def worker_groups(self) -> dict[str, list[str]]:
        """The enabled backends by the worker process that serves them (a backend's
        ``worker``, else its own name), each group by priority."""
        groups: dict[str, list[str]] = {}
        for name in self.enabled_backends():
            groups.setdefault(self.backends[name].worker or name, []).append(name)
        return groups

    def worker_members(self, name: str) -> list[str]:
        """The backends ``videogen worker <name>`` serves: a group's enabled backends, or
        one configured backend alone (a backend of a group can still have workers of its own,
        on another host)."""
        if name in self.backends:
            return [name]
        members = self.worker_groups().get(name)
        if not members:
            known = sorted({*self.backends, *self.worker_groups()})
            raise ConfigError(
                f"unknown backend {name!r}, and no worker group of that name "
                f"(known: {', '.join(known)})"
            )
        return members

    @model_validator(mode="after")
    def _worker_names(self) -> VideoGenerationSettings:
        for name, backend in self.backends.items():
            group = backend.worker
            if group == ROUTER_QUEUE or (group in self.backends and group != name):
                raise ValueError(
                    f"backends.{name}.worker {group!r} is the name of the "
                    f"{'router' if group == ROUTER_QUEUE else 'backend ' + repr(group)}; "
                    "name the group otherwise"
                )
        return self

    def expected_seconds(self) -> dict[str, float]:
        """Each backend's ``expected_seconds``: the seeds of its learned job times."""
        return {name: b.expected_seconds for name, b in self.backends.items()}


class Settings(BaseModel):
    """Everything videogen reads at start (the loader lets the environment override the file)."""

    model_config = ConfigDict(extra="ignore")

    video_generation: VideoGenerationSettings = Field(default_factory=VideoGenerationSettings)
    redis_url: str | None = None
    """External Redis (``$VIDEOGEN_REDIS_URL``); when unset, ``videogen up`` starts an embedded
    one. ``redis://[[user]:password@]host:port/db`` (``rediss://`` for TLS, ``unix://``), or
    a Sentinel-managed master with replicas:
    ``redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/master_name[/db]``
    (every sentinel, port 26379 by default; the password is the master's), e.g.
    ``redis+sentinel://:pw@s1:26379,s2:26379,s3:26379/videogen/0`` (:mod:`videogen.redis_url`).
    """
    output_dir: str | None = None
    """Overrides ``video_generation.output_dir`` (``$VIDEOGEN_OUTPUT_DIR``)."""
    source: str = Field(default="<defaults>", exclude=True)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            return check_redis_url(value.strip())
        except ConfigError as error:  # pydantic reports ValueErrors (the text has no password)
            raise ValueError(str(error)) from None

    @property
    def outputs(self) -> Path:
        """Where videos go: always absolute, so every worker and result agrees on it."""
        return Path(self.output_dir or self.video_generation.output_dir).resolve()

    def backend(self, name: str) -> BackendSettings:
        try:
            return self.video_generation.backends[name]
        except KeyError:
            known = ", ".join(self.video_generation.backends) or "none"
            raise ConfigError(f"unknown backend {name!r} (configured: {known})") from None

    @property
    def redis(self) -> str:
        """The Redis URL: ``$VIDEOGEN_REDIS_URL``, else ``redis_url``, else the embedded one's."""
        return self.redis_url or DEFAULT_REDIS_URL

    def base_url(self, name: str) -> str:
        """The endpoint backend ``name`` talks to: its configured one, else the vendor's."""
        backend = self.backend(name)
        return backend.base_url or backend.default_base_url

    def pointed_at(self, name: str, base_url: str, api_key: str | None) -> Settings:
        """A copy whose backend ``name`` talks to ``base_url`` with ``api_key`` (a sandbox)."""
        backend = self.backend(name).model_copy(
            update={
                "base_url": base_url,
                "api_key": SecretStr(api_key) if api_key else None,
                "key_source": f"sandbox at {base_url}" if api_key else "none needed",
            }
        )
        backends = {**self.video_generation.backends, name: backend}
        section = self.video_generation.model_copy(update={"backends": backends})
        return self.model_copy(update={"video_generation": section})

    def describe(self) -> dict[str, Any]:
        """What each backend will use, for people; keys appear only as where they came from."""
        rows = {}
        for name, b in self.video_generation.backends.items():
            rows[name] = {
                "enabled": b.enabled,
                "priority": b.priority,
                "max_concurrent_tasks": b.max_concurrent_tasks,
                "base_url": b.base_url or b.default_base_url,
                "timeout": b.timeout,
                "key": b.key_source if b.has_key or b.requires_key else "not needed",
            }
        return {
            "source": self.source,
            "strategy": self.video_generation.effective_strategy.value,
            "fallback_enabled": self.video_generation.fallback_enabled,
            "output_dir": str(self.outputs),
            "backends": rows,
        }

    def missing_keys(self) -> dict[str, str]:
        """Enabled backends that need a key and have none: name -> why."""
        return {
            name: b.key_source
            for name, b in self.video_generation.backends.items()
            if b.enabled and b.requires_key and not b.has_key
        }

    def require_keys(self) -> None:
        """Refuse to start when an enabled real backend has no key, saying which and why."""
        missing = self.missing_keys()
        if missing:
            lines = [f"{name}: {why}" for name, why in missing.items()]
            raise ConfigError("enabled backends without an API key:\n  " + "\n  ".join(lines))


def job_options(**values: Any) -> JobOptions:
    """A job's options from keyword values (``None``: not set), or :class:`ConfigError`
    naming each bad one (before anything is enqueued)."""
    try:
        return JobOptions.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        raise ConfigError(f"invalid job options: {problems}") from None
