'use strict';
// The event record (one JSONL line, schemas/event-record.schema.json) for the
// extension's own events: validated like the Python emitter validates them,
// stamped with a UUIDv7 `event_id` and a millisecond UTC `ts`, source "extension".

const { randomFillSync, randomUUID } = require('node:crypto');

const EVENT_VERSION = 1;
const CATEGORIES = Object.freeze(['command', 'feature', 'error', 'performance', 'session', 'system']);
const MAX_NAME_CHARS = 200;
const MAX_DURATION_MS = 1e12;
const MAX_LINE_BYTES = 64 * 1024;
const FIELDS = new Set(['category', 'name', 'duration_ms', 'status', 'session_id', 'correlation_id', 'error', 'attrs']);

/** A bad event: the caller's mistake, reported by `appendEvent` returning false (never thrown to it). */
class InvalidEventError extends Error {
  constructor(message) {
    super(message);
    this.name = 'InvalidEventError';
  }
}

/** A random session id in the emitter's format (32 hex digits). */
function newSessionId() {
  return randomUUID().replace(/-/g, '');
}

// Random bytes drawn 4 KiB at a time: one call to the system's generator per 409 ids.
const randomPool = Buffer.alloc(4096);
let randomOffset = randomPool.length;
const idBytes = Buffer.alloc(16);

/** A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits; sorts like the events. */
function newEventId(ms = Date.now()) {
  if (randomOffset + 10 > randomPool.length) {
    randomFillSync(randomPool);
    randomOffset = 0;
  }
  idBytes.writeUIntBE(ms, 0, 6);
  randomPool.copy(idBytes, 6, randomOffset, randomOffset + 10);
  randomOffset += 10;
  idBytes[6] = 0x70 | (idBytes[6] & 0x0f);
  idBytes[8] = 0x80 | (idBytes[8] & 0x3f);
  const hex = idBytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The JSONL line (a Buffer ending in "\n") for `event`, or an InvalidEventError.
 * `event`: {category, name, duration_ms?, status?, session_id?, correlation_id?, error?, attrs?};
 * `error` may be an Error (its name, message and string `code` are kept — the message never
 * leaves the machine: the exporter sends only a hash of its template).
 */
function encodeEventLine(event, { sessionId, now = Date.now } = {}) {
  if (!event || typeof event !== 'object' || Array.isArray(event)) {
    throw new InvalidEventError('an event must be an object');
  }
  const unknown = Object.keys(event).filter((key) => !FIELDS.has(key));
  if (unknown.length) throw new InvalidEventError(`unknown event field(s): ${unknown.sort().join(', ')}`);
  const { category, name } = event;
  if (!CATEGORIES.includes(category)) {
    throw new InvalidEventError(`invalid category ${JSON.stringify(category)}: one of ${CATEGORIES.join(', ')}`);
  }
  if (typeof name !== 'string' || !name || name.length > MAX_NAME_CHARS || name.includes('\n')) {
    throw new InvalidEventError(`invalid event name ${JSON.stringify(name)}: a non-empty single-line string `
      + `of at most ${MAX_NAME_CHARS} characters`);
  }
  const ms = now();
  const record = { v: EVENT_VERSION, event_id: newEventId(ms), ts: new Date(ms).toISOString(), category,
    source: 'extension', name };
  const duration = event.duration_ms;
  if (duration !== undefined && duration !== null) {
    if (typeof duration !== 'number' || !Number.isFinite(duration) || duration < 0 || duration > MAX_DURATION_MS) {
      throw new InvalidEventError(`invalid duration_ms ${JSON.stringify(duration)}: a number from 0 to 1e12`);
    }
    record.duration_ms = duration;
  }
  for (const field of ['status', 'correlation_id']) {
    const value = event[field];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string') throw new InvalidEventError(`invalid ${field}: expected a string`);
    record[field] = value;
  }
  const session = event.session_id === undefined || event.session_id === null ? sessionId : event.session_id;
  if (session !== undefined) {
    if (typeof session !== 'string') throw new InvalidEventError('invalid session_id: expected a string');
    record.session_id = session;
  }
  if (event.error !== undefined && event.error !== null) record.error = errorInfo(event.error);
  if (event.attrs !== undefined && event.attrs !== null) {
    if (typeof event.attrs !== 'object' || Array.isArray(event.attrs)) {
      throw new InvalidEventError('invalid attrs: expected an object');
    }
    if (Object.keys(event.attrs).length) record.attrs = event.attrs;
  }
  let text;
  try {
    text = JSON.stringify(record);
  } catch (error) {
    throw new InvalidEventError(`cannot encode the event: ${error.message}`);
  }
  const line = Buffer.from(text + '\n', 'utf8');
  if (line.length > MAX_LINE_BYTES) {
    throw new InvalidEventError(`event line of ${line.length} bytes > ${MAX_LINE_BYTES}`);
  }
  return line;
}

function errorInfo(error) {
  if (error instanceof Error) {
    const info = { type: error.name, message: error.message };
    if (typeof error.code === 'string') info.code = error.code;
    return info;
  }
  if (typeof error !== 'object' || Array.isArray(error)) {
    throw new InvalidEventError('invalid error: an Error or {code?, type?, message?}');
  }
  const info = {};
  for (const [key, value] of Object.entries(error)) {
    if (!['code', 'type', 'message'].includes(key)) throw new InvalidEventError(`unknown error field ${key}`);
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string') throw new InvalidEventError(`invalid error.${key}: expected a string`);
    info[key] = value;
  }
  return info;
}

module.exports = {
  CATEGORIES,
  InvalidEventError,
  MAX_LINE_BYTES,
  encodeEventLine,
  newEventId,
  newSessionId,
};
