"""The command table (client/contracts/commands.py) is the one list: every other part derives from it."""

from __future__ import annotations

import pytest

from branchpy_telemetry.client.contracts import commands
from branchpy_telemetry.client.contracts.commands import (
    COMMAND_BY_BRIDGE_TYPE,
    COMMAND_NAMES,
    COMMANDS,
    Command,
    check_covers,
    check_table,
    timeout_for,
)


def test_daemon_registry_and_bridge_schema_cover_exactly_the_table():
    from branchpy_telemetry.daemon.control.bridge_schema import PAYLOADS
    from branchpy_telemetry.daemon.control.handlers import REGISTRY

    assert set(REGISTRY) == set(COMMAND_NAMES)
    assert set(PAYLOADS) == set(COMMAND_BY_BRIDGE_TYPE.values())


def test_a_registry_that_misses_or_adds_a_command_is_refused():
    with pytest.raises(LookupError, match="missing rotate"):
        check_covers([n for n in COMMAND_NAMES if n != "rotate"], "registry")
    with pytest.raises(LookupError, match="not in the command table: launch"):
        check_covers([*COMMAND_NAMES, "launch"], "registry")


def test_a_background_command_with_the_quick_timeout_is_refused():
    with pytest.raises(ValueError, match="rotate"):
        check_table((Command("rotate", "quick", background=True),))
    with pytest.raises(ValueError, match="listed twice"):
        check_table((Command("status"), Command("status")))


def test_every_command_the_daemon_runs_in_the_background_gets_the_long_timeout():
    """A client that waits only the quick budget would report "daemon unavailable" while the
    daemon is still at work (rotate waits up to 30 s for a write in flight)."""
    from branchpy_telemetry.client.emitter.spool import ROTATE_LOCK_TIMEOUT_S

    for command in COMMANDS:
        if command.background:
            assert timeout_for(command.name) == commands.TIMEOUT_SECONDS["long"], command.name
    assert timeout_for("rotate") > ROTATE_LOCK_TIMEOUT_S
    assert timeout_for("status") == timeout_for("no-such-command") == commands.TIMEOUT_SECONDS["quick"]



def test_the_progress_column_names_exactly_the_handlers_that_publish_progress():
    """A handler publishes progress through `ctx.progress`; the table (and the bridge schema's
    description of `telemetry.progress`, which derives from it) must say which ones do."""
    import inspect

    from branchpy_telemetry.daemon.control.bridge_schema import PROGRESS_COMMANDS
    from branchpy_telemetry.daemon.control.handlers import REGISTRY

    publishing = {name for name, handler in REGISTRY.items()
                  if "ctx.progress(" in inspect.getsource(inspect.getmodule(handler))}
    assert publishing == {command.name for command in COMMANDS if command.progress}
    assert set(PROGRESS_COMMANDS) == publishing
