#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Names: active siblings have distinct names, and agents are addressed by path, by
//! unique name or by id prefix wherever an id is taken, in the CLI and the API.

mod util;

use serde_json::Value;
use util::*;

fn json(r: &Run) -> Value {
    assert_eq!(r.code, 0, "{}", r.stderr);
    serde_json::from_str(r.stdout.trim()).unwrap()
}

fn spawned(r: &Run) -> String {
    json(r)["events"][0]["event"]["agent"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_names_and_prefixes_name_one_agent_or_say_why_not() {
    let dir = tempfile::tempdir().unwrap();
    let (root, admin) = init(dir.path());
    let server = Server::start(dir.path());
    let planner = spawned(&client(
        &server,
        &admin,
        &["--json", "agent", "spawn", "planner"],
    ));
    let worker = spawned(&client(
        &server,
        &admin,
        &[
            "--json",
            "agent",
            "spawn",
            "--parent",
            "root/planner",
            "worker-1",
        ],
    ));
    assert_eq!(
        json(&client(&server, &admin, &["--json", "agent", "list"]))
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == worker.as_str())
            .unwrap()["parent"],
        planner.as_str()
    );
    // A second active sibling of the same name is refused.
    let r = client(
        &server,
        &admin,
        &["agent", "spawn", "--parent", "planner", "worker-1"],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("name_taken"), "{}", r.stderr);

    // Path, unique name and prefix all reach the worker.
    for reference in ["root/planner/worker-1", "worker-1", &worker[..8]] {
        let r = json(&client(
            &server,
            &admin,
            &["--json", "task", "schedule", "--agent", reference, "job"],
        ));
        assert_eq!(
            r["events"][0]["event"]["agent"],
            worker.as_str(),
            "{reference}"
        );
    }
    // The human task table names the agent.
    let r = client(&server, &admin, &["task", "list", "--agent", "worker-1"]);
    assert!(
        r.stdout.contains(&format!("worker-1 ({})", &worker[..8])),
        "{}",
        r.stdout
    );

    // Ambiguous: two agents called helper under different parents.
    let a = spawned(&client(
        &server,
        &admin,
        &["--json", "agent", "spawn", "--parent", &planner, "helper"],
    ));
    let b = spawned(&client(
        &server,
        &admin,
        &["--json", "agent", "spawn", "--parent", &root, "helper"],
    ));
    let r = client(
        &server,
        &admin,
        &["task", "schedule", "--agent", "helper", "which?"],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("ambiguous_agent") && r.stderr.contains(&a) && r.stderr.contains(&b),
        "{}",
        r.stderr
    );
    // The paths tell them apart.
    let r = json(&client(
        &server,
        &admin,
        &[
            "--json",
            "task",
            "schedule",
            "--agent",
            "root/helper",
            "this one",
        ],
    ));
    assert_eq!(r["events"][0]["event"]["agent"], b.as_str());
    // Too short a prefix, a missing path: not found, with what to give instead.
    for reference in [&worker[..3], "root/nobody"] {
        let r = client(
            &server,
            &admin,
            &["task", "schedule", "--agent", reference, "x"],
        );
        assert_eq!(r.code, 1, "{reference}");
        assert!(r.stderr.contains("no agent"), "{reference}: {}", r.stderr);
    }

    // A scoped token resolves only inside its scope: `planner` is not visible to the
    // worker, and a path starts at the top of its scope.
    let r = client(
        &server,
        &admin,
        &[
            "--json",
            "token",
            "issue",
            "--sub",
            "root/planner/worker-1",
            "--perm",
            "task:claim",
        ],
    );
    let wt = json(&r)["token"].as_str().unwrap().to_string();
    let r = client(&server, &wt, &["task", "list", "--agent", "planner"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("no agent"), "{}", r.stderr);
    let r = client(
        &server,
        &wt,
        &["--json", "task", "list", "--agent", "worker-1"],
    );
    assert_eq!(json(&r).as_array().unwrap().len(), 3);

    // The API takes the same references, URL-encoded.
    let got: Value = reqwest::Client::new()
        .get(format!(
            "{}/v1/agents/root%2Fplanner%2Fworker-1",
            server.url
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["id"], worker.as_str());

    // Once terminated, the name is free again, and the path names the active one.
    assert_eq!(
        client(
            &server,
            &admin,
            &["agent", "terminate", "root/planner/worker-1"]
        )
        .code,
        0
    );
    let again = spawned(&client(
        &server,
        &admin,
        &[
            "--json",
            "agent",
            "spawn",
            "--parent",
            "root/planner",
            "worker-1",
        ],
    ));
    let r = json(&client(
        &server,
        &admin,
        &[
            "--json",
            "task",
            "schedule",
            "--agent",
            "root/planner/worker-1",
            "new",
        ],
    ));
    assert_eq!(r["events"][0]["event"]["agent"], again.as_str());
}
