"""Fixed formats: the shape of every field the system writes itself.

Ids, hashes, timestamps, enums, platform fields and versions can only hold
what the emitter and the exporter put there, so nothing else may travel in
them. The package schema (`schema.py`) carries these patterns, so the server
refuses a package whose fixed-format field does not match (checked in C while
decoding); the exporter produces nothing else. A caller-supplied session or
correlation id in another form is replaced by a keyed hash (`keyed_ref_id`),
never copied.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import re
import sys
from typing import Annotated, Literal

import msgspec

UUID_REGEX = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
# session and correlation ids: a UUID, or 32 lower-case hex digits (a uuid4().hex, or a keyed hash)
REF_ID_REGEX = "^(?:[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
ERROR_HASH_REGEX = "^sha256:[0-9a-f]{64}$"
SHA256_HEX_REGEX = "^[0-9a-f]{64}$"
# RFC 3339 in UTC, as the emitter writes it (fraction optional, `Z` only)
TIMESTAMP_REGEX = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?Z$"
# 1.2.3, v2.0.0-rc.1, 3.13.0b2, 0.4.dev3: at most three numbers (four would fit an IPv4 address) and
# only a known pre-release or development label (a free label or a local `+tail` could carry a name)
VERSION_REGEX = (r"^v?(?:0|[1-9][0-9]{0,8})(?:\.(?:0|[1-9][0-9]{0,8})){0,2}"
                 r"(?:[-.]?(?:a|b|c|rc|alpha|beta|pre|preview|dev|post)(?:\.?[0-9]{1,6})?)?$")
# the OS families Python reports (platform.system(), lower-cased): a free word could be a user's name
OS_NAMES: tuple[str, ...] = ("linux", "darwin", "windows", "freebsd", "openbsd", "netbsd", "dragonfly",
                             "sunos", "aix", "cygwin", "msys", "haiku", "android", "ios", "emscripten",
                             "wasi", "unknown")
OS_REGEX = "^(?:" + "|".join(OS_NAMES) + ")$"
# numbers only (a kernel's local tail can name a host), no leading zeros (a dotted phone number)
OS_RELEASE_REGEX = "^(?:0|[1-9][0-9]{0,8})(?:\\.(?:0|[1-9][0-9]{0,8})){0,2}$"
ARCH_REGEX = "^[A-Za-z0-9_]{1,16}$"  # x86_64, arm64, aarch64, AMD64
CATALOG_ID_REGEX = "^[a-z][a-z0-9._-]{0,63}$"
CATALOG_REVISION_REGEX = "^[0-9A-Za-z][0-9A-Za-z.+_-]{0,31}$"
ERROR_TYPE_REGEX = r"^[A-Za-z_][A-Za-z0-9_]{0,63}(?:\.[A-Za-z_][A-Za-z0-9_]{0,63}){0,7}$"

STATUSES: tuple[str, ...] = ("ok", "error", "cancelled", "timeout", "skipped")
Status = Literal["ok", "error", "cancelled", "timeout", "skipped"]

Uuid = Annotated[str, msgspec.Meta(pattern=UUID_REGEX)]
RefId = Annotated[str, msgspec.Meta(pattern=REF_ID_REGEX)]
ErrorHash = Annotated[str, msgspec.Meta(pattern=ERROR_HASH_REGEX)]
Sha256Hex = Annotated[str, msgspec.Meta(pattern=SHA256_HEX_REGEX)]
Timestamp = Annotated[str, msgspec.Meta(pattern=TIMESTAMP_REGEX)]
Version = Annotated[str, msgspec.Meta(pattern=VERSION_REGEX, max_length=64)]
OsName = Annotated[str, msgspec.Meta(pattern=OS_REGEX)]
OsRelease = Annotated[str, msgspec.Meta(pattern=OS_RELEASE_REGEX)]
Arch = Annotated[str, msgspec.Meta(pattern=ARCH_REGEX)]
CatalogId = Annotated[str, msgspec.Meta(pattern=CATALOG_ID_REGEX)]
CatalogRevision = Annotated[str, msgspec.Meta(pattern=CATALOG_REVISION_REGEX)]
ErrorType = Annotated[str, msgspec.Meta(pattern=ERROR_TYPE_REGEX)]

_UUID = re.compile(UUID_REGEX)
_REF_ID = re.compile(REF_ID_REGEX)
_VERSION = re.compile(VERSION_REGEX)
_ERROR_TYPE = re.compile(ERROR_TYPE_REGEX)
_OS_RELEASE_HEAD = re.compile(r"(?:0|[1-9][0-9]{0,8})(?:\.(?:0|[1-9][0-9]{0,8})){0,2}(?![0-9])")


def is_uuid(value: object) -> bool:
    return type(value) is str and len(value) == 36 and _UUID.match(value) is not None


def is_ref_id(value: object) -> bool:
    return type(value) is str and _REF_ID.match(value) is not None


def is_version(value: object) -> bool:
    return type(value) is str and len(value) <= 64 and _VERSION.match(value) is not None


def keyed_ref_id(value: str, key: bytes) -> str:
    """A caller-supplied id in another form, as 32 hex of HMAC-SHA256 under the install's key:
    the same id keeps grouping its events, and the id itself never leaves."""
    return hmac.new(key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:32]


def keyed_event_id(value: str, key: bytes) -> str:
    """A malformed event id as a UUID (version 8) derived from its keyed hash: re-exporting the
    same line gives the same id, so the backend still recognizes a re-delivered event."""
    digest = hmac.new(key, b"event_id\0" + value.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
    raw = bytearray(digest[:16])
    raw[6] = (raw[6] & 0x0F) | 0x80
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def os_release_numbers(release: str | None) -> str | None:
    """`6.1.0-27-amd64` -> `6.1.0`: only the leading version numbers of a release string."""
    if not release:
        return None
    match = _OS_RELEASE_HEAD.match(release)
    return match.group() if match else None


# Error types: a dotted Python name whose top-level module is public knowledge —
# a built-in exception, the standard library, or a package the catalog names. A
# user's own module is a file name (`thesis_draft.ParseError`), so it never leaves.
_BUILTIN_EXCEPTIONS = frozenset(name for name, value in vars(builtins).items()
                                if isinstance(value, type) and issubclass(value, BaseException))
_STDLIB_MODULES = frozenset(sys.stdlib_module_names)


_CLASS_NAME = re.compile("[A-Z][A-Za-z0-9]*")
_MODULE_NAME = re.compile("[a-z_][a-z0-9_]*")


def public_error_type(error_type: str | None, allowed_modules: frozenset[str] = frozenset()) -> str | None:
    """`error_type` when it may leave (see above), else None. Beyond the top-level
    module: lower-case module names, then one CamelCase class name."""
    if not error_type or len(error_type) > 200 or _ERROR_TYPE.match(error_type) is None:
        return None
    *modules, cls = error_type.split(".")
    if not modules:
        return error_type if error_type in _BUILTIN_EXCEPTIONS else None
    if modules == ["builtins"]:
        return cls if cls in _BUILTIN_EXCEPTIONS else None
    if modules[0] not in _STDLIB_MODULES and modules[0] not in allowed_modules:
        return None
    if _CLASS_NAME.fullmatch(cls) is None or not all(_MODULE_NAME.fullmatch(m) for m in modules):
        return None
    return error_type
