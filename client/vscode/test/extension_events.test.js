'use strict';
// Events appended from Node while the daemon reads, rotates and delivers: every one arrives
// at the backend once, and the next export holds each one once, with source "extension".

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { it } = require('node:test');

const {
  exportedEvents, makeClient, makeHome, readEventLines, startBackend, startDaemon,
} = require('../testkit/harness');

const WRITER = path.join(__dirname, '..', 'testkit', 'append_events.js');

function runWriter(ctx, count, segmentBytes) {
  const proc = spawn(process.execPath, [WRITER, ctx.eventsDir, String(count), String(segmentBytes)],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  ctx.processes.push(proc);
  let out = '';
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (chunk) => { out += chunk; });
  const done = new Promise((resolve) => proc.once('close', (code, signal) => resolve({ code, signal, out })));
  return { proc, done };
}

function sizeOf(file) {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0; // sealed (renamed) meanwhile: counted under its new name next time
  }
}

it('events appended while the daemon syncs and rotates are delivered once and exported once', async (t) => {
  const ctx = makeHome(t);
  const backend = await startBackend(ctx);
  await startDaemon(ctx);
  const client = makeClient(ctx);
  await client.setConfig({ key: 'telemetry.endpoint', value: backend.api });
  await client.setConfig({ key: 'telemetry.api_key', value: backend.key });

  const writers = [0, 1, 2].map(() => runWriter(ctx, 3000, 16 * 1024));
  const victim = runWriter(ctx, 1e9, 16 * 1024); // killed mid-run: leaves an unsealed segment behind
  let finished = false;
  Promise.all(writers.map((w) => w.done)).then(() => { finished = true; });
  const victimWrote = () => (!fs.existsSync(ctx.eventsDir) ? 0 : fs.readdirSync(ctx.eventsDir)
    .filter((name) => name.includes(`-${victim.proc.pid}-`))
    .reduce((bytes, name) => bytes + sizeOf(path.join(ctx.eventsDir, name)), 0));
  let rounds = 0;
  while (!finished) {
    await client.sync();
    await client.rotate();
    rounds += 1;
    if (victim.proc.exitCode === null && victim.proc.signalCode === null && victimWrote() > 16 * 1024) {
      victim.proc.kill('SIGKILL'); // mid-run: it has sealed a segment at least and writes the next one
    }
  }
  victim.proc.kill('SIGKILL'); // if the others finished first (it never ends by itself)
  assert.equal((await victim.done).signal, 'SIGKILL');
  for (const writer of writers) {
    const { code, out } = await writer.done;
    assert.equal(code, 0);
    assert.deepEqual(JSON.parse(out), { written: 3000, dropped: { consent: 0, invalid: 0, write_error: 0 } });
  }
  assert.ok(rounds >= 3, `only ${rounds} sync rounds ran while the writers wrote`);
  const last = runWriter(ctx, 5, 16 * 1024); // starts after the victim died: seals its segment
  assert.equal((await last.done).code, 0);
  await client.sync();

  const names = fs.readdirSync(ctx.eventsDir);
  assert.ok(names.length > 10, `${names.length} segments`);
  assert.deepEqual(names.filter((name) => !name.endsWith('.sealed.jsonl')), []);
  const written = readEventLines(ctx.eventsDir).map((record) => record.event_id);
  assert.equal(new Set(written).size, written.length);
  assert.ok(written.length > 9005, `the victim wrote ${written.length - 9005} events before it was killed`);

  const receipts = (await client.history()).records;
  const accepted = receipts.reduce((sum, r) => sum + r.accepted_events, 0);
  const duplicates = receipts.reduce((sum, r) => sum + r.duplicate_events, 0);
  assert.equal(duplicates, 0, 'no event was delivered twice');
  assert.equal(accepted, written.length, 'every event was delivered');
  await client.sync();
  assert.equal((await client.history()).records.length, receipts.length, 'nothing is left to send');

  const result = await client.export({ output: path.join(ctx.home, 'all.json'), from: '1h' });
  const exported = exportedEvents(result);
  assert.ok(exported.every((event) => event.source === 'extension'));
  assert.deepEqual(exported.map((event) => event.event_id).sort(), [...written].sort());
  assert.deepEqual(client.schemaErrors, []);
});
