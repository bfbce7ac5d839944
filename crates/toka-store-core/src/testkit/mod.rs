//! The conformance kit: one set of tests every storage driver runs.
//!
//! A driver implements [`Harness`] (how to open its store in a folder, and how to
//! tamper with the underlying database directly), then instantiates every case with
//! one line in its tests:
//!
//! ```text
//! toka_store_core::conformance_tests!(my_driver_tests::Harness);
//! ```
//!
//! and, for a durable driver, the crash test in a `harness = false` test target:
//!
//! ```text
//! fn main() { toka_store_core::testkit::crash_main::<Harness>(20) }
//! ```
//!
//! The cases are plain `async fn`s in [`cases`], so a driver can also call one
//! directly.

// This module is test code compiled only with the `testkit` feature: a failed
// expectation must stop the test loudly, which is what expect and panic do.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

pub mod cases;
mod crash;
mod generate;
mod migrated;
mod tmpfs;

use std::path::Path;

use async_trait::async_trait;

use crate::backend::StorageBackend;
use crate::error::StoreError;

pub use crash::crash_main;
pub use generate::{batch, event, log_with_repeated_payloads, sealed_batch};
pub use migrated::reads_back_as_written;
pub use tmpfs::Tmpfs;

/// A direct change to the underlying database, as an attacker or a bad disk would make
/// it: [`crate::verify`] must report it at the right `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// Change one byte of the payload of the record at `seq`.
    FlipPayloadByte {
        /// The record.
        seq: u64,
    },
    /// Delete the record at `seq`.
    DeleteRecord {
        /// The record.
        seq: u64,
    },
    /// Exchange the positions of the records at `a` and `b` (everything but `seq`).
    SwapRecords {
        /// One record.
        a: u64,
        /// The other.
        b: u64,
    },
}

/// How the kit opens and tampers with one driver's store.
#[async_trait]
pub trait Harness: Send + Sync + 'static {
    /// The store type.
    type Store: StorageBackend + Clone;

    /// Whether what was appended survives close, reopen and a killed process.
    const DURABLE: bool;

    /// Opens the store kept in `dir` (creating it if needed). A non-durable driver
    /// may ignore `dir`.
    async fn open(dir: &Path) -> Result<Self::Store, StoreError>;

    /// Applies `tamper` directly to the underlying database (closing and reopening the
    /// store if the driver needs that) and returns a handle on the tampered store.
    async fn tamper(store: Self::Store, dir: &Path, tamper: Tamper) -> Self::Store;

    /// How many distinct payloads the underlying database holds (to check dedup).
    async fn stored_payloads(store: &Self::Store, dir: &Path) -> u64;

    /// Why this driver cannot be tested here (e.g. no database server reachable), or
    /// `None`. A driver must return `None` under CI, so its tests run rather than skip.
    async fn skip_reason() -> Option<String> {
        None
    }
}

/// Instantiates every conformance case as a `#[tokio::test]` for `$harness`.
/// The calling crate needs `tokio` (macros, multi-thread runtime) as a dev-dependency.
#[macro_export]
macro_rules! conformance_tests {
    ($harness:ty) => {
        $crate::conformance_tests!(@cases $harness;
            appends_are_gap_free_from_one,
            stale_expected_head_is_refused_and_writes_nothing,
            batch_failing_midway_writes_nothing,
            sealed_batches_append_only_after_the_head_they_were_sealed_on,
            identical_payloads_are_stored_once,
            everything_survives_close_and_reopen,
            concurrent_appends_never_both_win,
            one_mib_payload_round_trips,
            empty_batch_checks_the_head_and_writes_nothing,
            reads_by_range_id_and_payload_hash,
            snapshots_put_latest_and_prune,
            checkpoints_are_kept_in_order,
            flipped_payload_byte_is_reported_at_its_seq,
            deleted_record_is_reported_at_its_seq,
            swapped_records_are_reported_at_the_first,
        );
    };
    (@cases $harness:ty; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                if let Some(reason) = <$harness as $crate::testkit::Harness>::skip_reason().await {
                    #[allow(clippy::print_stderr)]
                    {
                        eprintln!("\n*** SKIPPED {}: {reason} ***\n", stringify!($case));
                    }
                    return;
                }
                $crate::testkit::cases::$case::<$harness>().await;
            }
        )*
    };
}
