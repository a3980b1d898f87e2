"""`setup_logging()`: called once per entry point, in `main()`.

structlog events, and the stdlib loggers (apscheduler, werkzeug, waitress,
urllib3) routed through the same ProcessorFormatter, go to one place:
- stderr by default. `log_format` "auto" picks plain text for a person at a
  terminal and JSON (one object per line) for everything else (pipes,
  files, services). Under systemd (stderr is the journal: `JOURNAL_STREAM`
  names it) each JSON line starts with its syslog priority (`<3>` … `<7>`),
  so `journalctl -p warning` filters by level.
- or a file that rotates by size (`log_file`, client/infra/log_file.py): the
  daemon's log when the CLI started it.

What a person at a terminal sees by default is decided by the entry point
(`default_level`): warnings and errors only, never a line per request.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TextIO

import structlog

LOG_FORMATS = ("auto", "json", "text")
LOG_LEVELS = ("debug", "info", "warning", "error")
# syslog priorities journald reads from a `<N>` prefix (sd-daemon(3))
JOURNAL_PRIORITY = {"critical": 2, "exception": 3, "error": 3, "warning": 4, "info": 6, "debug": 7}
# stdlib loggers that speak too much for their worth: waitress' "Task queue depth is N" warns whenever
# a page loads several files at once (a queue of 2 is normal; GET /metrics shows real saturation)
QUIETED = {"urllib3": logging.WARNING, "apscheduler.executors.default": logging.WARNING,
           "waitress.queue": logging.ERROR}


def is_terminal(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stderr
    return bool(hasattr(stream, "isatty") and stream.isatty())


def default_level(*, service: bool, stream: TextIO | None = None) -> str:
    """What to log when the user did not say: a long-running service not at a terminal logs
    `info` (its requests and runs, for the journal); a person at a terminal, and every one-shot
    command, sees only `warning` and worse, so command output is never mixed with log lines."""
    return "info" if service and not is_terminal(stream) else "warning"


def writes_to_journal(stream: TextIO) -> bool:
    """True when `stream` is the systemd journal's stream (JOURNAL_STREAM=device:inode matches)."""
    marker = os.environ.get("JOURNAL_STREAM", "")
    device, _, inode = marker.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (int(device), int(inode))


def setup_logging(level: str = "info", *, log_format: str = "auto", stream: TextIO | None = None,
                  log_file: Path | None = None) -> None:
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log_format must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
    stream = stream or sys.stderr
    if log_file is not None:
        from branchpy_telemetry.client.infra.log_file import RotatingPrivateLog

        handler: logging.Handler = RotatingPrivateLog(log_file)
        terminal = journal = False
    else:
        handler = logging.StreamHandler(stream)
        terminal, journal = is_terminal(stream), writes_to_journal(stream)
    text = log_format == "text" or (log_format == "auto" and terminal)
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer = structlog.dev.ConsoleRenderer(colors=False) if text else structlog.processors.JSONRenderer()
    if journal and not text:
        renderer = _with_journal_priority(renderer)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name, floor in QUIETED.items():
        logging.getLogger(name).setLevel(max(floor, root.level))


def _with_journal_priority(renderer):
    def render(logger, method_name, event_dict) -> str:
        priority = JOURNAL_PRIORITY.get(str(event_dict.get("level", "info")).lower(), 6)
        return f"<{priority}>" + renderer(logger, method_name, event_dict)

    return render
