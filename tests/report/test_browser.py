"""report.html in real headless Chromium at phone and desktop width: renders, fits, and fetches nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.report._cdp import Browser, chromium_binary
from tests.report.test_html import PLOTS, SECTIONS

pytestmark = pytest.mark.skipif(chromium_binary() is None,
                                reason="Debian 'chromium' is not installed (CI installs it in .ci/run)")

PROBE = """JSON.stringify({
  sections: [...document.querySelectorAll('section')].map(s => s.id),
  images: [...document.images].map(i => ({ok: i.complete && i.naturalWidth > 0,
                                          width: i.getBoundingClientRect().width})),
  overflow: document.documentElement.scrollWidth - window.innerWidth,
  innerWidth: window.innerWidth,
  cards: document.querySelectorAll('.card').length,
  resources: performance.getEntriesByType('resource').map(r => r.name),
})"""
VIEWS = {"phone": (412, 915, True), "desktop": (1280, 900, False)}


@pytest.fixture(scope="module")
def rendered(tiny_run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("browser")
    url = (tiny_run_dir / "report.html").resolve().as_uri()
    browser = Browser(str(chromium_binary()), out / "profile", out / "net.json")
    views: dict[str, Any] = {"url": url, "net_log": out / "net.json"}
    try:
        for label, (width, height, mobile) in VIEWS.items():
            session = browser.open(url, width, height, mobile)
            shot = out / f"{label}.png"
            browser.screenshot(session, shot)
            views[label] = {"probe": json.loads(browser.evaluate(session, PROBE)), "shot": shot,
                            "requests": browser.requests(session)}
    finally:
        browser.close()
    return views


@pytest.mark.parametrize("view", list(VIEWS))
def test_report_renders_every_section_and_image(rendered: dict[str, Any], view: str) -> None:
    probe = rendered[view]["probe"]
    assert probe["sections"] == SECTIONS
    assert len(probe["images"]) == sum(PLOTS.values()) and all(i["ok"] for i in probe["images"])
    assert probe["cards"] == 4
    # nothing wider than the screen: at phone width only the tables scroll, inside their own boxes
    assert probe["overflow"] <= 0
    assert all(0 < i["width"] <= probe["innerWidth"] for i in probe["images"])
    with Image.open(rendered[view]["shot"]) as shot:
        assert shot.width == VIEWS[view][0] and shot.height > 2 * VIEWS[view][1]
        assert len(shot.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 50  # not a blank page


@pytest.mark.parametrize("view", list(VIEWS))
def test_the_page_makes_no_request_but_its_own(rendered: dict[str, Any], view: str) -> None:
    requests = rendered[view]["requests"]
    assert requests[0] == rendered["url"]
    # the inline images show up as data: "requests"; they never touch the network
    assert all(url.startswith("data:image/png;base64,") for url in requests[1:]), [u[:60] for u in requests]
    assert len(requests) == 1 + sum(PLOTS.values())
    assert rendered[view]["probe"]["resources"] == []


def test_net_log_shows_no_request_from_the_page(rendered: dict[str, Any]) -> None:
    log = json.loads(Path(rendered["net_log"]).read_text())
    names = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    started = [e["params"] for e in log["events"]
               if names.get(e["type"]) == "URL_REQUEST_START_JOB" and "url" in e.get("params", {})]
    # Chromium's own background jobs are marked "not an origin"; anything the page asked for carries its origin
    from_page = [p["url"] for p in started if p.get("initiator") != "not an origin"]
    assert all(url.split(":", 1)[0] in ("file", "data", "about") for url in from_page), from_page
