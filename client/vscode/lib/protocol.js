'use strict';
// The bridge's message types as the client sees them: which ones may take long
// (progress re-arms their timeout), which ones carry the caller's consent, and
// the one error class every failure becomes.

const SECOND = 1000;
const QUICK_TIMEOUT_MS = 30 * SECOND; // above the bridge's own worst case (3 tries of 5 s + a daemon start)
const LONG_TIMEOUT_MS = 10 * 60 * SECOND; // without progress for this long, a long request fails

// Message type -> {command: the daemon command it runs, long: may take minutes}; the same as the
// table in client/contracts/commands.py (tests/e2e/test_node_client.py compares them).
const MESSAGE_TYPES = Object.freeze({
  'telemetry.status': { command: 'status', long: false },
  'telemetry.export': { command: 'export', long: true },
  'telemetry.preview': { command: 'preview', long: true },
  'telemetry.upload': { command: 'upload', long: true },
  'telemetry.sync': { command: 'sync', long: true },
  'telemetry.setMode': { command: 'mode', long: false },
  'telemetry.getConfig': { command: 'config.get', long: false },
  'telemetry.setConfig': { command: 'config.set', long: false },
  'telemetry.rotate': { command: 'rotate', long: true }, // waits for a write in flight (up to 30 s)
  'telemetry.history': { command: 'history', long: false },
  'telemetry.purge': { command: 'purge', long: true },
  'telemetry.catalog': { command: 'catalog', long: false },
});

// Requests that carry the caller's consent: deliveries, and status (which reports who blocks them).
const CONSENT_TYPES = new Set(['telemetry.status', 'telemetry.upload', 'telemetry.sync', 'telemetry.setMode']);
const CONSENT_SOURCE = 'VS Code telemetry setting';
const PROGRESS_TYPE = 'telemetry.progress';

function defaultTimeoutMs(type) {
  const spec = MESSAGE_TYPES[type];
  return spec && spec.long ? LONG_TIMEOUT_MS : QUICK_TIMEOUT_MS;
}

/**
 * A failed request. `code` is stable: the daemon's and the bridge's codes
 * (bad_arguments, consent_withdrawn, daemon_unavailable, …) or the client's own
 * (bridge_exited, bridge_unavailable, timeout, disposed, unknown_command, invalid_message).
 */
class TelemetryError extends Error {
  constructor(code, message, { hint, details, type } = {}) {
    super(message);
    this.name = 'TelemetryError';
    this.code = code;
    if (hint !== undefined) this.hint = hint;
    if (details !== undefined) this.details = details;
    if (type !== undefined) this.type = type;
  }

  /** From a failed result's payload (`{code, message, hint?, details?}`). */
  static fromPayload(payload, type) {
    const body = payload && typeof payload === 'object' ? payload : {};
    const code = typeof body.code === 'string' ? body.code : 'internal_error';
    const message = typeof body.message === 'string' ? body.message : `${type} failed`;
    return new TelemetryError(code, message, { hint: body.hint, details: body.details, type });
  }

  /** The payload of a failed result message (what the bridge would have sent). */
  toPayload() {
    const payload = { code: this.code, message: this.message };
    if (this.hint !== undefined) payload.hint = this.hint;
    if (this.details !== undefined) payload.details = this.details;
    return payload;
  }
}

module.exports = {
  CONSENT_SOURCE,
  CONSENT_TYPES,
  LONG_TIMEOUT_MS,
  MESSAGE_TYPES,
  PROGRESS_TYPE,
  QUICK_TIMEOUT_MS,
  TelemetryError,
  defaultTimeoutMs,
};
