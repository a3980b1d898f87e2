"""The dashboard in Debian's headless Chromium (driven over the DevTools protocol, browser.py)
against a real `serve` on SQLite, seeded relative to now: two versions on two platforms, three
installs, a two-day gap, errors of a known type, and one command name that is HTML.

Every number on the cards and in the commands table equals the API's answer; a filter (a click
in the commands table, the version select) updates every panel and the URL, and the URL restores
them; the HTML name is text; a wrong key brings the prompt back; the gap shows; an answer that
arrives after the filters changed is dropped; a failing call shows its error in its panel; and no
page has a JavaScript or console error. Screenshots: the test's tmp dir, copies in
/tmp/dashboard-shots."""

from __future__ import annotations

import base64
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import msgspec
import pytest
import requests

from branchpy_telemetry.backend.sinks.sqlite import LocalSQLiteSink
from branchpy_telemetry.client.contracts.schema import Platform
from branchpy_telemetry.client.contracts.timewindow import utcnow

from ..polling import wait_until
from .browser import Browser
from .conftest import governance_id_for, make_event, make_package
from .live_backend import start_sqlite_backend

pytestmark = pytest.mark.browser
XSS = "<img src=x onerror=alert(1)>"
SHOTS = Path("/tmp/dashboard-shots")
PANELS = ("p-cards", "p-timeline", "p-commands", "p-slo", "p-features", "p-errors", "p-versions",
          "p-platform", "p-sessions", "p-events")


def package(seed: int, start: datetime, hours: float, step_min: float, version: str, os_name: str,
            python: str, install: int):
    n = int(hours * 60 / step_min)
    p = make_package(n, seed=seed, start=start, step=timedelta(minutes=step_min), sessions=5,
                     branchpy_version=version, os_name=os_name, governance_id=governance_id_for(install))
    errors = [msgspec.structs.replace(e, error_type="ValueError" if e.error_code == "BP-E1000" else None)
              for e in p.errors]
    platform = Platform(os=os_name, arch="x86_64", python=python)
    return msgspec.structs.replace(p, errors=errors, platform=platform)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Data from 6 days ago to 4 days ago, nothing for two days, then up to an hour ago."""
    tmp = tmp_path_factory.mktemp("dashboard")
    now = utcnow()
    # A name no catalog of ours may declare (catalog names are [a-z0-9._-]): stored the way a server
    # with another catalog would have stored it, straight into the database the server then serves.
    sink = LocalSQLiteSink(tmp / "events.db")
    sink.store_package(make_package(events=[make_event(i, seed=99, name=XSS, category="command",
                                                       start=now - timedelta(hours=3)) for i in range(12)],
                                    governance_id=governance_id_for(9)),
                       receipt="sha256:" + "0" * 64, body_bytes=1, received_at=now - timedelta(hours=2))
    sink.close()
    backend = start_sqlite_backend(tmp, slo_p95_targets="analyze=400,lint=150")
    for p in (package(1, now - timedelta(days=6), 48, 10, "1.4.0", "linux", "3.11.2", 1),
              package(2, now - timedelta(days=2), 47, 6, "1.5.0", "darwin", "3.12.1", 2),
              package(3, now - timedelta(hours=30), 29, 8, "1.5.0", "linux", "3.11.2", 3)):
        response = requests.post(backend.api + "/upload", data=msgspec.json.encode(p), timeout=30,
                                 headers={**backend.headers("ingest"), "Content-Type": "application/json"})
        assert response.status_code == 201, response.text
    backend.now = now
    yield backend
    backend.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = Browser(tmp_path_factory.mktemp("chromium") / "profile")
    b.open_page()
    yield b
    b.close()


@pytest.fixture
def page(browser, server, tmp_path, request):
    """Opens the dashboard; after the test: a screenshot, and no JavaScript or console error."""
    def open_(query: str = "", key: str | None = server.keys["read"]):
        if browser.js("location.protocol") == "http:":
            browser.js("sessionStorage.clear()")  # a fresh session: the key only from this URL
        browser.goto("about:blank")  # a full load, not a jump to a fragment of the same page
        browser.wait_for("location.href === 'about:blank'")
        browser.goto(f"{server.url}/dashboard{query}" + (f"#key={key}" if key else ""))
        browser.wait_for("document.readyState === 'complete'")
        if key == server.keys["read"]:
            wait_ready(browser)
        return browser

    yield open_
    shot = browser.screenshot(tmp_path / f"{request.node.name}.png")
    SHOTS.mkdir(exist_ok=True)
    shutil.copy(shot, SHOTS / shot.name)
    assert browser.problems(allow_status=getattr(request.node, "allowed_status", ())) == []


def choose(b, select: str, value: str) -> None:
    """Pick `value` in a filter select, as a person would (the change event)."""
    b.js(f"{{ const s = document.getElementById('f-{select}'); s.value = '{value}'; "
         "s.dispatchEvent(new Event('change')); }")


def wait_ready(b, after: int = 0) -> int:
    b.wait_for("document.body.dataset.state === 'ready' && "
               f"Number(document.body.dataset.generation) > {after}", what="the dashboard to be ready")
    return int(b.js("document.body.dataset.generation"))


def api(server, path: str, **params):
    response = requests.get(server.api + path, params=params, headers=server.headers("read"), timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def ms(x) -> str:
    """The page's duration format (format.js)."""
    if x is None:
        return "–"
    if x < 10:
        return f"{x:.1f} ms"
    if x < 1000:
        return f"{round(x)} ms"
    return f"{x / 1000:.2f} s" if x < 10000 else f"{x / 1000:.1f} s"


