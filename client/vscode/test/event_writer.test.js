'use strict';
// appendEvent on the real file system: one complete, schema-valid line per event,
// bad events refused, segments sealed by size, on close and when their writer is gone.

const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { it } = require('node:test');

const { ExtensionEventWriter, encodeEventLine } = require('..');
const { eventRecordErrors, makeClient, makeHome, readEventLines } = require('../testkit/harness');

const UUID7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const TS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

it('writes one complete line per event in the event-record format, source extension', (t) => {
  const ctx = makeHome(t);
  const client = makeClient(ctx);
  assert.equal(client.appendEvent({ category: 'command', name: 'analyze', duration_ms: 412.5, status: 'ok',
    correlation_id: 'c-1', attrs: { flag_json: true, files: 3 } }), true);
  assert.equal(client.appendEvent({ category: 'error', name: 'graph.open',
    error: Object.assign(new RangeError('bad node 12'), { code: 'BP-E1042' }) }), true);
  const [segment] = fs.readdirSync(ctx.eventsDir);
  assert.match(segment, /^ext-\d{8}T\d{9}-\d+-[0-9a-f]{8}\.jsonl$/);
  assert.equal(fs.statSync(ctx.eventsDir).mode & 0o777, 0o700);
  assert.equal(fs.statSync(path.join(ctx.eventsDir, segment)).mode & 0o777, 0o600);
  const text = fs.readFileSync(path.join(ctx.eventsDir, segment), 'utf8');
  assert.equal(text.split('\n').length, 3);
  assert.ok(text.endsWith('\n'));
  const [first, second] = readEventLines(ctx.eventsDir);
  for (const record of [first, second]) {
    assert.deepEqual(eventRecordErrors(record), []);
    assert.equal(record.v, 1);
    assert.equal(record.source, 'extension');
    assert.match(record.event_id, UUID7);
    assert.match(record.ts, TS);
    assert.equal(record.session_id, client.sessionId);
  }
  assert.match(client.sessionId, /^[0-9a-f]{32}$/);
  assert.deepEqual(first.attrs, { flag_json: true, files: 3 });
  assert.equal(first.duration_ms, 412.5);
  assert.deepEqual(second.error, { type: 'RangeError', message: 'bad node 12', code: 'BP-E1042' });
  assert.equal(Object.keys(first)[0], 'v');
});

it('refuses bad events without writing or throwing, and counts them', (t) => {
  const ctx = makeHome(t);
  const client = makeClient(ctx);
  const bad = [
    null, [], 'analyze', { category: 'gossip', name: 'x' }, { category: 'command', name: '' },
    { category: 'command', name: 'a\nb' }, { category: 'command', name: 'x'.repeat(201) },
    { category: 'command', name: 'x', duration_ms: -1 }, { category: 'command', name: 'x', duration_ms: 1e13 },
    { category: 'command', name: 'x', duration_ms: NaN }, { category: 'command', name: 'x', duration_ms: '5' },
    { category: 'command', name: 'x', status: 200 }, { category: 'command', name: 'x', attrs: [1] },
    { category: 'command', name: 'x', error: 'boom' }, { category: 'command', name: 'x', error: { text: 'a' } },
    { category: 'command', name: 'x', source: 'cli' }, { category: 'command', name: 'x', attrs: { n: 1n } },
    { category: 'command', name: 'x', attrs: { blob: 'y'.repeat(70000) } },
  ];
  const reasons = [];
  client.on('eventDropped', ({ reason, detail }) => reasons.push([reason, detail]));
  bad.forEach((event, n) => assert.equal(client.appendEvent(event), false, `bad event #${n}`));
  assert.equal(fs.existsSync(ctx.eventsDir), false);
  assert.deepEqual(client.eventStats().dropped, { consent: 0, invalid: bad.length, write_error: 0 });
  assert.ok(reasons.every(([reason]) => reason === 'invalid'));
  assert.match(reasons[3][1], /invalid category "gossip"/);
  assert.match(reasons[15][1], /unknown event field\(s\): source/);
  assert.match(reasons[17][1], /bytes > 65536/);
});

