"""docker-compose.yml and the Dockerfile agree with the config (Docker itself is not here)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from videogen.backends import backend_class
from videogen.loading import build_settings
from videogen.queue import backend_queue
from videogen.redis_url import parse_sentinel_url
from videogen.sandbox.defaults import SANDBOX_NAMES

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
CONFIG = json.loads((REPO / "config" / "config.json").read_text())
ENABLED = [n for n, b in CONFIG["video_generation"]["backends"].items() if b.get("enabled", True)]


def env_of(service: str) -> dict[str, str]:
    """The service's environment as compose sets it when none of the ${VARS} is exported."""
    raw = SERVICES[service].get("environment") or {}
    return {k: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(v)) for k, v in raw.items()}


def test_redis_is_durable_and_never_evicts():
    redis = SERVICES["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command and "--maxmemory-policy noeviction" in command
    assert "redis-cli" in " ".join(redis["healthcheck"]["test"])
    assert redis["volumes"]


def test_one_worker_service_per_enabled_backend_on_its_queue():
    for name in ENABLED:
        service = SERVICES[f"worker-{name}"]
        assert service["command"] == ["videogen", "worker", name]
        assert backend_queue(name) == f"backend.{name}"  # the queue `videogen worker` consumes
        # concurrency comes from the config at start, never pinned in the compose file
        assert not any(arg in ("-c", "--concurrency") for arg in service["command"])
    workers = {s for s in SERVICES if s.startswith("worker-")}
    assert workers == {f"worker-{n}" for n in ENABLED}
    assert SERVICES["router"]["command"] == ["videogen", "worker", "router"]
    assert SERVICES["beat"]["command"][:2] == ["videogen", "beat"]


def test_each_service_gets_the_env_it_needs_and_no_more_keys():
    for service in ("router", "beat", "flower", "metrics", *(f"worker-{n}" for n in ENABLED)):
        env = env_of(service)
        assert env["VIDEOGEN_REDIS_URL"].startswith("redis://redis:6379")
        assert env["VIDEOGEN_CONFIG"] == "/app/config/config.json"
    for name in ENABLED:
        needs = set(backend_class(name).key_env)
        has = {
            k
            for k in env_of(f"worker-{name}")
            if k in ("RUNWAYML_API_SECRET", "LUMAAI_API_KEY", "FAL_KEY")
        }
        assert has == needs, name
    router_keys = {k for k in env_of("router") if k.isupper() and not k.startswith("VIDEOGEN_")}
    assert router_keys == {"RUNWAYML_API_SECRET", "LUMAAI_API_KEY", "FAL_KEY"}  # it probes all
    assert "VIDEOGEN_FLOWER_AUTH" in env_of("flower")
    assert SERVICES["flower"]["ports"] == ["127.0.0.1:5555:5555"]


def test_sandbox_profile_serves_every_keyless_backend():
    sandbox = SERVICES["sandbox"]
    assert sandbox["profiles"] == ["sandbox"]
    base = int(sandbox["command"][sandbox["command"].index("--port-base") + 1])
    env = env_of("worker-runway")
    settings = build_settings(CONFIG, env=env)
    for name in ENABLED:
        backend = settings.backend(name)
        port = base + SANDBOX_NAMES.index(name)
        assert backend.base_url is not None and f"http://sandbox:{port}" in backend.base_url
        assert backend.api_key is not None or not backend_class(name).requires_key
    assert settings.backend("luma").base_url.endswith("/dream-machine/v1")


def test_a_key_in_the_environment_wins_over_the_sandbox():
    env = env_of("worker-runway") | {"RUNWAYML_API_SECRET": "key_" + "1" * 128}
    runway = build_settings(CONFIG, env=env).backend("runway")
    assert runway.base_url is None and runway.key_source == "env:RUNWAYML_API_SECRET"


def test_dockerfile_installs_the_package():
    text = (REPO / "Dockerfile").read_text()
    assert "pip install" in text and "COPY videogen" in text and "COPY workers" in text
    assert "celeryconfig.py" in text and "COPY config" in text


HA_SERVICES = ("redis-replica", "sentinel-1", "sentinel-2", "sentinel-3")


def ha_env() -> dict[str, str]:
    """deploy/ha.env, the env file of the `ha` profile."""
    lines = (REPO / "deploy" / "ha.env").read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line.strip() and not line.startswith("#")]
    return {key.strip(): value.strip() for key, value in pairs}


