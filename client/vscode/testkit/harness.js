'use strict';
// Real processes for the Node tests: a private BRANCHPY_TELEMETRY_HOME, a real
// daemon (`branchpy-telemetryd`), a real backend (`branchpy-telemetry-backend
// serve` on SQLite, a free port), and TelemetryClients that spawn the real
// bridge. Every message a client sends or receives is checked against the
// published schemas (and logged for the Python side when BRANCHPY_PROTOCOL_LOG
// names a file). Executables come from BRANCHPY_TEST_BIN (the pytest wrapper
// sets it) or the repository's .venv/bin.

const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const { TelemetryClient, schemaPaths } = require('..');
const { validate } = require('./schema_validator');

const REPO = path.resolve(__dirname, '..', '..', '..');
const BIN = process.env.BRANCHPY_TEST_BIN || path.join(REPO, '.venv', 'bin');
const PROTOCOL = JSON.parse(fs.readFileSync(schemaPaths.bridgeProtocol, 'utf8'));
const EVENT_RECORD = JSON.parse(fs.readFileSync(schemaPaths.eventRecord, 'utf8'));

function bin(name) {
  const file = path.join(BIN, name);
  assert.ok(fs.existsSync(file), `${file} is missing: install the package (pip install -e .) or set BRANCHPY_TEST_BIN`);
  return file;
}

/** Poll `check` (async) until it returns a truthy value; fail after `timeoutMs`. */
async function waitFor(check, { timeoutMs = 20000, stepMs = 20, what = 'a condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, stepMs));
  }
}

/** A private telemetry home; `cleanup()` removes it. */
function makeHome(t) {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'bpt-node-'));
  const env = { ...process.env, BRANCHPY_TELEMETRY_HOME: home, PYTHONUNBUFFERED: '1' };
  for (const name of Object.keys(env)) {
    if (name === 'DO_NOT_TRACK' || (name.startsWith('BRANCHPY_TELEMETRY') && name !== 'BRANCHPY_TELEMETRY_HOME')) {
      delete env[name];
    }
  }
  const socket = path.join(home, 'run', 'control.sock');
  assert.ok(socket.length < 100, `socket path too long for this harness: ${socket}`);
  const ctx = { home, env, socket, eventsDir: path.join(home, 'extension'), processes: [], clients: [] };
  if (t) t.after(() => cleanup(ctx));
  return ctx;
}

async function cleanup(ctx) {
  for (const client of ctx.clients) await client.dispose();
  for (const proc of ctx.processes.reverse()) await stopProcess(proc);
  fs.rmSync(ctx.home, { recursive: true, force: true });
}

function socketAccepts(file) {
  return new Promise((resolve) => {
    const probe = net.connect({ path: file });
    probe.once('connect', () => { probe.destroy(); resolve(true); });
    probe.once('error', () => resolve(false));
  });
}

/** Start `branchpy-telemetryd` on `ctx.home` (it exits by itself after 5 idle minutes, should a test leave it behind); resolves once it listens. */
async function startDaemon(ctx) {
  fs.mkdirSync(path.join(ctx.home, 'log'), { recursive: true });
  const log = fs.openSync(path.join(ctx.home, 'log', 'daemon-test.log'), 'a');
  const proc = spawn(bin('branchpy-telemetryd'), ['--idle-timeout', '300'],
    { env: ctx.env, stdio: ['ignore', log, log] });
  fs.closeSync(log);
  ctx.processes.push(proc);
  let exited = null;
  proc.once('exit', (code, signal) => { exited = { code, signal }; });
  await waitFor(async () => {
    if (exited) throw new Error(`the daemon exited during start: ${JSON.stringify(exited)}`);
    return socketAccepts(ctx.socket);
  }, { what: 'the daemon to listen' });
  return proc;
}

/** SIGTERM (then SIGKILL after 10 s) and wait for the exit. */
function stopProcess(proc, signal = 'SIGTERM') {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10000);
    proc.once('exit', () => { clearTimeout(timer); resolve(); });
    proc.kill(signal);
  });
}

