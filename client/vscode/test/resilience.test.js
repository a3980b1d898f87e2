'use strict';
// What goes wrong in a long VS Code session: the daemon dies, the bridge dies mid-request,
// the bridge cannot start or keeps exiting, a request outlives its timeout.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { it } = require('node:test');

const { TelemetryClient } = require('..');
const { makeClient, makeHome, startDaemon, stopProcess, waitFor } = require('../testkit/harness');

function processRuns(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function killAndWait(pid) {
  if (!processRuns(pid)) return;
  process.kill(pid, 'SIGKILL');
  await waitFor(() => !processRuns(pid), { what: `pid ${pid} to end` });
}

it('the daemon killed mid-session: the bridge starts a new one and the session goes on', async (t) => {
  const ctx = makeHome(t);
  const daemon = await startDaemon(ctx);
  const client = makeClient(ctx, { bridgeArgs: [] }); // the bridge may start a daemon
  const first = await client.status();
  assert.equal(first.pid, daemon.pid);
  const bridgePid = client.connection.pid;
  daemon.kill('SIGKILL');
  await new Promise((resolve) => daemon.once('exit', resolve));
  const second = await client.status();
  t.after(() => killAndWait(second.pid));
  assert.notEqual(second.pid, daemon.pid);
  assert.equal(client.connection.pid, bridgePid, 'the same bridge carried on');
  assert.equal((await client.getConfig({ key: 'telemetry.mode' })).value, 'manual');
  assert.deepEqual(client.schemaErrors, []);
});

it('the daemon killed and restarted: a no-start bridge says daemon_unavailable, then carries on', async (t) => {
  const ctx = makeHome(t);
  const daemon = await startDaemon(ctx);
  const client = makeClient(ctx);
  assert.equal((await client.status()).pid, daemon.pid);
  await stopProcess(daemon, 'SIGKILL');
  await assert.rejects(client.status(), (error) => {
    assert.equal(error.code, 'daemon_unavailable');
    assert.match(error.hint, /daemon log/);
    return true;
  });
  const restarted = await startDaemon(ctx);
  assert.equal((await client.status()).pid, restarted.pid);
  assert.deepEqual(client.schemaErrors, []);
});

it('the bridge killed mid-request: requests in flight fail with bridge_exited, the next one restarts it',
  async (t) => {
    const ctx = makeHome(t);
    await startDaemon(ctx);
    const client = makeClient(ctx);
    for (let n = 0; n < 60000; n += 1) client.appendEvent({ category: 'command', name: 'analyze', duration_ms: 1 });
    const firstBridge = client.connection.pid;
    assert.equal(firstBridge, undefined, 'the bridge starts on the first request');
    let progressSeen;
    const progressed = new Promise((resolve) => { progressSeen = resolve; });
    const exporting = client.export({ output: path.join(ctx.home, 'killed.json') }, { onProgress: progressSeen });
    await progressed;
    const bridgePid = client.connection.pid;
    process.kill(bridgePid, 'SIGKILL');
    await assert.rejects(exporting, (error) => {
      assert.equal(error.code, 'bridge_exited');
      assert.equal(error.type, 'telemetry.export');
      assert.match(error.message, /killed \(SIGKILL\) before answering telemetry\.export/);
      assert.match(error.hint, /may still have run/);
      assert.equal(error.details.signal, 'SIGKILL');
      return true;
    });
    const status = await client.status();
    assert.ok(status.pid > 0);
    assert.notEqual(client.connection.pid, bridgePid);
    assert.deepEqual(client.schemaErrors, []);
  });

it('a bridge that cannot start: bridge_unavailable naming the path', async (t) => {
  const ctx = makeHome(t);
  const client = makeClient(ctx);
  client.connection.command = path.join(ctx.home, 'no-such-bridge');
  await assert.rejects(client.status(), (error) => {
    assert.equal(error.code, 'bridge_unavailable');
    assert.match(error.message, /cannot start the bridge ".*no-such-bridge": spawn .* ENOENT/);
    assert.match(error.hint, /bridgePath/);
    return true;
  });
});

it('a bridge that keeps exiting: bridge_exited with its stderr, then bridge_unavailable', async (t) => {
  const ctx = makeHome(t);
  const client = new TelemetryClient({
    bridgePath: process.execPath,
    bridgeArgs: ['-e', 'process.stderr.write("bridge broke: no python"); process.exit(3)'],
    eventsDir: ctx.eventsDir,
    isTelemetryEnabled: () => true,
  });
  ctx.clients.push(client);
  for (let n = 0; n < 5; n += 1) {
    await assert.rejects(client.status(), (error) => {
      assert.equal(error.code, 'bridge_exited');
      assert.match(error.message, /exited with code 3 before answering telemetry\.status/);
      assert.equal(error.details.stderr, 'bridge broke: no python');
      return true;
    });
  }
  await assert.rejects(client.status(), (error) => {
    assert.equal(error.code, 'bridge_unavailable');
    assert.match(error.message, /exited 5 times within 60s/);
    assert.equal(error.details.stderr, 'bridge broke: no python');
    return true;
  });
});

it('a request past its timeout fails with timeout; its late answer is ignored', async (t) => {
  const ctx = makeHome(t);
  await startDaemon(ctx);
  const client = makeClient(ctx, { timeouts: { 'telemetry.export': 1 } });
  for (let n = 0; n < 20000; n += 1) client.appendEvent({ category: 'command', name: 'analyze' });
  await client.status(); // the bridge is up: the timeout is the export's alone
  const late = [];
  client.on('unmatched', ({ message }) => late.push(message));
  await assert.rejects(client.export({ output: path.join(ctx.home, 'late.json') }), (error) => {
    assert.equal(error.code, 'timeout');
    assert.match(error.message, /no answer to telemetry\.export within 0\.001s/);
    return true;
  });
  await waitFor(() => late.length === 1, { what: 'the late export result' });
  assert.equal(late[0].type, 'telemetry.export.result');
  assert.equal(late[0].ok, true);
  assert.ok(fs.existsSync(path.join(ctx.home, 'late.json')));
  assert.ok((await client.status()).pid > 0);
  assert.deepEqual(client.schemaErrors, []);
});

it('dispose fails requests in flight with disposed and ends the bridge', async (t) => {
  const ctx = makeHome(t);
  await startDaemon(ctx);
  const client = makeClient(ctx);
  await client.status();
  const pid = client.connection.pid;
  const pending = assert.rejects(client.status(), { code: 'disposed' });
  await client.dispose();
  await pending;
  await assert.rejects(client.status(), { code: 'disposed' });
  assert.equal(processRuns(pid), false);
  assert.equal(client.appendEvent({ category: 'command', name: 'analyze' }), false);
  assert.equal(client.eventStats().dropped.write_error, 1);
});
