"""The scheduler's pure policy: backlog order, learned job times, the dispatch plan, and the
forecasts users see."""

from __future__ import annotations

import pytest

from videogen.capabilities import Capabilities, ImageInput, ModeSpec
from videogen.classes import ScClass, class_of
from videogen.config import Strategy
from videogen.eta import forecast_waiting
from videogen.jobtimes import JobTimes, decode_samples, encode_sample
from videogen.models import Scene, Size
from videogen.scheduler import (
    MAX_PRIORITY,
    MIN_PRIORITY,
    BackendView,
    Waiting,
    plan,
    priority_of,
    rank,
    round_of,
)

SPEC = ModeSpec(durations=(5.0, 10.0), sizes=(Size(width=1280, height=720),))
BOTH = Capabilities(text=SPEC, image=SPEC, prompt_max_chars=100,
                    image_inputs=frozenset({ImageInput.DATA_URI}))  # fmt: skip
IMAGE_ONLY = Capabilities(text=None, image=SPEC, prompt_max_chars=100,
                          image_inputs=frozenset({ImageInput.UPLOAD}))  # fmt: skip
TEXT = ScClass(("fast", "slow"), 5.0)


def view(name, capacity=2, in_flight=0, queued=0, priority=1, **kw):
    defaults = {"enabled": True, "healthy": True, "circuit_open": False}
    return BackendView(name, priority, capacity=capacity, in_flight=in_flight, queued=queued,
                       caps=BOTH, **(defaults | kw))  # fmt: skip


def times(**seconds: float) -> JobTimes:
    return JobTimes({name: [(5.0, s)] * 5 for name, s in seconds.items()}, {})


def waiting(cls: ScClass, count: int, first: float = 0) -> Waiting:
    return Waiting(cls, count, [first + i for i in range(min(count, 20))])


# -- order ----------------------------------------------------------------------------------


def test_rank_orders_by_priority_then_round_then_job():
    assert rank(5, 1000, 1) < rank(0, 0, 0)  # higher priority first, whatever its round
    assert rank(0, 3, 99) < rank(0, 4, 1)  # then rounds
    assert rank(0, 3, 1) < rank(0, 3, 2)  # then jobs in submit order
    score = rank(-7, 123_456, 42)
    assert (priority_of(score), round_of(score)) == (-7, 123_456)
    assert float(rank(MIN_PRIORITY, 2**31 - 1, 2**14 - 1)) < 2**53  # exact as a Redis score
    assert rank(MAX_PRIORITY, 0, 0) == 0


def test_rank_refuses_a_priority_out_of_range():
    with pytest.raises(
        ValueError, match="priority 101 is outside -100..100 \\(higher goes first\\)"
    ):
        rank(101, 0, 0)


def test_a_scene_class_is_its_capable_untried_backends_and_its_duration():
    caps = {"svd": IMAGE_ONLY, "runway": BOTH, "luma": BOTH}
    assert class_of(Scene(prompt="x"), caps) == ScClass(("luma", "runway"), 5.0, "t")
    image = Scene(prompt="x", image="f.png", duration=10)
    assert class_of(image, caps, frozenset({"luma"})) == ScClass(("runway", "svd"), 10.0, "i")
    assert class_of(Scene(prompt="x"), {"svd": IMAGE_ONLY}) is None
    assert ScClass.parse(ScClass(("a", "b"), 7.5).name) == ScClass(("a", "b"), 7.5)
    full = ScClass(("a", "b"), 5.0, "i1920x1080", "s=cheapest;d=1800000100")
    assert ScClass.parse(full.name) == full


# -- learned job times ------------------------------------------------------------------------


def test_job_times_are_the_median_of_the_latest_jobs_of_that_duration():
    learned = JobTimes({"a": [(5.0, 10.0), (5.0, 11.0), (5.0, 300.0), (5.0, 9.0)]}, {})
    assert learned.seconds("a", 5.0) == 10.5  # one outlier moves nothing much
    assert learned.learned("a") == 4


def test_a_backend_that_slows_down_is_seen_within_three_jobs():
    history = [(5.0, 1.0)] * 10
    for n in range(1, 4):
        slowed = JobTimes({"a": [(5.0, 4.0)] * n + history}, {})
        assert slowed.seconds("a", 5.0) == (4.0 if n == 3 else 1.0)


def test_a_slots_cycle_is_its_job_time_and_the_median_dispatch_lag():
    times = JobTimes({"a": [(5.0, 2.0)] * 3}, {"b": 4.0}, [0.05, 0.02, 0.9, 0.03])
    assert times.lag == pytest.approx(0.04)  # the median: one slow step moves nothing much
    assert times.cycle("a", 5.0) == pytest.approx(2.04)
    assert times.cycle("b", 5.0) == pytest.approx(4.04)  # a seeded backend waits as long
    assert JobTimes({}, {"a": 1.0}).cycle("a", 5.0) == 1.0  # no lag learned yet: none counted


def test_other_durations_scale_and_no_data_means_the_seed():
    learned = JobTimes({"a": [(5.0, 10.0)] * 3}, {"a": 99.0, "b": 42.0})
    assert learned.seconds("a", 10.0) == 20.0
    assert learned.seconds("b", 5.0) == 42.0
    assert decode_samples([encode_sample(5, 1.25)]) == [(5.0, 1.25)]


