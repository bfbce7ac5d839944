#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]
//! The deterministic core reads no clock, no environment, no file system, no network
//! and draws no randomness. Two checks:
//!
//! 1. the core crates' sources (`src/`) mention none of the forbidden APIs;
//! 2. their normal dependency trees (`cargo tree -e normal`) hold only the crates listed
//!    below, each with the reason it may be there. A new dependency fails this test
//!    until someone adds it here, with a reason.

use std::path::{Path, PathBuf};
use std::process::Command;

const CORE: &[&str] = &[
    "toka-types",
    "toka-auth",
    "toka-bus-core",
    "toka-kernel",
    "toka-maps",
];

const FORBIDDEN_IN_SOURCE: &[&str] = &[
    "std::time",
    "std::env",
    "std::fs",
    "std::net",
    "rand::",
    "getrandom",
    "Instant",
    "SystemTime",
    "thread_rng",
];

/// Every crate allowed in a core crate's normal dependency tree, and why.
const ALLOWED_DEPENDENCIES: &[(&str, &str)] = &[
    ("toka-types", "core"),
    ("toka-auth", "core"),
    ("toka-bus-core", "core"),
    ("toka-kernel", "core"),
    ("toka-maps", "core (the state's sharded hash maps)"),
    ("serde", "data encoding"),
    ("serde_core", "serde's core"),
    ("serde_derive", "proc-macro"),
    ("serde_json", "JSON of claims and headers"),
    ("thiserror", "error derive"),
    ("thiserror-impl", "proc-macro"),
    ("proc-macro2", "proc-macro support"),
    ("quote", "proc-macro support"),
    ("syn", "proc-macro support"),
    ("unicode-ident", "proc-macro support"),
    ("base64", "encoding"),
    (
        "base64-simd",
        "encoding (the token's parts, on every message)",
    ),
    (
        "vsimd",
        "base64-simd internal (SIMD kernels, CPU feature detection, not I/O)",
    ),
    ("outref", "base64-simd internal (output buffers)"),
    ("blake3", "hashing (state digest, ids)"),
    ("arrayvec", "blake3 internal"),
    ("constant_time_eq", "blake3 internal"),
    ("cfg-if", "blake3 internal"),
    (
        "cpufeatures",
        "blake3 internal (CPU feature detection, not I/O)",
    ),
    ("rustc-hash", "deterministic hash maps"),
    (
        "tokio",
        "toka-bus-core only, feature `sync` (broadcast channel; no I/O, no timers)",
    ),
    ("pin-project-lite", "tokio internal"),
    (
        "jsonwebtoken",
        "JWT; configured so it never reads the clock",
    ),
    (
        "aws-lc-rs",
        "jsonwebtoken's crypto backend; its RNG is never called by the core",
    ),
    ("aws-lc-sys", "aws-lc-rs internal"),
    ("untrusted", "aws-lc-rs internal"),
    ("zeroize", "aws-lc-rs internal"),
    ("zeroize_derive", "proc-macro"),
    ("signature", "jsonwebtoken internal (signature traits)"),
    ("itoa", "serde_json internal"),
    ("memchr", "serde_json internal"),
    ("zmij", "serde_json internal (float formatting)"),
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn core_sources_use_no_clock_env_fs_net_or_randomness() {
    let mut offences = Vec::new();
    for krate in CORE {
        let mut files = Vec::new();
        rust_files(
            &workspace_root().join("crates").join(krate).join("src"),
            &mut files,
        );
        assert!(!files.is_empty(), "no sources found for {krate}");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for word in FORBIDDEN_IN_SOURCE {
                    if code.contains(word) {
                        offences.push(format!("{}:{}: {word}", file.display(), n + 1));
                    }
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "forbidden APIs in the deterministic core:\n{}",
        offences.join("\n")
    );
}

#[test]
fn core_dependency_trees_hold_only_allowed_crates() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for krate in CORE {
        let out = Command::new(&cargo)
            .args([
                "tree",
                "--offline",
                "-q",
                "-e",
                "normal",
                "-p",
                krate,
                "--prefix",
                "none",
                "--format",
                "{p}",
            ])
            .current_dir(workspace_root())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cargo tree failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tree = String::from_utf8(out.stdout).unwrap();
        let names: std::collections::BTreeSet<&str> = tree
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert!(
            names.contains(krate),
            "cargo tree printed nothing useful for {krate}"
        );
        for name in &names {
            assert!(
                ALLOWED_DEPENDENCIES
                    .iter()
                    .any(|(allowed, _)| allowed == name),
                "{krate} depends on {name}, which is not in the core allowlist (tests/purity.rs): \
                 a clock, randomness, file or network crate may not enter the core"
            );
            if *name == "tokio" {
                assert_eq!(*krate, "toka-bus-core", "only toka-bus-core may use tokio");
            }
        }
        for banned in [
            "rand",
            "rand_core",
            "getrandom",
            "chrono",
            "time",
            "mio",
            "socket2",
        ] {
            assert!(!names.contains(banned), "{krate} pulls in {banned}");
        }
    }
}
