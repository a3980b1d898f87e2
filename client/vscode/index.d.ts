// Types for the BranchPy telemetry client (index.js). Written by hand against
// schemas/bridge-protocol.schema.json and schemas/event-record.schema.json; the
// message shapes and field names are those of the bridge protocol
// (docs/bridge-protocol.md in the branchpy-telemetry repository).

/// <reference types="node" />
import { EventEmitter } from 'node:events';

// ---------------------------------------------------------------- messages

export type MessageId = string | number | null;

export type MessageType =
  | 'telemetry.status' | 'telemetry.export' | 'telemetry.preview' | 'telemetry.upload'
  | 'telemetry.sync' | 'telemetry.setMode' | 'telemetry.getConfig' | 'telemetry.setConfig'
  | 'telemetry.rotate' | 'telemetry.history' | 'telemetry.purge' | 'telemetry.catalog';

/** Withdrawn consent travels with a request (the client adds it while telemetry is disabled). */
export interface ConsentArgs {
  consent?: 'on' | 'off';
  consent_source?: string | null;
}

export interface StatusPayload extends ConsentArgs {}
export interface ExportPayload {
  /** An absolute path; a larger window becomes NAME.part001.json, … */
  output: string;
  /** 30m, 24h, 7d or an ISO 8601 time; absent: from the start. */
  from?: string | null;
  to?: string | null;
}
export interface PreviewPayload {
  /** An absolute path. */
  file: string;
  /** Events listed in `text`; 0 = all. Default 50. */
  max_events?: number;
}
export interface UploadPayload extends ConsentArgs {
  /** A package this machine exported (absolute path); or `auto` with `from` for a fresh one. */
  file?: string | null;
  auto?: boolean;
  from?: string | null;
  dry_run?: boolean;
  /** With `file`: send bytes this machine did not export, as a VALID `preview` showed them. */
  reviewed?: boolean;
}
export interface SyncPayload extends ConsentArgs {}
export interface SetModePayload extends ConsentArgs {
  mode: 'manual' | 'auto';
  interval?: string | null;
  dry_run?: boolean | null;
}
export interface GetConfigPayload {
  /** A dotted key such as `telemetry.mode`; absent: every key. */
  key?: string | null;
  reveal_secrets?: boolean;
}
export type ConfigValue = string | number | boolean | null;
export interface SetConfigPayload {
  key: string;
  value: ConfigValue;
}
export interface RotatePayload {}
export interface HistoryPayload {
  limit?: number | null;
}
export interface PurgePayload {
  yes?: boolean;
  reset_id?: boolean;
}
export type CatalogPayload = Record<string, unknown>;

