"""The web dashboard in a real headless Chromium (Debian's ``chromium``, driven by Playwright),
served by `videogen api` in front of real workers and sandboxes.

One visit, as a user makes it: log in, submit a scene file through the page, watch the scenes
reach succeeded without a reload, play a video, cancel a waiting scene, and see a backend's
outage appear on the backends page. A screenshot of each page is saved under
``var/screenshots`` (or ``$VIDEOGEN_SCREENSHOTS``).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.pipeline.conftest import REPO
from tests.pipeline.test_http_api import FULL, READ, _serve, _with_tokens

SHOTS = Path(os.environ.get("VIDEOGEN_SCREENSHOTS") or REPO / "var" / "screenshots")
LIVE_WAIT_MS = 30_000


def chromium_path() -> str:
    """Debian's chromium; ``./scripts/test`` installs it when it is missing."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "Debian's chromium is not installed: run ./scripts/test, which installs it"
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path(),
            args=["--no-sandbox", "--disable-dev-shm-usage"],  # root in CI containers
        )
        try:
            yield launched
        finally:
            launched.close()


def shoot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def log_in(page: Page, base: str, token: str) -> None:
    page.goto(f"{base}/jobs")
    expect(page).to_have_url(f"{base}/login?next=/jobs")
    shoot(page, "login")
    page.get_by_label("API token").fill(token[:-1] + "x")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base}/jobs")


def submit_file(page: Page, base: str, path: Path) -> str:
    page.goto(f"{base}/submit")
    shoot(page, "submit")
    page.get_by_label("Scene file").set_input_files(str(path))
    page.get_by_role("button", name="Submit", exact=True).click()
    page.wait_for_url(f"{base}/jobs/*")
    return page.url.rsplit("/", 1)[1]


def test_a_user_logs_in_submits_watches_plays_cancels_and_sees_an_outage(
    make_stack, sandboxes, browser, tmp_path
):
    stack = make_stack(_with_tokens).start()
    api = _serve(stack)
    base = str(api.base_url).rstrip("/").removesuffix("/v1")
    generator = stack.generator()
    page = browser.new_page(viewport={"width": 1400, "height": 900})

    log_in(page, base, FULL)

    # a bad scene file: the page names the scene and field, and nothing is enqueued
    jobs_before = generator.store.recent_jobs()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"prompt": "ok"}, {"prompt": "x", "duration": -2}]))
    page.goto(f"{base}/submit")
    page.get_by_label("Scene file").set_input_files(str(bad))
    page.get_by_role("button", name="Submit", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("scene 2")
    expect(page.get_by_role("alert")).to_contain_text("duration")
    assert generator.store.recent_jobs() == jobs_before

    # submit three scenes and watch them succeed without a reload
    for server in sandboxes.values():
        server.state.set_knobs(run_seconds=1.0)
    scenes = tmp_path / "scenes.json"
    scenes.write_text(json.dumps({"scenes": [
        {"prompt": "a lighthouse at dusk", "duration": 2},
        {"prompt": "waves on the rocks", "duration": 2},
        {"prompt": "gulls over the sea", "duration": 2},
    ]}))  # fmt: skip
    job_id = submit_file(page, base, scenes)
    assert generator.store.recent_jobs()[0] == job_id
    page.evaluate("window.__notReloaded = true")
    rows = page.locator("#scenes tbody tr")
    expect(rows).to_have_count(3)
    expect(page.locator("#progress-text")).to_have_text(
        "3 of 3 scenes finished", timeout=LIVE_WAIT_MS
    )
    expect(page.locator('#scenes tr[data-state="succeeded"]')).to_have_count(3)
    assert page.evaluate("window.__notReloaded === true")  # live, not reloaded
    assert {r.state.value for r in generator.records(job_id)} == {"succeeded"}

    # play a video: the element loads it and reports its duration
    duration = page.locator("video").first.evaluate(
        """async (video) => {
            video.muted = true;
            await video.play();
            return video.duration;
        }"""
    )
    assert duration > 0
    shoot(page, "job")

    # a long job: cancel one scene that is still waiting in the backlog
    for server in sandboxes.values():
        server.state.set_knobs(run_seconds=6.0)
    many = tmp_path / "many.json"
    many.write_text(json.dumps([{"prompt": f"shot {i}", "duration": 2} for i in range(14)]))
    long_job = submit_file(page, base, many)
    pending = page.locator('#scenes tr[data-state="pending"]')
    expect(pending.first).to_be_visible(timeout=LIVE_WAIT_MS)
    victim = pending.last.get_attribute("data-scene")
    page.locator(f'tr[data-scene="{victim}"]').get_by_role("button", name="Cancel").click()
    expect(page.locator(f'tr[data-scene="{victim}"]')).to_have_attribute("data-state", "cancelled")
    record = next(r for r in generator.records(long_job) if r.id == victim)
    assert record.state.value == "cancelled" and record.vendor_job is None
    shoot(page, "job-cancelled")
    page.get_by_role("button", name="Cancel the waiting scenes").click()
    expect(page.locator("#summary")).to_have_attribute(
        "data-finished", "true", timeout=LIVE_WAIT_MS
    )

    # the jobs list shows both jobs
    page.goto(f"{base}/jobs")
    expect(page.locator("#jobs")).to_contain_text(job_id)
    expect(page.locator("#jobs")).to_contain_text(long_job)
    shoot(page, "jobs")

    # an outage shows on the backends page while it is open
    for server in sandboxes.values():
        server.state.set_knobs(run_seconds=0.3)
    page.goto(f"{base}/backends")
    luma = page.locator("#backend-luma")
    expect(luma).to_have_attribute("data-healthy", "true", timeout=LIVE_WAIT_MS)
    page.evaluate("window.__notReloaded = true")
    sandboxes["luma"].state.set_knobs(outage=True)
    try:
        expect(luma).to_have_attribute("data-healthy", "false", timeout=LIVE_WAIT_MS)
        assert page.evaluate("window.__notReloaded === true")
        expect(luma).to_contain_text("down")
        shoot(page, "backends")
    finally:
        sandboxes["luma"].state.set_knobs(outage=False)
    api.close()


def test_a_read_token_sees_but_cannot_change(make_stack, browser, tmp_path):
    stack = make_stack(_with_tokens).start()
    api = _serve(stack)
    base = str(api.base_url).rstrip("/").removesuffix("/v1")
    page = browser.new_page()
    log_in(page, base, READ)
    scenes = tmp_path / "one.json"
    scenes.write_text(json.dumps([{"prompt": "a quiet street"}]))
    page.goto(f"{base}/submit")
    page.get_by_label("Scene file").set_input_files(str(scenes))
    before = stack.generator().store.recent_jobs()
    page.get_by_role("button", name="Submit", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("read-only")
    assert stack.generator().store.recent_jobs() == before
    html = page.content()
    assert READ not in html and FULL not in html  # the token never reaches a page
    cookie = next(c for c in page.context.cookies() if c["name"] == "videogen_token")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    api.close()