def cards(b) -> dict:
    return b.js("Object.fromEntries([...document.querySelectorAll('#p-cards .value')].map("
                "n => [n.id.slice(5), [n.dataset.value, n.textContent]]))")


def command_rows(b) -> list:
    return b.js("[...document.querySelectorAll('#p-commands tbody tr')].map(tr => ({name: tr.dataset.name, "
                "cells: [...tr.cells].slice(1).map(td => [td.dataset.value, td.textContent])}))")


def assert_cards_equal(b, stats) -> None:
    shown = cards(b)
    for field in ("events", "errors", "sessions", "installs", "packages"):
        assert shown[field] == [str(stats[field]), f"{stats[field]:,}"], field
    assert shown["last-upload"][0] == (stats["last_upload"] or "")


def test_the_page_and_its_icon_need_no_key(server):
    response = requests.get(server.url + "/dashboard", timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert 'type="module"' in response.text and "/static/dashboard.js" in response.text
    for asset in ("/static/dashboard.js", "/static/dashboard.css", "/static/dash/panels.js", "/favicon.ico"):
        assert requests.get(server.url + asset, timeout=10).status_code == 200, asset
    icon = requests.get(server.url + "/favicon.ico", timeout=10)
    assert icon.headers["Content-Type"].startswith("image/svg+xml") and icon.content.startswith(b"<svg")


def test_every_number_on_the_cards_and_in_the_commands_table_is_the_apis(page, server):
    b = page()
    assert_cards_equal(b, api(server, "/stats", **{"from": "7d"}))
    report = api(server, "/aggregate/name", **{"from": "7d"})
    expected = [it for it in report["items"] if it["category"] == "command"]
    rows = command_rows(b)
    assert [r["name"] for r in rows] == [it["name"] for it in expected] and len(rows) >= 5
    for row, it in zip(rows, expected, strict=True):
        count, _, rate, _, p50, p95, _, top = row["cells"]
        assert count == [str(it["count"]), f"{it['count']:,}"]
        assert float(rate[0]) == it["error_rate"] and rate[1] == f"{it['error_rate'] * 100:.1f} %"
        for cell, value in ((p50, it["p50_ms"]), (p95, it["p95_ms"]), (top, it["max_ms"])):
            assert float(cell[0]) == value and cell[1] == ms(value)
    descriptions = b.js("[...document.querySelectorAll('#p-commands .desc')].map(n => n.textContent)")
    assert "A full analysis of the open project: how many files, which mode, whether JSON output was asked " \
           "for." in descriptions
    assert server.keys["read"] not in b.js("document.documentElement.outerHTML + location.href")


def test_clicking_a_command_filters_every_panel_and_the_url_keeps_the_filters(page, server):
    b = page()
    generation = int(b.js("document.body.dataset.generation"))
    b.js("document.querySelector('#p-commands tr[data-name=\"lint\"]').click()")
    generation = wait_ready(b, generation)
    assert parse_qs(urlsplit(b.js("location.href")).query) == {"name": ["lint"]}
    assert b.js(f"[{', '.join(repr(p) for p in PANELS)}].every(id => "
                f"document.getElementById(id).dataset.generation === '{generation}')")
    assert_cards_equal(b, api(server, "/stats", **{"from": "7d", "name": "lint"}))
    assert [r["name"] for r in command_rows(b)] == ["lint"]
    timeline = api(server, "/aggregate/timeline", **{"from": "7d", "name": "lint", "bucket": "hour"})
    assert b.js("[...document.querySelectorAll('#p-timeline rect.bar')].reduce((s, r) => s + "
                "Number(r.dataset.count), 0)") == sum(r["count"] for r in timeline)
    events = api(server, "/events", **{"from": "7d", "name": "lint", "per_page": 25})
    assert b.js("document.querySelector('#p-events [data-total]').dataset.total") == str(events["total"])
    assert b.js("document.getElementById('f-name').value") == "lint"

    choose(b, "version", "1.5.0")
    generation = wait_ready(b, generation)
    assert parse_qs(urlsplit(b.js("location.href")).query) == {"name": ["lint"], "version": ["1.5.0"]}
    assert_cards_equal(b, api(server, "/stats", **{"from": "7d", "name": "lint", "version": "1.5.0"}))
    assert b.js("document.querySelector('#p-sessions .scope').textContent").startswith("Not narrowed by")

    b.js("history.back()")
    generation = wait_ready(b, generation)
    assert parse_qs(urlsplit(b.js("location.href")).query) == {"name": ["lint"]}
    assert_cards_equal(b, api(server, "/stats", **{"from": "7d", "name": "lint"}))

    b = page("?range=30d&version=1.4.0&category=command")  # a shared link opens on its filters
    assert [b.js(f"document.getElementById('f-{k}').value") for k in ("range", "version", "category")] == \
        ["30d", "1.4.0", "command"]
    assert_cards_equal(b, api(server, "/stats", **{"from": "30d", "version": "1.4.0", "category": "command"}))


def test_a_command_name_that_is_html_is_shown_as_text(page):
    b = page()
    name = msgspec.json.encode(XSS).decode()
    assert b.js("[...document.querySelectorAll('#p-commands tbody tr')]"
                f".find(tr => tr.dataset.name === {name}).querySelector('.name').textContent") == XSS
    assert b.js("document.querySelectorAll('img').length") == 0
    assert XSS in b.js("[...document.querySelectorAll('#f-name option')].map(o => o.textContent)")


def test_a_wrong_key_brings_back_the_prompt_and_a_right_one_opens_the_data(page, server, request):
    request.node.allowed_status = (401, 403)
    b = page(key="bpt_00000000_" + "x" * 40)
    b.wait_for("document.body.dataset.state === 'needs-key'", what="the key prompt")
    assert b.js("document.getElementById('key-form').hidden") is False
    assert "refused (unauthorized)" in b.js("document.getElementById('status').textContent")
    assert b.js("sessionStorage.length") == 0
    b.js(f"document.getElementById('key-input').value = '{server.keys['ingest']}'; "
         "document.getElementById('key-form').requestSubmit()")
    b.wait_for("document.getElementById('status').textContent.includes('forbidden')", what="403 prompt")
    b.js(f"document.getElementById('key-input').value = '{server.keys['read']}'; "
         "document.getElementById('key-form').requestSubmit()")
    wait_ready(b)
    assert_cards_equal(b, api(server, "/stats", **{"from": "7d"}))


def test_the_timeline_shows_the_two_day_gap_on_a_real_time_axis(page, server):
    b = page()
    svg = b.js("(() => { const s = document.querySelector('#p-timeline svg'); return {buckets: "
               "Number(s.dataset.buckets), empty: Number(s.dataset.empty), bars: [...s.querySelectorAll("
               "'rect.bar')].map(r => r.dataset.bucket), ticks: s.querySelectorAll('.ytick').length}; })()")
    assert svg["buckets"] in (168, 169) and svg["ticks"] >= 3
    bars = [datetime.fromisoformat(t) for t in svg["bars"]]
    gap_from, gap_to = server.now - timedelta(days=4) + timedelta(hours=1), server.now - timedelta(days=2)
    assert not [t for t in bars if gap_from <= t < gap_to - timedelta(hours=1)]
    assert any(t < gap_from for t in bars) and any(t >= gap_to for t in bars)
    assert svg["empty"] >= 46 and svg["empty"] == svg["buckets"] - len(bars)
    assert "1 bar = 1 hour" in b.js("document.getElementById('timeline-caption').textContent")


def test_an_answer_for_filters_no_longer_shown_is_dropped(page, server, browser):
    b = page()
    generation = int(b.js("document.body.dataset.generation"))
    b.send("Fetch.enable", {"patterns": [{"urlPattern": "*from=24h*"}]})
    try:
        choose(b, "range", "24h")
        paused = poll_paused(b, at_least=5)
        choose(b, "range", "30d")
        wait_ready(b, generation + 1)
        for request_id in paused + poll_paused(b, at_least=0):
            try:
                b.send("Fetch.continueRequest", {"requestId": request_id})
            except AssertionError:
                pass  # the page gave up on it already (aborted)
    finally:
        b.send("Fetch.disable")
    final = int(b.js("document.body.dataset.generation"))
    drawn_by = b.js(f"[{', '.join(repr(p) for p in PANELS)}].map(id => document.getElementById(id)"
                    ".dataset.generation)")
    assert drawn_by == [str(final)] * len(PANELS)  # every panel drawn by the last load, none by the 24h one
    assert b.js("document.getElementById('f-range').value") == "30d"
    assert "30 days" in b.js("document.getElementById('status').textContent")
    assert_cards_equal(b, api(server, "/stats", **{"from": "30d"}))


def poll_paused(b, at_least: int, timeout: float = 20.0) -> list[str]:
    """Request ids of the Fetch.requestPaused events seen so far, waiting (on a deadline) for `at_least`."""
    ids: list[str] = []

    def enough_paused() -> bool:
        with b._cond:
            ids.extend(e["params"]["requestId"] for e in b.events if e["method"] == "Fetch.requestPaused")
            b.events = [e for e in b.events if e["method"] != "Fetch.requestPaused"]
        return len(ids) >= at_least

    wait_until(enough_paused, timeout=timeout, interval=0.02,
               what=lambda: f"{at_least} paused requests ({len(ids)} so far)")
    return ids


def test_a_failing_call_shows_its_error_in_its_own_panel(page, server, request):
    request.node.allowed_status = (503,)
    b = page()
    b.send("Fetch.enable", {"patterns": [{"urlPattern": "*/aggregate/platform*"}]})
    try:
        choose(b, "range", "30d")
        (request_id,) = poll_paused(b, at_least=1)[:1]
        body = msgspec.json.encode({"error": {"code": "sink_unavailable", "message": "the database is down"}})
        b.send("Fetch.fulfillRequest", {
            "requestId": request_id, "responseCode": 503, "body": base64.b64encode(body).decode(),
            "responseHeaders": [{"name": "Content-Type", "value": "application/json"}]})
    finally:
        b.send("Fetch.disable")
    b.wait_for("document.body.dataset.state === 'error'", what="the error state")
    assert b.js("document.getElementById('p-platform').dataset.state") == "error"
    assert "the database is down (sink_unavailable)" in b.js("document.querySelector('#p-platform .body')"
                                                              ".textContent")
    assert b.js("document.getElementById('p-commands').dataset.state") == "ready"
    assert_cards_equal(b, api(server, "/stats", **{"from": "30d"}))


def test_an_error_group_lists_its_events_and_the_commands_table_sorts(page, server):
    b = page()
    generation = int(b.js("document.body.dataset.generation"))
    group = api(server, "/errors/recent", **{"from": "7d", "limit": 20})[0]
    assert b.js("document.querySelector('#p-errors tbody tr').dataset.hash") == group["error_hash"]
    b.js("document.querySelector('#p-errors tbody tr').click()")
    wait_ready(b, generation)
    assert parse_qs(urlsplit(b.js("location.href")).query) == {"error": [group["error_hash"]]}
    events = api(server, "/events", **{"from": "7d", "error_hash": group["error_hash"], "per_page": 25})
    assert b.js("document.querySelector('#p-events [data-total]').dataset.total") == str(events["total"])
    codes = b.js("[...document.querySelectorAll('#p-events tbody tr')].map(tr => tr.cells[6].textContent)")
    assert set(codes) == {group["error_code"]}

    b.js("document.querySelector('#p-commands th[data-sort=\"p95_ms\"]').click()")
    p95 = [float(r["cells"][5][0]) for r in command_rows(b)]
    assert p95 == sorted(p95, reverse=True)
    b.js("document.querySelector('#p-commands th[data-sort=\"p95_ms\"]').click()")
    assert [float(r["cells"][5][0]) for r in command_rows(b)] == sorted(p95)


def test_the_problem_check_catches_a_javascript_error_and_a_console_error(browser, server):
    """Guard against a check that cannot fail."""
    browser.goto(f"{server.url}/dashboard")
    browser.wait_for("document.readyState === 'complete'")
    browser.js("setTimeout(() => { throw new Error('boom'); }, 0); console.error('bad thing'); "
               "new Promise(r => setTimeout(r, 50))")
    browser.wait_for("new Promise(r => setTimeout(() => r(true), 50))")
    problems = browser.problems()
    assert any("boom" in p for p in problems) and any("bad thing" in p for p in problems)
