#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Tokens that last: renewal before and after expiry, a renewed token outliving its
//! issuer's, the chain lifetime, a family's shared budget and revocation, human
//! durations, and a root token from a running server for the holder of its key.

mod util;

use std::time::Duration;

use serde_json::Value;
use util::*;

fn json(r: &Run) -> Value {
    assert_eq!(r.code, 0, "{}", r.stderr);
    serde_json::from_str(r.stdout.trim()).unwrap()
}

fn token_of(r: &Run) -> String {
    json(r)["token"].as_str().unwrap().to_string()
}

fn spawn(server: &Server, admin: &str, name: &str) -> String {
    json(&client(server, admin, &["--json", "agent", "spawn", name]))["events"][0]["event"]["agent"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The node under test: chains may last 12 s from the root token's issuance.
fn start() -> (tempfile::TempDir, Server, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (root, admin) = init(dir.path());
    let server = Server::start_with(dir.path(), |c| {
        c.env("TOKA_AUTH_MAX_CHAIN_LIFETIME_SECS", "12");
    });
    (dir, server, root, admin)
}

#[test]
fn a_renewed_token_outlives_its_issuer_within_the_chain_lifetime() {
    let (_dir, server, _, admin) = start();
    let lead = spawn(&server, &admin, "lead");
    let lead_token = token_of(&client(
        &server,
        &admin,
        &[
            "--json",
            "token",
            "issue",
            "--sub",
            &lead,
            "--ttl",
            "3s",
            "--perm",
            "token:issue",
            "--perm",
            "observation:emit",
            "--perm",
            "agent:spawn",
        ],
    ));
    let worker = json(&client(
        &server,
        &lead_token,
        &["--json", "agent", "spawn", "--parent", &lead, "worker"],
    ))["events"][0]["event"]["agent"]
        .as_str()
        .unwrap()
        .to_string();
    let worker_token = token_of(&client(
        &server,
        &lead_token,
        &[
            "--json",
            "token",
            "issue",
            "--sub",
            &worker,
            "--perm",
            "observation:emit",
        ],
    ));
    // Renewed before expiry, for longer than the lead's token lives.
    let r = client(
        &server,
        &worker_token,
        &["--json", "token", "renew", "--ttl", "1m"],
    );
    let renewed = json(&r);
    let renewed_token = renewed["token"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(3500));
    // The lead's token expired, and with it the worker's first token (capped by the
    // lead's); the renewal still acts.
    let r = client(&server, &lead_token, &["observe", "lead still here?"]);
    assert_eq!(r.code, 1, "the lead's token expired");
    assert!(r.stderr.contains("expired"), "{}", r.stderr);
    let r = client(&server, &worker_token, &["observe", "old worker token"]);
    assert_eq!(
        r.code, 1,
        "the worker's first token expired with its issuer's"
    );
    let r = client(&server, &renewed_token, &["observe", "renewed and working"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // After expiry, renewal is refused with the way out.
    let r = client(&server, &worker_token, &["token", "renew"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("expired") && r.stderr.contains("ask its issuer"),
        "{}",
        r.stderr
    );

    // The chain lifetime caps every renewal: at most 12 s after the root token.
    let exp = renewed["exp"].as_u64().unwrap();
    let root_iat = {
        let payload = admin.split('.').nth(1).unwrap();
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        serde_json::from_slice::<Value>(&bytes).unwrap()["iat"]
            .as_u64()
            .unwrap()
    };
    assert!(
        exp <= root_iat + 12,
        "exp {exp} past the chain's end {}",
        root_iat + 12
    );
    let wait = (root_iat + 13).saturating_sub(now_secs());
    std::thread::sleep(Duration::from_secs(wait));
    let r = client(&server, &admin, &["token", "renew"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("chain_lifetime_exceeded") && r.stderr.contains("toka token root"),
        "{}",
        r.stderr
    );
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn a_family_shares_its_budget_and_its_revocation_and_never_widens() {
    let dir = tempfile::tempdir().unwrap();
    let (_, admin) = init(dir.path());
    let server = Server::start(dir.path());
    let worker = spawn(&server, &admin, "worker");
    let first = token_of(&client(
        &server,
        &admin,
        &[
            "--json",
            "token",
            "issue",
            "--sub",
            &worker,
            "--ttl",
            "30m",
            "--perm",
            "tool:fs.list",
            "--perm",
            "observation:emit",
            "--perm",
            "token:issue",
            "--budget-tool-calls",
            "2",
        ],
    ));
    let list = |token: &str| {
        client(
            &server,
            token,
            &["tool", "call", "fs.list", "--input", r#"{"path":"."}"#],
        )
    };
    assert_eq!(list(&first).code, 0);
    let second = token_of(&client(&server, &first, &["--json", "token", "renew"]));
    let left = |token: &str| {
        json(&client(&server, token, &["--json", "token", "inspect"]))["budget"]["left"]
            ["tool_calls"]
            .as_u64()
    };
    assert_eq!(left(&second), Some(1), "the renewal inherits what is left");
    assert_eq!(list(&second).code, 0);
    assert_eq!(
        left(&first),
        Some(0),
        "spending by the renewal debits the family"
    );
    let r = list(&first);
    assert!(r.stderr.contains("budget_exhausted"), "{}", r.stderr);

    // Narrower only.
    let narrow = json(&client(
        &server,
        &second,
        &["--json", "token", "renew", "--perm", "observation:emit"],
    ));
    assert_eq!(
        narrow["permissions"],
        serde_json::json!(["observation:emit"])
    );
    let r = client(
        &server,
        &second,
        &["token", "renew", "--perm", "agent:spawn"],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("agent:spawn"), "{}", r.stderr);
    let r = client(&server, &second, &["token", "renew", "--ttl", "25h"]);
    assert_eq!(
        r.code, 2,
        "a lifetime over 24h is a usage error: {}",
        r.stderr
    );

    // A child issued by the first token; revoking the newest renewal revokes the family
    // and everything issued from any member.
    let helper = spawn(&server, &admin, "helper");
    let child = token_of(&client(
        &server,
        &first,
        &[
            "--json",
            "token",
            "issue",
            "--sub",
            &worker,
            "--perm",
            "observation:emit",
        ],
    ));
    assert_eq!(client(&server, &child, &["observe", "child works"]).code, 0);
    let _ = helper;
    let narrow_jti = narrow["jti"].as_str().unwrap();
    let r = client(&server, &admin, &["token", "revoke", narrow_jti]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for token in [&first, &second, &child] {
        let r = client(&server, token, &["observe", "after revocation"]);
        assert_eq!(r.code, 1, "a family member is revoked with the family");
        assert!(r.stderr.contains("revoked"), "{}", r.stderr);
    }
}

#[test]
fn the_holder_of_the_key_gets_a_root_token_while_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (root, admin) = init(dir.path());
    let server = Server::start(dir.path());
    // Offline is refused while the server holds the data folder.
    let config = dir.path().join("toka.toml");
    let r = run(&["token", "root", "--config", config.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    // With --server: a proof signed with the node's key.
    let r = run(&[
        "--json",
        "token",
        "root",
        "--config",
        config.to_str().unwrap(),
        "--server",
        &server.url,
    ]);
    let v = json(&r);
    assert_eq!(v["root"], root.as_str());
    let fresh = v["token"].as_str().unwrap();
    let seq = v["seq"].as_u64().unwrap();
    assert_eq!(client(&server, fresh, &["--json", "state"]).code, 0);
    // The issuance is in the log: a root token (no parent), at that seq.
    let r = client(
        &server,
        &admin,
        &["--json", "events", "--from", &seq.to_string()],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let first: Value = serde_json::from_str(r.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(first["kind"], "token.issued", "{first}");
    assert!(first["event"].get("parent").is_none(), "{first}");
    // A token the log issued is no proof, even the admin's.
    let r = reqwest::blocking_post(&format!("{}/v1/tokens/root", server.url), &admin);
    assert_eq!(r, 403);
    let r = reqwest::blocking_post(&format!("{}/v1/tokens/root", server.url), "not.a.token");
    assert_eq!(r, 401);
}

/// A tiny blocking POST for the status only.
mod reqwest {
    pub fn blocking_post(url: &str, bearer: &str) -> u16 {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            ::reqwest::Client::new()
                .post(url)
                .bearer_auth(bearer)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    }
}
