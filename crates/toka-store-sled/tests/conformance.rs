#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The storage conformance kit on sled.

mod common;

toka_store_core::conformance_tests!(common::SledHarness);
