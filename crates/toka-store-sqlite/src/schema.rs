//! The schema and its migrations. `PRAGMA user_version` holds the version applied;
//! each migration runs once, in order, inside one transaction.

use rusqlite::Connection;
use toka_store_core::StoreError;

use crate::DRIVER;

/// Migrations, oldest first. Index + 1 is the version each one brings the file to.
const MIGRATIONS: &[&str] = &[
    // 1: the log, payloads stored once per hash, snapshots.
    //
    // Rows are laid out so that appends write at the end of every B-tree: events by
    // seq, payloads by an increasing rowid, event ids (runtime-assigned, increasing)
    // in their index. The index on an 8-byte prefix of the payload hash, the only
    // random-order one, is dropped by migration 3.
    "CREATE TABLE payloads (
        id INTEGER PRIMARY KEY,     -- increasing; what events point at
        hash_prefix INTEGER NOT NULL, -- first 8 bytes of hash, little-endian (dedup lookup)
        hash BLOB NOT NULL,         -- BLAKE3 of body, 32 bytes
        body NOT NULL               -- TEXT when the payload is UTF-8 (JSON), else BLOB
    );
    CREATE INDEX payloads_by_hash_prefix ON payloads (hash_prefix);
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY,    -- 1, 2, 3, ... without gaps
        id TEXT NOT NULL UNIQUE,    -- event id (UUID)
        kind TEXT NOT NULL,
        timestamp INTEGER NOT NULL, -- microseconds since the Unix epoch
        intent TEXT NOT NULL,
        parents TEXT NOT NULL,      -- JSON array of event ids
        origin TEXT NOT NULL,
        jti TEXT,                   -- capability that authorised it; NULL for genesis
        payload_hash BLOB NOT NULL, -- BLAKE3 of the payload, 32 bytes
        payload_id INTEGER NOT NULL,-- payloads.id
        digest BLOB NOT NULL        -- chain digest, 32 bytes
    );
    CREATE TABLE snapshots (
        seq INTEGER PRIMARY KEY,
        chain_digest BLOB NOT NULL,
        state_digest BLOB NOT NULL,
        state BLOB NOT NULL
    );",
    // 2: signed checkpoints (the runtime's JSON, readable with sqlite3), newest kept.
    "CREATE TABLE checkpoints (
        id INTEGER PRIMARY KEY,     -- increasing: the order they were put
        seq INTEGER NOT NULL,
        body TEXT NOT NULL
    );",
    // 3: no index on the payload hash prefix. It was the one random-order B-tree: each
    // append dirtied about one of its pages per event, so a 1000-event commit wrote
    // megabytes to the WAL. The driver keeps the prefixes in memory instead (loaded
    // from this column at open), and looks a payload up by rowid.
    "DROP INDEX payloads_by_hash_prefix;",
    // 4: a large snapshot's state in chunks, each written in a transaction of its own,
    // so appends go on between them instead of waiting for the whole state to be
    // written. The snapshots row comes last: a snapshot exists once its row does.
    // `chunks` 0: the state is inline in `state` (small snapshots, and older ones).
    "CREATE TABLE snapshot_chunks (
        seq INTEGER NOT NULL,       -- the snapshot's seq
        n INTEGER NOT NULL,         -- 0, 1, 2, ... in order
        bytes BLOB NOT NULL,
        PRIMARY KEY (seq, n)
    ) WITHOUT ROWID;
    ALTER TABLE snapshots ADD COLUMN chunks INTEGER NOT NULL DEFAULT 0;",
    // 5: one row per event. Ids are 16-byte BLOBs instead of 36-character TEXT, and an
    // event's payload is in its own row (`body`), or, when an earlier event has the
    // same payload, that event's `seq` is (`body_at`): payloads are still stored once.
    // An append inserts one row and one small index entry per event instead of two rows
    // and a 36-byte index entry; about a quarter of the append's time in SQLite. The
    // view `events_text` shows ids as UUIDs and every event's payload, for `sqlite3`.
    //
    // Converting a v4 file keeps what a damaged one holds, so verification still names
    // the first bad `seq`: an id that is not a UUID becomes an empty BLOB (read back as
    // corrupt at its seq), a missing payload an empty body (read back as altered).
    "CREATE TABLE events_v5 (
        seq INTEGER PRIMARY KEY,    -- 1, 2, 3, ... without gaps
        id BLOB NOT NULL UNIQUE,    -- event id, the UUID's 16 bytes
        kind TEXT NOT NULL,
        timestamp INTEGER NOT NULL, -- microseconds since the Unix epoch
        intent BLOB NOT NULL,       -- 16 bytes
        parents TEXT NOT NULL,      -- JSON array of event ids (UUID text)
        origin BLOB NOT NULL,       -- 16 bytes
        jti TEXT,                   -- capability that authorised it; NULL for genesis
        payload_hash BLOB NOT NULL, -- BLAKE3 of the payload, 32 bytes
        digest BLOB NOT NULL,       -- chain digest, 32 bytes
        body,                       -- the payload: TEXT when UTF-8 (JSON), else BLOB;
                                    -- NULL when body_at names the event that holds it
        body_at INTEGER             -- seq of the earlier event holding this payload
    );
    CREATE TEMP TABLE first_with_payload AS
        SELECT payload_id, min(seq) AS seq FROM events GROUP BY payload_id;
    CREATE INDEX temp.first_with_payload_by_id ON first_with_payload (payload_id);
    INSERT INTO events_v5
        SELECT e.seq,
               coalesce(unhex(replace(e.id, '-', '')), x''),
               e.kind, e.timestamp,
               coalesce(unhex(replace(e.intent, '-', '')), x''),
               e.parents,
               coalesce(unhex(replace(e.origin, '-', '')), x''),
               e.jti, e.payload_hash, e.digest,
               CASE WHEN f.seq = e.seq THEN coalesce(p.body, x'') END,
               CASE WHEN f.seq = e.seq THEN NULL ELSE f.seq END
        FROM events e
        LEFT JOIN payloads p ON p.id = e.payload_id
        JOIN first_with_payload f ON f.payload_id = e.payload_id
        ORDER BY e.seq;
    DROP TABLE first_with_payload;
    DROP TABLE events;
    DROP TABLE payloads;
    ALTER TABLE events_v5 RENAME TO events;
    CREATE VIEW events_text AS
        SELECT e.seq,
               lower(substr(hex(e.id), 1, 8) || '-' || substr(hex(e.id), 9, 4) || '-' ||
                     substr(hex(e.id), 13, 4) || '-' || substr(hex(e.id), 17, 4) || '-' ||
                     substr(hex(e.id), 21)) AS id,
               e.kind, e.timestamp,
               lower(substr(hex(e.intent), 1, 8) || '-' || substr(hex(e.intent), 9, 4) || '-' ||
                     substr(hex(e.intent), 13, 4) || '-' || substr(hex(e.intent), 17, 4) || '-' ||
                     substr(hex(e.intent), 21)) AS intent,
               e.parents,
               lower(substr(hex(e.origin), 1, 8) || '-' || substr(hex(e.origin), 9, 4) || '-' ||
                     substr(hex(e.origin), 13, 4) || '-' || substr(hex(e.origin), 17, 4) || '-' ||
                     substr(hex(e.origin), 21)) AS origin,
               e.jti, e.payload_hash, e.digest,
               coalesce(e.body, b.body) AS body
        FROM events e LEFT JOIN events b ON b.seq = e.body_at;",
];

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`SCHEMA_VERSION`]; refuses a newer one.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let err = |e: rusqlite::Error| StoreError::backend(DRIVER, e);
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(err)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            driver: DRIVER,
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = index as i64 + 1;
        let tx = conn.transaction().map_err(err)?;
        tx.execute_batch(sql).map_err(err)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(err)?;
        tx.commit().map_err(err)?;
        tracing::info!(version, "sqlite schema migrated");
    }
    Ok(())
}