def env_with(service: str, exported: dict[str, str]) -> dict[str, str]:
    """The service's environment as compose sets it with ``exported`` (an env file)."""
    raw = SERVICES[service].get("environment") or {}
    pattern = r"\$\{([A-Z_]+):-([^}]*)\}"
    return {
        k: re.sub(pattern, lambda m: exported.get(m[1]) or m[2], str(v)) for k, v in raw.items()
    }


def sentinel_conf() -> list[list[str]]:
    text = (REPO / "deploy" / "sentinel.conf").read_text()
    return [line.split() for line in text.splitlines() if line.strip() and line[0] != "#"]


def test_ha_profile_runs_a_durable_replica_and_three_sentinels_beside_redis():
    for name in HA_SERVICES:
        assert SERVICES[name]["profiles"] == ["ha"], name
        assert SERVICES[name]["healthcheck"]["test"][1] == "redis-cli"
    assert "profiles" not in SERVICES["redis"]  # the master at first, in both setups
    replica = SERVICES["redis-replica"]["command"]
    assert " ".join(replica).startswith("redis-server --replicaof redis 6379")
    for flags in ("--appendonly yes", "--maxmemory-policy noeviction"):
        assert flags in " ".join(replica)  # a promoted replica is as durable as the master
    assert SERVICES["redis-replica"]["volumes"] != SERVICES["redis"]["volumes"]
    names = [f"sentinel-{n}" for n in (1, 2, 3)]
    data = {SERVICES[n]["volumes"][1].split(":")[0] for n in names}
    assert len(data) == 3  # each sentinel keeps what it learned in its own volume
    assert [SERVICES[n]["environment"]["SENTINEL_HOST"] for n in names] == names
    assert "announce-ip $$SENTINEL_HOST" in SERVICES["sentinel-1"]["command"][2]


def test_ha_sentinels_watch_redis_with_a_majority_quorum():
    conf = sentinel_conf()
    (monitor,) = [line for line in conf if line[:2] == ["sentinel", "monitor"]]
    _, _, name, host, port, quorum = monitor
    assert (host, port) == ("redis", "6379")
    assert 3 // 2 < int(quorum) <= 3  # a majority of the three: no failover from one's view
    assert ["sentinel", "resolve-hostnames", "yes"] in conf  # `redis` is a service name
    assert ["port", "26379"] in conf
    assert name == parse_sentinel_url(ha_env()["VIDEOGEN_REDIS_URL"]).master_name


def test_ha_env_points_every_videogen_service_at_the_sentinels():
    env = ha_env()
    assert "ha" in env["COMPOSE_PROFILES"].split(",")
    url = parse_sentinel_url(env["VIDEOGEN_REDIS_URL"])
    assert set(url.sentinels) == {(f"sentinel-{n}", 26379) for n in (1, 2, 3)}
    for service in ("router", "beat", "flower", "metrics", *(f"worker-{n}" for n in ENABLED)):
        settings = build_settings(CONFIG, env=env_with(service, env))
        assert settings.redis == env["VIDEOGEN_REDIS_URL"], service


def test_the_api_service_serves_the_dashboard_with_tokens_from_the_environment():
    api = SERVICES["api"]
    assert api["command"][:2] == ["videogen", "api"] and "0.0.0.0" in api["command"]
    assert api["ports"] == ["127.0.0.1:8000:8000"]
    env = env_of("api")
    assert {"VIDEOGEN_API_TOKEN", "VIDEOGEN_API_READ_TOKEN"} <= env.keys()
    assert not {"RUNWAYML_API_SECRET", "LUMAAI_API_KEY", "FAL_KEY"} & env.keys()
    assert "api" in (REPO / "Dockerfile").read_text().split("pip install", 1)[1].split("\n")[0]
