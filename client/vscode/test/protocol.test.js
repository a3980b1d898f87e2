'use strict';
// The real module spawns the real bridge against a real daemon: every request type,
// out-of-order answers, progress, malformed input; every message checks against the schemas.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { after, before, describe, it } = require('node:test');

const { TelemetryError } = require('..');
const {
  cleanup, exportedEvents, makeClient, makeHome, protocolErrors, startDaemon, waitFor,
} = require('../testkit/harness');

describe('the bridge protocol against a real daemon', () => {
  let ctx;
  let daemon;
  let client;
  let out;

  before(async () => {
    ctx = makeHome();
    daemon = await startDaemon(ctx);
    client = makeClient(ctx);
    out = path.join(ctx.home, 'out');
    fs.mkdirSync(out);
  });

  after(async () => {
    await cleanup(ctx);
    assert.deepEqual(client.schemaErrors, []);
  });

  it('answers status with the daemon it reached', async () => {
    const status = await client.status();
    assert.equal(status.pid, daemon.pid);
    assert.equal(status.mode, 'manual');
    assert.equal(status.consent.deliveries, 'allowed');
  });

  it('exports the extension events to an absolute path and previews the package', async () => {
    const before = client.eventStats().written;
    for (let n = 0; n < 5; n += 1) {
      assert.equal(client.appendEvent({ category: 'command', name: 'analyze', duration_ms: 10 + n }), true);
    }
    assert.equal(client.eventStats().written, before + 5);
    const output = path.join(out, 'five.json');
    const result = await client.export({ output, from: '1h' });
    assert.deepEqual(result.files, [output]);
    assert.ok(result.events >= 5);
    const events = exportedEvents(result);
    assert.ok(events.every((event) => event.source === 'extension'));
    const preview = await client.preview({ file: output, max_events: 0 });
    assert.equal(preview.valid, true);
    assert.equal(preview.file, output);
    assert.equal(preview.events.length, result.events);
    assert.match(preview.text, /VALID/);
  });

  it('refuses relative and ~ paths with bad_arguments instead of guessing a folder', async () => {
    for (const [call, payload] of [['export', { output: 'relative.json' }], ['preview', { file: '~/pkg.json' }],
      ['upload', { file: 'pkg.json' }]]) {
      await assert.rejects(client[call](payload), (error) => {
        assert.ok(error instanceof TelemetryError);
        assert.equal(error.code, 'bad_arguments');
        assert.match(error.message, /must be an absolute path/);
        assert.match(error.hint, /does not resolve paths/);
        return true;
      });
    }
    assert.equal(fs.existsSync(path.join(process.cwd(), 'relative.json')), false);
  });

  it('round-trips setMode and getConfig, and setConfig and getConfig', async () => {
    const auto = await client.setMode({ mode: 'auto', interval: '1h', dry_run: true });
    assert.equal(auto.mode, 'auto');
    assert.equal(auto.interval, '1h');
    assert.equal(auto.dry_run, true);
    assert.ok(auto.next_run);
    assert.equal((await client.getConfig({ key: 'telemetry.mode' })).value, 'auto');
    assert.equal((await client.getConfig({ key: 'telemetry.auto.interval' })).value, '1h');
    const manual = await client.setMode({ mode: 'manual' });
    assert.equal(manual.mode, 'manual');
    assert.equal(manual.next_run, null);
    const all = await client.getConfig();
    assert.equal(all.values['telemetry.mode'], 'manual');
    const set = await client.setConfig({ key: 'telemetry.retention.keep', value: '30d' });
    assert.equal(set.value, '30d');
    assert.equal((await client.getConfig({ key: 'telemetry.retention.keep' })).value, '30d');
    await assert.rejects(client.getConfig({ key: 'telemetry.nope' }), { code: 'config_invalid' });
  });

  it('answers concurrent requests out of order, each with its own id', async () => {
    for (let n = 0; n < 40000; n += 1) client.appendEvent({ category: 'command', name: 'analyze', duration_ms: n % 97 });
    const sent = client.messages.length;
    const exporting = client.export({ output: path.join(out, 'big.json') });
    const quick = [client.status(), client.getConfig({ key: 'telemetry.mode' }), client.history({ limit: 1 }),
      client.status(), client.getConfig({ key: 'telemetry.endpoint' })];
    const [status1, mode, history, status2, endpoint] = await Promise.all(quick);
    const exported = await exporting;
    assert.equal(status1.pid, daemon.pid);
    assert.equal(status2.pid, daemon.pid);
    assert.equal(mode.key, 'telemetry.mode');
    assert.deepEqual(history.records, []);
    assert.equal(endpoint.key, 'telemetry.endpoint');
    assert.ok(exported.events >= 40000);
    const mine = client.messages.slice(sent);
    const sentIds = mine.filter((m) => m.direction === 'send').map((m) => m.message.id);
    const answered = mine.filter((m) => m.direction === 'receive' && m.message.type.endsWith('.result'))
      .map((m) => m.message.id);
    assert.equal(sentIds.length, 6);
    assert.deepEqual([...answered].sort(), [...sentIds].sort());
    assert.equal(answered.at(-1), sentIds[0], 'the export, sent first, is answered last');
  });

  it('relays progress during a large export, to the caller and as an event', async () => {
    const seen = [];
    const emitted = [];
    const listener = (progress) => emitted.push(progress);
    client.on('progress', listener);
    const result = await client.export({ output: path.join(out, 'progress.json') },
      { onProgress: (progress) => seen.push(progress) });
    client.off('progress', listener);
    assert.ok(result.events >= 40000);
    assert.ok(seen.length >= 2, `progress messages: ${seen.length}`);
    assert.deepEqual(emitted, seen);
    const dones = seen.map((p) => p.payload.done);
    assert.deepEqual(dones, [...dones].sort((a, b) => a - b));
    for (const progress of seen) {
      assert.equal(progress.type, 'telemetry.progress');
      assert.equal(progress.payload.cmd, 'export');
    }
    const ids = new Set(seen.map((p) => p.id));
    assert.equal(ids.size, 1);
    const request = client.messages.find((m) => m.direction === 'send' && m.message.id === seen[0].id);
    assert.equal(request.message.type, 'telemetry.export');
  });

  it('answers the webview through handleMessage, progress tagged with the webview id', async () => {
    const progress = [];
    const listener = (p) => progress.push(p);
    client.on('progress', listener);
    const reply = await client.handleMessage({ id: 'w-7', type: 'telemetry.export',
      payload: { output: path.join(out, 'webview.json') } });
    client.off('progress', listener);
    assert.equal(reply.id, 'w-7');
    assert.equal(reply.type, 'telemetry.export.result');
    assert.equal(reply.ok, true);
    assert.ok(progress.length > 0 && progress.every((p) => p.id === 'w-7'));
    const unknown = await client.handleMessage({ id: 8, type: 'telemetry.teleport' });
    assert.deepEqual([unknown.id, unknown.type, unknown.ok, unknown.payload.code],
      [8, 'telemetry.teleport.result', false, 'unknown_command']);
    const untyped = await client.handleMessage({ id: 9 });
    assert.deepEqual([untyped.type, untyped.payload.code], ['telemetry.error', 'invalid_message']);
    const bad = await client.handleMessage({ id: 10, type: 'telemetry.history', payload: { limit: 0 } });
    assert.deepEqual([bad.ok, bad.payload.code], [false, 'bad_arguments']);
    const known = client.schemaErrors.length;
    const wrong = await client.handleMessage({ id: 11, type: 'telemetry.status', payload: { verbose: true } });
    assert.deepEqual([wrong.ok, wrong.payload.code], [false, 'bad_arguments']);
    // the schema refuses what the daemon refuses: the one message sent wrong on purpose
    const refused = client.schemaErrors.splice(known);
    assert.equal(refused.length, 1);
    assert.match(refused[0], /\/payload\/verbose: not allowed/);
  });

  it('answers 100 malformed lines with errors, then a valid request as usual', async () => {
    const replies = [];
    const listener = ({ message }) => replies.push(message);
    client.on('unmatched', listener);
    const garbage = ['not json', '[1, 2]', '"text"', '{}', '{"id": 5}', '{"type": 7}', '{"type": "telemetry.nope"}',
      '{"id": "x", "type": "telemetry.status", "payload": "fast"}', '{"id": "y", "type": "telemetry.status",',
      '{"id": "z", "type": "telemetry.export", "payload": {"output": "rel.json"}}'];
    for (let n = 0; n < 100; n += 1) client.connection.writeRaw(garbage[n % garbage.length]);
    const status = await client.status();
    assert.equal(status.pid, daemon.pid);
    await waitFor(() => replies.length === 100, { what: '100 error replies' });
    client.off('unmatched', listener);
    for (const reply of replies) {
      assert.equal(reply.ok, false);
      assert.ok(['malformed_request', 'unknown_command', 'bad_arguments'].includes(reply.payload.code), reply.payload.code);
      assert.deepEqual(protocolErrors('receive', reply), []);
    }
    assert.equal(replies.filter((r) => r.type === 'telemetry.error').length, 70);
  });

  it('rotates, keeps history, refuses a purge without yes, and purges with it', async () => {
    const rotated = await client.rotate();
    assert.equal(typeof rotated.rotated, 'boolean');
    const history = await client.history();
    assert.deepEqual(history.records, []);
    await assert.rejects(client.purge({}), { code: 'bad_arguments' });
    const purged = await client.purge({ yes: true });
    assert.equal(purged.governance_id_reset, false);
    assert.equal(typeof purged.removed.outbox_files, 'number');
  });

  it('registers the events folder with the daemon once', async () => {
    assert.equal(await client.registerEventsDir(), true);
    assert.equal((await client.getConfig({ key: 'telemetry.sources.extension_dir' })).value, ctx.eventsDir);
    assert.equal(await client.registerEventsDir(), false);
  });

  it('lists what may be collected through telemetry.catalog', async () => {
    const reply = await client.handleMessage({ id: 'c', type: 'telemetry.catalog' });
    assert.equal(reply.type, 'telemetry.catalog.result');
    assert.equal(reply.ok, true);
    assert.equal(reply.payload.kind, 'catalog');
    assert.equal(reply.payload.id, 'branchpy');
    const analyze = reply.payload.events.find((e) => e.category === 'command' && e.name === 'analyze');
    assert.ok(analyze && analyze.description && analyze.attrs.files.type === 'int');
  });
});
