//! Snapshots in SQLite: small ones inline in their row, large ones in chunks.
//!
//! SQLite has one writer. A snapshot of a large state (hundreds of megabytes) written in
//! one transaction would hold it, and every append would wait for the whole write. So a
//! state over [`CHUNK_BYTES`] is written a chunk per transaction, the writer connection
//! released between chunks so appends interleave, and the `snapshots` row goes in last:
//! until it is there, the snapshot does not exist for readers, and a crash part-way
//! leaves only chunks that the next prune removes. Not here: which snapshot recovery
//! trusts (the runtime decides, from signed checkpoints).
//!
//! Invariant: a `snapshots` row with `chunks = k > 0` has exactly the chunks `0..k` of
//! its `seq`, and an empty `state`; one with `chunks = 0` holds its state inline.

use rusqlite::{Connection, OptionalExtension, params};
use toka_store_core::{Hash32, Snapshot, StoreError};

use crate::{DRIVER, backend};

/// The size of one chunk (and the largest state kept inline).
pub(crate) const CHUNK_BYTES: usize = 4 << 20;

/// Removes the snapshot at `seq` and any chunks of it, before it is written anew.
pub(crate) fn clear(conn: &mut Connection, seq: u64) -> Result<(), StoreError> {
    let tx = conn.transaction().map_err(backend)?;
    tx.execute("DELETE FROM snapshots WHERE seq = ?1", params![seq as i64])
        .map_err(backend)?;
    tx.execute(
        "DELETE FROM snapshot_chunks WHERE seq = ?1",
        params![seq as i64],
    )
    .map_err(backend)?;
    tx.commit().map_err(backend)
}

/// Writes a snapshot whose state is at most [`CHUNK_BYTES`] inline, replacing any
/// snapshot at its `seq`, in one transaction.
pub(crate) fn put_inline(conn: &mut Connection, snapshot: &Snapshot) -> Result<(), StoreError> {
    let tx = conn.transaction().map_err(backend)?;
    tx.execute(
        "DELETE FROM snapshot_chunks WHERE seq = ?1",
        params![snapshot.seq as i64],
    )
    .map_err(backend)?;
    put_row(&tx, snapshot, 0)?;
    tx.commit().map_err(backend)
}

/// Writes chunk `n` of the snapshot at `seq` (a transaction of its own).
pub(crate) fn put_chunk(
    conn: &Connection,
    seq: u64,
    n: usize,
    bytes: &[u8],
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO snapshot_chunks (seq, n, bytes) VALUES (?1, ?2, ?3)",
        params![seq as i64, n as i64, bytes],
    )
    .map_err(backend)?;
    Ok(())
}

/// Writes the snapshot's row: its state inline (`chunks` 0), or, with `chunks` already
/// written, a snapshot whose `state` is left empty.
pub(crate) fn put_row(
    conn: &Connection,
    snapshot: &Snapshot,
    chunks: usize,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT OR REPLACE INTO snapshots (seq, chain_digest, state_digest, state, chunks)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            snapshot.seq as i64,
            snapshot.chain_digest.as_bytes().as_slice(),
            snapshot.state_digest.as_bytes().as_slice(),
            snapshot.state,
            chunks as i64
        ],
    )
    .map_err(backend)?;
    Ok(())
}

/// The newest snapshot, its state put back together from its chunks.
pub(crate) fn latest(conn: &Connection) -> Result<Option<Snapshot>, StoreError> {
    let row = conn
        .query_row(
            "SELECT seq, chain_digest, state_digest, state, chunks FROM snapshots
             ORDER BY seq DESC LIMIT 1",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    // A state rewritten with `sqlite3` may come back as TEXT: still
                    // its bytes, for recovery to check (never a bare type error).
                    crate::rows::bytes_of(r.get_ref(3)?).map(<[u8]>::to_vec),
                    r.get::<_, i64>(4)?,
                ))
            },
        )
        .optional()
        .map_err(backend)?;
    let Some((seq, chain, state_digest, state, chunks)) = row else {
        return Ok(None);
    };
    let seq = seq as u64;
    let corrupt = |reason: String| StoreError::Corrupt {
        driver: DRIVER,
        seq,
        reason,
    };
    let mut state =
        state.ok_or_else(|| corrupt("snapshot state is neither text nor bytes".into()))?;
    if chunks > 0 {
        let mut stmt = conn
            .prepare_cached("SELECT n, bytes FROM snapshot_chunks WHERE seq = ?1 ORDER BY n")
            .map_err(backend)?;
        let mut rows = stmt.query(params![seq as i64]).map_err(backend)?;
        let mut next = 0i64;
        while let Some(row) = rows.next().map_err(backend)? {
            let n: i64 = row.get(0).map_err(backend)?;
            if n != next {
                return Err(corrupt(format!("snapshot chunk {next} is missing")));
            }
            let bytes = crate::rows::bytes_of(row.get_ref(1).map_err(backend)?)
                .ok_or_else(|| corrupt(format!("snapshot chunk {n} is neither text nor bytes")))?;
            state.extend_from_slice(bytes);
            next += 1;
        }
        if next != chunks {
            return Err(corrupt(format!(
                "snapshot has {next} of its {chunks} chunks"
            )));
        }
    }
    let bad = || corrupt("snapshot digest is not 32 bytes".into());
    Ok(Some(Snapshot {
        seq,
        chain_digest: Hash32::from_slice(&chain).ok_or_else(bad)?,
        state_digest: Hash32::from_slice(&state_digest).ok_or_else(bad)?,
        state,
    }))
}

/// Keeps the newest `keep` snapshots; removes the others' rows and chunks, and chunks
/// left by a write that never finished (older than every snapshot kept). Returns how
/// many snapshots were removed.
pub(crate) fn prune(conn: &mut Connection, keep: i64) -> Result<usize, StoreError> {
    let tx = conn.transaction().map_err(backend)?;
    let deleted = tx
        .execute(
            "DELETE FROM snapshots WHERE seq NOT IN
             (SELECT seq FROM snapshots ORDER BY seq DESC LIMIT ?1)",
            params![keep],
        )
        .map_err(backend)?;
    // A write in progress is always for a seq above every stored snapshot (they are
    // taken at the head): only chunks below the oldest kept one are leftovers.
    tx.execute(
        "DELETE FROM snapshot_chunks WHERE seq < (SELECT COALESCE(MIN(seq), 0) FROM snapshots)",
        [],
    )
    .map_err(backend)?;
    tx.commit().map_err(backend)?;
    Ok(deleted)
}
