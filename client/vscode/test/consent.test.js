'use strict';
// VS Code's telemetry setting (the isTelemetryEnabled callback) reaches the daemon's
// consent check: nothing is recorded and no delivery goes out while it is off.
// Real daemon, real bridge, real backend.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { it } = require('node:test');

const { makeClient, makeHome, startBackend, startDaemon } = require('../testkit/harness');

const SETTING = 'VS Code telemetry setting';

async function configure(client, backend) {
  await client.setConfig({ key: 'telemetry.endpoint', value: backend.api });
  await client.setConfig({ key: 'telemetry.api_key', value: backend.key });
}

it('telemetry disabled: appendEvent writes nothing and says so', async (t) => {
  const ctx = makeHome(t);
  const client = makeClient(ctx, { enabled: () => false });
  const dropped = [];
  client.on('eventDropped', (event) => dropped.push(event));
  assert.equal(client.appendEvent({ category: 'command', name: 'analyze' }), false);
  assert.equal(fs.existsSync(ctx.eventsDir), false);
  assert.deepEqual(client.eventStats(), { written: 0, dropped: { consent: 1, invalid: 0, write_error: 0 } });
  assert.equal(dropped[0].reason, 'consent');
});

it('a callback that throws counts as disabled', async (t) => {
  const ctx = makeHome(t);
  const client = makeClient(ctx, { enabled: () => { throw new Error('no vscode.env here'); } });
  assert.equal(client.telemetryEnabled(), false);
  assert.equal(client.appendEvent({ category: 'command', name: 'analyze' }), false);
});

it('consent withdrawn through the callback blocks upload, sync and auto mode; back on, the upload goes',
  async (t) => {
    const ctx = makeHome(t);
    const backend = await startBackend(ctx);
    await startDaemon(ctx);
    let enabled = true;
    const client = makeClient(ctx, { enabled: () => enabled });
    await configure(client, backend);
    for (let n = 0; n < 3; n += 1) assert.equal(client.appendEvent({ category: 'command', name: 'analyze' }), true);
    const output = path.join(ctx.home, 'reviewed.json');
    const exported = await client.export({ output });
    assert.equal(exported.events, 3);

    enabled = false;
    assert.equal(client.appendEvent({ category: 'command', name: 'analyze' }), false);
    const status = await client.status();
    assert.deepEqual(status.consent, { deliveries: 'blocked', blocked_by: SETTING, config: 'on' });
    for (const [call, payload] of [['upload', { file: output }], ['sync', {}], ['setMode', { mode: 'auto' }]]) {
      await assert.rejects(client[call](payload), (error) => {
        assert.equal(error.code, 'consent_withdrawn');
        assert.match(error.message, /telemetry consent is withdrawn by VS Code telemetry setting/);
        assert.equal(error.details.blocked_by, SETTING);
        return true;
      });
    }
    const reply = await client.handleMessage({ id: 'w', type: 'telemetry.upload', payload: { file: output } });
    assert.deepEqual([reply.ok, reply.payload.code], [false, 'consent_withdrawn']);
    assert.deepEqual((await client.history()).records, [], 'nothing was sent');
    assert.equal((await client.getConfig({ key: 'telemetry.mode' })).value, 'manual');
    const withdrawn = client.messages.filter((m) => m.direction === 'send'
      && ['telemetry.status', 'telemetry.upload', 'telemetry.sync', 'telemetry.setMode'].includes(m.message.type)
      && m.message.payload.consent === 'off');
    assert.equal(withdrawn.length, 5);
    assert.ok(withdrawn.every((m) => m.message.payload.consent_source === SETTING));
    const untouched = client.messages.filter((m) => m.direction === 'send'
      && ['telemetry.history', 'telemetry.getConfig'].includes(m.message.type));
    assert.ok(untouched.every((m) => !('consent' in m.message.payload)));

    enabled = true;
    assert.equal((await client.status()).consent.deliveries, 'allowed');
    const sent = await client.upload({ file: output });
    assert.equal(sent.results[0].outcome, 'delivered');
    assert.equal(sent.events, 3);
    const history = await client.history();
    assert.equal(history.records.length, 1);
    assert.equal(history.records[0].accepted_events, 3);
    assert.deepEqual(client.schemaErrors, []);
  });
