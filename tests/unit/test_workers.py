"""The Celery app's settings for long, paid tasks, and the beat's schedule."""

from __future__ import annotations

import pytest
from celery.schedules import crontab

from videogen.config import VideoGenerationSettings
from videogen.errors import ConfigError
from workers.app import app, health_schedule


def test_long_task_settings():
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    visibility = conf.broker_transport_options["visibility_timeout"]
    assert visibility > conf.task_time_limit  # never redelivered while still running
    assert conf.result_backend_transport_options["visibility_timeout"] == visibility
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"


def test_beat_runs_health_probes_and_the_sweeper_on_the_router_queue():
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
