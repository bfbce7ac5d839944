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