export interface AutoStatus {
  interval: string;
  dry_run: boolean;
  scheduled: boolean;
  next_run: string | null;
  last_run: Record<string, unknown> | null;
  runs: Record<string, number>;
  /** Mode is auto but no run is scheduled: why. */
  not_scheduled_because?: string | null;
}
export interface StatusResult {
  pid: number;
  version: string;
  uptime_s: number;
  mode: 'manual' | 'auto';
  endpoint: string;
  socket: string;
  progress_socket: string;
  idle_timeout_s: number | null;
  spool_dir: string;
  spool_files: number;
  spool_bytes: number;
  config_file: string;
  log_file: string;
  auto: AutoStatus;
  outbox: { packages: number; bytes: number; quarantined: number; dir: string };
  /** Since install; `emitted` is the old name of `read_by_sync` (kept for one release). */
  counters: {
    read_by_sync: number; emitted: number; exported: number; exported_packages: number;
    dry_run_exported: number; dry_run_packages: number; uploaded: number; uploaded_packages: number;
    duplicate_events: number; duplicates: number; quarantined: number; quarantined_events: number;
    dropped: Record<string, number>;
  };
  consent: { deliveries: 'allowed' | 'blocked'; blocked_by: string | null; config: string };
}
export interface ExportResult {
  files: string[];
  package_ids: string[];
  events: number;
  skipped_lines: number;
  redactions: Record<string, number>;
  bytes: number;
  report_file: string;
}
/** `valid`: the package passes the schema and the privacy rules; otherwise fields are as read. */
export interface PreviewResult {
  file: string;
  bytes: number;
  sha256: string;
  valid: boolean;
  violations: Array<{ pointer: string; rule: string; location: 'value' | 'key' }>;
  schema_error: string | null;
  package_id: unknown;
  schema_version: unknown;
  export_timestamp: unknown;
  branchpy_version: unknown;
  governance_id: unknown;
  platform: unknown;
  summary: {
    event_count: unknown;
    window: { from: unknown; to: unknown; first_event: unknown; last_event: unknown };
    part: unknown;
    last_part: unknown;
    skipped_lines: unknown;
    redactions: unknown;
  };
  performance_metrics: unknown;
  usage_statistics: unknown;
  errors: unknown;
  correlation_ids: unknown;
  events: unknown[];
  redaction_report: Record<string, unknown> | null;
  /** When valid: the command that sends exactly these bytes (with --reviewed if not exported here). */
  send_command?: string | null;
  /** The review a person reads (what `branchpy telemetry preview` prints). */
  text: string;
}
export interface DeliveryEntry {
  name: string;
  package_id: string | null;
  /** delivered, duplicate, dry_run, over_budget, or why it was not delivered */
  outcome: string;
  events: number;
  /** Of `events`, stored as new by the server, and those it already had (null: not sent). */
  new_events?: number | null;
  known_events?: number | null;
  bytes: number;
  status_code: number | null;
  receipt: string | null;
  message: string | null;
  kept_at: string | null;
  quarantined: boolean;
}
export interface UploadResult {
  dry_run: boolean;
  packages: number;
  events: number;
  results: DeliveryEntry[];
}
export interface SyncResult {
  dry_run: boolean;
  rotated: string | null;
  read_events: number;
  skipped_lines: number;
  exported_packages: number;
  exported_events: number;
  delivered: number;
  duplicates: number;
  /** Events the server stored as new, and events sent that it already had. */
  events_delivered: number;
  events_known: number;
  kept: number;
  quarantined: number;
  over_budget: number;
  dry_run_recorded: number;
  outbox_packages: number;
  retention_deleted: number;
  duration_s: number;
  failure: string | null;
  failure_kept_at: string | null;
  failure_status: number | null;
}
export interface SetModeResult {
  mode: 'manual' | 'auto';
  interval: string;
  dry_run: boolean;
  next_run: string | null;
  config_file: string;
}
/** With `key`: `key` and `value`; without: every key in `values`. */
export interface GetConfigResult {
  key?: string;
  value?: ConfigValue;
  values?: Record<string, ConfigValue>;
  config_file: string;
}
export interface SetConfigResult {
  key: string;
  value: ConfigValue;
  config_file: string;
}
export interface RotateResult {
  rotated: boolean;
  file: string | null;
}
export interface LedgerRecord {
  when: string;
  package_id: string | null;
  events: number;
  bytes: number;
  endpoint: string;
  receipt?: string | null;
  outcome: string;
  attempts?: number;
  dry_run?: boolean;
  status_code?: number | null;
  wire_bytes?: number | null;
  accepted_events?: number | null;
  duplicate_events?: number | null;
  file?: string | null;
}
export interface HistoryResult {
  ledger_file: string;
  records: LedgerRecord[];
}
export interface PurgeResult {
  removed: { spool_files: number; outbox_files: number; quarantine_files: number; ledger: boolean };
  governance_id_reset: boolean;
}
export type CatalogResult = Record<string, unknown>;

/** Per message type: what its payload and its result are. */
export interface MessageMap {
  'telemetry.status': { payload: StatusPayload; result: StatusResult };
  'telemetry.export': { payload: ExportPayload; result: ExportResult };
  'telemetry.preview': { payload: PreviewPayload; result: PreviewResult };
  'telemetry.upload': { payload: UploadPayload; result: UploadResult };
  'telemetry.sync': { payload: SyncPayload; result: SyncResult };
  'telemetry.setMode': { payload: SetModePayload; result: SetModeResult };
  'telemetry.getConfig': { payload: GetConfigPayload; result: GetConfigResult };
  'telemetry.setConfig': { payload: SetConfigPayload; result: SetConfigResult };
  'telemetry.rotate': { payload: RotatePayload; result: RotateResult };
  'telemetry.history': { payload: HistoryPayload; result: HistoryResult };
  'telemetry.purge': { payload: PurgePayload; result: PurgeResult };
  'telemetry.catalog': { payload: CatalogPayload; result: CatalogResult };
}

export interface ErrorPayload {
  code: string;
  message: string;
  hint?: string | null;
  details?: unknown;
}
export interface ProgressUpdate {
  cmd: string;
  stage: string;
  done?: number;
  total?: number | null;
  message?: string | null;
}

/** A request as the webview (or anyone) sends it. */
export interface RequestMessage<T extends MessageType = MessageType> {
  id?: MessageId;
  type: T;
  payload?: MessageMap[T]['payload'];
}
/** The answer to a request: its type + ".result" (or telemetry.error for a message without a type). */
export type ResultMessage<T extends MessageType = MessageType> =
  | { id: MessageId; type: `${T}.result`; ok: true; payload: MessageMap[T]['result'] }
  | { id: MessageId; type: string; ok: false; payload: ErrorPayload };
