"""The Celery app: built from the settings handed to it, its settings for long, paid tasks,
its four tasks, and the beat's schedule."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery.schedules import crontab

from videogen.config import VideoGenerationSettings
from videogen.embedded import free_port
from videogen.errors import ConfigError
from videogen.loading import build_settings
from workers.app import create_app, health_schedule

REPO = Path(__file__).resolve().parents[2]
SAMPLE = json.loads((REPO / "config" / "config.json").read_text())


@pytest.fixture(scope="module")
def app():
    return create_app(build_settings(SAMPLE | {"redis_url": "redis://127.0.0.1:1/3"}, env={}))


def test_long_task_settings(app):
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    visibility = conf.broker_transport_options["visibility_timeout"]
    assert visibility > conf.task_time_limit  # never redelivered while still running
    assert conf.result_backend_transport_options["visibility_timeout"] == visibility
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"


def test_the_app_uses_the_settings_it_is_given(app):
    assert app.conf.broker_url == app.conf.result_backend == "redis://127.0.0.1:1/3"
    other = build_settings({"video_generation": {"sweep_interval": 7}}, env={})
    assert create_app(other).conf.beat_schedule["sweep"]["schedule"] == 7
    assert app.conf.beat_schedule["sweep"]["schedule"] == 10


def test_the_four_tasks_keep_their_names_and_signatures(app):
    params = {
        name: list(inspect.signature(app.tasks[name].run).parameters)
        for name in ("videogen.dispatch", "videogen.generate", "videogen.health", "videogen.sweep")
    }
    assert params == {
        "videogen.dispatch": [],
        "videogen.generate": ["backend", "scene_id"],
        "videogen.health": ["request_id"],
        "videogen.sweep": [],
    }


def test_each_app_runs_its_own_tasks(app):
    """Two apps in one process (a test, a tool): neither runs the other's pipeline."""
    other = create_app(build_settings({}, env={}))
    for name in ("videogen.dispatch", "videogen.generate", "videogen.health", "videogen.sweep"):
        assert other.tasks[name].run is not app.tasks[name].run


def test_beat_runs_health_probes_and_the_sweeper_on_the_router_queue(app):
    schedule = app.conf.beat_schedule
    assert schedule["health-probes"]["task"] == "videogen.health"
    assert schedule["sweep"]["task"] == "videogen.sweep"
    assert {e["options"]["queue"] for e in schedule.values()} == {"router"}


def test_health_schedule_interval_or_crontab():
    assert health_schedule(VideoGenerationSettings(health_check_interval=12)) == 12
    cron = health_schedule(VideoGenerationSettings(health_check_crontab="*/5 9-17 * * 1-5"))
    assert isinstance(cron, crontab) and cron.hour == set(range(9, 18))
    with pytest.raises(ConfigError, match="weekday"):
        health_schedule(VideoGenerationSettings(health_check_crontab="* * * * someday"))


def test_importing_the_workers_reads_no_config_and_celery_a_finds_the_app(tmp_path):
    """`celery -A workers.app` gets the app on first access to `workers.app.app`, from the
    config that `$VIDEOGEN_CONFIG` names; importing the module alone reads nothing."""
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"redis_url": "redis://127.0.0.1:1/5"}))
    code = (
        "import os, workers.app\n"
        "from celery.app.utils import find_app\n"
        "os.environ['VIDEOGEN_CONFIG'] = os.environ.pop('LATER')\n"
        "app = find_app('workers.app')\n"
        "print(app.conf.broker_url, app is workers.app.app, 'videogen.sweep' in app.tasks)\n"
    )
    env = {"LATER": str(config), "VIDEOGEN_CONFIG": str(tmp_path / "missing.json")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
        env={**clean_env(), **env}, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["redis://127.0.0.1:1/5", "True", "True"]


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("VIDEOGEN_")}


def test_workers_reconnect_to_the_broker_within_seconds():
    """Celery's consumer pauses 2 s, then 4 s, 6 s... between rounds of reconnection (kombu's
    defaults); videogen's asks for 0.5 s, then 1 s (workers/reconnect.py)."""
    from kombu.exceptions import OperationalError

    from workers.reconnect import CONSUMER, QuickReconnectConsumer

    dead = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app(build_settings(SAMPLE | {"redis_url": dead}, env={}))
    assert app.conf.worker_consumer == CONSUMER
    app.conf.broker_connection_max_retries = 2  # three tries, two pauses
    consumer = QuickReconnectConsumer.__new__(QuickReconnectConsumer)  # no worker around it
    consumer.app, consumer.first_connection_attempt = app, False
    consumer.broker_connection_retry_attempt = 0
    started = time.monotonic()
    with pytest.raises(OperationalError):
        consumer.ensure_connected(app.connection_for_read())
    assert 1.4 < time.monotonic() - started < 3.0  # kombu's own pauses: 2 s + 4 s
