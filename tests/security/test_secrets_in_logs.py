"""Secrets stay out of logs, answers and `/health`.

Threat: an API key or a database password ends up where more people can
read it than should: the server's log (shipped to a log service), an error
body, the public `/health`, the `serve` command's own output.
Promise: with a MySQL password in the `--db` URLs (primary and secondary)
and valid, wrong and revoked keys in use, neither the password nor any key
appears in the log, on stdout, in `/health` or in any answer. A key's public
id (`key_id`) may appear: it is what `keys list` shows.
"""

from __future__ import annotations

import secrets
import subprocess

import msgspec
import pymysql
import pytest
import requests

from branchpy_telemetry.backend.auth import generate_key
from branchpy_telemetry.backend.sinks.mysql import MySQLTelemetrySink
from branchpy_telemetry.client.contracts.timewindow import utcnow

from ..backend.conftest import make_package
from ..backend.live_backend import clean_env, start_backend
from ..backend.own_mariadb import OwnMariaDB
from ..conftest import console_script

pytestmark = pytest.mark.mysql

PASSWORD = "Pw" + secrets.token_hex(12)


@pytest.fixture(scope="module")
def mariadb(tmp_path_factory):
    server = OwnMariaDB(tmp_path_factory.mktemp("own-mariadb")).start()
    root = pymysql.connect(host="127.0.0.1", port=server.port, user="root", autocommit=True)
    with root.cursor() as cur:
        cur.execute("CREATE USER 'bp'@'127.0.0.1' IDENTIFIED BY %s", (PASSWORD,))
        cur.execute("GRANT ALL ON *.* TO 'bp'@'127.0.0.1'")
    root.close()
    yield server
    server.close()


def test_no_password_or_key_in_logs_answers_or_health(tmp_path, mariadb):
    primary = f"mysql://bp:{PASSWORD}@127.0.0.1:{mariadb.port}/bp_secrets"
    secondary = f"mysql://bp:{PASSWORD}@127.0.0.1:{mariadb.port}/bp_secrets_copy"
    env = clean_env(tmp_path / "home", secondary_backlog=str(tmp_path / "backlog.db"))
    server = start_backend(tmp_path, env, [primary, secondary])
    sink = MySQLTelemetrySink.from_url(primary)
    revoked, record = generate_key("admin", None, utcnow())
    sink.add_api_key(record)
    sink.revoke_api_key(record.key_id, utcnow())
    sink.close()
    answers: list[str] = []
    try:
        api = server.api
        ingest = {**server.headers("ingest"), "Content-Type": "application/json"}
        body = msgspec.json.encode(make_package(5, seed=1))
        answers.append(requests.post(api + "/upload", data=body, headers=ingest, timeout=30).text)
        answers.append(requests.post(api + "/upload", data=b"{", headers=ingest, timeout=30).text)
        for key in (server.keys["read"], server.keys["ingest"], revoked, "bpt_wrong_" + PASSWORD):
            for path in ("/stats", "/events", "/upload", "/nope"):
                answers.append(requests.get(api + path, headers={"X-API-Key": key}, timeout=10).text)
                answers.append(requests.get(api + path, headers={"Authorization": f"Bearer {key}"},
                                            timeout=10).text)
        answers.append(requests.get(api + "/health", timeout=10).text)
        mariadb.freeze()  # failures, so that error paths log too
        try:
            answers.append(requests.get(api + "/health", timeout=30).text)
            answers.append(requests.post(api + "/upload", data=body, headers=ingest, timeout=30).text)
        finally:
            mariadb.thaw()
        answers.append(requests.get(api + "/health", timeout=30).text)
    finally:
        server.stop()
    log = server.logs()
    assert '"event": "http.request"' in log and '"event": "sink.error"' in log  # the log is really there
    keys = [*server.keys.values(), revoked]
    for text, where in [(log, "log"), *((a, "answer") for a in answers)]:
        assert PASSWORD not in text, where
        for key in keys:
            assert key not in text and key.split("_", 2)[2] not in text, where  # bpt_<id>_<secret>


def test_a_bad_db_url_on_the_command_line_is_reported_without_its_password(tmp_path, mariadb):
    env = clean_env(tmp_path / "home")
    for url in (f"mysql://bp:{PASSWORD}@127.0.0.1:{mariadb.port}/",  # no database name
                f"mysql://bp:{PASSWORD}@127.0.0.1:1/db?connect_timeout=1",  # nothing listens
                f"mysql://bp:{PASSWORD}x@127.0.0.1:{mariadb.port}/db",  # wrong password
                f"postgres://bp:{PASSWORD}@127.0.0.1/db"):  # unknown scheme
        command = [console_script("branchpy-telemetry-backend"), "serve", "--port", "0", "--db", url]
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert proc.returncode != 0, url
        assert PASSWORD not in proc.stdout + proc.stderr, (url, proc.stderr)