export interface ProgressMessage {
  type: 'telemetry.progress';
  id: MessageId;
  payload: ProgressUpdate;
}

// ---------------------------------------------------------------- errors

/**
 * A failed request. `code` is the daemon's or the bridge's (bad_arguments, consent_withdrawn,
 * daemon_unavailable, not_found, upload_failed, …) or the client's own:
 * - `bridge_exited`: the bridge died with the request in flight (it may still have run in the daemon);
 * - `bridge_unavailable`: the bridge cannot be started, or keeps exiting (5 times within a minute);
 * - `timeout`: no answer in time (long requests: no progress in time);
 * - `disposed`: the client was disposed;
 * - `unknown_command`, `invalid_message`: not a request the bridge knows.
 */
export class TelemetryError extends Error {
  readonly code: string;
  readonly hint?: string;
  readonly details?: unknown;
  /** The message type of the failed request. */
  readonly type?: string;
  constructor(code: string, message: string, options?: { hint?: string; details?: unknown; type?: string });
  static fromPayload(payload: ErrorPayload, type?: string): TelemetryError;
  toPayload(): ErrorPayload;
}

// ---------------------------------------------------------------- events

export type Category = 'command' | 'feature' | 'error' | 'performance' | 'session' | 'system';
export const CATEGORIES: readonly Category[];

/** One of the extension's events (source "extension" is set for you). */
export interface ExtensionEvent {
  category: Category;
  /** Non-empty, one line, at most 200 characters. */
  name: string;
  /** 0 to 1e12. */
  duration_ms?: number | null;
  status?: string | null;
  /** Default: the client's session id. */
  session_id?: string | null;
  correlation_id?: string | null;
  /** An Error (name, message and a string `code` are kept) or its parts. The message never leaves the machine. */
  error?: Error | { code?: string | null; type?: string | null; message?: string | null } | null;
  /** Scalar values; only what the catalog declares leaves the machine. */
  attrs?: Record<string, string | number | boolean | null> | null;
}

/** One line of the JSONL files (schemas/event-record.schema.json). */
export interface EventRecord {
  v: 1;
  event_id: string;
  ts: string;
  category: Category;
  source: 'extension';
  name: string;
  duration_ms?: number;
  status?: string;
  session_id?: string;
  correlation_id?: string;
  error?: { code?: string; type?: string; message?: string };
  attrs?: Record<string, string | number | boolean | null>;
}

export class InvalidEventError extends Error {}

/** The JSONL line for an event (a Buffer ending in "\n"); throws InvalidEventError. */
export function encodeEventLine(event: ExtensionEvent, options?: { sessionId?: string; now?: () => number }): Buffer;
/** A UUIDv7 for the given Unix milliseconds (default: now). */
export function newEventId(ms?: number): string;

export interface SegmentOptions {
  /** Seal a segment before it grows past this (default 8 MiB). */
  maxSegmentBytes?: number;
  /** Seal a segment this old (default 24 h). */
  maxSegmentAgeMs?: number;
  now?: () => number;
}

/** The extension's JSONL folder: one writer per segment, sealed when done (see docs/bridge-protocol.md). */
export class ExtensionEventWriter {
  constructor(dir: string, options?: SegmentOptions);
  readonly dir: string;
  /** The segment being written, or null. */
  readonly path: string | null;
  /** Append one complete line (one write); throws the file system's error. */
  appendLine(line: Buffer): void;
  seal(): void;
  /** Seal segments left by writers that are gone; returns their new paths. */
  sealAbandoned(): string[];
  close(): void;
}

// ---------------------------------------------------------------- the bridge process

export interface BridgeConnectionOptions {
  command: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  maxRestarts?: number;
  restartWindowMs?: number;
}
export interface TraceEvent {
  direction: 'send' | 'receive';
  /** Absent for a raw line written with writeRaw or a stdout line that is not JSON. */
  message?: Record<string, unknown>;
  raw?: string;
}

/** One bridge child process: requests matched to answers by id, restarted on the next request after it dies. */
export class BridgeConnection extends EventEmitter {
  constructor(options: BridgeConnectionOptions);
  readonly pid: number | undefined;
  readonly inFlight: number;
  /** Resolves with the bridge's answer (ok or not); rejects with bridge_exited, bridge_unavailable, timeout, disposed. */
  request<T extends MessageType>(type: T, payload: MessageMap[T]['payload'],
    options?: { timeoutMs?: number; onProgress?: (message: ProgressMessage) => void }): Promise<ResultMessage<T>>;
  /** Write one raw line (diagnostics); its answer arrives as 'unmatched'. */
  writeRaw(line: string): void;
  dispose(): Promise<void>;
  on(event: 'trace', listener: (event: TraceEvent) => void): this;
  on(event: 'unmatched', listener: (event: { message?: Record<string, unknown>; raw?: string }) => void): this;
  on(event: 'stderr', listener: (text: string) => void): this;
  on(event: 'spawn', listener: (event: { pid: number }) => void): this;
  on(event: 'exit', listener: (event: { code: number | null; signal: string | null; pid?: number }) => void): this;
}

