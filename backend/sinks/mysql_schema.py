"""The MySQL/MariaDB schema: ordered migrations and its 15 indexes.

Text columns use a binary, NO PAD collation (MariaDB `utf8mb4_nopad_bin`,
MySQL 8 `utf8mb4_0900_bin`) so that equality and ordering are the same as
SQLite's and Python's (case-sensitive, trailing spaces significant, code
point order). Identifiers here are constants; values are never formatted in.

Migrations are append-only and keep every count: version 2 stripes the
aggregates (shards.py) with one ALTER TABLE per table; version 3 adds the
dashboard's breakdowns (usage.py), filled from the stored events by backfill.py.

The 15 secondary indexes and the query each one serves (rollup tables are
clustered on their primary key, natural key first and `shard` last, which
is what the dashboard queries range over, so they need none):

 events (clustered by event_id; every index also carries event_id, the listing's tie-break)
  1 ix_events_ts             (ts_us, event_id)     /events unfiltered (ORDER BY ... LIMIT), from/to;
                                                   purge oldest first. event_id is explicit: MariaDB does not
                                                   use the implicit PK suffix to avoid a filesort here
  2 ix_events_category_ts    (category, ts_us)     /events?category=
  3 ix_events_source_status_ts (source, status, ts_us)  /events?source= and source+status
  4 ix_events_name_ts        (name, ts_us)         /events?name=
  5 ix_events_status_ts      (status, ts_us)       /events?status=
  6 ix_events_session_ts     (session_id, ts_us)   /events?session_id= (a session's timeline)
  7 ix_events_error_hash_ts  (error_hash, ts_us)   drill-down from /errors/recent to its events
  8 ix_events_correlation    (correlation_id)      one command traced across cli/extension/daemon
  9 ix_events_package        (package_id)          a package's events (audit, re-delivery checks)
 packages
 10 ix_packages_received     (received_us)         latest uploads (/stats last upload, audits)
 11 ix_packages_governance   (governance_id, received_us)  one install's upload history
 sessions
 12 ix_sessions_first        (first_us)            /sessions list, newest first, range
 13 ix_sessions_last         (last_us)             retention purge of sessions
 error_groups
 14 ix_error_groups_last     (last_us)             /errors/recent, most recently seen first
 api_keys
 15 ux_api_keys_hash         UNIQUE (key_hash)     authenticating every request
"""

from __future__ import annotations

SCHEMA_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INT NOT NULL) ENGINE=InnoDB"

_T = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE={collation}"
_ID = "VARCHAR(255)"

