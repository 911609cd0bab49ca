"""Prices, ledgers' outcomes and the cheapest strategy (pure)."""

from __future__ import annotations

import pytest

from videogen import spend
from videogen.capabilities import Capabilities, ImageInput, ModeSpec
from videogen.classes import Policy, ScClass, parse_shape, shape_of
from videogen.config import Strategy
from videogen.errors import (
    AmbiguousSubmitError,
    GenerationFailedError,
    InvalidOutputError,
    RejectedInputError,
)
from videogen.fluid import cheapest_fit
from videogen.jobtimes import JobTimes
from videogen.models import Mode, Scene, Size
from videogen.pricing import Pricing, by_resolution, clip_usd, resolution_label, shape_usd
from videogen.scheduler import BackendView, Waiting, plan

HD, FHD = Size(1280, 720), Size(1920, 1080)
TABLE = ModeSpec(durations=(5.0, 10.0), sizes=(HD, FHD), price_table=((5.0, 720, 0.2),))
PER_SECOND = ModeSpec(durations=(5.0,), sizes=(HD,), cost_per_second_usd=0.12)
PER_MPX = ModeSpec(durations=(5.0,), sizes=(HD, FHD), cost_per_megapixel_usd=0.0064)


def test_published_prices_per_second_per_clip_and_per_megapixel():
    assert clip_usd(PER_SECOND, Pricing(), 5.0, HD) == pytest.approx(0.60)
    assert clip_usd(TABLE, Pricing(), 5.0, HD) == pytest.approx(0.20)
    # Luma's formula: $/Mpx x width x height x 24 fps x seconds
    luma = 0.0064 * 1920 * 1080 * 24 * 5 / 1e6
    assert clip_usd(PER_MPX, Pricing(), 5.0, FHD) == pytest.approx(luma, abs=1e-4)


def test_config_overrides_win_and_add_fees_sound_and_input_video():
    flat = Pricing(usd_per_second=0.02, usd_per_clip=0.01)
    assert clip_usd(PER_SECOND, flat, 5.0, HD) == pytest.approx(0.11)
    tiers = Pricing(usd_per_second_by_resolution={"720p": 0.05, "1080p": 0.09})
    assert clip_usd(PER_MPX, tiers, 10.0, FHD) == pytest.approx(0.9)
    assert by_resolution({"720p": 0.05, "1080p": 0.09}, Size(3840, 2160)) == 0.09  # the largest
    extra = Pricing(audio_usd_per_second=0.1, input_video_usd_per_second=0.5)
    assert clip_usd(PER_SECOND, extra, 5.0, HD, audio=True, input_video_seconds=2) == (
        pytest.approx(0.6 + 0.5 + 1.0)
    )
    assert resolution_label(FHD) == "1080p" and resolution_label(Size(3840, 2160)) == "4k"


def test_a_local_gpu_costs_its_hourly_rate_times_the_job_time():
    free = ModeSpec(durations=(4.0,), sizes=(HD,))
    assert clip_usd(free, Pricing(), 4.0, HD, gpu_usd_per_hour=3.6, gpu_seconds=60) == 0.06
    own = Pricing(usd_per_gpu_hour=0.36)
    assert clip_usd(free, own, 4.0, HD, gpu_usd_per_hour=3.6, gpu_seconds=60) == 0.006


def test_a_shape_prices_the_scene_as_the_backend_would_fit_it():
    caps = Capabilities(text=TABLE, image=PER_SECOND, prompt_max_chars=10,
                        image_inputs=frozenset({ImageInput.DATA_URI}))  # fmt: skip
    assert shape_usd(caps, Pricing(), Mode.TEXT_TO_VIDEO, 4.0, None, None) == pytest.approx(0.2)
    assert shape_usd(caps, Pricing(), Mode.IMAGE_TO_VIDEO, 5.0, None, None) == pytest.approx(0.6)
    for scene in (Scene(prompt="x"), Scene(prompt="x", image="a.png", resolution="1920x1080"),
                  Scene(prompt="x", aspect_ratio="9:16")):  # fmt: skip
        mode, size, aspect = parse_shape(shape_of(scene))
        assert mode is (Mode.IMAGE_TO_VIDEO if scene.has_image else Mode.TEXT_TO_VIDEO)
        assert size == scene.requested_size
        assert aspect == (None if aspect is None else pytest.approx(scene.requested_aspect, 1e-3))


