"""Cost, one step at a time: prices reserved when a scene is bound, settled or released when
its try ends, budgets that stop work before it is paid for, a price cap per job, and the
cheapest strategy. Real Redis, real sandboxes; ledgers checked against the sandboxes' records."""

from __future__ import annotations

import pytest

from videogen import redis_keys as keys
from videogen import spend
from videogen.config import JobOptions
from videogen.errors import SceneValidationError
from videogen.models import Scene, SceneState

from .conftest import BACKENDS

SCENE = {"prompt": "a lighthouse at dawn", "duration": 5}
RUNWAY_5S = 0.60
"""Runway gen4.5 (the sample config's text model), $0.12 per second, 5 s."""


def only(*names: str, **changes):
    def change(vg):
        for name in BACKENDS:
            vg["backends"][name]["enabled"] = name in names
        vg.update(changes)

    return change


def submit(steps, n: int, **options) -> list[str]:
    scenes = [Scene.model_validate({**SCENE, "prompt": f"shot {i}"}) for i in range(n)]
    job_id = steps.pipeline.submit(scenes, None, 0, JobOptions(**options))
    return steps.store.job_scene_ids(job_id)


def ledger(steps, scope: str) -> dict[str, float]:
    book = steps.store.ledgers([scope])[scope]
    assert book.pop("saved") >= 0  # one backend: the default strategy would pay the same
    return book


def today(steps) -> str:
    return spend.all_scopes(steps.clock.now)["day"]


def test_binding_reserves_the_price_everywhere_and_success_settles_it(make_steps):
    steps = make_steps(only("runway"))
    (scene_id,) = submit(steps, 1)
    job_id = steps.record(scene_id).job_id
    steps.pipeline.dispatch_waiting()
    record = steps.record(scene_id)
    assert record.reserved is not None and record.reserved["usd"] == RUNWAY_5S * 1e6
    for scope in (f"job:{job_id}", "backend:runway", today(steps), "all"):
        assert ledger(steps, scope) == {"reserved": RUNWAY_5S, "settled": 0.0, "held": 0.0}
    steps.sent.take()
    steps.pipeline.generate("runway", scene_id)
    record = steps.record(scene_id)
    assert record.state is SceneState.SUCCEEDED and record.reserved is None
    assert record.spent == RUNWAY_5S * 1e6
    (job,) = steps.jobs("runway")  # the vendor made one 5-s job: that is what is settled
    assert job["duration_s"] == 5 and job["state"] == "succeeded"
    for scope in (f"job:{job_id}", "backend:runway", today(steps), "all"):
        assert ledger(steps, scope) == {"reserved": 0.0, "settled": RUNWAY_5S, "held": 0.0}


def test_a_failed_vendor_job_costs_nothing(make_steps):
    steps = make_steps(only("runway", fallback_enabled=False))
    (scene_id,) = submit(steps, 1)
    steps.pipeline.dispatch_waiting()
    steps.sandboxes["runway"].state.set_knobs(fail_next_jobs=1)
    steps.pipeline.generate("runway", scene_id)
    assert steps.record(scene_id).state is SceneState.FAILED
    assert len(steps.jobs("runway")) == 1  # a job was made, and the vendor failed it
    assert ledger(steps, "all") == {"reserved": 0.0, "settled": 0.0, "held": 0.0}
    assert steps.record(scene_id).spent == 0


def test_an_ambiguous_submit_keeps_its_reservation(make_steps):
    steps = make_steps(only("runway"))
    (scene_id,) = submit(steps, 1)
    steps.pipeline.dispatch_waiting()
    steps.store.update(scene_id, submitting="runway")  # a worker died mid-create
    steps.pipeline.generate("runway", scene_id)
    record = steps.record(scene_id)
    assert record.state is SceneState.FAILED and record.held == RUNWAY_5S * 1e6
    assert ledger(steps, "all") == {"reserved": RUNWAY_5S, "settled": 0.0, "held": RUNWAY_5S}


def test_a_job_budget_fails_the_scene_that_would_pass_it_naming_the_budget(make_steps):
    steps = make_steps(only("runway"))
    ids = submit(steps, 3, max_cost_usd=1.5)  # room for two 0.60 scenes
    job_id = steps.record(ids[0]).job_id
    steps.run_all()
    states = [steps.record(i).state for i in ids]
    assert states.count(SceneState.SUCCEEDED) == 2 and states.count(SceneState.FAILED) == 1
    failed = next(steps.record(i) for i in ids if steps.record(i).state is SceneState.FAILED)
    assert failed.error is not None and f"budget of job {job_id} (max_cost_usd)" in failed.error
    assert "$1.20 of $1.50" in failed.error
    assert len(steps.jobs("runway")) == 2  # the third was never created at the vendor
    assert ledger(steps, f"job:{job_id}")["settled"] == pytest.approx(1.2)


