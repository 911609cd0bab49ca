"""Celery settings for videogen's apps (loaded by :func:`videogen.queue.celery_app`).

Long, paid vendor jobs shape these values; see ../shared/ARCHITECTURE.md, "Facts about Celery
on Redis": late acks with prefetch 1, reject on a lost worker, and a visibility timeout above
the longest task's hard time limit, set for both the broker and the result backend.

No broker URL here: ``celery_app`` sets the broker and the result backend from the settings
it is given, so this module reads no environment.
"""

from __future__ import annotations

task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
"""Messages carry ids only, as JSON: never pickles, never scenes or keys."""

task_acks_late = True
worker_prefetch_multiplier = 1
task_reject_on_worker_lost = True
"""Paired with an attempt counter kept in Redis by the tasks, so a poison task cannot loop."""

task_time_limit = 3600
"""Hard limit of the longest task (a vendor job with its polling), in seconds."""
task_soft_time_limit = 3300
_visibility_timeout = task_time_limit + 600
"""Above the hard limit, or a still-running task is delivered a second time."""
broker_transport_options = {"visibility_timeout": _visibility_timeout}
result_backend_transport_options = {"visibility_timeout": _visibility_timeout}

task_default_queue = "router"
worker_send_task_events = True
task_send_sent_event = True
"""Events for Flower (workers also start with ``-E``)."""
broker_connection_retry_on_startup = True
task_ignore_result = True
"""Outcomes live on the scene records in Redis; Celery's result keys would only cost memory."""

task_publish_retry_policy = {
    "max_retries": 40,
    "interval_start": 0.2,
    "interval_step": 0.5,
    "interval_max": 2.0,
}
"""A step that enqueues the next one while Redis restarts keeps trying (~70 s), never drops it."""
broker_connection_max_retries = None
"""Workers reconnect to a restarted Redis by themselves, however long it takes."""
