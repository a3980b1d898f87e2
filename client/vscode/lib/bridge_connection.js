'use strict';
// One `branchpy-telemetry-bridge` child process: newline-delimited JSON on its
// stdin/stdout, replies matched to requests by id, a timeout per request
// (re-armed by the request's progress), and a fresh process on the next request
// when the bridge dies — requests in flight then fail with `bridge_exited`.

const { spawn } = require('node:child_process');
const { randomUUID } = require('node:crypto');
const { EventEmitter } = require('node:events');

const { PROGRESS_TYPE, TelemetryError, defaultTimeoutMs } = require('./protocol');

const STDERR_TAIL_CHARS = 4000;
const DISPOSE_GRACE_MS = 3000;

class BridgeConnection extends EventEmitter {
  /**
   * @param {object} options
   * @param {string} options.command  the bridge executable
   * @param {string[]} [options.args]
   * @param {NodeJS.ProcessEnv} [options.env]
   * @param {string} [options.cwd]
   * @param {number} [options.maxRestarts]  exits within `restartWindowMs` before giving up for a while
   * @param {number} [options.restartWindowMs]
   */
  constructor({ command, args = [], env, cwd, maxRestarts = 5, restartWindowMs = 60000 }) {
    super();
    this.command = command;
    this.args = args;
    this.env = env;
    this.cwd = cwd;
    this.maxRestarts = maxRestarts;
    this.restartWindowMs = restartWindowMs;
    this._child = null;
    this._pending = new Map(); // id -> {type, resolve, reject, timer, timeoutMs, onProgress}
    this._exits = []; // times of recent exits (crash-loop guard)
    this._stderrTail = '';
    this._disposed = false;
  }

  /** The running bridge's pid, or undefined. */
  get pid() {
    return this._child ? this._child.pid : undefined;
  }

  /** Requests sent and not yet answered. */
  get inFlight() {
    return this._pending.size;
  }

  /**
   * Send `{id, type, payload}` and resolve with the bridge's answer (`ok` true or false).
   * Rejects only with a TelemetryError of the client's own: timeout, bridge_exited,
   * bridge_unavailable, disposed.
   */
  request(type, payload, { timeoutMs, onProgress } = {}) {
    if (this._disposed) {
      return Promise.reject(new TelemetryError('disposed', 'the telemetry client was disposed', { type }));
    }
    let child;
    try {
      child = this._ensureStarted();
    } catch (error) {
      return Promise.reject(error);
    }
    const id = randomUUID();
    const message = { id, type, payload };
    return new Promise((resolve, reject) => {
      const entry = { type, resolve, reject, timer: null, timeoutMs: timeoutMs || defaultTimeoutMs(type), onProgress };
      this._pending.set(id, entry);
      this._arm(id, entry);
      this._write(child, message);
    });
  }

  /** Write one raw line to the bridge's stdin (diagnostics; answers arrive as 'unmatched'). */
  writeRaw(line) {
    const child = this._ensureStarted();
    this.emit('trace', { direction: 'send', raw: line });
    child.stdin.write(line.endsWith('\n') ? line : line + '\n');
  }

  /** Fail what is in flight, close the bridge's stdin, and end it (killed after a grace period). */
  async dispose() {
    if (this._disposed) return;
    this._disposed = true;
    this._failAll(() => new TelemetryError('disposed', 'the telemetry client was disposed'));
    const child = this._child;
    if (!child) return;
    await new Promise((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), DISPOSE_GRACE_MS);
      child.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      child.stdin.end();
    });
  }

  _ensureStarted() {
    if (this._child) return this._child;
    const now = Date.now();
    this._exits = this._exits.filter((t) => now - t < this.restartWindowMs);
    if (this._exits.length >= this.maxRestarts) {
      throw new TelemetryError('bridge_unavailable',
        `the bridge exited ${this._exits.length} times within ${this.restartWindowMs / 1000}s; not restarting it yet`,
        { hint: 'see its last output in details.stderr', details: { stderr: this._stderrTail } });
    }
    const child = spawn(this.command, this.args, {
      env: this.env, cwd: this.cwd, stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true,
    });
    this._child = child;
    this._stderrTail = '';
    let buffered = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      buffered += chunk;
      let cut;
      while ((cut = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, cut);
        buffered = buffered.slice(cut + 1);
        if (line.trim()) this._receive(line);
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      this._stderrTail = (this._stderrTail + chunk).slice(-STDERR_TAIL_CHARS);
      this.emit('stderr', chunk);
    });
    child.stdin.on('error', () => {}); // EPIPE when the bridge is gone: 'close' fails the requests
    let failure = null;
    child.on('error', (error) => { // could not spawn (ENOENT, EACCES), or could not kill
      failure = error;
      if (child.pid === undefined) this._ended(child, null, null, error);
    });
    child.on('close', (code, signal) => this._ended(child, code, signal, failure));
    child.on('spawn', () => this.emit('spawn', { pid: child.pid }));
    return child;
  }

  _ended(child, code, signal, error) {
    if (this._child !== child) return; // already handled
    this._child = null;
    this._exits.push(Date.now());
    const stderr = this._stderrTail;
    if (error && child.pid === undefined) {
      this._failAll((entry) => new TelemetryError('bridge_unavailable',
        `cannot start the bridge ${JSON.stringify(this.command)}: ${error.message}`,
        { hint: 'set bridgePath to the branchpy-telemetry-bridge of your BranchPy installation',
          type: entry.type }));
    } else {
      const how = signal ? `was killed (${signal})` : `exited with code ${code}`;
      this._failAll((entry) => new TelemetryError('bridge_exited',
        `the bridge ${how} before answering ${entry.type}; it is started again on the next request`,
        { hint: 'the request may still have run in the daemon: check telemetry.status or telemetry.history '
            + 'before repeating a delivery', details: { code, signal, stderr }, type: entry.type }));
    }
    this.emit('exit', { code, signal, pid: child.pid });
  }

  _write(child, message) {
    this.emit('trace', { direction: 'send', message });
    child.stdin.write(JSON.stringify(message) + '\n');
  }

  _receive(line) {
    let message;
    try {
      message = JSON.parse(line);
    } catch {
      this.emit('unmatched', { raw: line });
      return;
    }
    this.emit('trace', { direction: 'receive', message });
    const entry = message && this._pending.get(message.id);
    if (!entry) {
      if (message && message.type === PROGRESS_TYPE) return; // progress of a request given up on
      this.emit('unmatched', { message });
      return;
    }
    if (message.type === PROGRESS_TYPE) {
      this._arm(message.id, entry);
      if (entry.onProgress) entry.onProgress(message);
      return;
    }
    clearTimeout(entry.timer);
    this._pending.delete(message.id);
    entry.resolve(message);
  }

  _arm(id, entry) {
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => {
      if (this._pending.get(id) !== entry) return;
      this._pending.delete(id);
      entry.reject(new TelemetryError('timeout',
        `no answer to ${entry.type} within ${entry.timeoutMs / 1000}s`,
        { hint: 'the daemon may be busy or stuck; see telemetry.status and the daemon log', type: entry.type }));
    }, entry.timeoutMs);
  }

  _failAll(makeError) {
    const entries = [...this._pending.values()];
    this._pending.clear();
    for (const entry of entries) {
      clearTimeout(entry.timer);
      entry.reject(makeError(entry));
    }
  }
}

module.exports = { BridgeConnection };
