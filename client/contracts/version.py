"""Versions from installed package metadata: the one place that reads them.

`package_version()` is this package's version (the daemon's `status`, the
uploader's User-Agent); `installed_version(name)` any distribution's, for
the BranchPy version a package reports. Nothing spells a version by hand.
"""

from __future__ import annotations

from functools import cache
from importlib import metadata

DISTRIBUTION = "branchpy-telemetry"
UNKNOWN_VERSION = "0+unknown"  # run from a checkout that was never installed


def installed_version(distribution: str) -> str | None:
    """The installed version of `distribution`, or None when it is not installed."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


@cache
def package_version() -> str:
    """This package's version (read once per process)."""
    return installed_version(DISTRIBUTION) or UNKNOWN_VERSION


def user_agent() -> str:
    """What the uploader sends as its User-Agent: `branchpy-telemetry/VERSION`."""
    return f"{DISTRIBUTION}/{package_version()}"
