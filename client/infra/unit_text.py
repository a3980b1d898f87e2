"""Writing systemd unit files: quoting, `%h`/`%t` specifiers, the documentation links.

Shared by the daemon's user unit (client/thin/daemon_unit.py) and the backend's
system units (backend/service_units.py).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable
from pathlib import Path

from branchpy_telemetry.client.contracts.errors import ServiceInstallError

SYSTEMCTL_TIMEOUT_S = 60.0

# The README section every unit's `Documentation=` points at (its GitHub anchor), and the
# systemd/README.md of a source checkout when there is one (file: link).
README_URL = "https://github.com/branchpy/branchpy-telemetry"
SERVICES_HEADING = "Running as services (systemd)"
SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the checkout of an editable install


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def documentation_links() -> str:
    links = [f"{README_URL}#{github_anchor(SERVICES_HEADING)}"]
    local = SOURCE_ROOT / "systemd" / "README.md"
    if local.is_file():
        links.insert(0, local.as_uri())
    return " ".join(links)


def quote_arg(value: str) -> str:
    """One argument of a command line or a path list: `%` escaped (it starts a specifier),
    double quotes around anything with a blank or a quote."""
    text = value.replace("%", "%%")
    if re.search(r"[\s\"'\\]", text):
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def with_specifiers(path: Path, *, home: Path, runtime_dir: str | None) -> str:
    """`path` with the home folder written `%h` and the runtime folder `%t` (quoted otherwise)."""
    text = str(path)
    for prefix, specifier in ((runtime_dir, "%t"), (str(home), "%h")):
        if prefix and (text == prefix or text.startswith(prefix.rstrip("/") + "/")):
            return specifier + quote_arg(text[len(prefix.rstrip("/")):])
    return quote_arg(text)


def command_line(args: Iterable[str]) -> str:
    return " ".join(quote_arg(str(a)) for a in args)


def environment_line(name: str, value: str) -> str:
    assignment = f"{name}={value}".replace("%", "%%")
    if re.search(r"[\s\"'\\]", assignment):
        assignment = '"' + assignment.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"Environment={assignment}"


def write_unit(path: Path, text: str) -> None:
    """Unit files are world-readable configuration: 0644, replaced atomically."""
    from branchpy_telemetry.client.infra.atomic_write import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text.encode(), mode=0o644)


def run_systemctl(command: list[str], *, hint: str) -> None:
    """Run `systemctl …`; any failure is a ServiceInstallError naming the command and its last line."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=SYSTEMCTL_TIMEOUT_S)
    except FileNotFoundError:
        raise ServiceInstallError("systemctl is not installed: this system does not run systemd",
                                  hint=hint) from None
    except subprocess.TimeoutExpired:
        raise ServiceInstallError(f"`{' '.join(command)}` did not finish in {SYSTEMCTL_TIMEOUT_S:g}s",
                                  hint=hint) from None
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        reason = lines[-1] if lines else f"exit code {done.returncode}"
        raise ServiceInstallError(f"`{' '.join(command)}` failed: {reason}", hint=hint)
