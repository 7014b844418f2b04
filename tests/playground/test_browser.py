"""The playground in a real browser against a real server: key, jobs with live progress,
uploads, errors next to their fields, cancel, the gallery and a phone-width layout.

Screenshots land in test-artifacts/playground/.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.acceptance.harness import Deployment
from tests.fixtures import LANDSCAPE_PNG, TOO_SMALL_PNG
from tests.playground.conftest import new_page

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.slow

JOB_TIMEOUT_MS = 30_000
BANNER = "Random-weights profile: videos are noise (for tests)"

# Records every value the progress bar takes, so that a test can see it move.
WATCH_PROGRESS = """() => {
  window.progressSeen = [];
  const bar = document.getElementById("progress");
  new MutationObserver(() => window.progressSeen.push(Number(bar.value)))
    .observe(bar, {attributes: true, attributeFilter: ["value"]});
}"""
PLAYER_READY = "() => document.getElementById('player').readyState >= 1"


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def real_errors(errors: list[str]) -> list[str]:
    """Page errors less the browser's own note of each 4xx answer (some are expected)."""
    return [e for e in errors if "the server responded with a status of 4" not in e]


def credits_total(server: Deployment) -> int:
    answer = httpx.get(f"{server.base}/credits", headers=server.headers, timeout=10)
    return int(answer.json()["total"])


def open_with_key(page: Page, server: Deployment) -> None:
    page.goto("/")
    page.get_by_label("Workspace API key").fill(server.key)
    page.get_by_role("button", name="Use key").click()
    expect(page.locator("#credits-total")).to_contain_text(re.compile(r"^\d+ "))


def submit_and_finish(page: Page, status: str = "COMPLETED") -> None:
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#status-text")).to_have_text(status, timeout=JOB_TIMEOUT_MS)


def test_key_credits_banner_and_forget(
    page: Page, server: Deployment, artifacts: Path, page_errors: list[str]
) -> None:
    page.goto("/")
    expect(page.locator("#banner")).to_be_visible()
    expect(page.locator("#banner-title")).to_have_text(BANNER)
    expect(page.locator("#credits-total")).to_have_text("—")

    page.get_by_label("Workspace API key").fill("rs_not_a_key")
    page.get_by_role("button", name="Use key").click()
    key_error = page.locator("#err-api_key")
    expect(key_error).to_be_visible()
    expect(key_error).not_to_be_empty()
    expect(page.locator("#api_key")).to_have_attribute("aria-invalid", "true")

    open_with_key(page, server)
    expect(key_error).to_be_hidden()
    expect(page.locator("#credits-total")).to_contain_text(f"{credits_total(server)} (")
    page.reload()  # the key survives a reload, from localStorage
    expect(page.locator("#api_key")).to_have_value(server.key)
    expect(page.locator("#credits-total")).to_contain_text(f"{credits_total(server)} (")
    page.screenshot(path=artifacts / "key.png")

    page.get_by_role("button", name="Forget key").click()
    expect(page.locator("#credits-total")).to_have_text("—")
    assert page.evaluate("localStorage.getItem('reelserve.apiKey')") is None
    assert real_errors(page_errors) == []


def test_text_job_shows_progress_and_plays(
    page: Page, server: Deployment, artifacts: Path, page_errors: list[str]
) -> None:
    open_with_key(page, server)
    before = credits_total(server)
    page.get_by_label("Prompt (required)").fill("a lighthouse at dusk")
    page.evaluate(WATCH_PROGRESS)
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#status-text")).to_have_text(re.compile("IN_QUEUE|IN_PROGRESS|COMPLETED"))
    expect(page.locator("#status-text")).to_have_text("COMPLETED", timeout=JOB_TIMEOUT_MS)

    seen: list[float] = page.evaluate("window.progressSeen")
    moving = [value for value in seen if 0 < value < 100]
    assert moving, f"the bar never showed progress between 0 and 100: {seen}"
    assert any(b > a for a, b in itertools.pairwise(seen)), seen
    assert seen[-1] == 100

    page.wait_for_function(PLAYER_READY, timeout=15_000)
    duration = page.evaluate("document.getElementById('player').duration")
    assert duration == pytest.approx(5.04, abs=0.1)
    expect(page.locator("#fact-width")).to_have_text("1280")
    expect(page.locator("#fact-height")).to_have_text("720")
    expect(page.locator("#fact-duration")).to_have_text("5.04")
    expect(page.locator("#fact-audio")).to_have_text("yes")
    src = page.locator("#player").get_attribute("src")
    assert src
    assert "/api/v1/files/" in src
    expect(page.get_by_role("link", name="Download MP4")).to_have_attribute("href", src)
    # The signed link needs no key: the browser could fetch it as the video's source.
    assert httpx.get(src, timeout=10).headers["content-type"] == "video/mp4"

    after = credits_total(server)
    assert after == before - 20
    expect(page.locator("#credits-total")).to_contain_text(f"{after} (")
    expect(page.locator("#cancel")).to_be_disabled()
    page.screenshot(path=artifacts / "text-completed.png", full_page=True)
    assert real_errors(page_errors) == []


