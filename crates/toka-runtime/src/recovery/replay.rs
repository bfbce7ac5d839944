//! Replaying the tail of a log: three stages, each on its own thread, a few pages apart.
//!
//! For each page of records, in order:
//!
//! 1. **read** it from the store;
//! 2. **check** it: every record's `seq` follows, its payload hashes to its payload
//!    hash, its digest chains from the one before ([`ChainCursor`]);
//! 3. **apply** it: decode it to a kernel event this runtime can apply (its extension
//!    family is registered), apply that to the state, and compare the log with every
//!    signed checkpoint and snapshot digest on the way.
//!
//! Decoding is stage 3's, not stage 2's: the two hashes per record are the costliest
//! work of a replay, and on two cores the check stage alone was busy all the time while
//! the apply stage waited for it (decoding there made replay 1.07 to 1.09 times faster,
//! which leaves the three stages using both cores nearly all the time).
//!
//! While page N is applied, page N+1 is checked and page N+2 read: the stages overlap,
//! joined by queues of a few pages (none waits for another's page to end), and they
//! never reorder. A record is applied only once it and every record before it were
//! checked, and the first failure is reported by the lowest `seq` (an apply-stage
//! mismatch before a check-stage corruption before a read error), exactly as a
//! one-record-at-a-time replay would report it. Not here: choosing the snapshot to
//! start from, and the checks after the last record (see the parent module).

use toka_kernel::{OpcodeRegistry, WorldState};
use toka_store_core::{ChainCursor, EventPages, EventRecord, Hash32, StorageBackend};
use toka_types::KernelEvent;

use crate::codec::decode;
use crate::error::RuntimeError;

/// A record that passed stage 2.
type Checked = EventRecord;

/// What stage 3 compares the log and the state with while it applies.
pub(super) struct Expectations {
    /// `(seq, chain digest)` of every signed checkpoint, by `seq`.
    pub(super) chain_at: Vec<(u64, Hash32)>,
    /// The newest signed checkpoint's `(seq, state digest)`.
    pub(super) newest_state: Option<(u64, Hash32)>,
    /// A snapshot no checkpoint covers: `(seq, state digest)` the replay must reach.
    pub(super) snapshot_state: Option<(u64, Hash32)>,
}

/// Stage 3's own data, moved to its thread and back for each page.
struct Applier {
    state: WorldState,
    handlers: OpcodeRegistry,
    expect: Expectations,
    /// Index of the next entry of `expect.chain_at` still to compare.
    next_chain: usize,
}

/// Stage 2's own data.
struct Checker {
    cursor: ChainCursor,
}

/// Pages each stage may have waiting for the next: enough that no stage waits for
/// another's page boundary, few enough to bound memory (three pages of 4096 records).
const QUEUE: usize = 2;

/// What one stage hands the next: a page, or the failure that ends the replay (sent
/// after every page before it, so it is the last thing the next stage receives).
type Handed<T> = Result<Vec<T>, RuntimeError>;

