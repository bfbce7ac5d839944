#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Key rotation for real (issue 9): `toka key rotate` and `toka key retire` while the
//! server runs, picked up without a restart (by itself, or at once on SIGHUP), recorded
//! in the log by `kid` only; a token signed before a rotation still works, one signed
//! by a retired key is refused, new tokens carry the new `kid`.

mod util;

use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use util::*;

fn header_kid(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    serde_json::from_slice::<Value>(&bytes).unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn status(url: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{url}/v1/state"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn issue(url: &str, token: &str, sub: &str) -> String {
    let v: Value = reqwest::Client::new()
        .post(format!("{url}/v1/tokens"))
        .bearer_auth(token)
        .json(&json!({"sub": sub, "permissions": ["task:schedule"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_string()
}

fn key(dir: &std::path::Path, args: &[&str]) -> Run {
    let cfg = config(dir);
    let mut all = vec!["--json", "key"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--config", cfg.to_str().unwrap()]);
    run(&all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_and_retire_while_serving() {
    let dir = tempfile::tempdir().unwrap();
    let (root, admin) = init(dir.path());
    let server = Server::start(dir.path());
    let url = server.url.clone();
    let old_kid = header_kid(&admin);
    let child_before = issue(&url, &admin, &root).await;
    assert_eq!(header_kid(&child_before), old_kid);

    // Rotate while serving: picked up by itself, no restart, no signal.
    let r = key(dir.path(), &["rotate", "--alg", "eddsa"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let new_kid = serde_json::from_str::<Value>(r.stdout.trim()).unwrap()["active"]
        .as_str()
        .unwrap()
        .to_string();
    let started = Instant::now();
    let fresh = loop {
        let t = issue(&url, &admin, &root).await;
        if header_kid(&t) == new_kid {
            break t;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "rotation not picked up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Tokens signed before the rotation still work; the new one does too.
    for t in [&admin, &child_before, &fresh] {
        assert_eq!(status(&url, t).await, 200);
    }
    // The active key cannot be retired.
    let r = key(dir.path(), &["retire", &new_kid]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("active key"), "{}", r.stderr);

    // Retire the old key and tell the server at once with SIGHUP.
    let r = key(dir.path(), &["retire", &old_kid]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    let started = Instant::now();
    while status(&url, &child_before).await != 401 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "retired key still verifies"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status(&url, &admin).await, 401, "signed by the retired key");
    assert_eq!(status(&url, &fresh).await, 200);

    // The log records both changes by kid, never the key material.
    let new_admin = {
        // A root token from the holder of the key: only possible offline, so stop.
        assert_eq!(server.stop(), 0);
        let r = run(&[
            "--json",
            "token",
            "root",
            "--config",
            config(dir.path()).to_str().unwrap(),
        ]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        serde_json::from_str::<Value>(r.stdout.trim()).unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(header_kid(&new_admin), new_kid);
    let server = Server::start(dir.path());
    let r = client(&server, &new_admin, &["--json", "events", "--from", "1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let events: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let rotated: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "key.rotated")
        .collect();
    let retired: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "key.retired")
        .collect();
    assert_eq!(rotated.len(), 1, "{rotated:?}");
    assert_eq!(rotated[0]["event"]["kid"], new_kid.as_str());
    assert_eq!(rotated[0]["event"]["replaces"], old_kid.as_str());
    assert_eq!(rotated[0]["event"]["alg"], "EdDSA");
    assert_eq!(retired.len(), 1);
    assert_eq!(retired[0]["event"]["kid"], old_kid.as_str());
    let keyring = std::fs::read_to_string(dir.path().join("keys/signing.json")).unwrap();
    let ring: Value = serde_json::from_str(&keyring).unwrap();
    let secret = ring["keys"][0]["pkcs8_b64"].as_str().unwrap();
    assert!(!r.stdout.contains(secret), "key material reached the log");
    // Issuances name the key that signed them.
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "token.issued" && e["event"]["kid"] == new_kid.as_str())
    );
    assert_eq!(server.stop(), 0);

    // A rotation made while the node is down is recorded when it starts.
    let r = key(dir.path(), &["rotate"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let third = serde_json::from_str::<Value>(r.stdout.trim()).unwrap()["active"]
        .as_str()
        .unwrap()
        .to_string();
    let server = Server::start(dir.path());
    assert_eq!(
        status(&server.url, &new_admin).await,
        200,
        "the previous key still verifies"
    );
    let r = client(&server, &new_admin, &["--json", "events", "--from", "1"]);
    let last_rotation = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .rfind(|e| e["kind"] == "key.rotated")
        .unwrap();
    assert_eq!(last_rotation["event"]["kid"], third.as_str());
    assert_eq!(last_rotation["event"]["replaces"], new_kid.as_str());
    assert_eq!(server.stop(), 0);
    let r = run(&["verify", "--config", config(dir.path()).to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}
