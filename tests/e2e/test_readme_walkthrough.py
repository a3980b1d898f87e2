"""The README, walked as a new user would: the set-up command's `up`, every `$` command of the
Quickstart and of "Backend on MySQL", run as written (commands parsed from the README), each
printed line checked against the shape the README shows (tests/e2e/readme_transcript.py).

Only what a test may not do is changed, and said here: the stack listens on a free port
(`--port 0`, never 8787), the MySQL URL `mysql://telemetry:secret@db.example:3306/telemetry`
becomes a fresh database on the test server (created and dropped here, never a shared one),
`--host 0.0.0.0` becomes 127.0.0.1, `http://telemetry.example:8787` the backend's real address,
and the shortened key `bpt_5f1c2a9e_…` the key `keys create` printed. `pip install` is not run
(this venv is the install; the MySQL extra must be there). Everything runs in a fresh
BRANCHPY_TELEMETRY_HOME and a fresh working folder.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ..backend.conftest import fresh_mysql_database
from ..conftest import console_script
from .readme_transcript import Step, code_blocks, match_output, section, transcript

VENV_BIN = Path(sys.executable).parent
README_DB_URL = "mysql://telemetry:secret@db.example:3306/telemetry"
README_BACKEND = "http://telemetry.example:8787"
README_KEY = "bpt_5f1c2a9e_…"


class Background:
    """A long-running command (`up`, `serve`): its stdout lines as they come, Ctrl-C at the end."""

    def __init__(self, command: str, env: dict, cwd: Path):
        self.proc = subprocess.Popen(["bash", "-c", f"exec {command}"], env=env, cwd=cwd, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [self.lines.put(line.rstrip("\n")) for line in self.proc.stdout],
                         daemon=True).start()

    def read(self, count: int, timeout: float = 60.0) -> list[str]:
        deadline = time.monotonic() + timeout
        out: list[str] = []
        while len(out) < count:
            try:
                out.append(self.lines.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                break
        return out

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return -9
        finally:
            self.proc.stdout.close()


class Walk:
    """Runs README steps in one shell environment, remembering the last exit code (`echo $?`)."""

    def __init__(self, env: dict, cwd: Path, substitutions: dict[str, str]):
        self.env, self.cwd, self.substitutions = env, cwd, substitutions
        self.last_code = 0
        self.printed: list[str] = []  # what the last step printed
        self.background: list[Background] = []

    def literal(self, text: str) -> str:
        text = text.replace(".venv/bin/", f"{VENV_BIN}/")
        for readme, here in self.substitutions.items():
            text = text.replace(readme, here)
        return text

    def run(self, step: Step) -> list[str]:
        """Run one step; returns its problems (empty when every printed line has the README's shape)."""
        command = self.literal(step.command)
        expected = [self.literal(line) for line in step.expected]
        if command == "echo $?":
            self.printed = [str(self.last_code)]
            return match_output(expected, self.printed)
        if re.search(r"branchpy-telemetry-backend (up|serve)\b", command):
            background = Background(command, self.env, self.cwd)
            self.background.append(background)
            self.printed = background.read(len(expected))
            return match_output(expected, self.printed)
        result = subprocess.run(["bash", "-c", command], env=self.env, cwd=self.cwd, capture_output=True,
                                text=True, timeout=120)
        self.last_code = result.returncode
        self.printed = (result.stdout + result.stderr).splitlines()
        if result.returncode != 0 and not any(line.startswith("error: ") for line in expected):
            return [f"{command!r} exited {result.returncode}: {result.stderr}"]
        return match_output(expected, self.printed)

    def stop_all(self) -> None:
        for background in self.background:
            assert background.stop() == 0
        subprocess.run([console_script("branchpy"), "telemetry", "daemon", "stop"], env=self.env,
                       capture_output=True, timeout=60)


@pytest.fixture
def readme_database():
    """A database of its own on the test server, created and dropped here (never a shared one)."""
    with fresh_mysql_database() as (url, _drop):
        yield url


def set_up_run_command() -> str:
    """The README's run command: the venv, the install, then `up` (the step this test runs)."""
    commands = [c for block in code_blocks(section("Set up"), "sh") for c in block.splitlines()]
    run = commands[0].split(" && ")
    assert run[:2] == ["python3 -m venv .venv", ".venv/bin/pip install -q -e ."], run
    assert run[2] == ".venv/bin/branchpy-telemetry-backend up"
    return run[2]


def test_the_readme_quickstart_and_backend_on_mysql_work_as_written(tmp_path, readme_database):
    import pymysql  # noqa: F401 - the `.[mysql]` extra the section installs

    home, work = tmp_path / "telemetry-home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRANCHPY_TELEMETRY", "XDG_"))}
    env.pop("DO_NOT_TRACK", None)
    env["BRANCHPY_TELEMETRY_HOME"] = str(home)
    walk = Walk(env, work, {README_DB_URL: readme_database,
                            "--host 0.0.0.0 --port 8787": "--host 127.0.0.1 --port 0"})
    try:
        quickstart = section("Quickstart")
        up_output, try_it, failure = code_blocks(quickstart, "text")
        up = Step(set_up_run_command() + " --port 0", up_output.splitlines())
        assert walk.run(up) == []
        steps = transcript(try_it) + transcript(failure)
        assert [s.command.split()[:3] for s in steps[:4]] == [[".venv/bin/branchpy", "telemetry", c]
                                                            for c in ("emit", "export", "preview", "upload")]
        for step in steps:
            if step.command.startswith(".venv/bin/pip install"):
                continue
            assert walk.run(step) == [], step.command
        assert (work / "rc-metrics.json").is_file() and walk.last_code == 4

        mysql = section("Backend on MySQL")
        server_side, sender_side = code_blocks(mysql, "text")
        for step in transcript(server_side):
            if step.command.startswith(".venv/bin/pip install"):
                assert step.command == ".venv/bin/pip install -q -e '.[mysql]'"
                continue
            assert walk.run(step) == [], step.command
            if " keys create " in step.command:
                walk.substitutions[README_KEY] = walk.printed[-1]  # the key, alone on the last line
        walk.substitutions[README_BACKEND] = walk.printed[0].split()[2]  # `serving on http://…:PORT  (…)`
        for step in transcript(sender_side):
            assert walk.run(step) == [], step.command
        stored = count_rows(readme_database, "events")
        assert stored == 1  # the quickstart's event, now in the MySQL backend too
    finally:
        walk.stop_all()


def count_rows(url: str, table: str) -> int:
    from ..backend.conftest import database_connection

    conn = database_connection(url)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT COUNT(*) FROM {table}")
            return cur.fetchone()[0]
    finally:
        conn.close()


def test_a_line_of_another_shape_fails_the_walk():
    from .readme_transcript import shape

    readme = "sent rc-metrics.json: package d77ff273-44d3-47a9-b07a-8b992407a61d, 1 event(s), 1.1 KiB — " \
             "delivered (1 new), receipt sha256:0d6c43b0…"
    same = "sent rc-metrics.json: package 0a1b2c3d-0000-4000-8000-123456789abc, 3 event(s), 998 B — " \
           "delivered (3 new), receipt sha256:ffee0011aa"
    assert shape(readme).fullmatch(same)
    assert not shape(readme).fullmatch(same.replace("delivered (3 new)", "duplicate"))
    assert not shape(readme).fullmatch(same.replace("3 event(s)", "3 events"))
    assert match_output(["a 1", "…", "z 2"], ["a 5", "b", "c", "z 9"]) == []
    assert match_output(["a 1"], ["a 1", "surprise"]) != []
    assert match_output(["a 1", "b 2"], ["a 1"]) != []
