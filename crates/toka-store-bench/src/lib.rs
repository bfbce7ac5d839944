//! Benchmarks only: see `benches/store.rs` (`cargo bench -p toka-store-bench`).
#![forbid(unsafe_code)]
