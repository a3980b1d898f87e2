"""Bounds on the shape of what a client sends, checked before anything walks it.

- JSON nesting: a body nested deeper than MAX_JSON_DEPTH is a 400
  `json_too_deep`. The decoder itself stops at the interpreter's recursion
  limit (RecursionError, caught here); what decodes is then measured without
  recursion, so no later walk of it can exhaust the stack.
- Attributes: an event with more than MAX_ATTRS_PER_EVENT attrs, or an attr
  key longer than MAX_ATTR_KEY_LENGTH, is a 422 `limit_exceeded` whose
  details name the pointer and the rule, never the key.
"""

from __future__ import annotations

import msgspec

from branchpy_telemetry.backend.errors import BadJsonError, JsonTooDeepError, LimitExceededError
from branchpy_telemetry.client.contracts.limits import (
    MAX_ATTR_KEY_LENGTH,
    MAX_ATTRS_PER_EVENT,
    MAX_JSON_DEPTH,
)
from branchpy_telemetry.client.contracts.schema import TelemetryPackage

MAX_REPORTED = 100


def decode_json_bounded(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> object:
    """The body as builtins, or BadJsonError / JsonTooDeepError."""
    try:
        value = msgspec.json.decode(body)
    except RecursionError:
        raise _too_deep(max_depth) from None
    except msgspec.DecodeError as exc:
        raise BadJsonError(f"the body is not valid JSON: {exc}",
                           hint="the package must be one UTF-8 JSON object") from None
    if json_depth_exceeds(value, max_depth):
        raise _too_deep(max_depth)
    return value


def json_depth_exceeds(value: object, max_depth: int) -> bool:
    """True when containers nest more than `max_depth` levels (a scalar is depth 0)."""
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if type(node) is dict:
            children = node.values()
        elif type(node) is list:
            children = node
        else:
            continue
        depth += 1
        if depth > max_depth:
            return True
        stack.extend((child, depth) for child in children if type(child) in (dict, list))
    return False


def _too_deep(max_depth: int) -> JsonTooDeepError:
    return JsonTooDeepError(f"the JSON body nests deeper than {max_depth} levels",
                            details={"max_depth": max_depth},
                            hint="a telemetry package nests 5 levels; send one built by the exporter")


def check_package_limits(package: TelemetryPackage) -> None:
    """422 `limit_exceeded` when an event carries too many attrs or too long an attr key."""
    all_attrs = [event.attrs for event in package.summary.events]
    if not all_attrs:
        return
    too_many = max(map(len, all_attrs)) > MAX_ATTRS_PER_EVENT
    long_keys = {key for key in set().union(*all_attrs) if len(key) > MAX_ATTR_KEY_LENGTH}
    if not too_many and not long_keys:
        return  # the common case: two passes in C over the package, no pointers built
    findings: list[dict] = []
    for i, attrs in enumerate(all_attrs):
        pointer = f"/summary/events/{i}/attrs"
        if len(attrs) > MAX_ATTRS_PER_EVENT:
            findings.append({"pointer": pointer, "rule": "max_attrs_per_event", "limit": MAX_ATTRS_PER_EVENT})
        if long_keys and not long_keys.isdisjoint(attrs):
            findings.append({"pointer": pointer, "rule": "max_attr_key_length", "limit": MAX_ATTR_KEY_LENGTH})
    raise LimitExceededError(
        f"the package exceeds a size limit at {len(findings)} place(s); keys are not echoed",
        details=findings[:MAX_REPORTED],
        hint=f"at most {MAX_ATTRS_PER_EVENT} attrs per event, keys of at most "
             f"{MAX_ATTR_KEY_LENGTH} characters")
