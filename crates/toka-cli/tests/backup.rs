#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `toka backup` while a server writes, then `toka restore` into another folder and
//! `toka verify`; a tampered backup is refused; a folder in use is not overwritten.

mod util;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;
use util::*;

fn json(r: &Run) -> Value {
    assert_eq!(r.code, 0, "{}", r.stderr);
    serde_json::from_str(r.stdout.trim()).unwrap()
}

#[test]
fn a_backup_taken_while_serving_restores_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let (_, admin) = init(dir.path());
    let server = Server::start(dir.path());
    for i in 0..20 {
        assert_eq!(
            client(&server, &admin, &["observe", &format!("before {i}")]).code,
            0
        );
    }
    // Writes keep coming while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, url, admin) = (Arc::clone(&stop), server.url.clone(), admin.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let r = run_with(
                    toka()
                        .args(["observe", "during", "--server", &url])
                        .env("TOKA_TOKEN", &admin),
                );
                assert_eq!(r.code, 0, "{}", r.stderr);
                n += 1;
            }
            n
        })
    };
    let config = dir.path().join("toka.toml");
    let file = dir.path().join("backup.sqlite");
    let r = run(&[
        "--json",
        "backup",
        "--config",
        config.to_str().unwrap(),
        "--out",
        file.to_str().unwrap(),
    ]);
    stop.store(true, Ordering::Relaxed);
    let during = writer.join().unwrap();
    let v = json(&r);
    assert_eq!(v["verified"], true);
    let events = v["events"].as_u64().unwrap();
    assert!(
        events >= 25,
        "the backup holds the log up to its moment: {events}"
    );
    assert!(during >= 1);
    // A second backup to the same file is refused.
    let r = run(&[
        "backup",
        "--config",
        config.to_str().unwrap(),
        "--out",
        file.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
    // Restoring into the folder the server holds is refused.
    let r = run(&[
        "restore",
        "--config",
        config.to_str().unwrap(),
        "--from",
        file.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("in use"), "{}", r.stderr);

    // Into a fresh, empty folder: restored, then `toka verify` replays it.
    let other = tempfile::tempdir().unwrap();
    let r = run(&[
        "--json",
        "init",
        "--dir",
        other.path().to_str().unwrap(),
        "--empty",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let other_config = other.path().join("toka.toml");
    let r = run(&[
        "--json",
        "restore",
        "--config",
        other_config.to_str().unwrap(),
        "--from",
        file.to_str().unwrap(),
    ]);
    assert_eq!(json(&r)["events"], events);
    let r = run(&[
        "--json",
        "verify",
        "--config",
        other_config.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);

    // A backup edited with sqlite3 is refused, naming the seq.
    let tampered = dir.path().join("tampered.sqlite");
    std::fs::copy(&file, &tampered).unwrap();
    let out = Command::new("sqlite3")
        .arg(&tampered)
        .arg("UPDATE events SET kind = 'task.claimed' WHERE seq = 5")
        .output()
        .expect("the sqlite3 command-line tool (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let third = tempfile::tempdir().unwrap();
    run(&["init", "--dir", third.path().to_str().unwrap(), "--empty"]);
    let r = run(&[
        "restore",
        "--config",
        third.path().join("toka.toml").to_str().unwrap(),
        "--from",
        tampered.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("broken at seq 5"), "{}", r.stderr);
}
