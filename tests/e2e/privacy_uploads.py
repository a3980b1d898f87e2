"""The server half of the privacy acceptance suite: hostile packages, uploaded.

Every package is a clean package (`clean_package`, which uploads with 201:
the tests send such controls first) plus the planted values. A *position* is one string field of the
package schema, or a key of one of its mappings, or an unknown field:

- scalar positions (one value per package): the fixed-format fields of the
  package, its platform and catalog reference, unknown fields;
- list positions (many values per package, one per event, error sample or
  correlation id): a rejection's pointers name the entries at fault, which
  are taken out and the rest sent again, so every value ends either in a
  rejection that named it or in an accepted package;
- map positions (keys of the aggregate tables and of `redactions`): a
  rejection points at the mapping, not the key, so values are grouped by
  what the rules would say (the product's `check_string`, used only to plan
  the batches) and a batch whose rejection does not account for all of it
  is split in halves.

Nothing here decides pass or fail: the tests read `Campaign` (every answer,
and which value ended where) and the database.
"""

from __future__ import annotations

import copy
import hashlib
import http.client
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from branchpy_telemetry.client.contracts.catalog import BUNDLED_CATALOG
from branchpy_telemetry.client.contracts.privacy import check_string

MAX_BATCH = 40
MAX_DETAILS = 100  # the server reports at most this many violations


def wire_ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


TS = wire_ts(datetime.now(UTC) - timedelta(hours=1))
HASH = "sha256:" + hashlib.sha256(b"a template").hexdigest()
CATALOG_SHA = hashlib.sha256(BUNDLED_CATALOG.read_bytes()).hexdigest()


def clean_event(name: str = "analyze", attrs: dict | None = None) -> dict:
    return {"event_id": str(uuid.uuid4()), "ts": TS, "category": "command", "source": "cli", "name": name,
            "duration_ms": 12.5, "status": "error", "session_id": uuid.uuid4().hex,
            "correlation_id": uuid.uuid4().hex, "error_code": "BP-E1042", "error_hash": HASH,
            "attrs": {"files": 3} if attrs is None else attrs}


def clean_sample() -> dict:
    return {"error_hash": HASH, "error_code": "BP-E1042", "error_type": "ValueError", "name": "analyze",
            "count": 1, "first_seen": TS, "last_seen": TS}


def clean_package(events: list[dict] | None = None) -> dict:
    events = [] if events is None else events
    perf = {"count": 1, "total_ms": 12.5, "mean_ms": 12.5, "p50_ms": 12.5, "p95_ms": 12.5, "max_ms": 12.5}
    return {
        "schema_version": "1.0.0", "package_id": str(uuid.uuid4()), "export_timestamp": TS,
        "branchpy_version": "0.1.0",
        "platform": {"os": "linux", "os_release": "6.1.0", "arch": "x86_64", "python": "3.11.7"},
        "summary": {"events": events, "event_count": len(events), "window_from": None, "window_to": None,
                    "first_event_ts": TS, "last_event_ts": TS, "part": 1, "last_part": True,
                    "skipped_lines": 0, "redactions": {"keyed_id": 1},
                    "catalog": {"id": "branchpy", "revision": "2026.12.1", "sha256": CATALOG_SHA}},
        "performance_metrics": {"analyze": perf},
        "usage_statistics": {"commands": {"analyze": 1}, "features": {}, "categories": {"command": 1},
                             "sources": {"cli": 1}, "statuses": {"error": 1}},
        "errors": [clean_sample()],
        "governance_id": str(uuid.uuid4()),
        "correlation_ids": [uuid.uuid4().hex],
    }


def _setter(*path: str) -> Callable[[dict, str], None]:
    def put(package: dict, value: str) -> None:
        target = package
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return put


def _event_with(path: tuple[str, ...], name: str = "analyze") -> Callable[[str], dict]:
    def make(value: str) -> dict:
        event = clean_event(name, {} if path[0] == "attrs" else None)
        _setter(*path)(event, value)
        return event
    return make


def _event_keyed(where: str, child: object) -> Callable[[str], dict]:
    def make(value: str) -> dict:
        event = clean_event(attrs={} if where == "attrs" else None)
        (event["attrs"] if where == "attrs" else event)[value] = child
        return event
    return make


def _sample_with(key: str) -> Callable[[str], dict]:
    def make(value: str) -> dict:
        return {**clean_sample(), key: value}
    return make


