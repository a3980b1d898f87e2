'use strict';
// appendEvent per event vs the naive raw writer: JSON.stringify of an equivalent record and one
// fs.writeSync to a kept-open O_APPEND file. Rounds alternate so machine load hits both alike.
// usage: node bench_append.js DIR EVENTS_PER_ROUND ROUNDS   -> prints one JSON object

const fs = require('node:fs');
const path = require('node:path');
const { randomUUID } = require('node:crypto');

const { TelemetryClient } = require('..');

const [dir, perRound, rounds] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const event = { category: 'command', name: 'analyze', duration_ms: 412.5, status: 'ok',
  attrs: { flag_json: true, files_scanned: 120 } };
const client = new TelemetryClient({ eventsDir: path.join(dir, 'ours'), isTelemetryEnabled: () => true });
fs.mkdirSync(path.join(dir, 'raw'), { recursive: true });
const rawFd = fs.openSync(path.join(dir, 'raw', 'events.jsonl'), 'a');
const session = randomUUID().replace(/-/g, '');

function ours() {
  for (let n = 0; n < perRound; n += 1) client.appendEvent(event);
}

function raw() {
  for (let n = 0; n < perRound; n += 1) {
    const ms = Date.now();
    const record = { v: 1, event_id: randomUUID(), ts: new Date(ms).toISOString(), category: event.category,
      source: 'extension', name: event.name, duration_ms: event.duration_ms, status: event.status,
      session_id: session, attrs: event.attrs };
    fs.writeSync(rawFd, Buffer.from(JSON.stringify(record) + '\n'));
  }
}

const times = { ours: [], raw: [] };
for (let round = 0; round < rounds; round += 1) {
  for (const [name, run] of round % 2 ? [['raw', raw], ['ours', ours]] : [['ours', ours], ['raw', raw]]) {
    const start = process.hrtime.bigint();
    run();
    times[name].push(Number(process.hrtime.bigint() - start) / 1e3 / perRound);
  }
}
client.dispose().then(() => {
  process.stdout.write(JSON.stringify({ ...times, stats: client.eventStats() }) + '\n');
});