MIGRATIONS: list[list[str]] = [
    [  # 1: initial schema
        f"""CREATE TABLE packages (package_id {_ID} NOT NULL PRIMARY KEY, receipt VARCHAR(80) NOT NULL,
            received_us BIGINT NOT NULL, governance_id {_ID} NOT NULL, body_bytes BIGINT NOT NULL,
            event_count INT NOT NULL, accepted_events INT NOT NULL, branchpy_version {_ID} NOT NULL,
            platform_os {_ID} NOT NULL,
            KEY ix_packages_received (received_us),
            KEY ix_packages_governance (governance_id, received_us)) {_T}""",
        f"""CREATE TABLE events (event_id {_ID} NOT NULL PRIMARY KEY, package_id {_ID} NOT NULL,
            ts {_ID} NOT NULL, ts_us BIGINT NOT NULL, category VARCHAR(32) NOT NULL,
            source VARCHAR(32) NOT NULL, name {_ID} NOT NULL, duration_ms DOUBLE NULL, status {_ID} NULL,
            session_id {_ID} NULL, correlation_id {_ID} NULL, error_code {_ID} NULL, error_hash {_ID} NULL,
            attrs MEDIUMTEXT NOT NULL, governance_id {_ID} NOT NULL,
            KEY ix_events_ts (ts_us, event_id),
            KEY ix_events_category_ts (category, ts_us),
            KEY ix_events_source_status_ts (source, status, ts_us),
            KEY ix_events_name_ts (name, ts_us),
            KEY ix_events_status_ts (status, ts_us),
            KEY ix_events_session_ts (session_id, ts_us),
            KEY ix_events_error_hash_ts (error_hash, ts_us),
            KEY ix_events_correlation (correlation_id),
            KEY ix_events_package (package_id)) {_T}""",
        f"""CREATE TABLE rollup_hour (hour BIGINT NOT NULL PRIMARY KEY, events BIGINT NOT NULL,
            errors BIGINT NOT NULL, with_status BIGINT NOT NULL, dur_n BIGINT NOT NULL,
            dur_sum DOUBLE NOT NULL) {_T}""",
        f"""CREATE TABLE rollup_dim (dim VARCHAR(16) NOT NULL, hour BIGINT NOT NULL, dkey {_ID} NOT NULL,
            events BIGINT NOT NULL, PRIMARY KEY (dim, hour, dkey)) {_T}""",
        f"""CREATE TABLE hist (level INT NOT NULL, start BIGINT NOT NULL, cum BLOB NOT NULL,
            PRIMARY KEY (level, start)) {_T}""",
        f"""CREATE TABLE session_hour (hour BIGINT NOT NULL PRIMARY KEY, sessions BIGINT NOT NULL,
            duration_us BIGINT NOT NULL, events BIGINT NOT NULL) {_T}""",
        f"""CREATE TABLE sessions (session_id {_ID} NOT NULL PRIMARY KEY, first_us BIGINT NOT NULL,
            last_us BIGINT NOT NULL, events BIGINT NOT NULL, errors BIGINT NOT NULL,
            KEY ix_sessions_first (first_us), KEY ix_sessions_last (last_us)) {_T}""",
        f"""CREATE TABLE error_groups (error_hash {_ID} NOT NULL PRIMARY KEY, error_code {_ID} NULL,
            name {_ID} NULL, count BIGINT NOT NULL, last_us BIGINT NOT NULL,
            KEY ix_error_groups_last (last_us)) {_T}""",
        f"CREATE TABLE installs (governance_id {_ID} NOT NULL PRIMARY KEY, first_us BIGINT NOT NULL) {_T}",
        f"""CREATE TABLE totals (id INT NOT NULL PRIMARY KEY, events BIGINT NOT NULL,
            packages BIGINT NOT NULL, errors BIGINT NOT NULL, sessions BIGINT NOT NULL,
            installs BIGINT NOT NULL, last_upload_us BIGINT NOT NULL) {_T}""",
        "INSERT INTO totals VALUES (1, 0, 0, 0, 0, 0, 0)",
        f"""CREATE TABLE api_keys (key_id {_ID} NOT NULL PRIMARY KEY, key_hash VARCHAR(128) NOT NULL,
            scope VARCHAR(16) NOT NULL, label {_ID} NULL, created_at VARCHAR(64) NOT NULL,
            revoked_at VARCHAR(64) NULL, UNIQUE KEY ux_api_keys_hash (key_hash)) {_T}""",
    ],
    [  # 2: aggregates striped into shards (shards.py): `shard` last in the primary key; the rows
       # written before keep their counts in shard 0 (the totals row keeps its id as its shard)
        "ALTER TABLE rollup_hour ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0 AFTER hour, "
        "DROP PRIMARY KEY, ADD PRIMARY KEY (hour, shard)",
        "ALTER TABLE rollup_dim ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0 AFTER dkey, "
        "DROP PRIMARY KEY, ADD PRIMARY KEY (dim, hour, dkey, shard)",
        "ALTER TABLE hist ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0 AFTER start, "
        "DROP PRIMARY KEY, ADD PRIMARY KEY (level, start, shard)",
        "ALTER TABLE session_hour ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0 AFTER hour, "
        "DROP PRIMARY KEY, ADD PRIMARY KEY (hour, shard)",
        "ALTER TABLE error_groups ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0 AFTER error_hash, "
        f"ADD COLUMN last_event_id {_ID} NOT NULL DEFAULT '', "
        "DROP PRIMARY KEY, ADD PRIMARY KEY (error_hash, shard)",
        "ALTER TABLE totals CHANGE COLUMN id shard SMALLINT NOT NULL",
    ],
    [  # 3: the dashboard's breakdowns (usage.py): per command, version and platform; error groups by
       # time and command; installs per day; uploads per hour. Rows written before are rebuilt by backfill.py
        "ALTER TABLE packages ADD COLUMN platform_python VARCHAR(64) NOT NULL DEFAULT ''",
        f"""CREATE TABLE usage_rollup (level INT NOT NULL, start BIGINT NOT NULL,
            category VARCHAR(16) NOT NULL, name {_ID} NOT NULL, source VARCHAR(16) NOT NULL,
            version VARCHAR(64) NOT NULL,
            os VARCHAR(16) NOT NULL, python VARCHAR(64) NOT NULL, shard SMALLINT NOT NULL,
            events BIGINT NOT NULL, errors BIGINT NOT NULL, with_status BIGINT NOT NULL,
            dur_n BIGINT NOT NULL, dur_max DOUBLE NOT NULL,
            PRIMARY KEY (level, start, category, name, source, version, os, python, shard)) {_T}""",
        f"""CREATE TABLE name_hist (level INT NOT NULL, start BIGINT NOT NULL, category VARCHAR(16) NOT NULL,
            name {_ID} NOT NULL, shard SMALLINT NOT NULL, cum BLOB NOT NULL,
            PRIMARY KEY (level, start, category, name, shard)) {_T}""",
        f"""CREATE TABLE error_rollup (level INT NOT NULL, start BIGINT NOT NULL,
            error_hash VARCHAR(80) NOT NULL, error_code {_ID} NOT NULL, category VARCHAR(16) NOT NULL,
            name {_ID} NOT NULL,
            shard SMALLINT NOT NULL, count BIGINT NOT NULL, first_us BIGINT NOT NULL, last_us BIGINT NOT NULL,
            PRIMARY KEY (level, start, error_hash, error_code, category, name, shard)) {_T}""",
        f"""CREATE TABLE error_types (error_hash VARCHAR(80) NOT NULL PRIMARY KEY,
            error_type VARCHAR(600) NOT NULL) {_T}""",
        f"""CREATE TABLE install_days (day BIGINT NOT NULL, governance_id VARCHAR(64) NOT NULL,
            version VARCHAR(64) NOT NULL, os VARCHAR(16) NOT NULL, python VARCHAR(64) NOT NULL,
            PRIMARY KEY (day, governance_id, version, os, python)) {_T}""",
        f"""CREATE TABLE upload_hour (hour BIGINT NOT NULL, shard SMALLINT NOT NULL, packages BIGINT NOT NULL,
            last_us BIGINT NOT NULL, PRIMARY KEY (hour, shard)) {_T}""",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)
INDEX_COUNT = 15


def migration_statements(version: int, collation: str) -> list[str]:
    return [s.replace("{collation}", collation) for s in MIGRATIONS[version - 1]]