@dataclass(frozen=True)
class Position:
    name: str
    kind: str  # "scalar" | "list" | "map"
    pointer: str  # where it is: the field (scalar), the list, or the mapping
    put: Callable | None = None  # scalar: put(package, value)
    entry: Callable | None = None  # list: entry(value) -> the list item holding it
    drops: str | None = None  # list: what the server's catalog counts when it drops an accepted entry


SCALARS = {
    "schema_version": ("schema_version",), "package_id": ("package_id",),
    "export_timestamp": ("export_timestamp",), "branchpy_version": ("branchpy_version",),
    "platform.os": ("platform", "os"), "platform.os_release": ("platform", "os_release"),
    "platform.arch": ("platform", "arch"), "platform.python": ("platform", "python"),
    "summary.window_from": ("summary", "window_from"), "summary.window_to": ("summary", "window_to"),
    "summary.first_event_ts": ("summary", "first_event_ts"),
    "summary.last_event_ts": ("summary", "last_event_ts"),
    "summary.catalog.id": ("summary", "catalog", "id"),
    "summary.catalog.revision": ("summary", "catalog", "revision"),
    "summary.catalog.sha256": ("summary", "catalog", "sha256"),
    "governance_id": ("governance_id",),
    "unknown_field.value": ("comment",),
    "summary.unknown_field.value": ("summary", "comment"),
}
EVENT_FIELDS = ("event_id", "ts", "category", "source", "name", "status", "session_id", "correlation_id",
                "error_code", "error_hash")
EVENT_DROPS = {"name": "undeclared_event", "error_code": "invalid_value"}

POSITIONS: list[Position] = [
    *(Position(name, "scalar", "/" + "/".join(path), put=_setter(*path)) for name, path in SCALARS.items()),
    Position("unknown_field.key", "scalar", "", put=lambda package, value: package.__setitem__(value, 1)),
    *(Position(f"events.{f}", "list", "/summary/events", entry=_event_with((f,)), drops=EVENT_DROPS.get(f))
      for f in EVENT_FIELDS),
    Position("events.attrs.enum_value", "list", "/summary/events", entry=_event_with(("attrs", "mode")),
             drops="invalid_value"),
    Position("events.attrs.int_value", "list", "/summary/events", entry=_event_with(("attrs", "files")),
             drops="invalid_value"),
    Position("events.attrs.version_value", "list", "/summary/events",
             entry=_event_with(("attrs", "engine_version"), name="doctor"), drops="invalid_value"),
    Position("events.attrs.undeclared_value", "list", "/summary/events",
             entry=_event_with(("attrs", "workspace")), drops="undeclared_attr"),
    Position("events.attrs.key", "list", "/summary/events", entry=_event_keyed("attrs", 1),
             drops="undeclared_attr"),
    Position("events.attrs.key_of_text", "list", "/summary/events", entry=_event_keyed("attrs", "fast"),
             drops="undeclared_attr"),
    Position("events.unknown_field.key", "list", "/summary/events", entry=_event_keyed("event", 1)),
    Position("events.unknown_field.value", "list", "/summary/events", entry=_event_with(("comment",))),
    *(Position(f"errors.{f}", "list", "/errors", entry=_sample_with(f))
      for f in ("error_hash", "error_code", "error_type", "name", "first_seen", "last_seen")),
    Position("correlation_ids", "list", "/correlation_ids", entry=lambda value: value),
    *(Position(f"{'.'.join(path)}.key", "map", "/" + "/".join(path))
      for path in (("performance_metrics",), ("usage_statistics", "commands"),
                   ("usage_statistics", "features"), ("usage_statistics", "categories"),
                   ("usage_statistics", "sources"), ("usage_statistics", "statuses"),
                   ("summary", "redactions"))),
]


@dataclass
class Upload:
    position: str
    values: list[int]  # corpus indexes of the values this package held
    status: int
    body: bytes
    package_id: str
    event_ids: dict[str, int] = field(default_factory=dict)  # event_id -> corpus index

    @property
    def answer(self) -> dict:
        try:
            return json.loads(self.body)
        except ValueError:
            return {}


@dataclass
class Campaign:
    uploads: list[Upload] = field(default_factory=list)
    # (corpus index, position) -> index in `uploads` of the answer that settled it
    settled: dict[tuple[int, str], int] = field(default_factory=dict)