/// Replays `store` from `cursor` onto `state`; returns the state and the cursor after the
/// last record. `progress(seq)` is called after each page is applied.
pub(super) async fn replay(
    store: &dyn StorageBackend,
    state: WorldState,
    cursor: ChainCursor,
    handlers: &OpcodeRegistry,
    mut expect: Expectations,
    mut progress: impl FnMut(u64),
) -> Result<(WorldState, ChainCursor), RuntimeError> {
    expect.chain_at.sort_unstable_by_key(|(seq, _)| *seq);
    let mut applier = Applier {
        state,
        handlers: handlers.clone(),
        expect,
        next_chain: 0,
    };
    let mut checker = Checker { cursor };
    // Stage 1 runs here (the store is async); stages 2 and 3 on threads of their own,
    // each fed by a bounded queue, so none waits for the slowest page of another.
    let (to_check, mut checking) = tokio::sync::mpsc::channel::<Handed<EventRecord>>(QUEUE);
    let (to_apply, applying) = std::sync::mpsc::sync_channel::<Handed<Checked>>(QUEUE);
    // One `seq` per page applied: never more entries than pages of the log.
    let (applied, mut applied_seqs) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let check = tokio::task::spawn_blocking(move || {
        while let Some(handed) = checking.blocking_recv() {
            let (checked, failed) = match handed {
                Ok(page) => checker.check(page),
                Err(e) => (Vec::new(), Some(e)),
            };
            let passed = checked.is_empty() || to_apply.send(Ok(checked)).is_ok();
            if let Some(e) = failed {
                let _ = to_apply.send(Err(e));
                break;
            }
            if !passed {
                break; // stage 3 stopped at a failure of its own
            }
        }
        checker
    });
    let apply = tokio::task::spawn_blocking(move || {
        for handed in applying {
            let applied_to = handed.and_then(|page| applier.apply(&page));
            match applied_to {
                Ok(Some(seq)) => {
                    let _ = applied.send(seq);
                }
                Ok(None) => {}
                Err(e) => return (applier, Err(e)),
            }
        }
        (applier, Ok(()))
    });
    let mut pages = EventPages::new(store, cursor.next_seq());
    let mut reading = true;
    while reading {
        tokio::select! {
            Some(seq) = applied_seqs.recv() => progress(seq),
            room = to_check.reserve() => {
                // Closed: a later stage stopped at a failure, which it reports.
                let Ok(room) = room else { break };
                let page = pages.next_page().await.map_err(RuntimeError::from);
                reading = page.as_ref().is_ok_and(|p| !p.is_empty());
                if page.as_ref().is_ok_and(|p| p.is_empty()) {
                    break;
                }
                room.send(page);
            }
        }
    }
    drop(to_check);
    // Until stage 3 ends (its sender goes with it), report what it applies.
    while let Some(seq) = applied_seqs.recv().await {
        progress(seq);
    }
    let checker = check.await.map_err(worker_failed)?;
    let (applier, applied) = apply.await.map_err(worker_failed)?;
    applied?;
    Ok((applier.state, checker.cursor))
}

fn worker_failed(e: tokio::task::JoinError) -> RuntimeError {
    RuntimeError::ReplayWorker(e.to_string())
}

impl Checker {
    /// Stage 2 for one page: the records that passed, up to the first that did not and
    /// why. The cursor moves past every record that passed.
    fn check(&mut self, mut page: Vec<EventRecord>) -> (Vec<Checked>, Option<RuntimeError>) {
        for (i, record) in page.iter().enumerate() {
            if let Err(corruption) = self.cursor.accept(record) {
                let seq = self.cursor.next_seq();
                page.truncate(i);
                return (page, Some(RuntimeError::Corrupt { seq, corruption }));
            }
        }
        (page, None)
    }
}

impl Applier {
    /// Stage 3 for one page; returns the last `seq` applied, if any.
    fn apply(&mut self, page: &[Checked]) -> Result<Option<u64>, RuntimeError> {
        for record in page {
            let event = self.decode(record)?;
            toka_kernel::apply(&mut self.state, &event, &self.handlers);
            self.compare(record.header.seq, record.header.digest)?;
        }
        Ok(page.last().map(|r| r.header.seq))
    }

    /// The kernel event `record` holds, if this runtime can apply it.
    fn decode(&self, record: &Checked) -> Result<KernelEvent, RuntimeError> {
        let event = decode(record)?;
        if let KernelEvent::Extension(call) = &event
            && self.handlers.get(call.family()).is_none()
        {
            return Err(RuntimeError::MissingExtension {
                seq: record.header.seq,
                family: call.family().to_string(),
            });
        }
        Ok(event)
    }