def test_a_daily_budget_fails_what_would_pass_it(make_steps):
    steps = make_steps(only("runway", budgets={"daily_usd": 1.5}))
    ids = submit(steps, 2) + submit(steps, 2)  # two producers' jobs
    steps.run_all()
    failed = [steps.record(i) for i in ids if steps.record(i).state is SceneState.FAILED]
    assert len(failed) == 2 and len(steps.jobs("runway")) == 2
    assert all("daily budget of all backends" in (r.error or "") for r in failed)
    used = ledger(steps, today(steps))
    assert used["reserved"] + used["settled"] <= 1.5


def test_with_on_budget_wait_a_scene_waits_naming_the_budget(make_steps):
    steps = make_steps(only("runway", budgets={"daily_usd": 1.0}, on_budget="wait"))
    first, second = submit(steps, 2)
    steps.pipeline.dispatch_waiting()
    waiting = steps.record(second)
    assert steps.record(first).state is SceneState.ROUTED
    assert waiting.state is SceneState.PENDING
    assert waiting.blocked is not None and "daily budget of all backends" in waiting.blocked
    assert steps.store.r.get(keys.budget_full("all"))  # no dispatch pass tries it for a while
    assert steps.pipeline.dispatch_waiting() == []


def test_a_backend_budget_sends_scenes_to_other_backends(make_steps):
    def change(vg):
        only("runway", "luma")(vg)
        vg["backends"]["runway"]["budget"] = {"daily_usd": 1.0}

    steps = make_steps(change)
    ids = submit(steps, 3, strategy="priority")  # runway first while it has slots and money
    steps.run_all()
    records = [steps.record(i) for i in ids]
    assert all(r.state is SceneState.SUCCEEDED for r in records)
    assert [r.backend for r in records].count("runway") == 1
    assert len(steps.jobs("luma")) == 2


def test_a_price_cap_leaves_dearer_backends_out_or_refuses_the_file(make_steps):
    steps = make_steps()
    ids = submit(steps, 2, max_cost_per_second=0.05)  # pika's 5-s clip is $0.04/s
    assert {steps.record(i).queue for i in ids} == {"pika:5:t:p=0.05"}
    steps.run_all()
    assert {steps.record(i).backend for i in ids} == {"pika"}
    with pytest.raises(SceneValidationError) as refused:
        submit(steps, 1, max_cost_per_second=0.01)
    text = str(refused.value)
    assert "max_cost_per_second" in text and "runway $0.120/s" in text and "pika $0.040/s" in text


def test_cheapest_waits_for_the_cheap_backend_unless_the_deadline_needs_more(make_steps):
    steps = make_steps(only("runway", "pika"))  # pika $0.04/s, runway $0.12/s; 2 + 3 slots
    relaxed = submit(steps, 4, strategy="cheapest")  # no deadline: only pika
    steps.pipeline.dispatch_waiting()
    assert [steps.record(i).backend for i in relaxed[:2]] == ["pika", "pika"]
    assert all(steps.record(i).state is SceneState.PENDING for i in relaxed[2:])
    urgent = submit(steps, 4, strategy="cheapest", deadline=1)  # cannot wait for pika
    steps.pipeline.dispatch_waiting()
    on_runway = [i for i in urgent if steps.record(i).backend == "runway"]
    assert len(on_runway) == 3
    assert "after the deadline" in (steps.record(on_runway[0]).route_reason or "")


def test_a_scene_waiting_on_a_budget_fails_naming_it_after_the_wait_limit(make_steps):
    steps = make_steps(only("runway", budgets={"daily_usd": 1.0}, on_budget="wait"))
    first, second = submit(steps, 2)
    steps.pipeline.dispatch_waiting()
    assert steps.record(second).state is SceneState.PENDING
    steps.clock.advance(steps.pipeline.vg.route_wait_limit - 1)
    steps.pipeline.sweep()
    assert steps.record(second).state is SceneState.PENDING  # still within its wait
    steps.clock.advance(2)
    steps.pipeline.sweep()
    record = steps.record(second)
    assert record.state is SceneState.FAILED
    assert record.error is not None and "daily budget of all backends" in record.error
    assert "gave up after waiting 601 s" in record.error
    assert steps.record(first).state is SceneState.ROUTED  # the one within budget is kept
