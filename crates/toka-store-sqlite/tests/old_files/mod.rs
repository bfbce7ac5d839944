//! Database files as older versions of the driver wrote them, for the migration tests.
//! Only the fixture knows the old layouts: the driver keeps nothing but its migrations.

use std::path::Path;

use rusqlite::{Connection, params};
use toka_store_core::{EventRecord, parents_json};

/// The tables as versions 1 to 4 of the schema had them (text ids, payloads in a table
/// of their own, stored once per hash).
const V4_TABLES: &str = "
    CREATE TABLE payloads (id INTEGER PRIMARY KEY, hash_prefix INTEGER NOT NULL, hash BLOB NOT NULL, body NOT NULL);
    CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
        timestamp INTEGER NOT NULL, intent TEXT NOT NULL, parents TEXT NOT NULL, origin TEXT NOT NULL,
        jti TEXT, payload_hash BLOB NOT NULL, payload_id INTEGER NOT NULL, digest BLOB NOT NULL);
    CREATE TABLE snapshots (seq INTEGER PRIMARY KEY, chain_digest BLOB NOT NULL, state_digest BLOB NOT NULL, state BLOB NOT NULL);
    CREATE TABLE checkpoints (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, body TEXT NOT NULL);";

/// Writes `records` as the driver at schema `version` (2, 3 or 4) did.
pub fn old_file(path: &Path, version: i64, records: &[EventRecord]) {
    let conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.execute_batch(V4_TABLES).unwrap();
    match version {
        2 => conn
            .execute_batch("CREATE INDEX payloads_by_hash_prefix ON payloads (hash_prefix);")
            .unwrap(),
        3 => {}
        4 => conn
            .execute_batch(
                "CREATE TABLE snapshot_chunks (seq INTEGER NOT NULL, n INTEGER NOT NULL, bytes BLOB NOT NULL, PRIMARY KEY (seq, n)) WITHOUT ROWID;
                 ALTER TABLE snapshots ADD COLUMN chunks INTEGER NOT NULL DEFAULT 0;",
            )
            .unwrap(),
        _ => panic!("no fixture for version {version}"),
    }
    for r in records {
        let h = &r.header;
        let hash = h.payload_hash.as_bytes().as_slice();
        let stored: Option<i64> = conn
            .query_row(
                "SELECT id FROM payloads WHERE hash = ?1",
                params![hash],
                |r| r.get(0),
            )
            .ok();
        let payload_id = match stored {
            Some(id) => id,
            None => {
                let prefix = i64::from_le_bytes(hash[..8].try_into().unwrap());
                let body = String::from_utf8(r.payload.clone()).unwrap();
                conn.execute(
                    "INSERT INTO payloads (hash_prefix, hash, body) VALUES (?1, ?2, ?3)",
                    params![prefix, hash, body],
                )
                .unwrap();
                conn.last_insert_rowid()
            }
        };
        conn.execute(
            "INSERT INTO events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                h.seq as i64,
                h.id.to_string(),
                h.kind,
                h.timestamp.as_micros() as i64,
                h.intent.to_string(),
                parents_json(&h.parents),
                h.origin.to_string(),
                h.jti,
                hash,
                payload_id,
                h.digest.as_bytes().as_slice(),
            ],
        )
        .unwrap();
    }
    conn.pragma_update(None, "user_version", version).unwrap();
}
