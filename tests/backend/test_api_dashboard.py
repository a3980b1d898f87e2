"""GET /dashboard in a real headless browser (Debian `chromium`) against a real
`serve`: the page loads without a key, takes a read key from the URL fragment,
and its cards show the numbers the API holds."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from datetime import timedelta

import msgspec
import pytest
import requests

from branchpy_telemetry.client.timewindow import utcnow

from .conftest import make_package
from .live_backend import start_sqlite_backend

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    backend = start_sqlite_backend(tmp_path_factory.mktemp("dashboard"))
    now = utcnow()
    for seed, hours in ((1, 30), (2, 5)):
        package = make_package(150, seed=seed, start=now - timedelta(hours=hours), step=timedelta(minutes=2))
        response = requests.post(backend.api + "/upload", data=msgspec.json.encode(package), timeout=30,
                                 headers={**backend.headers("ingest"), "Content-Type": "application/json"})
        assert response.status_code == 201
    yield backend
    backend.stop()


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("headless chromium is needed: apt-get install -y chromium", pytrace=False)
    return path


def dump_dom(url: str, tmp_path) -> str:
    result = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--no-first-run", f"--user-data-dir={tmp_path / 'chrome'}", "--virtual-time-budget=15000",
         "--dump-dom", url],
        capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def text_of(dom: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', dom)
    assert match, f"#{element_id} not in the page"
    return html.unescape(match.group(1))


def body_state(dom: str) -> str:
    return re.search(r'<body[^>]*data-state="([^"]+)"', dom).group(1)


def test_the_page_itself_needs_no_key(server):
    response = requests.get(server.url + "/dashboard", timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    for asset in ("/static/dashboard.js", "/static/dashboard.css"):
        assert asset in response.text
        assert requests.get(server.url + asset, timeout=10).status_code == 200


def test_the_cards_charts_and_tables_show_the_real_numbers(server, tmp_path):
    headers = server.headers("read")
    stats = requests.get(server.api + "/stats", headers=headers, timeout=10).json()
    categories = requests.get(server.api + "/aggregate/category", params={"from": "7d"}, headers=headers,
                              timeout=10).json()
    dom = dump_dom(f"{server.url}/dashboard#key={server.keys['read']}", tmp_path)
    assert body_state(dom) == "ready", text_of(dom, "status")
    for field in ("events", "packages", "sessions", "errors", "installs"):
        assert text_of(dom, f"card-{field}") == f"{stats[field]:,}"
    assert text_of(dom, "card-last-upload").startswith(stats["last_upload"][:10])
    for row in categories:
        assert re.search(rf'data-key="{row["key"]}"[^>]*>{row["count"]:,}<', dom)
    assert dom.count('class="bar"') > len(categories)  # timeline bars drawn too
    assert "target" in text_of(dom, "slo-success")
    assert server.keys["read"] not in dom


def test_without_a_key_the_page_asks_for_one(server, tmp_path):
    dom = dump_dom(f"{server.url}/dashboard", tmp_path)
    assert body_state(dom) == "needs-key"
    assert re.search(r'<form id="key-form"(?![^>]*hidden)', dom)
    assert text_of(dom, "card-events") == "–"


def test_a_key_without_read_scope_is_refused_on_the_page(server, tmp_path):
    dom = dump_dom(f"{server.url}/dashboard#key={server.keys['ingest']}", tmp_path)
    assert body_state(dom) == "error"
    assert "refused" in text_of(dom, "status") and "forbidden" in text_of(dom, "status")
    assert text_of(dom, "card-events") == "–"
