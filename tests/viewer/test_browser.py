"""The viewer in a real headless browser (Debian's chromium, driven over CDP on a pipe)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentd.testing.export_runs import actor_run
from agentd.testing.fake_vllm import FakeVLLM
from agentd.viewer.site import build_site

from .cdp import Browser

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    b = Browser(tmp_path / "chromium-profile")
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
async def site(tmp_project: Path, tmp_path: Path) -> Path:
    with FakeVLLM(model="qwen3-14b-awq") as fake:
        run = await actor_run(tmp_project, fake, run_id="browse")
    return build_site([run], tmp_path / "site", "browse", page_size=2).out


class TestInBrowser:
    def test_episode_page_shows_the_diff(self, site: Path, browser: Browser,
                                         tmp_path: Path) -> None:
        """An accepted episode's first step opens from the address, its diff is on screen
        with added and removed lines, and the screenshot is a real image."""
        page = next(p for p in sorted((site / "episode").iterdir())
                    if "accepted</span>" in p.read_text())
        browser.navigate(f"{page.as_uri()}#step-0")
        assert browser.wait_for("document.getElementById('step-0').open")
        visible = browser.evaluate(
            "[...document.querySelectorAll('#step-0 .diff .add, #step-0 .diff .del')]"
            ".filter(e => { const r = e.getBoundingClientRect();"
            " return r.top >= 0 && r.bottom <= innerHeight && r.width > 0; }).length")
        assert visible >= 2
        png = browser.screenshot()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
        (tmp_path / "episode.png").write_bytes(png)
        if target := os.environ.get("AGENTD_VIEWER_SCREENSHOT"):
            Path(target).write_bytes(png)  # how docs/viewer-episode.png is made

    def test_click_from_the_run_to_a_step(self, site: Path, browser: Browser) -> None:
        """Real mouse clicks: run → tasks → a task → an episode → its step 1, which opens;
        nothing the pages load leaves file:// (no network, no CDN)."""
        browser.navigate((site / "index.html").as_uri())
        for selector, lands_on in (("a[href='tasks/page-0001.html']", "/tasks/page-0001.html"),
                                   ("a[href^='../task/']", "/task/"),
                                   ("a[href^='../episode/']", "/episode/e"),
                                   ("nav.steps a[href='#step-1']", "#step-1")):
            browser.click(selector)
            browser.wait_for(f"location.href.includes({lands_on!r}) && "
                             "document.readyState === 'complete'")
        assert browser.wait_for("document.getElementById('step-1').open")
        assert browser.evaluate("document.querySelector('#step-1 summary').textContent"
                                ).startswith("step 1")
        urls = browser.requested_urls()
        assert urls and all(u.startswith("file://") for u in urls), urls

    def test_task_page_filters_its_episodes(self, site: Path, browser: Browser) -> None:
        """The failed filter hides the accepted episode's row and shows the failed one."""
        task = sorted((site / "task").iterdir())[0]
        browser.navigate(task.as_uri())
        rows = "[...document.querySelectorAll('tr[data-tags]')]"
        assert browser.evaluate(f"{rows}.length") == 2
        browser.click("a[data-filter='failed']")
        browser.wait_for(f"{rows}.filter(r => r.classList.contains('hidden')).length === 1")
        shown = browser.evaluate(f"{rows}.filter(r => !r.classList.contains('hidden'))"
                                 ".map(r => r.dataset.tags)")
        assert len(shown) == 1 and shown[0].startswith("failed")