@pytest.mark.parametrize(
    ("job_made", "error", "expected"),
    [
        (True, None, spend.Settle.SETTLE),
        (True, InvalidOutputError("x", "bad file"), spend.Settle.SETTLE),  # the vendor made it
        (True, GenerationFailedError("x", "failed"), spend.Settle.RELEASE),
        (False, RejectedInputError("x", "400"), spend.Settle.RELEASE),
        (False, AmbiguousSubmitError("x", "timeout"), spend.Settle.KEEP),
    ],
)
def test_what_a_try_owes_by_how_it_ended(job_made, error, expected):
    assert spend.outcome(job_made=job_made, error=error) is expected


def test_alert_levels_and_policy_tags():
    assert spend.alert_levels(70, 100, 0.8) == []
    assert spend.alert_levels(85, 100, 0.8) == [80]
    assert spend.alert_levels(100, 100, 0.8) == [80, 100]
    policy = Policy(Strategy.CHEAPEST, 1800000100.25, 0.05)  # the deadline to the ms, not
    assert Policy.parse(policy.tag) == policy and Policy.parse("") == Policy()  # the second


# -- the cheapest strategy --------------------------------------------------------------------

SPEC = ModeSpec(durations=(5.0,), sizes=(HD,))
CAPS = Capabilities(text=SPEC, image=None, prompt_max_chars=100)
PRICES = {"cheap": 0.2, "dear": 0.6}


def view(name, capacity=2, in_flight=0):
    return BackendView(name, 1, True, True, False, capacity, in_flight, 0, CAPS)


def cheapest(deadline_at=None, count=10, cheap_busy=0):
    cls = ScClass(("cheap", "dear"), 5.0, "t", Policy(Strategy.CHEAPEST, deadline_at).tag)
    views = [view("cheap", 2, cheap_busy), view("dear", 2)]
    times = JobTimes({"cheap": [(5.0, 10.0)] * 5, "dear": [(5.0, 10.0)] * 5}, {})
    backlog = [Waiting(cls, count, [float(i) for i in range(min(count, 4))])]
    picks = plan(views, backlog, times, Strategy.EARLIEST_FINISH, now=1000.0,
                 prices=lambda b, c: PRICES[b])  # fmt: skip
    return [p.backend for p in picks]


def test_cheapest_fills_the_cheap_backend_and_waits_for_it_without_a_deadline():
    assert cheapest() == ["cheap", "cheap"]
    assert cheapest(cheap_busy=2) == []  # the dear one stays idle: no deadline to meet


def test_cheapest_spills_over_only_when_waiting_would_miss_the_deadline():
    # 10 scenes of 10 s on 2 cheap slots: ~50 s to drain; a deadline in 200 s waits for it
    assert cheapest(deadline_at=1200.0, cheap_busy=2) == []
    assert cheapest(deadline_at=1030.0, cheap_busy=2) == ["dear", "dear"]
    assert cheapest(deadline_at=1030.0) == ["cheap", "cheap", "dear", "dear"]


def test_with_a_deadline_that_can_be_met_cheapest_follows_the_cheapest_plan():
    # scenes of 10 s; by t+45 s each slot can finish 4 whole jobs: 8 on the cheap backend
    assert cheapest(deadline_at=1045.0, count=8) == ["cheap", "cheap"]  # all fit on cheap
    # the dear backend's share (1 and 4 scenes: 1 and 2 jobs a slot, + 2 spare, of 10 s)
    # can wait: it ends in time if started by t+15 or t+5 s
    assert cheapest(deadline_at=1045.0, count=9) == ["cheap", "cheap"]
    assert cheapest(deadline_at=1045.0, count=12) == ["cheap", "cheap"]
    # with less time the dear one starts now: 6 of 12 on cheap (3 a slot by t+35 s)
    assert cheapest(deadline_at=1035.0, count=12) == ["cheap", "cheap", "dear", "dear"]
    assert cheapest(deadline_at=1040.0, count=12) == ["cheap", "cheap", "dear", "dear"]


def test_a_dearer_backend_puts_off_its_share_until_it_must_start():
    # 16 scenes of 10 s, 2 slots each. By t+65 s: 12 cheap, 4 dear (2 jobs a slot, + 2
    # spare = 40 s), so the dear one waits until t+25 s
    assert cheapest(deadline_at=1065.0, count=16) == ["cheap", "cheap"]
    # by t+45 s: 8 cheap, 8 dear (4 jobs a slot, + 2 = 60 s > 45 s): it starts now
    assert cheapest(deadline_at=1045.0, count=16) == ["cheap", "cheap", "dear", "dear"]


