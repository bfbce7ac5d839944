#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The README's tour, run as written: the first `sh` block under "A tour of the `toka`
//! command", in bash with `set -euo pipefail`, in an empty folder, with the `toka`
//! under test first on PATH. Only the port and the profile folder are the test's own
//! (so it runs beside other tests); the script itself is the README's.

use std::path::Path;
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;

fn tour() -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let section = readme
        .split_once("## A tour of the `toka` command")
        .expect("the README has the tour")
        .1;
    let block = section
        .split_once("```sh\n")
        .expect("the tour is a sh block")
        .1;
    block
        .split_once("\n```")
        .expect("the block ends")
        .0
        .to_string()
}

#[test]
fn the_readme_tour_runs_as_written() {
    let script = tour();
    assert!(script.contains("toka init") && script.contains("toka approve"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tour.sh");
    // The test's own prologue: stop a server the tour left running if it failed early.
    std::fs::write(
        &path,
        format!("set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n{script}\n"),
    )
    .unwrap();
    // Output to files, not pipes: a background server must not hold the test's pipe.
    let stdout_file = dir.path().join("tour.out");
    let stderr_file = dir.path().join("tour.err");
    let toka = Command::cargo_bin("toka").unwrap();
    let bin = Path::new(toka.get_program())
        .parent()
        .unwrap()
        .to_path_buf();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new("timeout")
        .args(["240", "bash"])
        .arg(&path)
        .current_dir(dir.path())
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("TOKA_SERVER_LISTEN", format!("127.0.0.1:{port}"))
        .env("TOKA_SERVER", format!("http://127.0.0.1:{port}"))
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .env("RUST_LOG", "warn")
        .env_remove("TOKA_TOKEN")
        .env_remove("TOKA_PROFILE")
        .stdout(std::fs::File::create(&stdout_file).unwrap())
        .stderr(std::fs::File::create(&stderr_file).unwrap())
        .status()
        .unwrap();
    let stdout = std::fs::read_to_string(&stdout_file).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_file).unwrap_or_default();
    assert!(
        out.success(),
        "the tour failed ({out:?}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    // What it did is there: the approved write, the restored copy, the man page.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("mytoka/workspace/out.txt")).unwrap(),
        "hi"
    );
    assert!(stdout.contains("restored"), "{stdout}");
    assert!(
        std::fs::read_to_string(dir.path().join("toka.1"))
            .unwrap()
            .contains(".TH toka")
    );
    assert!(
        stdout.contains("worker-1"),
        "the agent list names the worker: {stdout}"
    );
}
