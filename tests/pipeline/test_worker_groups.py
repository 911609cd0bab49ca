"""Worker groups end to end: two backends served by one worker process (real Redis, a real
worker consuming both queues, sandboxes over HTTP) each keep their own cap, and both work."""

from __future__ import annotations

import asyncio
import json

from videogen.queue import celery_app

from .conftest import jobs_of

CAPS = {"pika": 2, "fal": 1}
SCENES = 8


def _share_one_worker(vg):
    for name, backend in vg["backends"].items():
        backend["enabled"] = name in CAPS
    for name, cap in CAPS.items():
        vg["backends"][name].update(worker="fal-queue", max_concurrent_tasks=cap)


def test_two_backends_sharing_one_worker_keep_their_own_caps(make_stack, sandboxes):
    stack = make_stack(_share_one_worker).start()
    for name in CAPS:  # long enough jobs that every free slot gets filled
        sandboxes[name].state.set_knobs(run_seconds=0.8, queue_seconds=0.05)

    replies = celery_app(stack.redis_url).control.inspect(timeout=1.0).active_queues() or {}
    queues = {
        node.split("@")[0].rsplit("-", 1)[0]: {q["name"] for q in qs}
        for node, qs in replies.items()
    }
    assert queues == {"router": {"router"}, "fal-queue": {"backend.pika", "backend.fal"}}

    generator = stack.generator()
    published = generator.store.published()  # the group's worker published both backends
    nodes = {json.loads(published[f"backend:{name}"])["node"] for name in CAPS}
    assert len(nodes) == 1 and nodes.pop().startswith("fal-queue-")

    scenes = [{"prompt": f"shot {n}", "duration": 5} for n in range(SCENES)]
    results = asyncio.run(generator.generate_videos(scenes, timeout=90))
    assert all(r["success"] for r in results), results
    used = {name: sum(r["backend_used"] == name for r in results) for name in CAPS}
    assert all(used.values()) and sum(used.values()) == SCENES  # both got scenes
    for name, cap in CAPS.items():
        records = sandboxes[name].state.records()
        assert records["peak_active"] == cap, (name, records["peak_active"])  # full, never over
        assert len(jobs_of(sandboxes[name])) == used[name]