it('seals a segment past its size limit and on close; every event is in exactly one line', (t) => {
  const ctx = makeHome(t);
  const writer = new ExtensionEventWriter(ctx.eventsDir, { maxSegmentBytes: 4096 });
  const ids = [];
  for (let n = 0; n < 200; n += 1) {
    const line = encodeEventLine({ category: 'feature', name: 'graph.open', attrs: { n } });
    ids.push(JSON.parse(line).event_id);
    writer.appendLine(line);
  }
  writer.close();
  const names = fs.readdirSync(ctx.eventsDir);
  assert.ok(names.length > 5, `${names.length} segments`);
  assert.ok(names.every((name) => name.endsWith('.sealed.jsonl')));
  for (const name of names) assert.ok(fs.statSync(path.join(ctx.eventsDir, name)).size <= 4096);
  assert.deepEqual(readEventLines(ctx.eventsDir).map((r) => r.event_id).sort(), [...ids].sort());
});

it('an empty segment is removed on close; a missing folder is created again', (t) => {
  const ctx = makeHome(t);
  const writer = new ExtensionEventWriter(ctx.eventsDir);
  writer.close();
  assert.equal(fs.existsSync(ctx.eventsDir), false);
  writer.appendLine(encodeEventLine({ category: 'session', name: 'start' }));
  fs.rmSync(ctx.eventsDir, { recursive: true });
  writer.appendLine(encodeEventLine({ category: 'session', name: 'still-here' }));
  assert.deepEqual(readEventLines(ctx.eventsDir).map((r) => r.name), ['still-here']);
  writer.close();
});

it('a segment sealed or removed under the writer: the next line goes to a new segment', (t) => {
  const ctx = makeHome(t);
  const writer = new ExtensionEventWriter(ctx.eventsDir);
  writer.appendLine(encodeEventLine({ category: 'session', name: 'one' }));
  const first = writer.path;
  fs.renameSync(first, first.replace(/\.jsonl$/, '.sealed.jsonl'));
  writer.appendLine(encodeEventLine({ category: 'session', name: 'two' }));
  assert.notEqual(writer.path, first);
  const byFile = fs.readdirSync(ctx.eventsDir).sort()
    .map((name) => fs.readFileSync(path.join(ctx.eventsDir, name), 'utf8').trim().split('\n').length);
  assert.deepEqual(byFile, [1, 1]);
  writer.close();
});

it('seals segments left by writers that are gone (dead pid, or idle twice the age limit), not live ones',
  (t) => {
    const ctx = makeHome(t);
    fs.mkdirSync(ctx.eventsDir, { recursive: true });
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'],
      { encoding: 'utf8' }).stdout;
    const line = encodeEventLine({ category: 'session', name: 'x' });
    const files = {
      dead: `ext-20261201T000000000-${dead}-0000000a.jsonl`,
      live: `ext-20261201T000000000-${process.ppid}-0000000b.jsonl`,
      stale: `ext-20261201T000000000-${process.ppid}-0000000c.jsonl`,
      other: 'notes.jsonl',
    };
    for (const name of Object.values(files)) fs.writeFileSync(path.join(ctx.eventsDir, name), line);
    const old = new Date(Date.now() - 3 * 24 * 3600 * 1000);
    fs.utimesSync(path.join(ctx.eventsDir, files.stale), old, old);
    const writer = new ExtensionEventWriter(ctx.eventsDir);
    writer.appendLine(line);
    writer.close();
    const names = fs.readdirSync(ctx.eventsDir);
    assert.ok(names.includes(files.dead.replace('.jsonl', '.sealed.jsonl')));
    assert.ok(names.includes(files.stale.replace('.jsonl', '.sealed.jsonl')));
    assert.ok(names.includes(files.live), 'a running writer keeps its segment');
    assert.ok(names.includes(files.other), 'files of other tools are left alone');
  });
