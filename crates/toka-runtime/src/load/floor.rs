//! The floor under the pipeline's figures: what each message's own work costs, stage
//! by stage, on one thread.
//!
//! Whatever the pipeline does around it, every acknowledged message is authenticated,
//! decided and applied on the writer's kernel, encoded (its events' JSON and headers)
//! and sealed into the chain (a BLAKE3 hash of the payload, another of the header); the
//! readers see it once it is applied to their copy of the state. Every replayed event
//! is checked against the chain (the same two hashes), decoded and applied. [`floor`]
//! times those stages for the messages of [`run`](super::run) on one thread, a chunk
//! of messages per stage at a time, and checks that the state rebuilt from the sealed
//! records equals the kernel's. The ceilings it derives say what no pipeline of this
//! design can beat on this machine, so a figure (or a target) can be set beside the
//! work it must pay for.
//!
//! Not a pipeline: no submitters, queue, store or answers. The store's own cost per
//! row is what `toka bench --compare`'s plain table measures.

use std::time::{Duration, Instant};

use serde::Serialize;
use toka_store_core::{ChainCursor, Hash32, Head, head_after, seal};
use toka_types::KernelEvent;

use super::LoadError;
use super::kernel::Workload;
use crate::codec::{self, Provenance};

/// Messages per stage at a time: enough that reading the clock costs nothing, few
/// enough that a chunk's records stay in the cache between stages, as a batch's do.
const CHUNK: u64 = 512;

/// What each stage cost, in microseconds of one thread per message, and the ceilings
/// they set.
#[derive(Debug, Clone, Serialize)]
pub struct FloorReport {
    /// Messages decided.
    pub messages: u64,
    /// Events they produced.
    pub events: u64,
    /// Authenticate (the cached HS256 check), decide and apply on the writer's kernel.
    pub decide_us: f64,
    /// Encode the events: JSON payloads and record headers.
    pub encode_us: f64,
    /// Seal them into the chain: payload hash and chain digest.
    pub seal_us: f64,
    /// Apply them to a second state (the readers' copy live; the replayed state).
    pub apply_us: f64,
    /// Check the sealed records against the chain, as replay and `toka verify` do.
    pub check_us: f64,
    /// Decode the records' payloads back into events, as replay does.
    pub decode_us: f64,
    /// The cores of this machine the ceilings assume.
    pub cores: usize,
    /// Messages per second one writer can at most commit: it decides, encodes and seals
    /// every message in log order on one task.
    pub writer_ceiling: f64,
    /// Messages per second all cores can at most commit: the writer's work and the
    /// readers' apply, spread perfectly, and nothing else (no queue, store or answer).
    pub commit_ceiling: f64,
    /// Events per second all cores can at most replay: check, decode and apply, spread
    /// perfectly, and the store's read not counted.
    pub replay_ceiling: f64,
}

