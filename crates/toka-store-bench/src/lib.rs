//! Benchmarks of the storage drivers and the honest baselines they are judged against.
//!
//! [`plain`] is the baseline both `cargo bench -p toka-store-bench` and
//! `toka bench --compare` run: a plain append-only table, no Toka code.
#![forbid(unsafe_code)]

pub mod plain;