def test_the_cheapest_fluid_plan_fills_cheap_room_first_and_says_when_nothing_fits():
    plan = cheapest_fit(
        {"t": 10, "i": 4},
        {"t": ["a", "b"], "i": ["c", "b"]},
        {"a": 5, "b": 20, "c": 2},
        {"t": {"a": 1, "b": 3}, "i": {"c": 0.5, "b": 3}},
    )
    assert plan == ({"t": {"a": 5.0, "b": 5.0}, "i": {"c": 2.0, "b": 2.0}}, True)
    assert cheapest_fit({"t": 10}, {"t": ["a"]}, {"a": 5}, {"t": {"a": 1}}) == (
        {"t": {"a": 5.0}},
        False,  # the deadline cannot be met: 5 of the 10 fit
    )
    # the cheapest plan of the most scenes that fit, and whether that is all of them
    most = cheapest_fit(
        {"t": 10, "i": 4},
        {"t": ["a", "b"], "i": ["b"]},
        {"a": 5, "b": 6},
        {"t": {"a": 1, "b": 3}, "i": {"b": 2}},
    )
    assert most == ({"t": {"a": 5.0, "b": 2.0}, "i": {"b": 4.0}}, False)  # 11 of 14, for $19


def _mixed(t_count, fast=10.0):
    """One job, two classes: ``i`` only ``only`` can take (10 of 10 s, far more than fits by
    the deadline in 25 s); ``t`` on the cheap ``slow`` (30 s jobs: none ends in time) or the
    dear ``fast`` (``fast`` s; both slots busy, the first free in a third of a job)."""
    tag = Policy(Strategy.CHEAPEST, 1025.0).tag
    image = ScClass(("only",), 5.0, "i", tag)
    text = ScClass(("fast", "slow"), 5.0, "t", tag)
    times = JobTimes(
        {"only": [(5.0, 10.0)] * 5, "slow": [(5.0, 30.0)] * 5, "fast": [(5.0, fast)] * 5}, {}
    )
    views = [view("only", 2, 2), view("slow", 2), view("fast", 2, 2)]
    backlog = [Waiting(image, 10, [0.0, 2.0]), Waiting(text, t_count, [1.0, 3.0])]
    prices = {"only": 0.1, "slow": 0.2, "fast": 0.6}
    picks = plan(views, backlog, times, Strategy.EARLIEST_FINISH, now=1000.0,
                 prices=lambda b, c: prices[b])  # fmt: skip
    return [p.backend for p in picks]


def test_a_class_that_cannot_meet_the_deadline_does_not_make_the_others_late():
    # the job's plan cannot be met (the i scenes), yet both t scenes can end in time on
    # fast once its slots free up: the free slow backend, which would end them late, waits
    assert _mixed(2) == []
    # more t scenes than fast can end in time: those left out still wait while fast may end
    # one in time, and are late anyway once it cannot (slow takes them)
    assert _mixed(10) == []
    assert _mixed(2, fast=20.0) == ["slow", "slow"]


def test_past_a_deadline_that_cannot_be_met_no_backend_ends_a_scene_late_while_one_would_not():
    # cheap jobs take 30 s, dear ones 10 s; 10 scenes due in 20 s cannot all be on time
    cls = ScClass(("cheap", "dear"), 5.0, "t", Policy(Strategy.CHEAPEST, 1020.0).tag)
    times = JobTimes({"cheap": [(5.0, 30.0)] * 5, "dear": [(5.0, 10.0)] * 5}, {})
    backlog = [Waiting(cls, 10, [0.0, 1.0, 2.0, 3.0])]
    picks = plan([view("cheap"), view("dear")], backlog, times, Strategy.EARLIEST_FINISH,
                 now=1000.0, prices=lambda b, c: PRICES[b])  # fmt: skip
    # the first two go where they end in time; the rest wait for dear, which ends two more
    # in time once its slots free (cheap would end them all late)
    assert [p.backend for p in picks] == ["dear", "dear"]
    # once dear cannot end any more in time, the rest are late anyway: cheap takes them
    busy = [view("cheap"), view("dear", 2, 2)]
    picks = plan(busy, backlog, times, Strategy.EARLIEST_FINISH, now=1008.0,
                 prices=lambda b, c: PRICES[b])  # fmt: skip
    assert [p.backend for p in picks] == ["cheap", "cheap"]
    # when every backend would end it late, the cheapest still takes it (no worse choice)
    times = JobTimes({"cheap": [(5.0, 30.0)] * 5, "dear": [(5.0, 25.0)] * 5}, {})
    picks = plan([view("cheap"), view("dear")], backlog, times, Strategy.EARLIEST_FINISH,
                 now=1000.0, prices=lambda b, c: PRICES[b])  # fmt: skip
    assert [p.backend for p in picks][:2] == ["cheap", "cheap"]
