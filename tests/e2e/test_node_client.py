"""The Node client's own tests (`node --test client/vscode/test/`), run as part of this suite.

They drive the real module, the real bridge, a real daemon and a real backend
(see client/vscode/testkit/harness.js). Every protocol message they send and
receive is logged; here `jsonschema` checks each one against the published
schema a second time, independently of the Node tests' own validator.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from branchpy_telemetry.client.contracts.commands import COMMAND_BY_BRIDGE_TYPE

from ..conftest import BIN_DIR
from .protocol_schema import schema_errors

ROOT = Path(__file__).resolve().parents[2]
MIN_NODE = (18, 0)


def node_executable() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js 18 or newer is needed for the extension client's tests: "
                    "apt-get install -y nodejs", pytrace=False)
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    major, minor = (int(part) for part in re.match(r"v(\d+)\.(\d+)", version).groups())
    if (major, minor) < MIN_NODE:
        pytest.fail(f"Node.js {version} is too old for the extension client's tests (need 18+)",
                    pytrace=False)
    return node


@pytest.mark.slow
def test_node_client_suite_passes_and_every_message_matches_the_schema(tmp_path):
    log = tmp_path / "protocol.jsonl"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("BRANCHPY_TELEMETRY") and k != "DO_NOT_TRACK"}
    env.update(BRANCHPY_TEST_BIN=str(BIN_DIR), BRANCHPY_PROTOCOL_LOG=str(log))
    result = subprocess.run([node_executable(), "--test", "client/vscode/test/"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"node --test failed:\n{result.stdout[-12000:]}\n{result.stderr[-4000:]}"
    assert re.search(r"^# fail 0$", result.stdout, flags=re.M), result.stdout[-4000:]
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    sent = {e["message"]["type"] for e in entries if e["direction"] == "send"}
    received = {e["message"]["type"] for e in entries if e["direction"] == "receive"}
    assert sent == set(COMMAND_BY_BRIDGE_TYPE), "every request type is exercised"
    results = {t + ".result" for t in COMMAND_BY_BRIDGE_TYPE}
    assert received >= results | {"telemetry.progress", "telemetry.error"}
    invalid = [entry for entry in entries if schema_errors(entry["message"], entry["direction"])]
    # exactly the one request the Node tests send wrong on purpose (status with an unknown argument)
    assert [(e["direction"], e["message"]["type"], e["message"]["payload"]) for e in invalid] == [
        ("send", "telemetry.status", {"verbose": True})]


def test_node_client_message_types_match_the_command_table():
    """The Node client's own list of bridge types (which command, long or quick, which carry
    consent) says what client/contracts/commands.py says: a long command there waits long here too."""
    from branchpy_telemetry.client.contracts.commands import COMMAND_BY_NAME

    script = ("const p = require('./client/vscode/lib/protocol.js');"
              "console.log(JSON.stringify({types: p.MESSAGE_TYPES, consent: [...p.CONSENT_TYPES]}));")
    out = subprocess.run([node_executable(), "-e", script], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=60).stdout
    node = json.loads(out)
    table = {t: COMMAND_BY_NAME[cmd] for t, cmd in COMMAND_BY_BRIDGE_TYPE.items()}
    assert node["types"] == {t: {"command": c.name, "long": c.timeout == "long"} for t, c in table.items()}
    assert set(node["consent"]) == {t for t, c in table.items() if c.consent}
