"""The SQLite schema: ordered migrations, run when a LocalSQLiteSink opens a file.

`events` is a WITHOUT ROWID table keyed by event_id, so every index also
holds event_id (the listing's tie-break) and has 6 indexes, chosen for the
`/events` filters:

  ix_events_ts                (ts_us)                 unfiltered listing, from/to, purge
  ix_events_category_ts       (category, ts_us)       category=
  ix_events_name_ts           (name, ts_us)           name=
  ix_events_session_ts        (session_id, ts_us)     session_id=
  ix_events_source_status_ts  (source, status, ts_us) source=, source+status; status= alone
                                                      runs as `source IN (cli, extension, daemon)`
  ix_events_error_hash_ts     (error_hash, ts_us)     error_hash= (the events of one error group;
                                                      since version 3)

Migrations are append-only: a database of any earlier version is brought
forward, keeping every count. Version 2 stripes the aggregates (shards.py):
SQLite cannot change a primary key in place, so each table is rebuilt
(create, copy with the old rows in one shard, drop, rename), in the one
transaction that runs the migration.
"""

from __future__ import annotations

SCHEMA_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"

MIGRATIONS: list[list[str]] = [
    [  # 1: initial schema
        """CREATE TABLE packages (package_id TEXT PRIMARY KEY, receipt TEXT NOT NULL,
            received_us INTEGER NOT NULL, governance_id TEXT NOT NULL, body_bytes INTEGER NOT NULL,
            event_count INTEGER NOT NULL, accepted_events INTEGER NOT NULL, branchpy_version TEXT NOT NULL,
            platform_os TEXT NOT NULL)""",
        """CREATE TABLE events (event_id TEXT PRIMARY KEY, package_id TEXT NOT NULL, ts TEXT NOT NULL,
            ts_us INTEGER NOT NULL, category TEXT NOT NULL, source TEXT NOT NULL, name TEXT NOT NULL,
            duration_ms REAL, status TEXT, session_id TEXT, correlation_id TEXT, error_code TEXT,
            error_hash TEXT, attrs TEXT NOT NULL, governance_id TEXT NOT NULL) WITHOUT ROWID""",
        "CREATE INDEX ix_events_ts ON events (ts_us)",
        "CREATE INDEX ix_events_category_ts ON events (category, ts_us)",
        "CREATE INDEX ix_events_name_ts ON events (name, ts_us)",
        "CREATE INDEX ix_events_session_ts ON events (session_id, ts_us)",
        "CREATE INDEX ix_events_source_status_ts ON events (source, status, ts_us)",
        """CREATE TABLE rollup_hour (hour INTEGER PRIMARY KEY, events INTEGER NOT NULL,
            errors INTEGER NOT NULL,
            with_status INTEGER NOT NULL, dur_n INTEGER NOT NULL, dur_sum REAL NOT NULL)""",
        """CREATE TABLE rollup_dim (dim TEXT NOT NULL, hour INTEGER NOT NULL, dkey TEXT NOT NULL,
            events INTEGER NOT NULL, PRIMARY KEY (dim, hour, dkey)) WITHOUT ROWID""",
        """CREATE TABLE hist (level INTEGER NOT NULL, start INTEGER NOT NULL, cum BLOB NOT NULL,
            PRIMARY KEY (level, start))""",
        """CREATE TABLE session_hour (hour INTEGER PRIMARY KEY, sessions INTEGER NOT NULL,
            duration_us INTEGER NOT NULL, events INTEGER NOT NULL)""",
        """CREATE TABLE sessions (session_id TEXT PRIMARY KEY, first_us INTEGER NOT NULL,
            last_us INTEGER NOT NULL, events INTEGER NOT NULL, errors INTEGER NOT NULL) WITHOUT ROWID""",
        "CREATE INDEX ix_sessions_first ON sessions (first_us)",
        "CREATE INDEX ix_sessions_last ON sessions (last_us)",
        """CREATE TABLE error_groups (error_hash TEXT PRIMARY KEY, error_code TEXT, name TEXT,
            count INTEGER NOT NULL, last_us INTEGER NOT NULL) WITHOUT ROWID""",
        "CREATE INDEX ix_error_groups_last ON error_groups (last_us)",
        "CREATE TABLE installs (governance_id TEXT PRIMARY KEY, first_us INTEGER NOT NULL) WITHOUT ROWID",
        """CREATE TABLE totals (id INTEGER PRIMARY KEY CHECK (id = 1), events INTEGER NOT NULL,
            packages INTEGER NOT NULL, errors INTEGER NOT NULL, sessions INTEGER NOT NULL,
            installs INTEGER NOT NULL, last_upload_us INTEGER NOT NULL)""",
        "INSERT INTO totals VALUES (1, 0, 0, 0, 0, 0, 0)",
        """CREATE TABLE api_keys (key_id TEXT PRIMARY KEY, key_hash TEXT NOT NULL UNIQUE, scope TEXT NOT NULL,
            label TEXT, created_at TEXT NOT NULL, revoked_at TEXT)""",
    ],
]


def _rebuild(table: str, create: str, columns: str, select: str, indexes: tuple[str, ...] = ()) -> list[str]:
    """Statements replacing `table` by `create` (written for `<table>_v2`), its rows copied
    by `select` into `columns`."""
    return [create, f"INSERT INTO {table}_v2 ({columns}) SELECT {select} FROM {table}", f"DROP TABLE {table}",
            f"ALTER TABLE {table}_v2 RENAME TO {table}", *indexes]


