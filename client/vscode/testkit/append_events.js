'use strict';
// A writer process for the tests: appends `count` events through TelemetryClient.appendEvent
// in bursts of 10 (one every `pauseMs`), then closes (sealing its segment) and prints
// {"written": n, "dropped": {...}} on stdout. usage: node append_events.js DIR COUNT SEGMENT_BYTES [PAUSE_MS]

const { TelemetryClient } = require('..');

async function main() {
  const [dir, count, segmentBytes, pauseMs = '10'] = process.argv.slice(2);
  const client = new TelemetryClient({
    eventsDir: dir, isTelemetryEnabled: () => true, segments: { maxSegmentBytes: Number(segmentBytes) },
  });
  for (let n = 0; n < Number(count); n += 1) {
    if (!client.appendEvent({ category: 'command', name: 'analyze', duration_ms: n % 50 })) break;
    if (n % 10 === 9) await new Promise((resolve) => setTimeout(resolve, Number(pauseMs)));
  }
  await client.dispose();
  process.stdout.write(JSON.stringify(client.eventStats()) + '\n');
}

main();
