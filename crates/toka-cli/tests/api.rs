#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The HTTP API against a real `toka serve` process.

mod util;

use futures::StreamExt as _;
use serde_json::{Value, json};
use util::*;

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

async fn post(server: &Server, token: &str, body: Value) -> (u16, Value) {
    let r = http()
        .post(format!("{}/v1/messages", server.url))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The server's head `seq`.
fn head(server: &Server, token: &str) -> u64 {
    let r = client(server, token, &["--json", "state"]);
    let state: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    state["head"].as_u64().unwrap()
}

/// Reads SSE frames until `count` events arrived; returns their ids.
async fn sse_ids(response: reqwest::Response, count: usize) -> Vec<u64> {
    let mut ids = Vec::new();
    let mut buffer = String::new();
    let mut bytes = response.bytes_stream();
    while ids.len() < count {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), bytes.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            if let Some(id) = frame.lines().find_map(|l| l.strip_prefix("id:")) {
                ids.push(id.trim().parse().unwrap());
            }
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_read_errors_metrics_and_openapi() {
    let dir = tempfile::tempdir().unwrap();
    let (root, admin) = init(dir.path());
    let server = Server::start(dir.path());
    let start = head(&server, &admin);

    let (status, body) = post(&server, &admin, json!({"operation": {"op": "schedule_agent_task", "agent": root, "task": {"description": "hello"}}})).await;
    assert_eq!(status, 200, "{body}");
    // After the root agent, the admin token's issuance and the node's tools.
    assert_eq!(
        start,
        2 + 3,
        "genesis, the admin token, three fs tools registered"
    );
    assert_eq!(body["events"][0]["seq"], start + 1);
    assert_eq!(body["events"][0]["kind"], "task.scheduled");
    // The answer carries the event as the log holds it.
    let task = &body["events"][0]["event"];
    assert_eq!(task["spec"]["description"], "hello");
    assert_eq!(task["agent"], root.to_string());
    let logged = http()
        .get(format!(
            "{}/v1/events?from={}&limit=1",
            server.url,
            start + 1
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(&logged["events"][0]["event"], task, "{logged}");

    // Malformed JSON, unknown fields, bad operations, oversized bodies: 4xx with a JSON error.
    let r = http()
        .post(format!("{}/v1/messages", server.url))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "invalid_body"
    );
    let (status, body) = post(
        &server,
        &admin,
        json!({"operation": {"op": "terminate_agent", "agent": root}, "extra": 1}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    // JSON, but not an operation: refused as such, and nothing is written.
    for operation in [
        json!({"op": "fly_to_the_moon"}),
        json!("terminate"),
        json!(null),
    ] {
        let (status, body) = post(&server, &admin, json!({ "operation": operation })).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("invalid_operation")),
            "{body}"
        );
    }
    let (status, body) = post(&server, &admin, json!({ "origin": root.to_string() })).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("invalid_body")),
        "{body}"
    );
    // Nesting far past serde_json's recursion limit, as arrays and as objects, and a
    // number no f64 holds: typed refusals, and the server goes on.
    let deep_arrays = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_objects = format!("{}1{}", "{\"a\":".repeat(5_000), "}".repeat(5_000));
    for operation in [deep_arrays, deep_objects, "1e999999".to_string()] {
        let r = http()
            .post(format!("{}/v1/messages", server.url))
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body(format!("{{\"operation\":{operation}}}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 422);
        assert_eq!(
            r.json::<Value>().await.unwrap()["error"]["code"],
            "invalid_operation"
        );
    }
    assert_eq!(head(&server, &admin), start + 1, "refusals write nothing");
    let (status, body) = post(&server, &admin, json!({"operation": {"op": "schedule_agent_task", "agent": root, "task": {"description": "x".repeat(5000)}}})).await;
    assert_eq!(status, 422);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("5000 characters, limit 4096"),
        "{body}"
    );
    let big = json!({"operation": {"op": "emit_observation", "agent": root, "data": "A".repeat(3 * 1024 * 1024)}});
    let (status, _) = post(&server, &admin, big).await;
    assert_eq!(status, 413);
    let (status, body) = post(
        &server,
        "",
        json!({"operation": {"op": "terminate_agent", "agent": root}}),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = post(
        &server,
        &admin,
        json!({"operation": {"op": "terminate_agent", "agent": root}}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("cannot_terminate_root"))
    );

    let metrics = http()
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "toka_submits_total",
        "toka_rejections_total{reason=\"cannot_terminate_root\"} 1",
        "toka_commit_latency_seconds_bucket",
        "toka_commit_batch_size_bucket",
        "toka_queue_depth",
        "toka_subscribers",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }

    // The OpenAPI document lists exactly the routes, and each answers (not 404/405).
    let doc: Value = http()
        .get(format!("{}/openapi.json", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    let expected = [
        "/healthz",
        "/metrics",
        "/readyz",
        "/v1/agents",
        "/v1/agents/{id}",
        "/v1/agents/{id}/activity",
        "/v1/agents/{id}/transcript",
        "/v1/approvals",
        "/v1/budget",
        "/v1/calls/{id}",
        "/v1/calls/{id}/approval",
        "/v1/checkpoints/latest",
        "/v1/events",
        "/v1/events/stream",
        "/v1/messages",
        "/v1/overview",
        "/v1/state",
        "/v1/tasks",
        "/v1/tasks/claim-next",
        "/v1/tokens",
        "/v1/tokens/renew",
        "/v1/tokens/root",
        "/v1/tools",
        "/v1/tools/fs.list/calls",
        "/v1/tools/fs.read/calls",
        "/v1/tools/fs.write/calls",
    ];
    let mut sorted: Vec<&str> = paths.iter().map(|p| p.as_str()).collect();
    sorted.sort_unstable();
    assert_eq!(sorted, expected);
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let url = format!("{}{}", server.url, path.replace("{id}", &root));
            let request = match method.as_str() {
                "get" => http().get(&url),
                "post" => http().post(&url).json(&json!({})),
                other => panic!("unexpected method {other}"),
            };
            let response = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                request.bearer_auth(&admin).send(),
            )
            .await
            .unwrap()
            .unwrap();
            let code = response.status().as_u16();
            // A route that exists answers; a 404 only as its own JSON error (the id
            // names no such call), never the router's empty "no such route".
            let body: Value = if code == 404 {
                response.json().await.unwrap_or(Value::Null)
            } else {
                Value::Null // (the event stream never ends: do not read it)
            };
            assert!(
                code != 405 && (code != 404 || body["error"]["code"].is_string()),
                "{method} {path} answered {code}"
            );
        }
    }
    assert_eq!(
        http()
            .get(format!("{}/readyz", server.url))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_never_leak_beyond_the_token_scope() {
    let dir = tempfile::tempdir().unwrap();
    let (root, admin) = init(dir.path());
    let server = Server::start(dir.path());
    let (_, a) = post(
        &server,
        &admin,
        json!({"operation": {"op": "spawn_sub_agent", "parent": root, "spec": {"name": "a"}}}),
    )
    .await;
    let (_, b) = post(
        &server,
        &admin,
        json!({"operation": {"op": "spawn_sub_agent", "parent": root, "spec": {"name": "b"}}}),
    )
    .await;
    let a = a["events"][0]["event"]["agent"]
        .as_str()
        .unwrap()
        .to_string();
    let b = b["events"][0]["event"]["agent"]
        .as_str()
        .unwrap()
        .to_string();
    post(&server, &admin, json!({"operation": {"op": "schedule_agent_task", "agent": b, "task": {"description": "secret of b"}}})).await;
    post(&server, &admin, json!({"operation": {"op": "schedule_agent_task", "agent": a, "task": {"description": "for a"}}})).await;
    let minted: Value = http()
        .post(format!("{}/v1/tokens", server.url))
        .bearer_auth(&admin)
        .json(&json!({"sub": a, "permissions": ["observation:emit"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let a_token = minted["token"].as_str().unwrap();
    let events: Value = http()
        .get(format!("{}/v1/events?from=1", server.url))
        .bearer_auth(a_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = events.to_string();
    assert!(
        text.contains("for a") && !text.contains("secret of b"),
        "{text}"
    );
    let tasks: Value = http()
        .get(format!("{}/v1/tasks", server.url))
        .bearer_auth(a_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tasks["items"].as_array().unwrap().len(), 1);
    let r = http()
        .get(format!("{}/v1/agents/{b}", server.url))
        .bearer_auth(a_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    // Minting needs token:issue, which a's token lacks.
    let r = http()
        .post(format!("{}/v1/tokens", server.url))
        .bearer_auth(a_token)
        .json(&json!({"sub": a, "permissions": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_stream_resumes_from_last_event_id_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (root, admin) = init(dir.path());
    let schedule = |n: u32| json!({"operation": {"op": "schedule_agent_task", "agent": root, "task": {"description": format!("t{n}")}}});

    let server = Server::start(dir.path());
    for n in 0..5 {
        assert_eq!(post(&server, &admin, schedule(n)).await.0, 200);
    }
    let stream = http()
        .get(format!("{}/v1/events/stream?from=1", server.url))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let first = sse_ids(stream, 6).await;
    assert_eq!(first, vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(server.stop(), 0);

    let server = Server::start(dir.path());
    let resumed = http()
        .get(format!("{}/v1/events/stream", server.url))
        .bearer_auth(&admin)
        .header("Last-Event-ID", "6")
        .send()
        .await
        .unwrap();
    for n in 5..8 {
        assert_eq!(post(&server, &admin, schedule(n)).await.0, 200);
    }
    assert_eq!(
        sse_ids(resumed, 3).await,
        vec![7, 8, 9],
        "no gap, no duplicate after the restart"
    );
}

/// An `Idempotency-Key` makes a retry safe over HTTP: the same answer, flagged as a
/// replay, nothing written; the same key with another body is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_header_makes_retries_safe() {
    let dir = tempfile::tempdir().unwrap();
    let (root, admin) = init(dir.path());
    let server = Server::start(dir.path());
    let body = json!({"operation": {"op": "schedule_agent_task", "agent": root, "task": {"description": "once"}}});
    let send = |body: Value| {
        http()
            .post(format!("{}/v1/messages", server.url))
            .bearer_auth(&admin)
            .header("Idempotency-Key", "retry-me")
            .json(&body)
            .send()
    };
    let first = send(body.clone()).await.unwrap();
    assert_eq!(first.headers()["idempotent-replayed"], "false");
    let first: Value = first.json().await.unwrap();
    let second = send(body.clone()).await.unwrap();
    assert_eq!(second.status().as_u16(), 200);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(second.json::<Value>().await.unwrap(), first);
    let other = json!({"operation": {"op": "schedule_agent_task", "agent": root, "task": {"description": "twice"}}});
    let third = send(other).await.unwrap();
    assert_eq!(third.status().as_u16(), 409);
    assert_eq!(
        third.json::<Value>().await.unwrap()["error"]["code"],
        "idempotency_key_reused"
    );
    // Before them: genesis, the admin token and the node's tools; then the task and
    // its idempotency record.
    assert_eq!(
        head(&server, &admin),
        first["events"][0]["seq"].as_u64().unwrap() + 1
    );
}