# -- the plan ---------------------------------------------------------------------------------


def test_every_free_slot_is_filled_in_backlog_order_when_the_backlog_is_long():
    picks = plan(
        [view("fast", 3), view("slow", 2)],
        [waiting(TEXT, 100)],
        times(fast=1.0, slow=3.0),
        Strategy.EARLIEST_FINISH,
    )
    assert [p.backend for p in picks] == ["fast"] * 3 + ["slow"] * 2


def test_a_slow_backend_takes_nothing_when_the_fast_ones_finish_sooner():
    # 3 waiting: fast (3 slots, busy) starts them within ~1 s and finishes in 1 s each;
    # on slow they would take 10 s.
    picks = plan(
        [view("fast", 3, in_flight=3), view("slow", 2)],
        [waiting(TEXT, 3)],
        times(fast=1.0, slow=10.0),
        Strategy.EARLIEST_FINISH,
    )
    assert picks == []


def test_the_slow_backend_stops_at_the_point_where_it_would_finish_last():
    # fast: 3 slots of 1 s = 3 scenes/s. Slow takes 4 s: worth it while the others need
    # more than 3 s for their backlog: (waiting + 1.5 busy) / 3 per s > 3, i.e. 8 or more.
    def slow_takes(count: int) -> int:
        picks = plan(
            [view("fast", 3, in_flight=3), view("slow", 1)],
            [waiting(TEXT, count)],
            times(fast=1.0, slow=4.0),
            Strategy.EARLIEST_FINISH,
        )
        return sum(p.backend == "slow" for p in picks)

    assert [slow_takes(n) for n in (4, 7, 8, 40)] == [0, 0, 1, 1]


def test_a_scene_only_a_slow_backend_can_take_goes_there():
    only_slow = ScClass(("slow",), 5.0)
    picks = plan(
        [view("fast", 3), view("slow", 1)],
        [waiting(only_slow, 1)],
        times(fast=1.0, slow=50.0),
        Strategy.EARLIEST_FINISH,
    )
    assert [(p.backend, p.cls) for p in picks] == [("slow", only_slow)]
    assert "no other backend" in picks[0].reason


def test_classes_are_served_by_score_across_the_backlog():
    images = ScClass(("fast", "slow", "svd"), 5.0)
    picks = plan(
        [view("fast", 2), view("svd", 1)],
        [Waiting(TEXT, 2, [1.0, 3.0]), Waiting(images, 2, [2.0, 4.0])],
        times(fast=1.0, svd=1.0),
        Strategy.EARLIEST_FINISH,
    )
    # text 1.0 -> fast; image 2.0 -> fast or svd (equal); text 3.0 -> fast if free...
    assert len(picks) == 3 and [p.cls for p in picks][:2] == [TEXT, images]
    assert sum(p.backend == "svd" for p in picks) == 1


def test_unavailable_backends_take_nothing():
    picks = plan(
        [view("fast", 3, healthy=False), view("slow", 2, circuit_open=True)],
        [waiting(TEXT, 10)],
        times(fast=1.0, slow=1.0),
        Strategy.EARLIEST_FINISH,
    )
    assert picks == []


def test_priority_spills_over_only_when_the_better_backend_is_full():
    views = [view("fast", 1, priority=1), view("slow", 2, priority=2)]
    picks = plan(views, [waiting(TEXT, 2)], times(), Strategy.PRIORITY)
    assert [p.backend for p in picks] == ["fast", "slow"]


def test_round_robin_takes_turns_from_the_counter():
    views = [view("fast", 5, priority=1), view("slow", 5, priority=2)]
    picks = plan(views, [waiting(TEXT, 4)], times(), Strategy.ROUND_ROBIN, turn=1)
    assert [p.backend for p in picks] == ["slow", "fast", "slow", "fast"]


def test_least_loaded_is_the_earliest_finish_strategy():
    args = ([view("fast", 3, in_flight=3), view("slow", 2)], [waiting(TEXT, 3)])
    t = times(fast=1.0, slow=10.0)
    assert plan(*args, t, Strategy.LEAST_LOADED) == plan(*args, t, Strategy.EARLIEST_FINISH)


# -- forecasts --------------------------------------------------------------------------------


def test_a_waiting_scene_is_told_its_place_and_when_it_starts_and_finishes():
    views = [view("fast", 2, in_flight=2), view("slow", 2, in_flight=2)]
    t = times(fast=1.0, slow=1.0)
    first = forecast_waiting(TEXT, {}, views, t, now=100.0)
    later = forecast_waiting(TEXT, {TEXT: 40}, views, t, now=100.0)
    assert (first.place, later.place) == (1, 41)
    assert first.start is not None and later.start is not None and later.finish is not None
    assert 100.0 <= first.start < later.start
    assert later.start == pytest.approx(100.0 + (40 + 2) / 4)  # ahead + half the busy, 4/s
    assert later.finish == pytest.approx(later.start + 1.0)


def test_a_scene_whose_backends_are_all_down_has_no_forecast():
    views = [view("fast", 2, healthy=False), view("slow", 2, enabled=False)]
    assert forecast_waiting(TEXT, {}, views, times(), now=0.0).start is None