    /// The log (`digest` at `seq`) and the state there against the checkpoints and the
    /// snapshot.
    fn compare(&mut self, seq: u64, digest: Hash32) -> Result<(), RuntimeError> {
        while let Some(&(at, chain)) = self.expect.chain_at.get(self.next_chain)
            && at <= seq
        {
            if at == seq && chain != digest {
                return Err(RuntimeError::CheckpointMismatch {
                    seq,
                    what: "chain digest",
                });
            }
            self.next_chain += 1;
        }
        if let Some((at, expected)) = self.expect.newest_state
            && at == seq
            && !self.state.matches_digest(expected.as_bytes())
        {
            return Err(RuntimeError::CheckpointMismatch {
                seq,
                what: "state digest",
            });
        }
        if let Some((at, expected)) = self.expect.snapshot_state
            && at == seq
            && !self.state.matches_digest(expected.as_bytes())
        {
            return Err(RuntimeError::BadSnapshot {
                seq,
                reason: "its state differs from a replay of the log".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use std::sync::Arc;

    use toka_auth::{KeySet, SigningKey};
    use toka_store_core::{Corruption, DEFAULT_PAGE, Head};
    use toka_store_memory::MemoryStore;
    use toka_types::{Message, Operation, TaskSpec};

    use super::*;
    use crate::{Runtime, RuntimeOptions};

    /// A runtime on a fresh memory store with `handlers`, taking no snapshots: the store,
    /// the runtime, its key set, the root and a root token.
    async fn live(
        handlers: OpcodeRegistry,
    ) -> (MemoryStore, Runtime, KeySet, toka_types::EntityId, String) {
        let store = MemoryStore::new();
        let keys = KeySet::new(SigningKey::hs256("t", &[5u8; 32]).unwrap());
        let mut options = RuntimeOptions::default();
        options.snapshots.every_events = 0;
        options.snapshots.on_shutdown = false;
        options.handlers = handlers;
        let rt = Runtime::with_store(Arc::new(store.clone()), keys.clone(), options)
            .await
            .unwrap();
        let root = rt.root().unwrap();
        let token = rt.issue_root_token().await.unwrap().token;
        (store, rt, keys, root, token)
    }

    /// A log of a little over three pages, and the state the live runtime ended with.
    async fn three_pages() -> (MemoryStore, toka_kernel::StateDigest) {
        let (store, rt, _, root, token) = live(OpcodeRegistry::default()).await;
        let task = TaskSpec::new("page filler").unwrap();
        // Scheduled and claimed in turn, so the root's queue never fills.
        while rt.head().seq <= 3 * DEFAULT_PAGE as u64 + 10 {
            let op = Operation::ScheduleAgentTask {
                agent: root,
                task: task.clone(),
            };
            let c = rt
                .submit(Message::new(root, token.clone(), op))
                .await
                .unwrap();
            let Some(KernelEvent::TaskScheduled { task, .. }) = c.events.first() else {
                panic!("{c:?}")
            };
            let op = Operation::ClaimTask {
                agent: root,
                task: *task,
            };
            rt.submit(Message::new(root, token.clone(), op))
                .await
                .unwrap();
        }
        let live = rt.read(|state| state.digest());
        rt.shutdown().await;
        (store, live)
    }

    /// An extension that records each call as it is: enough to put one in a log.
    struct Tally;

    impl toka_kernel::OpcodeHandler for Tally {
        fn family(&self) -> &str {
            "tally"
        }
        fn decide(
            &self,
            _state: &toka_kernel::ExtensionState,
            call: &toka_types::ExtensionCall,
            _origin: toka_types::EntityId,
            _ctx: &toka_kernel::Context,
        ) -> Result<Vec<toka_types::ExtensionCall>, toka_kernel::ExtensionRefusal> {
            Ok(vec![call.clone()])
        }
        fn apply(
            &self,
            _state: &mut toka_kernel::ExtensionState,
            _event: &toka_types::ExtensionCall,
        ) {
        }
    }

    fn tallying() -> OpcodeRegistry {
        let mut handlers = OpcodeRegistry::default();
        handlers.register(Arc::new(Tally)).unwrap();
        handlers
    }

    /// A log of a few tasks, one `tally` event, and a few tasks more; the tally's `seq`.
    async fn with_an_extension() -> (MemoryStore, u64) {
        let (store, rt, keys, root, token) = live(tallying()).await;
        let schedule = || Operation::ScheduleAgentTask {
            agent: root,
            task: TaskSpec::new("t").unwrap(),
        };
        for _ in 0..5 {
            rt.submit(Message::new(root, token.clone(), schedule()))
                .await
                .unwrap();
        }
        // No issued token can carry `ext:` (the root's own token does not): one signed
        // with the node's key, as an operator's tooling would.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let claims = toka_auth::Claims::new(root, "tally-jti", now - 1, now + 3600)
            .with_permissions(["ext:tally"]);
        let tallier = toka_auth::mint(&keys, &claims).unwrap();
        let call = toka_types::ExtensionCall::new("tally", 1, vec![1]).unwrap();
        let tally = rt
            .submit(Message::new(root, tallier, Operation::Extension(call)))
            .await
            .unwrap()
            .first_seq;
        for _ in 0..5 {
            rt.submit(Message::new(root, token.clone(), schedule()))
                .await
                .unwrap();
        }
        rt.shutdown().await;
        (store, tally)
    }

    #[tokio::test]
    async fn an_event_of_an_unregistered_extension_is_refused_at_its_seq_before_later_damage() {
        let (store, tally) = with_an_extension().await;
        // Replayed without the handler: refused at the tally, every record before it
        // applied, though a record after it was altered (stage 2 meets that one first).
        let after = tally + 3;
        store.raw_edit(|headers, payloads| {
            let hash = headers[after as usize - 1].payload_hash;
            let mut bytes = payloads.get(&hash).unwrap().to_vec();
            bytes[3] ^= 1;
            payloads.insert(hash, bytes.into());
        });
        let (result, _) = run(&store, nothing_expected()).await;
        assert!(
            matches!(&result, Err(RuntimeError::MissingExtension { seq, family }) if *seq == tally && family == "tally"),
            "{result:?}"
        );
        // With the handler, the replay gets past it and meets the altered record.
        let result = replay(
            &store,
            WorldState::new(),
            ChainCursor::after(Head::default()),
            &tallying(),
            nothing_expected(),
            |_| {},
        )
        .await;
        assert!(
            matches!(result, Err(RuntimeError::Corrupt { seq, corruption: Corruption::PayloadAltered }) if seq == after),
            "{result:?}"
        );
    }

    fn nothing_expected() -> Expectations {
        Expectations {
            chain_at: Vec::new(),
            newest_state: None,
            snapshot_state: None,
        }
    }

    async fn run(
        store: &MemoryStore,
        expect: Expectations,
    ) -> (Result<(WorldState, ChainCursor), RuntimeError>, Vec<u64>) {
        let mut pages = Vec::new();
        let result = replay(
            store,
            WorldState::new(),
            ChainCursor::after(Head::default()),
            &OpcodeRegistry::default(),
            expect,
            |seq| pages.push(seq),
        )
        .await;
        (result, pages)
    }

    #[tokio::test]
    async fn a_replay_over_many_pages_reaches_the_live_state_and_reports_each_page() {
        let (store, live) = three_pages().await;
        let head = store.head().await.unwrap();
        let (result, progress) = run(&store, nothing_expected()).await;
        let (state, cursor) = result.unwrap();
        assert_eq!(cursor.head(), head);
        assert_eq!(state.digest(), live);
        let page = DEFAULT_PAGE as u64;
        assert_eq!(progress, vec![page, 2 * page, 3 * page, head.seq]);
    }

    #[tokio::test]
    async fn the_lowest_seq_failure_is_reported_even_when_a_later_page_fails_first() {
        let (store, _) = three_pages().await;
        let bad_payload = 2 * DEFAULT_PAGE as u64 + 7;
        store.raw_edit(|headers, payloads| {
            let hash = headers[bad_payload as usize - 1].payload_hash;
            let mut bytes = payloads.get(&hash).unwrap().to_vec();
            bytes[3] ^= 1;
            payloads.insert(hash, bytes.into());
        });
        // Alone, the altered payload is reported, after every record before it applied.
        let (result, progress) = run(&store, nothing_expected()).await;
        assert!(
            matches!(result, Err(RuntimeError::Corrupt { seq, corruption: Corruption::PayloadAltered }) if seq == bad_payload),
            "{result:?}"
        );
        assert_eq!(progress.last(), Some(&(bad_payload - 1)));
        // A checkpoint the log disagrees with one page earlier is reported instead, though
        // the check stage met the payload before the apply stage met the checkpoint.
        let checkpoint_seq = DEFAULT_PAGE as u64 + 3;
        let expect = Expectations {
            chain_at: vec![(checkpoint_seq, Hash32::ZERO)],
            ..nothing_expected()
        };
        let (result, _) = run(&store, expect).await;
        assert!(
            matches!(result, Err(RuntimeError::CheckpointMismatch { seq, what: "chain digest" }) if seq == checkpoint_seq),
            "{result:?}"
        );
    }
}