def test_image_upload_job_completes(
    page: Page, server: Deployment, artifacts: Path, page_errors: list[str]
) -> None:
    open_with_key(page, server)
    page.get_by_label("Image to video").check()
    expect(page.get_by_label("Last frame image")).to_be_hidden()
    page.get_by_label("Start image").set_input_files(LANDSCAPE_PNG)
    expect(page.get_by_role("img", name="Preview of landscape_640x360.png")).to_be_visible()
    page.get_by_label("Prompt (required)").fill("the waves roll in")
    page.get_by_label("9:16").check()
    page.get_by_label("Generate audio").uncheck()
    page.get_by_label("Seed").fill("7")
    submit_and_finish(page)

    page.wait_for_function(PLAYER_READY, timeout=15_000)
    expect(page.locator("#fact-width")).to_have_text("720")
    expect(page.locator("#fact-height")).to_have_text("1280")
    expect(page.locator("#fact-audio")).to_have_text("no")
    gen_id = page.locator("#job-id").inner_text()
    record = httpx.get(f"{server.base}/generation/{gen_id}", headers=server.headers).json()
    assert record["input"]["image_url"].startswith("http")
    assert record["input"]["seed"] == 7
    assert record["input"]["generate_audio"] is False
    page.screenshot(path=artifacts / "image-completed.png", full_page=True)
    assert real_errors(page_errors) == []


def test_server_error_shows_next_to_its_field(
    page: Page, server: Deployment, artifacts: Path, page_errors: list[str]
) -> None:
    open_with_key(page, server)
    page.get_by_label("Image to video").check()
    page.get_by_label("Start image").set_input_files(TOO_SMALL_PNG)
    page.get_by_label("Prompt (required)").fill("too small to start from")
    with page.expect_response(lambda r: "/generation/sse/" in r.url) as answer:
        page.get_by_role("button", name="Generate").click()
    assert answer.value.status == 400
    message = answer.value.json()["message"]
    assert message.startswith("image_url: ")

    field_error = page.locator("#err-image_url")
    expect(field_error).to_be_visible()
    expect(field_error).to_have_text(message)
    expect(page.locator("#image_url")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#image_url")).to_be_focused()
    expect(page.locator("#err-form")).to_be_hidden()
    page.screenshot(path=artifacts / "field-error.png", full_page=True)

    # A message naming no control of the form goes to the top of the form.
    page.get_by_label("Text to video").check()
    page.get_by_label("Prompt (required)").fill("")
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#err-prompt")).to_have_text("prompt: is required")
    expect(page.locator("#err-image_url")).to_be_hidden()
    assert real_errors(page_errors) == []


def test_cancel_a_running_job(
    page: Page, server: Deployment, artifacts: Path, page_errors: list[str]
) -> None:
    open_with_key(page, server)
    before = credits_total(server)
    page.get_by_label("Prompt (required)").fill("to be canceled")
    page.get_by_label("10 s").check()
    page.get_by_role("button", name="Generate").click()
    cancel = page.get_by_role("button", name="Cancel job")
    expect(cancel).to_be_enabled()
    cancel.click()
    expect(page.locator("#status-text")).to_have_text("CANCELED", timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#status-detail")).to_contain_text("released")
    expect(cancel).to_be_disabled()
    expect(page.locator("#result")).to_be_hidden()
    assert credits_total(server) == before
    page.screenshot(path=artifacts / "canceled.png", full_page=True)
    assert real_errors(page_errors) == []


def finished_job(server: Deployment, prompt: str) -> dict[str, Any]:
    created = httpx.post(
        f"{server.base}/generation/kling-ai/kling-v2.6",
        headers=server.headers,
        json={"prompt": prompt, "aspect_ratio": "1:1"},
        timeout=10,
    )
    assert created.status_code == 200, created.text
    return server.wait(created.json()["id"])


def test_gallery_lists_finished_jobs(
    page: Page, server: Deployment, artifacts: Path, page_errors: list[str]
) -> None:
    newest = finished_job(server, "a square gallery clip")
    history = httpx.get(
        f"{server.base}/generations", params={"limit": 12}, headers=server.headers
    ).json()["items"]
    open_with_key(page, server)

    cards = page.locator("#gallery button.card")
    expect(cards).to_have_count(len(history))
    assert [cards.nth(i).get_attribute("data-id") for i in range(len(history))] == [
        item["id"] for item in history
    ]
    completed = sum(item["status"] == "COMPLETED" for item in history)
    expect(page.locator('#gallery video[preload="metadata"]')).to_have_count(completed)
    page.wait_for_function(
        "() => document.querySelector('#gallery video').readyState >= 1", timeout=15_000
    )

    first = cards.first
    expect(first).to_contain_text("a square gallery clip")
    first.focus()
    page.keyboard.press("Enter")  # keyboard-usable, not only clickable
    expect(page.locator("#job-id")).to_have_text(newest["id"])
    expect(page.locator("#status-text")).to_have_text("COMPLETED")
    page.wait_for_function(PLAYER_READY, timeout=15_000)
    expect(page.locator("#fact-width")).to_have_text("960")
    page.screenshot(path=artifacts / "gallery.png", full_page=True)
    assert real_errors(page_errors) == []


def test_phone_width_has_no_horizontal_scroll(
    browser: Browser, server: Deployment, artifacts: Path, page_errors: list[str]
) -> None:
    phone = new_page(browser, server, page_errors, viewport={"width": 375, "height": 800})
    try:
        open_with_key(phone, server)
        phone.get_by_label("Motion control").check()
        expect(phone.get_by_label("Reference video (the motion to copy)")).to_be_visible()
        phone.locator("#gallery button.card").first.click()
        phone.wait_for_function(PLAYER_READY, timeout=15_000)
        overflow = phone.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"the page is {overflow}px wider than a 375px screen"
        form_box = phone.locator(".form-panel").bounding_box()
        job_box = phone.locator(".job-panel").bounding_box()
        assert form_box
        assert job_box
        assert job_box["y"] >= form_box["y"] + form_box["height"]  # one column
        phone.screenshot(path=artifacts / "phone.png", full_page=True)
    finally:
        phone.context.close()
    assert real_errors(page_errors) == []