MIGRATIONS.append([  # 2: aggregates striped into shards (shard last in the primary key)
    *_rebuild("rollup_hour", """CREATE TABLE rollup_hour_v2 (hour INTEGER NOT NULL, shard INTEGER NOT NULL,
            events INTEGER NOT NULL, errors INTEGER NOT NULL, with_status INTEGER NOT NULL,
            dur_n INTEGER NOT NULL, dur_sum REAL NOT NULL, PRIMARY KEY (hour, shard)) WITHOUT ROWID""",
              "hour, shard, events, errors, with_status, dur_n, dur_sum",
              "hour, 0, events, errors, with_status, dur_n, dur_sum"),
    *_rebuild("rollup_dim", """CREATE TABLE rollup_dim_v2 (dim TEXT NOT NULL, hour INTEGER NOT NULL,
            dkey TEXT NOT NULL, shard INTEGER NOT NULL, events INTEGER NOT NULL,
            PRIMARY KEY (dim, hour, dkey, shard)) WITHOUT ROWID""",
              "dim, hour, dkey, shard, events", "dim, hour, dkey, 0, events"),
    *_rebuild("hist", """CREATE TABLE hist_v2 (level INTEGER NOT NULL, start INTEGER NOT NULL,
            shard INTEGER NOT NULL, cum BLOB NOT NULL, PRIMARY KEY (level, start, shard))""",
              "level, start, shard, cum", "level, start, 0, cum"),
    *_rebuild("session_hour", """CREATE TABLE session_hour_v2 (hour INTEGER NOT NULL, shard INTEGER NOT NULL,
            sessions INTEGER NOT NULL, duration_us INTEGER NOT NULL, events INTEGER NOT NULL,
            PRIMARY KEY (hour, shard)) WITHOUT ROWID""",
              "hour, shard, sessions, duration_us, events", "hour, 0, sessions, duration_us, events"),
    *_rebuild("error_groups", """CREATE TABLE error_groups_v2 (error_hash TEXT NOT NULL,
            shard INTEGER NOT NULL, error_code TEXT, name TEXT, count INTEGER NOT NULL,
            last_us INTEGER NOT NULL, last_event_id TEXT NOT NULL,
            PRIMARY KEY (error_hash, shard)) WITHOUT ROWID""",
              "error_hash, shard, error_code, name, count, last_us, last_event_id",
              "error_hash, 0, error_code, name, count, last_us, ''",
              ("CREATE INDEX ix_error_groups_last ON error_groups (last_us)",)),
    *_rebuild("totals", """CREATE TABLE totals_v2 (shard INTEGER PRIMARY KEY CHECK (shard >= 0),
            events INTEGER NOT NULL, packages INTEGER NOT NULL, errors INTEGER NOT NULL,
            sessions INTEGER NOT NULL, installs INTEGER NOT NULL, last_upload_us INTEGER NOT NULL)""",
              "shard, events, packages, errors, sessions, installs, last_upload_us",
              "id, events, packages, errors, sessions, installs, last_upload_us"),
])

MIGRATIONS.append([  # 3: the dashboard's breakdowns (usage.py): per command, version and platform;
    # error groups by time and command; installs per day; uploads per hour; events of one error group
    "ALTER TABLE packages ADD COLUMN platform_python TEXT NOT NULL DEFAULT ''",
    """CREATE TABLE usage_rollup (level INTEGER NOT NULL, start INTEGER NOT NULL, category TEXT NOT NULL,
        name TEXT NOT NULL, source TEXT NOT NULL, version TEXT NOT NULL, os TEXT NOT NULL,
        python TEXT NOT NULL, shard INTEGER NOT NULL, events INTEGER NOT NULL, errors INTEGER NOT NULL,
        with_status INTEGER NOT NULL, dur_n INTEGER NOT NULL, dur_max REAL NOT NULL,
        PRIMARY KEY (level, start, category, name, source, version, os, python, shard)) WITHOUT ROWID""",
    """CREATE TABLE name_hist (level INTEGER NOT NULL, start INTEGER NOT NULL, category TEXT NOT NULL,
        name TEXT NOT NULL, shard INTEGER NOT NULL, cum BLOB NOT NULL,
        PRIMARY KEY (level, start, category, name, shard))""",
    """CREATE TABLE error_rollup (level INTEGER NOT NULL, start INTEGER NOT NULL, error_hash TEXT NOT NULL,
        error_code TEXT NOT NULL, category TEXT NOT NULL, name TEXT NOT NULL, shard INTEGER NOT NULL,
        count INTEGER NOT NULL, first_us INTEGER NOT NULL, last_us INTEGER NOT NULL,
        PRIMARY KEY (level, start, error_hash, error_code, category, name, shard)) WITHOUT ROWID""",
    """CREATE TABLE error_types (error_hash TEXT PRIMARY KEY, error_type TEXT NOT NULL) WITHOUT ROWID""",
    """CREATE TABLE install_days (day INTEGER NOT NULL, governance_id TEXT NOT NULL, version TEXT NOT NULL,
        os TEXT NOT NULL, python TEXT NOT NULL,
        PRIMARY KEY (day, governance_id, version, os, python)) WITHOUT ROWID""",
    """CREATE TABLE upload_hour (hour INTEGER NOT NULL, shard INTEGER NOT NULL, packages INTEGER NOT NULL,
        last_us INTEGER NOT NULL, PRIMARY KEY (hour, shard)) WITHOUT ROWID""",
    "CREATE INDEX ix_events_error_hash_ts ON events (error_hash, ts_us)",
])
SCHEMA_VERSION = len(MIGRATIONS)