/** A real backend on SQLite and a free port, with an ingest key: {api, key}. */
async function startBackend(ctx) {
  const db = `sqlite:///${path.join(ctx.home, 'backend.db')}`;
  const created = execFileSync(bin('branchpy-telemetry-backend'),
    ['keys', 'create', '--scope', 'ingest', '--db', db, '--json'],
    { env: ctx.env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const { key } = JSON.parse(created.trim().split('\n').pop());
  const log = fs.openSync(path.join(ctx.home, 'backend.log'), 'a');
  const proc = spawn(bin('branchpy-telemetry-backend'), ['serve', '--port', '0', '--db', db, '--workers', '2'],
    { env: ctx.env, stdio: ['ignore', 'pipe', log], cwd: ctx.home });
  fs.closeSync(log);
  ctx.processes.push(proc);
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`backend did not start: ${out}`)), 20000);
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /serving on (\S+)/.exec(out);
      if (match) { clearTimeout(timer); resolve(match[1]); }
    });
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`backend exited ${code}: ${out}`)); });
  });
  proc.stdout.resume();
  return { api: `${url}/api/telemetry`, key };
}

/** Schema errors of one protocol message (sent: a request; received: result, progress or error). */
function protocolErrors(direction, message) {
  const defs = PROTOCOL.$defs;
  const type = message && message.type;
  let name;
  if (direction === 'send') name = type;
  else if (type === 'telemetry.progress' || (typeof type === 'string' && defs[type])) name = type;
  else name = 'telemetry.error';
  if (!defs[name] || (direction === 'send' && !defs[`${name}.result`])) return [`no schema for ${direction} ${type}`];
  return validate(PROTOCOL, defs[name], message, '');
}

function eventRecordErrors(record) {
  return validate(EVENT_RECORD, EVENT_RECORD, record, '');
}

/**
 * A TelemetryClient on the real bridge. `messages` collects {direction, message} for every
 * message; `schemaErrors` every schema failure (assert it stays empty).
 */
function makeClient(ctx, { enabled = () => true, bridgeArgs = ['--no-start'], ...options } = {}) {
  const client = new TelemetryClient({
    bridgePath: bin('branchpy-telemetry-bridge'), bridgeArgs, env: ctx.env, eventsDir: ctx.eventsDir,
    isTelemetryEnabled: enabled, ...options,
  });
  client.messages = [];
  client.schemaErrors = [];
  const logFile = process.env.BRANCHPY_PROTOCOL_LOG;
  client.on('trace', ({ direction, message, raw }) => {
    if (message === undefined) return; // a raw line written on purpose
    client.messages.push({ direction, message });
    for (const error of protocolErrors(direction, message)) {
      client.schemaErrors.push(`${direction} ${JSON.stringify(message).slice(0, 300)}: ${error}`);
    }
    if (logFile) fs.appendFileSync(logFile, JSON.stringify({ direction, message }) + '\n');
  });
  ctx.clients.push(client);
  return client;
}

/** Every event record in the JSONL files of `dir` (all lines must parse). */
function readEventLines(dir) {
  const records = [];
  for (const name of fs.readdirSync(dir).sort()) {
    if (!name.endsWith('.jsonl')) continue;
    const text = fs.readFileSync(path.join(dir, name), 'utf8');
    for (const line of text.split('\n')) if (line) records.push(JSON.parse(line));
  }
  return records;
}

/** The event ids in an exported package file (and its parts). */
function exportedEvents(result) {
  const events = [];
  for (const file of result.files) events.push(...JSON.parse(fs.readFileSync(file, 'utf8')).summary.events);
  return events;
}

module.exports = {
  PROTOCOL, REPO, bin, cleanup, eventRecordErrors, exportedEvents, makeClient, makeHome, protocolErrors,
  readEventLines, startBackend, startDaemon, stopProcess, waitFor,
};
