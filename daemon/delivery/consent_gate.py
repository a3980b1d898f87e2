"""Who may block a delivery: the caller, the daemon's environment, the config.

A delivery (`upload`, `sync`, `mode auto`, the bridge's `emit`) is refused when
consent is withdrawn by any of:
- the config: `telemetry.consent = "off"` blocks every delivery, auto mode included;
- the daemon's own environment (`DO_NOT_TRACK=1`, `BRANCHPY_TELEMETRY=off`, e.g.
  set in its systemd unit): blocks every delivery, auto mode included;
- the caller: a client whose environment (or VS Code telemetry setting, passed
  through the bridge) withdraws consent sends `consent: "off"` with its request
  and that delivery is refused.
Handlers that deliver take `ConsentArgs` as the base of their `Args`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import msgspec

from branchpy_telemetry.client.contracts.config import Config
from branchpy_telemetry.client.contracts.consent import withdrawal_source
from branchpy_telemetry.client.contracts.errors import ConsentWithdrawnError


class ConsentArgs(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The caller's consent: `consent: "off"` (with a label in `consent_source`) refuses this delivery."""

    consent: Literal["on", "off"] = "on"
    consent_source: str | None = msgspec.field(default=None)


def standing_blocker(config: Config, env: Mapping[str, str] | None = None) -> str | None:
    """What blocks every delivery (config or the daemon's environment), or None."""
    if config.telemetry.consent == "off":
        return 'the config (telemetry.consent = "off")'
    source = withdrawal_source(env)
    if source is not None:
        return f"{source} in the daemon's environment"
    return None


def delivery_blocker(config: Config, request: ConsentArgs | None = None,
                     env: Mapping[str, str] | None = None) -> str | None:
    """What blocks this delivery, or None: the standing blockers first, then the caller."""
    blocker = standing_blocker(config, env)
    if blocker is None and request is not None and request.consent == "off":
        blocker = _short(request.consent_source) or "the caller"
    return blocker


def require_consent(config: Config, request: ConsentArgs | None = None,
                    env: Mapping[str, str] | None = None) -> None:
    """Raise `consent_withdrawn` (nothing is sent) when anything blocks this delivery."""
    blocker = delivery_blocker(config, request, env)
    if blocker is not None:
        raise ConsentWithdrawnError(f"telemetry consent is withdrawn by {blocker}: nothing was sent",
                                    hint=hint_for(blocker), details={"blocked_by": blocker})


def hint_for(blocker: str) -> str:
    if blocker.startswith("the config"):
        return "turn it back on with `branchpy telemetry config set telemetry.consent on`"
    if "daemon's environment" in blocker:
        return "the daemon was started with it (systemd unit or shell); restart the daemon without it"
    return "unset DO_NOT_TRACK / BRANCHPY_TELEMETRY (or enable telemetry in VS Code) to deliver; " \
           "packages stay in the outbox"


def _short(text: str | None) -> str | None:
    """A caller-supplied label, bounded and on one line (it is echoed in replies and logs)."""
    if not text:
        return None
    return " ".join(text.split())[:120]
