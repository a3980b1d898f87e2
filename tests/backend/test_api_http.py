"""Every status code of docs/http-api.md against a real server (`serve` subprocess, waitress, SQLite).

Bodies are built with the sink suite's `make_package`; the server is shared
by the module, so tests that store data use fresh package ids and compare
before/after counts rather than absolute totals.
"""

from __future__ import annotations

import gzip
import hashlib
import socket
import time
from urllib.parse import urlsplit

import msgspec
import pytest
import requests

from .conftest import make_event, make_package
from .live_backend import gzip_bomb, process_rss_bytes, start_sqlite_backend

MB = 1024 * 1024
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    backend = start_sqlite_backend(tmp_path_factory.mktemp("http"))
    yield backend
    backend.stop()


def encode(package) -> bytes:
    return msgspec.json.encode(package)


def upload(server, body: bytes, scope: str = "ingest", **headers: str) -> requests.Response:
    return requests.post(server.api + "/upload", data=body, timeout=30,
                         headers={**server.headers(scope), **JSON, **headers})


def stats(server) -> dict:
    response = requests.get(server.api + "/stats", headers=server.headers("read"), timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def assert_envelope(response: requests.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    assert "Traceback" not in response.text
    return error


def raw_request(server, head: bytes, body: bytes = b"", *, shutdown_write: bool = False,
                timeout: float = 10.0) -> bytes:
    """Speak HTTP over a plain socket; returns whatever the server answered (b"" = closed)."""
    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(head + body)
        if shutdown_write:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and _complete(b"".join(chunks)):
                break
        return b"".join(chunks)


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def upload_head(server, length: int, extra: str = "") -> bytes:
    host = urlsplit(server.url).netloc
    return (f"POST /api/telemetry/upload HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {server.keys['ingest']}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\n{extra}\r\n").encode()


# ---- 200 / 201 --------------------------------------------------------------

def test_health_answers_200_without_a_key_and_advertises_limits(server):
    response = requests.get(server.api + "/health", timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["max_upload_bytes"] == 5 * MB
    assert body["schema_versions"] == ["1.0.0"]
    assert body["sinks"] and all(s["ok"] for s in body["sinks"].values())


def test_upload_201_then_the_same_package_200_duplicate_and_no_new_rows(server):
    body = encode(make_package(25, seed=101))
    before = stats(server)
    first = upload(server, body)
    assert first.status_code == 201, first.text
    answer = first.json()
    assert answer["accepted_events"] == 25 and answer["duplicate_events"] == 0
    assert answer["receipt"] == "sha256:" + hashlib.sha256(body).hexdigest()
    middle = stats(server)
    assert middle["events"] == before["events"] + 25
    assert middle["packages"] == before["packages"] + 1
    again = upload(server, body)
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True
    assert again.json()["package_id"] == answer["package_id"]
    assert stats(server)["events"] == middle["events"]


def test_known_event_ids_in_a_new_package_are_counted_as_duplicates(server):
    events = [make_event(i, seed=102) for i in range(10)]
    assert upload(server, encode(make_package(events=events))).status_code == 201
    before = stats(server)["events"]
    more = events[:6] + [make_event(i, seed=102) for i in range(10, 14)]
    response = upload(server, encode(make_package(events=more)))
    assert response.status_code == 201
    assert (response.json()["accepted_events"], response.json()["duplicate_events"]) == (4, 6)
    assert stats(server)["events"] == before + 4


def test_gzip_upload_is_accepted_and_the_receipt_is_of_the_decompressed_body(server):
    body = encode(make_package(40, seed=103))
    response = upload(server, gzip.compress(body), **{"Content-Encoding": "gzip"})
    assert response.status_code == 201, response.text
    assert response.json()["receipt"] == "sha256:" + hashlib.sha256(body).hexdigest()


def test_bearer_token_is_accepted_like_x_api_key(server):
    response = requests.get(server.api + "/stats", timeout=10,
                            headers={"Authorization": f"Bearer {server.keys['read']}"})
    assert response.status_code == 200


# ---- 400 --------------------------------------------------------------------

@pytest.mark.parametrize("body", [b"{not json", b"", b'{"a": 1', b"\xff\xfe\x00garbage", b"[1, 2,]"])
def test_malformed_json_is_400_bad_json(server, body):
    assert_envelope(upload(server, body), 400, "bad_json")


def test_corrupt_gzip_is_400(server):
    response = upload(server, b"\x1f\x8b\x08\x00not-deflate-at-all", **{"Content-Encoding": "gzip"})
    assert_envelope(response, 400, "bad_encoding")


def test_a_body_that_stops_early_is_never_stored_and_the_server_keeps_serving(server):
    """Content-Length says 10,000; 100 bytes arrive, then the client stops sending.
    Waitress waits for the whole body before calling the app, so it closes the
    connection without a response; an app-level short read answers 400
    `incomplete_body` (tests/backend/test_api_body.py). Either way: no 2xx, nothing stored."""
    before = stats(server)
    body = encode(make_package(5, seed=104))
    answer = raw_request(server, upload_head(server, 10_000), body[:100], shutdown_write=True)
    assert not answer.startswith(b"HTTP/1.1 2"), answer[:200]
    if answer:
        assert answer.startswith(b"HTTP/1.1 400")
    assert stats(server) == before
    assert requests.get(server.api + "/health", timeout=10).status_code == 200


# ---- 401 / 403 --------------------------------------------------------------

@pytest.mark.parametrize("path", ["/stats", "/events", "/aggregate/category", "/aggregate/source",
                                  "/aggregate/timeline", "/errors/recent", "/errors/slo", "/sessions",
                                  "/schema", "/openapi.json"])
def test_every_read_endpoint_is_401_without_a_key(server, path):
    assert_envelope(requests.get(server.api + path, timeout=10), 401, "unauthorized")


def test_upload_without_key_or_with_an_unknown_key_is_401(server):
    body = encode(make_package(1, seed=105))
    assert_envelope(requests.post(server.api + "/upload", data=body, headers=JSON, timeout=10), 401,
                    "unauthorized")
    response = requests.post(server.api + "/upload", data=body, timeout=10,
                             headers={**JSON, "X-API-Key": server.keys["ingest"] + "0"})
    assert_envelope(response, 401, "unauthorized")


def test_scopes_ingest_cannot_read_read_cannot_ingest_admin_can_both(server):
    assert_envelope(requests.get(server.api + "/stats", headers=server.headers("ingest"), timeout=10),
                    403, "forbidden")
    assert_envelope(upload(server, encode(make_package(1, seed=106)), scope="read"), 403, "forbidden")
    assert requests.get(server.api + "/stats", headers=server.headers("admin"), timeout=10).status_code == 200
    assert upload(server, encode(make_package(1, seed=106)), scope="admin").status_code == 201


# ---- 404 / 405 --------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/telemetry/nope", "/api/telemetry/", "/nothing-here", "/static/x.js"])
def test_unknown_paths_are_a_json_404(server, path):
    assert_envelope(requests.get(server.url + path, headers=server.headers("read"), timeout=10), 404,
                    "not_found")


def test_wrong_method_is_a_json_405_with_allow(server):
    response = requests.get(server.api + "/upload", headers=server.headers("admin"), timeout=10)
    assert_envelope(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]
    assert_envelope(requests.delete(server.api + "/stats", timeout=10), 405, "method_not_allowed")


# ---- 413 --------------------------------------------------------------------

def test_a_6mb_content_length_is_refused_413_before_the_body_is_sent(server):
    started = time.monotonic()
    answer = raw_request(server, upload_head(server, 6 * MB))  # headers only, no body at all
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"payload_too_large"' in answer
    assert time.monotonic() - started < 5


def test_a_6mb_body_is_413(server):
    body = b'{"pad": "' + b"x" * (6 * MB) + b'"}'
    response = upload(server, body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_a_chunked_body_over_the_cap_is_413(server):
    def chunks():
        yield b'{"pad": "'
        for _ in range(7):
            yield b"x" * MB
        yield b'"}'

    response = requests.post(server.api + "/upload", data=chunks(), timeout=30,
                             headers={**server.headers("ingest"), **JSON})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_a_10mb_gzip_bomb_is_413(server):
    bomb = gzip_bomb(10)
    assert len(bomb) < 20_000
    assert_envelope(upload(server, bomb, **{"Content-Encoding": "gzip"}), 413, "payload_too_large")


def test_a_1gb_gzip_bomb_streamed_is_413_fast_without_memory_growth(server):
    bomb = gzip_bomb(1024)
    rss_before = process_rss_bytes(server.proc.pid)

    def stream():
        for i in range(0, len(bomb), 64 * 1024):
            yield bomb[i:i + 64 * 1024]

    started = time.monotonic()
    response = requests.post(server.api + "/upload", data=stream(), timeout=60,
                             headers={**server.headers("ingest"), **JSON, "Content-Encoding": "gzip"})
    elapsed = time.monotonic() - started
    assert_envelope(response, 413, "payload_too_large")
    assert elapsed < 10, f"took {elapsed:.1f} s"
    growth = process_rss_bytes(server.proc.pid) - rss_before
    assert growth < 40 * MB, f"server RSS grew by {growth / MB:.1f} MB"


# ---- 415 --------------------------------------------------------------------

@pytest.mark.parametrize("content_type", [
    "text/plain", "application/x-www-form-urlencoded", "application/xml", "multipart/form-data; boundary=x",
    "application/json; charset=latin-1", "application/jsonx", ""])
def test_wrong_content_types_are_415(server, content_type):
    body = encode(make_package(1, seed=107))
    headers = {**server.headers("ingest"), "Content-Type": content_type}
    response = requests.post(server.api + "/upload", data=body, headers=headers, timeout=10)
    assert_envelope(response, 415, "unsupported_media_type")


def test_json_with_utf8_charset_parameter_is_accepted(server):
    response = upload(server, encode(make_package(1, seed=108)),
                      **{"Content-Type": "application/json; charset=UTF-8"})
    assert response.status_code == 201


def test_unsupported_content_encoding_is_415(server):
    response = upload(server, encode(make_package(1, seed=109)), **{"Content-Encoding": "br"})
    assert_envelope(response, 415, "unsupported_media_type")


# ---- 422 --------------------------------------------------------------------

def test_schema_errors_are_422_with_the_msgspec_path(server):
    package = msgspec.to_builtins(make_package(3, seed=110))
    package["summary"]["events"][1]["duration_ms"] = "slow"
    error = assert_envelope(upload(server, msgspec.json.encode(package)), 422, "schema_invalid")
    assert error["details"]["path"] == "$.summary.events[1].duration_ms"


@pytest.mark.parametrize("where, value", [
    (("summary", "events", 0, "duration_ms"), -1.0),
    (("summary", "events", 0, "duration_ms"), 1e300),  # summed per command it would overflow
    (("performance_metrics", "analyze", "max_ms"), 1e300),
    (("performance_metrics", "analyze", "total_ms"), -3.0),
])
def test_durations_that_are_not_measurements_are_422(server, where, value):
    package = msgspec.to_builtins(make_package(3, seed=112))
    package["performance_metrics"]["analyze"] = {"count": 1, "total_ms": 5.0, "mean_ms": 5.0, "p50_ms": 5.0,
                                                 "p95_ms": 5.0, "max_ms": 5.0}
    assert upload(server, msgspec.json.encode(package)).status_code == 201  # valid as it is
    package["package_id"] = "00000000-0000-4000-8000-0000000000aa"  # not a duplicate of that one
    node = package
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    error = assert_envelope(upload(server, msgspec.json.encode(package)), 422, "schema_invalid")
    assert error["details"]["path"].endswith(where[-1])


def test_unknown_fields_and_wrong_schema_version_are_422(server):
    package = msgspec.to_builtins(make_package(1, seed=111))
    package["surprise"] = 1
    assert_envelope(upload(server, msgspec.json.encode(package)), 422, "schema_invalid")
    package = msgspec.to_builtins(make_package(1, seed=111))
    package["schema_version"] = "9.0.0"
    error = assert_envelope(upload(server, msgspec.json.encode(package)), 422, "schema_invalid")
    assert error["details"]["path"] == "$.schema_version"
    assert_envelope(upload(server, b"[]"), 422, "schema_invalid")


def test_privacy_violations_are_422_with_pointers_and_rules_never_the_value(server):
    secret_path = "/home/alice/secret-game/script.rpy"
    package = msgspec.to_builtins(make_package(4, seed=112))
    package["summary"]["events"][3]["attrs"]["file"] = secret_path
    package["summary"]["events"][0]["name"] = "line one\nline two"
    package["summary"]["events"][2]["attrs"]["owner"] = "alice.smith@example.com"
    before = stats(server)
    response = upload(server, msgspec.json.encode(package))
    error = assert_envelope(response, 422, "privacy_violation")
    pointers = {(d["pointer"], d["rule"]) for d in error["details"]}
    assert ("/summary/events/3/attrs", "raw_path") in pointers  # an attrs key is never spelled
    assert ("/summary/events/2/attrs", "email_address") in pointers
    assert any(p == "/summary/events/0/name" for p, _ in pointers)
    for leaked in (secret_path, "alice", "line two", "example.com"):
        assert leaked not in response.text
    assert stats(server) == before


def test_a_private_value_in_an_enum_field_is_not_echoed(server):
    package = msgspec.to_builtins(make_package(1, seed=113))
    package["summary"]["events"][0]["category"] = "C:\\Users\\bob\\game.rpy"
    response = upload(server, msgspec.json.encode(package))
    assert response.status_code == 422
    assert "bob" not in response.text


# ---- Unicode ----------------------------------------------------------------

def test_unicode_where_a_sender_chooses_the_text_is_dropped_and_never_echoed(server):
    """Names and attrs are declared (ASCII) in the catalog: a Unicode name or key is undeclared,
    dropped and counted; a Unicode session id or version breaks its fixed form (422)."""
    name = "анализ-✓-🚀-分析"
    events = [make_event(i, seed=114, name=name) for i in range(2)] + \
        [make_event(2, seed=114, attrs={"länge": 3, "files": 1})]
    response = upload(server, encode(make_package(events=events)))
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["accepted_events"] == 1
    assert answer["dropped"] == {"undeclared_event": 2, "undeclared_attr": 1}
    assert "анализ" not in response.text and "länge" not in response.text
    for field, value in (("session_id", "セッション-ß-é"), ("branchpy_version", "1.4.0-βeta")):
        package = msgspec.to_builtins(make_package(1, seed=116))
        if field == "session_id":
            package["summary"]["events"][0][field] = value
        else:
            package[field] = value
        refused = upload(server, msgspec.json.encode(package))
        error = assert_envelope(refused, 422, "privacy_violation")
        assert error["details"][0]["rule"] == "fixed_format" and value not in refused.text


# ---- errors the WSGI server answers itself ------------------------------------

def test_malformed_http_gets_the_json_envelope_from_the_server_itself(server):
    host = urlsplit(server.url).netloc
    answer = raw_request(server, f"POST /api/telemetry/upload HTTP/1.1\r\nHost: {host}\r\n"
                                 "Content-Length: twelve\r\n\r\n".encode())
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert b"Content-Type: application/json" in head
    assert msgspec.json.decode(body)["error"]["code"] == "bad_request"


def test_an_event_time_the_sink_cannot_read_is_422_with_its_pointer_and_nothing_stored(server):
    package = msgspec.to_builtins(make_package(5, seed=115))
    package["summary"]["events"][2]["ts"] = "2026-13-45T25:61:61.000Z"  # the right form, not a time
    before = stats(server)
    error = assert_envelope(upload(server, msgspec.json.encode(package)), 422, "invalid_package")
    assert error["details"] == {"pointer": "/summary/events/2/ts"}
    package["summary"]["events"][2]["ts"] = "yesterday-ish"  # not even the form: refused while decoding
    error = assert_envelope(upload(server, msgspec.json.encode(package)), 422, "privacy_violation")
    assert error["details"] == [{"pointer": "/summary/events/2/ts", "rule": "fixed_format"}]
    assert stats(server) == before