/// Times each stage of the work of `messages` messages from `submitters` agents on one
/// thread (see the module doc). Fails if the kernel refuses a message or the state
/// rebuilt from the sealed records differs from the kernel's.
pub fn floor(submitters: usize, messages: u64) -> Result<FloorReport, LoadError> {
    let fail = |e: &dyn std::fmt::Display| LoadError(format!("floor: {e}"));
    let mut load = Workload::new(submitters)?;
    let namespace = load
        .kernel
        .state()
        .root()
        .ok_or_else(|| fail(&"genesis made no root"))?;
    let handlers = load.kernel.handlers().clone();
    let mut copy = load.kernel.state().clone();
    // The set-up was never sealed: the measured records chain from a zero digest.
    let mut head = Head {
        seq: load.kernel.state().next_seq() - 1,
        digest: Hash32::ZERO,
    };
    let mut cursor = ChainCursor::after(head);
    let mut spent = [Duration::ZERO; 6];
    let mut scratch = Vec::with_capacity(1024);
    let (mut done, mut events_count) = (0u64, 0u64);
    while done < messages {
        let chunk = CHUNK.min(messages - done);

        let started = Instant::now();
        let mut decided = Vec::with_capacity(chunk as usize);
        for i in done..done + chunk {
            let Some((turn, message)) = load.message(i) else {
                break;
            };
            let ctx = load.context();
            let claims = load
                .kernel
                .authenticate(&message, ctx.now)
                .map_err(|e| fail(&e))?;
            let events = load
                .kernel
                .submit_verified(&message, &claims, &ctx)
                .map_err(|e| fail(&e))?;
            load.saw(turn, &events);
            let who = Provenance {
                origin: message.origin,
                jti: Some(claims.jti.clone()),
                timestamp: ctx.now,
            };
            decided.push((ctx.seq, who, events));
        }
        spent[0] += started.elapsed();

        let started = Instant::now();
        let mut new_events = Vec::with_capacity(decided.len());
        for (seq, who, events) in &decided {
            codec::encode_into(&mut new_events, &mut scratch, namespace, *seq, events, who);
        }
        spent[1] += started.elapsed();

        let started = Instant::now();
        let records = seal(head, new_events);
        spent[2] += started.elapsed();
        head = head_after(head, &records);

        let started = Instant::now();
        for (_, _, events) in &decided {
            for event in events {
                toka_kernel::apply(&mut copy, event, &handlers);
            }
        }
        spent[3] += started.elapsed();

        let started = Instant::now();
        for record in &records {
            cursor.accept(record).map_err(|e| fail(&e))?;
        }
        spent[4] += started.elapsed();

        let started = Instant::now();
        let decoded = records
            .iter()
            .map(codec::decode)
            .collect::<Result<Vec<KernelEvent>, _>>()
            .map_err(|e| fail(&e))?;
        spent[5] += started.elapsed();
        // The replayed events are the decided ones, byte for byte through JSON.
        let same = decided
            .iter()
            .flat_map(|(_, _, events)| events)
            .eq(decoded.iter());
        if !same {
            return Err(fail(
                &"an event decoded from its record differs from the decided one",
            ));
        }

        events_count += records.len() as u64;
        done += chunk;
    }
    if copy.digest() != load.kernel.state().digest() {
        return Err(fail(
            &"the state applied from the records differs from the kernel's",
        ));
    }
    let per_message = |d: Duration| d.as_secs_f64() * 1e6 / done.max(1) as f64;
    let [decide_us, encode_us, seal_us, apply_us, check_us, decode_us] = spent.map(per_message);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rate = |us: f64| 1e6 / us.max(1e-9);
    let writer_us = decide_us + encode_us + seal_us;
    let events_per_message = events_count as f64 / done.max(1) as f64;
    let replay_us_per_event = (check_us + decode_us + apply_us) / events_per_message.max(1e-9);
    Ok(FloorReport {
        messages: done,
        events: events_count,
        decide_us,
        encode_us,
        seal_us,
        apply_us,
        check_us,
        decode_us,
        cores,
        writer_ceiling: rate(writer_us),
        commit_ceiling: rate(writer_us).min(cores as f64 * rate(writer_us + apply_us)),
        replay_ceiling: cores as f64 * rate(replay_us_per_event),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_stage_is_timed_and_the_records_rebuild_the_state() {
        let report = floor(3, 1100).unwrap();
        assert_eq!(report.messages, 1100);
        // Each load message (schedule, then claim) makes exactly one event.
        assert_eq!(report.events, 1100);
        for us in [
            report.decide_us,
            report.encode_us,
            report.seal_us,
            report.apply_us,
            report.check_us,
            report.decode_us,
        ] {
            assert!(us > 0.0 && us.is_finite(), "{report:?}");
        }
        let writer_us = report.decide_us + report.encode_us + report.seal_us;
        assert!((report.writer_ceiling - 1e6 / writer_us).abs() < 1e-6 * report.writer_ceiling);
        assert!(report.commit_ceiling <= report.writer_ceiling);
        assert!(report.cores >= 1 && report.replay_ceiling > 0.0);
    }
}
