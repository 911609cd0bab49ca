"""Budgets on the real stack: many producers at once cannot take spend past a budget, and
each try's reservation is settled, released or kept by how it ended, checked against what the
sandboxes recorded (the vendors' own view of what was made)."""

from __future__ import annotations

import threading
import time

import pytest

from videogen import spend
from videogen.models import SceneState
from videogen.sandbox.assets import png_bytes

from .conftest import BACKENDS, jobs_of

USD_PER_SECOND = 0.10
SCENE_USD = 0.50  # 5 s at $0.10
BUDGET = 10.0  # room for exactly 20 scenes


def priced(**vg_changes):
    def change(vg):
        for name in BACKENDS:
            vg["backends"][name]["pricing"] = {"usd_per_second": USD_PER_SECOND}
        vg.update(vg_changes)

    return change


def wait_terminal(generator, job_ids, timeout=90.0):
    deadline = time.monotonic() + timeout
    while True:
        records = [r for job in job_ids for r in generator.records(job)]
        if all(r.finished for r in records):
            return records
        assert time.monotonic() < deadline, [r.state for r in records if not r.finished]
        time.sleep(0.2)


def test_fifty_scenes_from_five_producers_never_pass_a_daily_budget(make_stack, sandboxes):
    stack = make_stack(priced(budgets={"daily_usd": BUDGET})).start()
    job_ids: list[str] = []
    errors: list[BaseException] = []

    def producer(n: int) -> None:
        try:
            scenes = [{"prompt": f"producer {n} shot {i}", "duration": 5} for i in range(10)]
            job_ids.append(stack.generator().submit(scenes))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=producer, args=(n,)) for n in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(job_ids) == 5
    generator = stack.generator()
    records = wait_terminal(generator, job_ids)

    made = [job for sandbox in sandboxes.values() for job in jobs_of(sandbox)]
    billed = sum(job["duration_s"] * USD_PER_SECOND for job in made if job["state"] == "succeeded")
    assert billed <= BUDGET + 1e-9  # the vendors' own records: never past the budget
    succeeded = [r for r in records if r.state is SceneState.SUCCEEDED]
    failed = [r for r in records if r.state is SceneState.FAILED]
    assert len(succeeded) == 20 and len(made) == 20 and len(failed) == 30
    assert all("daily budget of all backends" in (r.error or "") for r in failed)
    assert all(r.spent == SCENE_USD * 1e6 for r in succeeded)
    day = spend.all_scopes(time.time())["day"]
    book = generator.store.ledgers([day])[day]
    assert book["settled"] == pytest.approx(BUDGET) and book["reserved"] == 0.0
    assert generator.get_statistics()["spend"]["all"]["day"]["used_fraction"] == 1.0


def test_a_failed_job_costs_nothing_and_an_ambiguous_one_keeps_its_reservation(
    make_stack, sandboxes
):
    def change(vg):
        priced(fallback_enabled=False)(vg)
        for name in BACKENDS:
            vg["backends"][name]["enabled"] = name == "runway"
        vg["backends"]["runway"]["request_timeout"] = 1

    stack = make_stack(change).start()
    generator = stack.generator()
    sandboxes["runway"].state.set_knobs(fail_next_jobs=1)
    failed_job = generator.submit([{"prompt": "the vendor fails this one", "duration": 5}])
    (failed,) = wait_terminal(generator, [failed_job])
    assert failed.state is SceneState.FAILED and failed.spent == 0
    assert [j["state"] for j in jobs_of(sandboxes["runway"])] == ["failed"]
    assert generator.store.ledgers(["all"])["all"]["reserved"] == 0.0
    assert generator.store.ledgers(["all"])["all"]["settled"] == 0.0

    sandboxes["runway"].state.set_knobs(create_delay=3)  # the answer never comes in time
    ambiguous_job = generator.submit([{"prompt": "made, but we never heard", "duration": 5}])
    (ambiguous,) = wait_terminal(generator, [ambiguous_job])
    assert ambiguous.state is SceneState.FAILED and ambiguous.held == SCENE_USD * 1e6
    assert len(jobs_of(sandboxes["runway"])) == 2  # the vendor did make it: it may bill it
    book = generator.store.ledgers(["all", f"job:{ambiguous_job}"])
    assert book["all"] == {
        "reserved": SCENE_USD, "settled": 0.0, "held": SCENE_USD, "saved": 0.0
    }  # fmt: skip
    cost = generator.job_forecast(ambiguous_job)["cost"]
    assert cost["held"] == SCENE_USD and cost["reserved"] == SCENE_USD


def test_settling_returns_what_a_local_gpu_did_not_use(make_stack, sandboxes, tmp_path):
    def change(vg):
        for name in BACKENDS:
            vg["backends"][name]["enabled"] = name == "svd"
        vg["backends"]["svd"].update(pricing={"usd_per_gpu_hour": 36.0}, expected_seconds=100)

    stack = make_stack(change).start()
    generator = stack.generator()
    sandboxes["svd"].state.set_knobs(run_seconds=1.5)
    image = tmp_path / "frame.png"
    image.write_bytes(png_bytes())
    job = generator.submit([{"image": str(image), "duration": 4}])
    deadline = time.monotonic() + 30
    while (book := generator.store.ledgers(["all"])["all"])["reserved"] == 0:
        assert time.monotonic() < deadline, "never reserved"
        time.sleep(0.05)
    assert book["reserved"] == pytest.approx(1.0)  # $36/h for the 100 s it expects
    (record,) = wait_terminal(generator, [job])
    assert record.state is SceneState.SUCCEEDED
    book = generator.store.ledgers(["all"])["all"]
    assert book["reserved"] == 0.0 and 0 < book["settled"] < 0.2  # ~2 s of GPU, not 100
    assert record.spent == pytest.approx(book["settled"] * 1e6)
