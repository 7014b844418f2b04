"""A real browser (Debian's Chromium driven by Playwright) against a real ``reelserve
serve`` process.

The server runs the ``fake`` profile: its engine stands in for a GPU model (none can run
in tests), drawing a short gradient clip in 20 timed steps of 0.1 s, so that queueing,
progress, cancel and results are all visible in the page within seconds.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.acceptance.harness import Deployment

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "playground"


def browser_problem() -> str | None:
    """None when a browser can be driven here, else why not."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is missing (pip install playwright)"
    return None


# Module scope, not session: Playwright's sync API keeps an asyncio loop running on this
# thread while it is open, and asyncio.run() in later test modules would refuse to start.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    problem = browser_problem()
    if problem:
        if os.environ.get("REELSERVE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{problem} (REELSERVE_REQUIRE_BROWSER=1: browser tests must not skip)")
        pytest.skip(f"browser tests need Chromium and Playwright: {problem}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("playground")
    deployment = Deployment(
        root=root,
        env={
            "REELSERVE_DATA_DIR": str(root / "data"),
            "REELSERVE_PROFILE": "fake",
            "REELSERVE_FAKE_STEPS": "20",
            "REELSERVE_FAKE_STEP_S": "0.1",
            "REELSERVE_WORKER_POLL_S": "0.2",
        },
    )
    try:
        deployment.start_server()
        assert deployment.key, "serve printed no API key on its first start"
        yield deployment
    finally:
        deployment.stop_all()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def page_errors() -> list[str]:
    """Console errors and uncaught exceptions of the page; a test ends with none."""
    return []


def new_page(browser: Browser, server: Deployment, errors: list[str], **context: Any) -> Page:
    ctx = browser.new_context(base_url=f"http://127.0.0.1:{server.port}", **context)
    page = ctx.new_page()
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on(
        "console",
        lambda message: (
            errors.append(f"console: {message.text}") if message.type == "error" else None
        ),
    )
    return page


@pytest.fixture
def page(browser: Browser, server: Deployment, page_errors: list[str]) -> Iterator[Page]:
    the_page = new_page(browser, server, page_errors, viewport={"width": 1280, "height": 1000})
    yield the_page
    the_page.context.close()
