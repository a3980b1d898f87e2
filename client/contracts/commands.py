"""Every control command in one table: what the CLI, the bridge and the daemon know about it.

One row per protocol command (the daemon's `cmd`, which is also the name of
its handler module in daemon/control/handlers/ and of its CLI subcommand):

- `timeout`: how long a client waits for each try of the reply. `quick`
  commands answer at once; `long` ones answer when their work is done, which
  may take minutes (an export) or a bounded wait on a lock (a rotation waits
  for the write in flight, up to the spool's rotation lock timeout).
- `background`: the daemon runs it on a worker thread, so `status` keeps
  answering meanwhile. A background command is always `long`: a client that
  gave up on the quick budget would report "daemon unavailable" while the
  daemon is busy with its job.
- `progress`: it publishes progress on the PUB socket beside the control one.
- `bridge_type`: the `telemetry.*` message type the VS Code bridge offers for
  it (None: not offered to extensions).
- `consent`: its arguments carry the caller's consent (`consent.caller_consent_args`).

The daemon's handler registry must name exactly these commands (checked when
it is built); the bridge's types, the clients' timeouts and the consent list
derive from here. The Node client (client/vscode/lib/protocol.js) keeps its
own copy of the bridge rows; a test compares it with this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TimeoutClass = Literal["quick", "long"]

# Seconds a client waits for each try of a reply (the CLI's --timeout and the
# bridge's --timeout replace them); a client makes a few tries (client/thin/ipc.py).
TIMEOUT_SECONDS: dict[TimeoutClass, float] = {"quick": 5.0, "long": 600.0}


@dataclass(frozen=True)
class Command:
    """One control command and how every part of the product treats it."""

    name: str
    timeout: TimeoutClass = "quick"
    background: bool = False
    progress: bool = False
    bridge_type: str | None = None
    consent: bool = False

    @property
    def timeout_s(self) -> float:
        """Seconds per try a client waits for this command's reply."""
        return TIMEOUT_SECONDS[self.timeout]


def _long(name: str, bridge_type: str | None, *, progress: bool = False, consent: bool = False) -> Command:
    """A command the daemon runs in the background and clients wait long for."""
    return Command(name, "long", background=True, progress=progress, bridge_type=bridge_type,
                   consent=consent)


# In the order the bridge lists its types (its schema and its hints follow it).
COMMANDS: tuple[Command, ...] = (
    Command("status", bridge_type="telemetry.status", consent=True),
    _long("export", "telemetry.export", progress=True),
    _long("preview", "telemetry.preview"),
    _long("upload", "telemetry.upload", progress=True, consent=True),
    Command("mode", bridge_type="telemetry.setMode", consent=True),
    Command("config.get", bridge_type="telemetry.getConfig"),
    Command("config.set", bridge_type="telemetry.setConfig"),
    _long("rotate", "telemetry.rotate"),
    Command("history", bridge_type="telemetry.history"),
    _long("sync", "telemetry.sync", progress=True, consent=True),
    _long("purge", "telemetry.purge"),
    Command("catalog", bridge_type="telemetry.catalog"),
    Command("emit", consent=True),
    Command("shutdown"),
    Command("schema"),
)

COMMAND_BY_NAME: dict[str, Command] = {command.name: command for command in COMMANDS}
COMMAND_NAMES: tuple[str, ...] = tuple(COMMAND_BY_NAME)
# Bridge message type -> the daemon command it runs.
COMMAND_BY_BRIDGE_TYPE: dict[str, str] = {c.bridge_type: c.name for c in COMMANDS if c.bridge_type}
BACKGROUND_COMMANDS: frozenset[str] = frozenset(c.name for c in COMMANDS if c.background)
CONSENT_COMMANDS: frozenset[str] = frozenset(c.name for c in COMMANDS if c.consent)


def timeout_for(name: str) -> float:
    """Seconds per try a client waits for `name` (quick for a name this table does not know:
    the daemon answers that one at once, with `unknown_command`)."""
    command = COMMAND_BY_NAME.get(name)
    return command.timeout_s if command is not None else TIMEOUT_SECONDS["quick"]


def check_table(commands: tuple[Command, ...] = COMMANDS) -> None:
    """Raise ValueError when the table contradicts itself (a name or bridge type twice,
    a background command with a quick timeout)."""
    names = [c.name for c in commands]
    types = [c.bridge_type for c in commands if c.bridge_type]
    for what, values in (("command", names), ("bridge type", types)):
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            raise ValueError(f"{what} listed twice in the command table: {', '.join(twice)}")
    quick_background = [c.name for c in commands if c.background and c.timeout != "long"]
    if quick_background:
        raise ValueError("background commands need the long timeout (clients would give up on them): "
                         + ", ".join(quick_background))


def check_covers(names, what: str) -> None:
    """Raise LookupError unless `names` (e.g. a handler registry's keys) are exactly the table's commands."""
    missing = sorted(set(COMMAND_NAMES) - set(names))
    extra = sorted(set(names) - set(COMMAND_NAMES))
    if missing or extra:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + \
                ([f"not in the command table: {', '.join(extra)}"] if extra else [])
        raise LookupError(f"{what} does not match client/contracts/commands.py: {'; '.join(parts)}")


check_table()
