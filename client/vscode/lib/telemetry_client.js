'use strict';
// What a VS Code extension uses: typed requests to the daemon through the bridge,
// the Control Center webview's `telemetry.*` messages answered as they are,
// progress as an event, the user's telemetry setting applied to every delivery,
// and the extension's own events appended to its JSONL folder.

const { EventEmitter } = require('node:events');

const { BridgeConnection } = require('./bridge_connection');
const { InvalidEventError, encodeEventLine, newSessionId } = require('./event_record');
const { ExtensionEventWriter } = require('./event_writer');
const {
  CONSENT_SOURCE, CONSENT_TYPES, MESSAGE_TYPES, PROGRESS_TYPE, TelemetryError, defaultTimeoutMs,
} = require('./protocol');

const DEFAULT_BRIDGE = 'branchpy-telemetry-bridge';

class TelemetryClient extends EventEmitter {
  /**
   * @param {object} options  see index.d.ts (TelemetryClientOptions)
   */
  constructor(options) {
    super();
    const { isTelemetryEnabled, eventsDir } = options || {};
    if (typeof isTelemetryEnabled !== 'function') {
      throw new TypeError('isTelemetryEnabled must be a function (e.g. () => vscode.env.isTelemetryEnabled)');
    }
    this._isTelemetryEnabled = isTelemetryEnabled;
    this._timeouts = { ...(options.timeouts || {}) };
    this.eventsDir = eventsDir;
    this.sessionId = options.sessionId || newSessionId();
    this._writer = new ExtensionEventWriter(eventsDir, options.segments || {});
    this._stats = { written: 0, dropped: { consent: 0, invalid: 0, write_error: 0 } };
    this._disposed = false;
    this.connection = new BridgeConnection({
      command: options.bridgePath || DEFAULT_BRIDGE,
      args: options.bridgeArgs || [],
      env: options.env,
      cwd: options.cwd,
    });
    for (const name of ['trace', 'stderr', 'exit', 'spawn', 'unmatched']) {
      this.connection.on(name, (event) => this.emit(name, event));
    }
  }

  /** Whether deliveries may go out and events may be recorded (fails closed if the callback throws). */
  telemetryEnabled() {
    try {
      return this._isTelemetryEnabled() === true;
    } catch {
      return false;
    }
  }

  /**
   * Run one bridge request; resolves with its result payload, rejects with a TelemetryError.
   * Delivery requests (and status) carry `consent: "off"` while telemetry is disabled.
   */
  async request(type, payload = {}, { timeoutMs, onProgress, progressId } = {}) {
    if (!Object.prototype.hasOwnProperty.call(MESSAGE_TYPES, type)) {
      throw new TelemetryError('unknown_command', `unknown message type ${JSON.stringify(type)}`,
        { hint: `types: ${Object.keys(MESSAGE_TYPES).join(', ')}`, type });
    }
    if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
      throw new TelemetryError('invalid_message', `${type}: the payload must be an object`, { type });
    }
    const timeout = timeoutMs || this._timeouts[type] || defaultTimeoutMs(type);
    const reply = await this.connection.request(type, this._withConsent(type, payload), {
      timeoutMs: timeout,
      onProgress: (message) => {
        const progress = { type: PROGRESS_TYPE, id: progressId === undefined ? message.id : progressId,
          payload: message.payload };
        if (onProgress) onProgress(progress);
        this.emit('progress', progress);
      },
    });
    if (reply.ok === true) return reply.payload;
    throw TelemetryError.fromPayload(reply.payload, type);
  }

  /**
   * Answer one `telemetry.*` message of the Control Center webview. Never rejects: resolves with
   * `{id, type: type + ".result", ok, payload}`; progress is emitted meanwhile as
   * `{type: "telemetry.progress", id, payload}` with the message's own id.
   */
  async handleMessage(message) {
    const id = message && typeof message === 'object' && message.id !== undefined ? message.id : null;
    const type = message && typeof message === 'object' ? message.type : undefined;
    const resultType = typeof type === 'string' && type ? type + '.result' : 'telemetry.error';
    try {
      if (typeof type !== 'string' || !type) {
        throw new TelemetryError('invalid_message', 'a message needs a "type" string');
      }
      const payload = message.payload === undefined || message.payload === null ? {} : message.payload;
      const result = await this.request(type, payload, { progressId: id });
      return { id, type: resultType, ok: true, payload: result };
    } catch (error) {
      const failure = error instanceof TelemetryError ? error
        : new TelemetryError('internal_error', `${type}: ${error && error.message}`);
      return { id, type: resultType, ok: false, payload: failure.toPayload() };
    }
  }

  status(payload = {}, options) { return this.request('telemetry.status', payload, options); }
  export(payload, options) { return this.request('telemetry.export', payload, options); }
  preview(payload, options) { return this.request('telemetry.preview', payload, options); }
  upload(payload, options) { return this.request('telemetry.upload', payload, options); }
  sync(payload = {}, options) { return this.request('telemetry.sync', payload, options); }
  setMode(payload, options) { return this.request('telemetry.setMode', payload, options); }
  getConfig(payload = {}, options) { return this.request('telemetry.getConfig', payload, options); }
  setConfig(payload, options) { return this.request('telemetry.setConfig', payload, options); }
  rotate(payload = {}, options) { return this.request('telemetry.rotate', payload, options); }
  history(payload = {}, options) { return this.request('telemetry.history', payload, options); }
  purge(payload, options) { return this.request('telemetry.purge', payload, options); }
  catalog(payload = {}, options) { return this.request('telemetry.catalog', payload, options); }

  /** Point the daemon at `eventsDir` (`telemetry.sources.extension_dir`) unless it reads it already. */
  async registerEventsDir() {
    const key = 'telemetry.sources.extension_dir';
    const current = await this.getConfig({ key });
    if (current.value === this.eventsDir) return false;
    await this.setConfig({ key, value: this.eventsDir });
    return true;
  }

  /**
   * Record one of the extension's events (source "extension") in the JSONL folder. Never throws:
   * false (and counted in `eventStats()`) when nothing was written — telemetry disabled,
   * an invalid event, or a write error.
   */
  appendEvent(event) {
    if (this._disposed) return this._drop('write_error', 'the telemetry client was disposed');
    if (!this.telemetryEnabled()) return this._drop('consent', 'telemetry is disabled in VS Code');
    let line;
    try {
      line = encodeEventLine(event, { sessionId: this.sessionId });
    } catch (error) {
      return this._drop(error instanceof InvalidEventError ? 'invalid' : 'write_error', error.message);
    }
    try {
      this._writer.appendLine(line);
    } catch (error) {
      return this._drop('write_error', error.message);
    }
    this._stats.written += 1;
    return true;
  }

  /** Counts of the events appended and dropped (by reason) by this client. */
  eventStats() {
    return { written: this._stats.written, dropped: { ...this._stats.dropped } };
  }

  /** Seal the events file, fail requests in flight, and end the bridge. */
  async dispose() {
    this._disposed = true;
    try {
      this._writer.close();
    } catch {
      // a folder that went away: nothing left to seal
    }
    await this.connection.dispose();
  }

  _withConsent(type, payload) {
    if (!CONSENT_TYPES.has(type) || this.telemetryEnabled()) return payload;
    return { ...payload, consent: 'off', consent_source: CONSENT_SOURCE };
  }

  _drop(reason, detail) {
    this._stats.dropped[reason] += 1;
    this.emit('eventDropped', { reason, detail });
    return false;
  }
}

module.exports = { TelemetryClient };