class UploadClient:
    """POST /upload over one kept-alive connection (reopened when the server closes it)."""

    def __init__(self, api: str, key: str):
        self.url = urlsplit(api)
        self.headers = {"X-API-Key": key, "Content-Type": "application/json"}
        self.conn: http.client.HTTPConnection | None = None

    def post(self, package: dict) -> tuple[int, bytes]:
        body = json.dumps(package, ensure_ascii=False).encode("utf-8", "surrogatepass")
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=60)
            try:
                self.conn.request("POST", self.url.path + "/upload", body=body, headers=self.headers)
                response = self.conn.getresponse()
                return response.status, response.read()
            except (ConnectionError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def run_campaign(client: UploadClient, values: list[str]) -> Campaign:
    campaign = Campaign()
    for position in POSITIONS:
        if position.kind == "scalar":
            for i in range(len(values)):
                _send(client, campaign, position, [i], values)
        elif position.kind == "list":
            for start in range(0, len(values), MAX_BATCH):
                _peel(client, campaign, position, list(range(start, min(start + MAX_BATCH, len(values)))),
                      values)
        else:
            flagged = [i for i in range(len(values)) if check_string(values[i]) is not None]
            passing = [i for i in range(len(values)) if i not in set(flagged)]
            _peel(client, campaign, position, passing, values)
            for start in range(0, len(flagged), MAX_BATCH):
                _peel(client, campaign, position, flagged[start:start + MAX_BATCH], values)
    return campaign


def _peel(client: UploadClient, campaign: Campaign, position: Position, group: list[int],
          values: list[str]) -> None:
    pending = [group] if group else []
    while pending:
        group = pending.pop()
        upload = _send(client, campaign, position, group, values)
        if 200 <= upload.status < 300 or len(group) == 1:
            continue
        at_fault = _entries_at_fault(upload, position, len(group))
        if at_fault is None:
            half = len(group) // 2
            pending += [group[:half], group[half:]]
            continue
        rest = [index for n, index in enumerate(group) if n not in at_fault]
        if rest:
            pending.append(rest)


def _send(client: UploadClient, campaign: Campaign, position: Position, group: list[int],
          values: list[str]) -> Upload:
    if position.kind == "scalar":
        package = clean_package()
        position.put(package, values[group[0]])
    elif position.kind == "list":
        package = _list_package(position, [values[i] for i in group])
    else:
        package = clean_package([clean_event()])
        mapping = package
        for key in position.pointer.strip("/").split("/"):
            mapping = mapping[key]
        template = next(iter(mapping.values()), 1)
        for i in group:
            mapping[values[i]] = copy.deepcopy(template)
    event_ids = {}
    if position.pointer == "/summary/events":
        event_ids = {event["event_id"]: index for event, index in zip(package["summary"]["events"], group,
                                                                       strict=True)}
    status, body = client.post(package)
    upload = Upload(position.name, list(group), status, body, str(package.get("package_id")), event_ids)
    campaign.uploads.append(upload)
    number = len(campaign.uploads) - 1
    at_fault = _entries_at_fault(upload, position, len(group)) if status == 422 else None
    for n, index in enumerate(group):
        if 200 <= status < 300 or len(group) == 1 or (at_fault is not None and n in at_fault):
            campaign.settled[(index, position.name)] = number
    return upload


def _list_package(position: Position, values: list[str]) -> dict:
    entries = [position.entry(v) for v in values]
    if position.pointer == "/summary/events":
        return clean_package(entries)
    package = clean_package([clean_event()])
    if position.pointer == "/errors":
        package["errors"] = entries
    else:
        package["correlation_ids"] = entries
    return package


_PATH_TOKEN = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def _pointers(answer: dict) -> list[str]:
    details = answer.get("error", {}).get("details") if isinstance(answer.get("error"), dict) else None
    if isinstance(details, list):
        return [d.get("pointer", "") for d in details if isinstance(d, dict)]
    if isinstance(details, dict) and isinstance(details.get("path"), str):  # schema_invalid: `$.a.b[3]`
        return ["".join(f"/{a or b}" for a, b in _PATH_TOKEN.findall(details["path"]))]
    return []


def _entries_at_fault(upload: Upload, position: Position, size: int) -> set[int] | None:
    """Which entries of the package a 422 names; None when it does not say (split the batch)."""
    pointers = _pointers(upload.answer)
    found = set()
    for pointer in pointers:
        match = re.match(re.escape(position.pointer) + r"/(\d+)(?:/|$)", pointer)
        if match and int(match.group(1)) < size:
            found.add(int(match.group(1)))
    if found and position.kind == "list":
        return found
    if position.kind == "map" and len(pointers) == size <= MAX_DETAILS \
            and all(p == position.pointer for p in pointers):
        return set(range(size))  # one finding per key, all at the mapping: every key was refused
    return None
