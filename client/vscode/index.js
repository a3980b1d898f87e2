'use strict';
// BranchPy telemetry client for VS Code extensions (Node standard library only).
// Protocol and usage: docs/bridge-protocol.md in the branchpy-telemetry repository.

const path = require('node:path');

const { BridgeConnection } = require('./lib/bridge_connection');
const { CATEGORIES, InvalidEventError, encodeEventLine, newEventId } = require('./lib/event_record');
const { ExtensionEventWriter } = require('./lib/event_writer');
const { CONSENT_SOURCE, CONSENT_TYPES, MESSAGE_TYPES, TelemetryError } = require('./lib/protocol');
const { TelemetryClient } = require('./lib/telemetry_client');

/** Where the published JSON Schemas are (shipped beside this module). */
const schemaPaths = Object.freeze({
  bridgeProtocol: path.join(__dirname, 'schemas', 'bridge-protocol.schema.json'),
  eventRecord: path.join(__dirname, 'schemas', 'event-record.schema.json'),
});

module.exports = {
  BridgeConnection,
  CATEGORIES,
  CONSENT_SOURCE,
  CONSENT_TYPES,
  ExtensionEventWriter,
  InvalidEventError,
  MESSAGE_TYPES,
  TelemetryClient,
  TelemetryError,
  encodeEventLine,
  newEventId,
  schemaPaths,
};
