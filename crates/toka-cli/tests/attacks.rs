#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The attack matrix of issue 9, over HTTP against a real `toka serve`, with tokens
//! minted by PyJWT from the node's own key as well as by Toka: each attack is refused
//! with its specific error, the head does not move, and legitimate use still works.

mod util;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt as _;
use serde_json::{Value, json};
use util::*;

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A token minted by PyJWT with the node's key.
fn pyjwt(dir: &Path, claims: Value) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/attacks/mint_with_pyjwt.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let request = json!({"key_file": dir.join("keys/signing.json"), "claims": claims});
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "PyJWT (scripts/test.sh installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

async fn post(url: &str, path: &str, token: &str, body: Value) -> (u16, Value) {
    let r = http()
        .post(format!("{url}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get(url: &str, path: &str, token: &str) -> (u16, Value) {
    let r = http()
        .get(format!("{url}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn head(url: &str, token: &str) -> u64 {
    get(url, "/v1/state", token).await.1["head"]
        .as_u64()
        .unwrap()
}

async fn spawn(url: &str, token: &str, parent: &str, name: &str) -> String {
    let (status, v) = post(
        url,
        "/v1/messages",
        token,
        json!({"operation": {"op": "spawn_sub_agent", "parent": parent, "spec": {"name": name}}}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v["events"][0]["event"]["agent"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn issue(url: &str, token: &str, body: Value) -> (u16, Value) {
    post(url, "/v1/tokens", token, body).await
}

/// Expects a refusal with `code` that leaves the log's head where it was.
async fn refused(
    url: &str,
    admin: &str,
    what: &str,
    answer: (u16, Value),
    status: u16,
    code: &str,
    before: u64,
) {
    let (got, body) = answer;
    assert_eq!(
        (got, body["error"]["code"].as_str().unwrap_or("")),
        (status, code),
        "{what}: {body}"
    );
    assert_eq!(head(url, admin).await, before, "{what} moved the head");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegation_and_revocation_attacks_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (root, admin) = init(dir.path());
    let server = Server::start(dir.path());
    let url = server.url.clone();
    let admin_jti = jti_of(&admin);

    // root → a → a1 → dead (terminated); root → b.
    let a = spawn(&url, &admin, &root, "a").await;
    let a1 = spawn(&url, &admin, &a, "a1").await;
    let dead = spawn(&url, &admin, &a1, "dead").await;
    let b = spawn(&url, &admin, &root, "b").await;
    let (status, _) = post(
        &url,
        "/v1/messages",
        &admin,
        json!({"operation": {"op": "terminate_agent", "agent": dead}}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, a_issued) = issue(
        &url,
        &admin,
        json!({"sub": a, "permissions": ["token:issue", "token:revoke", "task:schedule"]}),
    )
    .await;
    let a_token = a_issued["token"].as_str().unwrap().to_string();
    let a_jti = a_issued["jti"].as_str().unwrap().to_string();
    let (_, a1_issued) = issue(
        &url,
        &a_token,
        json!({"sub": a1, "permissions": ["token:issue", "token:revoke", "task:schedule"]}),
    )
    .await;
    assert_eq!(a1_issued["sub"], a1.as_str(), "{a1_issued}");
    let a1_token = a1_issued["token"].as_str().unwrap().to_string();
    let a1_jti = a1_issued["jti"].as_str().unwrap().to_string();
    let (_, b_issued) = issue(
        &url,
        &admin,
        json!({"sub": b, "permissions": ["task:schedule"]}),
    )
    .await;
    let b_jti = b_issued["jti"].as_str().unwrap().to_string();

    // The same leaf, as a token PyJWT minted from the node's key (claiming a1's lineage).
    let py_a1 = pyjwt(
        dir.path(),
        json!({"sub": a1, "iat": now(), "exp": now() + 600, "jti": "pyjwt-leaf",
               "permissions": ["token:issue", "token:revoke", "task:schedule"],
               "parent": a_jti, "lineage": [admin_jti, a_jti]}),
    );
    let stranger = "8a4167b1-4ca1-8f67-be18-2276de1704f6";
    let revoke = |jti: &str| json!({"operation": {"op": "revoke_token", "jti": jti}});
    let mint = |sub: &str, extra: Value| {
        let mut body = json!({"sub": sub, "permissions": []});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    // (attack, route, body, status, code)
    let attacks: Vec<(&str, &str, Value, u16, &str)> = vec![
        (
            "revoke the root's token",
            "/v1/messages",
            revoke(&admin_jti),
            403,
            "cannot_revoke_ancestor",
        ),
        (
            "revoke the parent's token",
            "/v1/messages",
            revoke(&a_jti),
            403,
            "cannot_revoke_ancestor",
        ),
        (
            "revoke a sibling's token",
            "/v1/messages",
            revoke(&b_jti),
            403,
            "revoke_out_of_scope",
        ),
        (
            "revoke an unknown jti",
            "/v1/messages",
            revoke("never-issued"),
            403,
            "unknown_token",
        ),
        (
            "mint for the root",
            "/v1/tokens",
            mint(&root, json!({})),
            403,
            "out_of_scope",
        ),
        (
            "mint for a sibling",
            "/v1/tokens",
            mint(&b, json!({})),
            403,
            "out_of_scope",
        ),
        (
            "mint for a stranger",
            "/v1/tokens",
            mint(stranger, json!({})),
            403,
            "out_of_scope",
        ),
        (
            "mint for a terminated agent",
            "/v1/tokens",
            mint(&dead, json!({})),
            409,
            "agent_terminated",
        ),
        (
            "widen permissions",
            "/v1/tokens",
            mint(&a1, json!({"permissions": ["agent:terminate"]})),
            403,
            "permission_escalation",
        ),
        (
            "widen scope",
            "/v1/tokens",
            mint(&a1, json!({"scope": "*"})),
            403,
            "scope_widening",
        ),
        (
            "widen scope to the parent",
            "/v1/tokens",
            mint(&a1, json!({"scope": a})),
            403,
            "scope_widening",
        ),
        (
            "widen lifetime",
            "/v1/tokens",
            mint(&a1, json!({"ttl_secs": 86400})),
            403,
            "expiry_extension",
        ),
        (
            "a malformed subject",
            "/v1/tokens",
            mint("root", json!({})),
            400,
            "bad_request",
        ),
    ];
    for (who, leaf) in [("toka", &a1_token), ("pyjwt", &py_a1)] {
        let before = head(&url, &admin).await;
        for (attack, route, body, status, code) in &attacks {
            let answer = post(&url, route, leaf, body.clone()).await;
            refused(
                &url,
                &admin,
                &format!("{who}: {attack}"),
                answer,
                *status,
                code,
                before,
            )
            .await;
        }
    }
    // A token whose claims PyJWT widened past what the log issued is still bound by the
    // kernel's rules: the root is outside a1's scope whatever the token says it may do.
    let py_wide = pyjwt(
        dir.path(),
        json!({"sub": a1, "iat": now(), "exp": now() + 600, "jti": "pyjwt-wide",
               "permissions": ["agent:terminate", "token:issue"]}),
    );
    let before = head(&url, &admin).await;
    refused(
        &url,
        &admin,
        "pyjwt: terminate the root's other child",
        post(
            &url,
            "/v1/messages",
            &py_wide,
            json!({"operation": {"op": "terminate_agent", "agent": b}}),
        )
        .await,
        403,
        "out_of_scope",
        before,
    )
    .await;

    // Legitimate use still works: a narrower token for a1, and a revokes a1's token,
    // which takes everything derived from it along.
    let (status, narrow) = issue(
        &url,
        &a1_token,
        json!({"sub": a1, "permissions": ["task:schedule"], "ttl_secs": 60}),
    )
    .await;
    assert_eq!(status, 200, "{narrow}");
    let narrow = narrow["token"].as_str().unwrap().to_string();
    let (status, v) = post(
        &url,
        "/v1/messages",
        &a_token,
        json!({"operation": {"op": "revoke_token", "jti": a1_jti}}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    for token in [&a1_token, &narrow] {
        let (status, v) = get(&url, "/v1/state", token).await;
        assert_eq!(status, 401, "{v}");
    }
    // The issuances are facts in the log: token.issued with the issuer, never the token.
    let (_, page) = get(&url, "/v1/events?from=1&limit=1000", &admin).await;
    let issued: Vec<&Value> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "token.issued")
        .collect();
    assert_eq!(issued.len(), 5, "admin, a, a1, b, a1's narrow token");
    assert!(
        issued
            .iter()
            .any(|e| e["event"]["issuer"] == a.as_str() && e["event"]["sub"] == a1.as_str())
    );
    assert!(
        !page.to_string().contains(&a1_token),
        "a token reached the log"
    );
}

/// Reads SSE frames until a `closed` event; returns its reason and the ids before it.
async fn until_closed(response: reqwest::Response, limit: Duration) -> (String, Vec<u64>) {
    let mut ids = Vec::new();
    let mut buffer = String::new();
    let mut bytes = response.bytes_stream();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let chunk = tokio::time::timeout_at(deadline, bytes.next())
            .await
            .expect("no closed event in time")
            .expect("stream ended without a closed event")
            .unwrap();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            if frame.lines().any(|l| l == "event: closed") {
                let data = frame
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .unwrap();
                let v: Value = serde_json::from_str(data).unwrap();
                return (v["reason"].as_str().unwrap().to_string(), ids);
            }
            if let Some(id) = frame.lines().find_map(|l| l.strip_prefix("id: ")) {
                ids.push(id.trim().parse().unwrap());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_end_when_their_token_does_and_inputs_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (root, admin) = init(dir.path());
    let server = Server::start_with(dir.path(), |c| {
        c.env("TOKA_SERVER_MAX_STREAMS", "3");
    });
    let url = server.url.clone();
    let w = spawn(&url, &admin, &root, "watcher").await;
    let (_, issued) = issue(
        &url,
        &admin,
        json!({"sub": w, "permissions": ["task:schedule"]}),
    )
    .await;
    let w_token = issued["token"].as_str().unwrap().to_string();
    // Revoked while streaming: the stream ends with the reason.
    let open = http()
        .get(format!("{url}/v1/events/stream?from=1"))
        .bearer_auth(&w_token)
        .send()
        .await
        .unwrap();
    assert_eq!(open.status().as_u16(), 200);
    let (status, _) = post(
        &url,
        "/v1/messages",
        &admin,
        json!({"operation": {"op": "revoke_token", "jti": issued["jti"]}}),
    )
    .await;
    assert_eq!(status, 200);
    let (reason, _) = until_closed(open, Duration::from_secs(5)).await;
    assert!(reason.contains("revoked"), "{reason}");

    // Expired while streaming (a PyJWT token valid for two seconds).
    let short = pyjwt(
        dir.path(),
        json!({"sub": root, "iat": now(), "exp": now() + 2, "jti": "short-lived", "permissions": []}),
    );
    let open = http()
        .get(format!("{url}/v1/events/stream?from=1"))
        .bearer_auth(&short)
        .send()
        .await
        .unwrap();
    assert_eq!(open.status().as_u16(), 200);
    let (reason, _) = until_closed(open, Duration::from_secs(8)).await;
    assert!(reason.contains("expired"), "{reason}");

    // The subject terminated while streaming.
    let doomed = spawn(&url, &admin, &root, "doomed").await;
    let (_, d) = issue(&url, &admin, json!({"sub": doomed, "permissions": []})).await;
    let open = http()
        .get(format!("{url}/v1/events/stream"))
        .bearer_auth(d["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    post(
        &url,
        "/v1/messages",
        &admin,
        json!({"operation": {"op": "terminate_agent", "agent": doomed}}),
    )
    .await;
    let (reason, _) = until_closed(open, Duration::from_secs(5)).await;
    assert!(reason.contains("terminated"), "{reason}");

    // At most server.max_streams at once: the fourth is refused with Retry-After.
    let mut held = Vec::new();
    for _ in 0..3 {
        let r = http()
            .get(format!("{url}/v1/events/stream"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        held.push(r);
    }
    let r = http()
        .get(format!("{url}/v1/events/stream"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "too_many_streams"
    );
    drop(held);

    // Integers from outside are checked.
    let r = http()
        .get(format!("{url}/v1/events/stream"))
        .bearer_auth(&admin)
        .header("Last-Event-ID", "18446744073709551615")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    for bad in [
        "limit=0",
        "limit=1001",
        "from=0",
        "limit=-1",
        "limit=99999999999999999999",
    ] {
        let (status, v) = get(&url, &format!("/v1/events?{bad}"), &admin).await;
        assert_eq!(status, 400, "{bad}: {v}");
        let (status, v) = get(&url, &format!("/v1/tasks?{bad}"), &admin).await;
        assert!(status == 400, "{bad}: {v}");
    }

    // List routes page with a cursor; every task once.
    for n in 0..5 {
        post(&url, "/v1/messages", &admin, json!({"operation": {"op": "schedule_agent_task", "agent": w, "task": {"description": format!("t{n}")}}})).await;
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..10 {
        let path = match &after {
            Some(a) => format!("/v1/tasks?limit=2&after={a}"),
            None => "/v1/tasks?limit=2".into(),
        };
        let (status, page) = get(&url, &path, &admin).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|t| t["id"].as_str().unwrap().to_string()));
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (5, 5), "{seen:?}");
    let (_, agents) = get(&url, "/v1/agents?limit=2", &admin).await;
    assert_eq!(agents["items"].as_array().unwrap().len(), 2);
    assert!(agents["next"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_follow_the_verified_subject_not_the_claimed_origin() {
    let dir = tempfile::tempdir().unwrap();
    let (root, admin) = init(dir.path());
    let server = Server::start_with(dir.path(), |c| {
        c.env("TOKA_RATE_LIMIT_PER_SECOND", "1")
            .env("TOKA_RATE_LIMIT_BURST", "4");
    });
    let url = server.url.clone();
    let victim = spawn(&url, &admin, &root, "victim").await;
    let attacker = spawn(&url, &admin, &root, "attacker").await;
    let token_for = |sub: String| {
        let (url, admin) = (url.clone(), admin.clone());
        async move {
            let (_, v) = issue(
                &url,
                &admin,
                json!({"sub": sub, "permissions": ["task:schedule"]}),
            )
            .await;
            v["token"].as_str().unwrap().to_string()
        }
    };
    let victim_token = token_for(victim.clone()).await;
    let attacker_token = token_for(attacker.clone()).await;
    // The attacker floods, writing the victim as the origin in the body.
    let mut limited = 0;
    for n in 0..10 {
        let (status, v) = post(&url, "/v1/messages", &attacker_token, json!({"origin": victim, "operation": {"op": "schedule_agent_task", "agent": victim, "task": {"description": format!("spam {n}")}}})).await;
        if status == 429 {
            limited += 1;
            assert_eq!(v["error"]["code"], "rate_limited");
            assert!(
                v["error"]["message"].as_str().unwrap().contains(&attacker),
                "{v}"
            );
        } else {
            assert_eq!(status, 403, "{v}");
        }
    }
    assert!(limited >= 5, "the attacker was limited ({limited} of 10)");
    // The victim's own quota is untouched.
    for n in 0..4 {
        let (status, v) = post(&url, "/v1/messages", &victim_token, json!({"operation": {"op": "schedule_agent_task", "agent": victim, "task": {"description": format!("mine {n}")}}})).await;
        assert_eq!(status, 200, "victim message {n}: {v}");
    }
}

#[test]
fn sigterm_with_open_streams_exits_quickly_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (root, admin) = init(dir.path());
    let server = Server::start(dir.path());
    let url = server.url.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (streams, acked) = rt.block_on(async {
        let mut streams = Vec::new();
        for _ in 0..3 {
            let r = http().get(format!("{url}/v1/events/stream?from=1")).bearer_auth(&admin).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 200);
            streams.push(tokio::spawn(until_closed(r, Duration::from_secs(10))));
        }
        let mut acked = 0;
        for n in 0..20 {
            let (status, _) = post(&url, "/v1/messages", &admin, json!({"operation": {"op": "schedule_agent_task", "agent": root, "task": {"description": format!("t{n}")}}})).await;
            if status == 200 {
                acked += 1;
            }
        }
        (streams, acked)
    });
    let started = std::time::Instant::now();
    assert_eq!(server.stop(), 0, "serve exits 0 on SIGTERM");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "SIGTERM took {took:?} with streams open"
    );
    rt.block_on(async {
        for s in streams {
            let (reason, _) = s.await.unwrap();
            assert!(reason.contains("shutting down"), "{reason}");
        }
    });
    // Every acknowledged message is in the log.
    let r = run(&[
        "--json",
        "verify",
        "--config",
        config(dir.path()).to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    // Genesis, the admin token, the three fs tools registered, then what was acked.
    assert_eq!(v["events"], 5 + acked);
}
