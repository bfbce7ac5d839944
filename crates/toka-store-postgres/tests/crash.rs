#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! SIGKILL crash test of the PostgreSQL driver (see `toka_store_core::testkit::crash_main`).

mod common;

fn main() {
    toka_store_core::testkit::crash_main::<common::PostgresHarness>(20);
}