// ---------------------------------------------------------------- the client

export interface TelemetryClientOptions {
  /** VS Code's setting: `() => vscode.env.isTelemetryEnabled`. Throwing counts as false. */
  isTelemetryEnabled: () => boolean;
  /** The extension's telemetry folder, absolute (globalStorage/…/telemetry). */
  eventsDir: string;
  /** Default: `branchpy-telemetry-bridge` on PATH. */
  bridgePath?: string;
  /** E.g. ['--no-start'] so that no daemon is started. */
  bridgeArgs?: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Milliseconds per message type (long ones: without progress). */
  timeouts?: Partial<Record<MessageType, number>>;
  /** Default: 32 random hex digits per client. */
  sessionId?: string;
  segments?: SegmentOptions;
}

export interface RequestOptions {
  timeoutMs?: number;
  onProgress?: (message: ProgressMessage) => void;
}

export interface EventStats {
  written: number;
  dropped: { consent: number; invalid: number; write_error: number };
}

export class TelemetryClient extends EventEmitter {
  constructor(options: TelemetryClientOptions);
  readonly eventsDir: string;
  readonly sessionId: string;
  readonly connection: BridgeConnection;

  telemetryEnabled(): boolean;
  /** Resolves with the result payload; rejects with a TelemetryError. */
  request<T extends MessageType>(type: T, payload?: MessageMap[T]['payload'],
    options?: RequestOptions & { progressId?: MessageId }): Promise<MessageMap[T]['result']>;
  /** Answers a webview message with the bridge's result message; never rejects. */
  handleMessage(message: unknown): Promise<ResultMessage>;

  status(payload?: StatusPayload, options?: RequestOptions): Promise<StatusResult>;
  export(payload: ExportPayload, options?: RequestOptions): Promise<ExportResult>;
  preview(payload: PreviewPayload, options?: RequestOptions): Promise<PreviewResult>;
  upload(payload: UploadPayload, options?: RequestOptions): Promise<UploadResult>;
  sync(payload?: SyncPayload, options?: RequestOptions): Promise<SyncResult>;
  setMode(payload: SetModePayload, options?: RequestOptions): Promise<SetModeResult>;
  getConfig(payload?: GetConfigPayload, options?: RequestOptions): Promise<GetConfigResult>;
  setConfig(payload: SetConfigPayload, options?: RequestOptions): Promise<SetConfigResult>;
  rotate(payload?: RotatePayload, options?: RequestOptions): Promise<RotateResult>;
  history(payload?: HistoryPayload, options?: RequestOptions): Promise<HistoryResult>;
  purge(payload: PurgePayload, options?: RequestOptions): Promise<PurgeResult>;
  catalog(payload?: CatalogPayload, options?: RequestOptions): Promise<CatalogResult>;
  /** Sets `telemetry.sources.extension_dir` to `eventsDir` unless already; true if it changed. */
  registerEventsDir(): Promise<boolean>;

  /** Records an event; never throws; false when nothing was written (telemetry disabled, an invalid event, a write error, or after dispose). */
  appendEvent(event: ExtensionEvent): boolean;
  eventStats(): EventStats;
  /** Seals the events file, fails requests in flight (disposed), ends the bridge. */
  dispose(): Promise<void>;

  on(event: 'progress', listener: (message: ProgressMessage) => void): this;
  on(event: 'eventDropped', listener: (event: { reason: keyof EventStats['dropped']; detail: string }) => void): this;
  on(event: 'trace', listener: (event: TraceEvent) => void): this;
  on(event: 'unmatched', listener: (event: { message?: Record<string, unknown>; raw?: string }) => void): this;
  on(event: 'stderr', listener: (text: string) => void): this;
  on(event: 'spawn', listener: (event: { pid: number }) => void): this;
  on(event: 'exit', listener: (event: { code: number | null; signal: string | null; pid?: number }) => void): this;
}

export const MESSAGE_TYPES: Readonly<Record<MessageType, { command: string; long: boolean }>>;
export const CONSENT_TYPES: ReadonlySet<MessageType>;
export const CONSENT_SOURCE: 'VS Code telemetry setting';
export const schemaPaths: Readonly<{ bridgeProtocol: string; eventRecord: string }>;
