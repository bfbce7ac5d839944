#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `toka run` (issue 12) against a scripted OpenAI-compatible server: the planner
//! works a goal through a real tool and prints the answer; killed with SIGKILL while
//! a tool runs, `toka run --resume` finishes it from the recorded conversation and the
//! provider never sees the same request twice; `toka agent transcript` shows it all
//! and `toka verify` replays it without a model.

mod util;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use util::*;

/// The scripted provider, stopped when dropped.
struct Llm {
    child: Child,
    url: String,
    log: std::path::PathBuf,
}

impl Llm {
    fn start(dir: &std::path::Path, script: Value) -> Self {
        let script_file = dir.join("script.json");
        std::fs::write(&script_file, script.to_string()).unwrap();
        let log = dir.join("requests.jsonl");
        let mut child = Command::new("python3")
            .arg(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/planner/scripted_llm.py"),
            )
            .arg(&script_file)
            .arg(&log)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut port = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut port)
            .unwrap();
        Self {
            child,
            url: format!("http://127.0.0.1:{}/v1", port.trim()),
            log,
        }
    }

    fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Llm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn say_calls(name: &str, args: Value) -> Value {
    json!({"role": "assistant", "content": null, "tool_calls": [
        {"id": format!("call_{name}"), "type": "function",
         "function": {"name": name, "arguments": args.to_string()}}]})
}

fn configure(dir: &std::path::Path, llm: &Llm) {
    let cfg = config(dir);
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!(
        "\n[planner]\nbase_url = {:?}\nmodel = \"scripted-1\"\ntimeout_ms = 5000\nmax_steps = 6\n\n\
         [tools]\nrequire_approval = []\n\n[tools.exec.slow]\nprogram = \"/bin/sh\"\n\
         args = [\"-c\", \"echo ran >> {}; sleep 4; echo slow-done\"]\ntimeout_ms = 20000\n",
        llm.url,
        dir.join("slow-runs.txt").display()
    ));
    std::fs::write(&cfg, text).unwrap();
}

#[test]
fn toka_run_works_a_goal_and_resumes_after_sigkill_without_asking_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (_, admin) = init(dir.path());
    let llm = Llm::start(
        dir.path(),
        json!([
            say_calls("fs_read", json!({"path": "notes.txt"})),
            say_calls("toka_finish", json!({"answer": "notes.txt says: buy milk"})),
            say_calls("exec_slow", json!({})),
            say_calls(
                "toka_finish",
                json!({"answer": "the slow job's outcome is unknown"})
            ),
        ]),
    );
    configure(dir.path(), &llm);
    std::fs::create_dir_all(dir.path().join("workspace")).unwrap();
    std::fs::write(dir.path().join("workspace/notes.txt"), "buy milk").unwrap();
    let cfg = config(dir.path());
    let cfg = cfg.to_str().unwrap();

    // A goal, start to finish: the answer on stdout, progress on stderr.
    let r = run(&["run", "What does notes.txt say?", "--config", cfg]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.stdout.trim(), "notes.txt says: buy milk");
    assert!(r.stderr.contains("step 1"), "{}", r.stderr);
    assert!(r.stderr.contains("tool fs.read"), "{}", r.stderr);

    // Killed while its tool runs…
    let mut child = toka()
        .args(["run", "Run the slow job", "--config", cfg])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let runs = dir.path().join("slow-runs.txt");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !runs.exists() {
        assert!(Instant::now() < deadline, "the slow tool never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    let killed = child.wait_with_output().unwrap();
    let progress = String::from_utf8_lossy(&killed.stderr).to_string();
    assert_eq!(
        llm.requests().len(),
        3,
        "two for the first goal, one step of the second"
    );

    // …it resumes from the log: the call is at most once (abandoned, not run again)
    // and the model is asked only for the next step.
    let planner = progress
        .split_whitespace()
        .skip_while(|w| *w != "planner")
        .nth(1)
        .unwrap_or_else(|| panic!("no planner id in {progress:?}"))
        .to_string();
    let r = run(&["--json", "run", "--resume", &planner, "--config", cfg]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(
        v["outcome"]["result"], "the slow job's outcome is unknown",
        "{v}"
    );
    assert_eq!(
        std::fs::read_to_string(&runs).unwrap().lines().count(),
        1,
        "ran once"
    );
    let requests = llm.requests();
    assert_eq!(requests.len(), 4);
    let distinct: std::collections::BTreeSet<&String> = requests.iter().collect();
    assert_eq!(distinct.len(), 4, "the provider saw no request twice");
    assert!(requests[3].contains("abandoned"), "{}", requests[3]);

    // The transcript, from the log, through a server.
    let server = Server::start(dir.path());
    let r = client(&server, &admin, &["agent", "transcript", &planner]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("user: Run the slow job"), "{}", r.stdout);
    assert!(
        r.stdout.contains("assistant calls exec_slow"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("step 2"), "{}", r.stdout);
    let r = client(
        &server,
        &admin,
        &["--json", "agent", "transcript", &planner],
    );
    let t: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(t["steps"].as_array().unwrap().len(), 2);
    assert_eq!(server.stop(), 0);

    // Verification replays every recorded answer with the provider gone.
    drop(llm);
    let r = run(&["verify", "--config", cfg]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn toka_run_without_a_model_says_how_to_configure_one() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let cfg = config(dir.path());
    let r = run(&["run", "anything", "--config", cfg.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("[planner]"), "{}", r.stderr);
    assert!(r.stderr.contains("--llm-url"), "{}", r.stderr);
}

#[test]
fn a_fork_mid_plan_continues_with_another_model_and_diff_names_the_fork_point() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let first = Llm::start(
        dir.path(),
        json!([
            say_calls("fs_read", json!({"path": "notes.txt"})),
            say_calls("toka_finish", json!({"answer": "first model: buy milk"})),
        ]),
    );
    configure(dir.path(), &first);
    std::fs::create_dir_all(dir.path().join("workspace")).unwrap();
    std::fs::write(dir.path().join("workspace/notes.txt"), "buy milk").unwrap();
    let cfg = config(dir.path());
    let cfg = cfg.to_str().unwrap();
    let r = run(&["--json", "run", "What does notes.txt say?", "--config", cfg]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let planner = serde_json::from_str::<Value>(r.stdout.trim()).unwrap()["agent"]
        .as_str()
        .unwrap()
        .to_string();
    // The first recorded answer: the middle of the plan.
    let export = run(&["export", "--config", cfg]);
    let at = export
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["kind"] == "model.answered")
        .and_then(|e| e["seq"].as_u64())
        .unwrap();

    let fork_dir = dir.path().join("fork");
    let r = run(&[
        "fork",
        "--config",
        cfg,
        "--at",
        &at.to_string(),
        "--out",
        fork_dir.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Continue on the fork with another model: step 1 is reused from the log, only
    // step 2 is asked of the new one.
    let second_dir = dir.path().join("second");
    std::fs::create_dir_all(&second_dir).unwrap();
    let second = Llm::start(
        &second_dir,
        json!([say_calls(
            "toka_finish",
            json!({"answer": "second model: milk"})
        )]),
    );
    let fork_cfg = fork_dir.join("toka.toml");
    let r = run(&[
        "--json",
        "run",
        "--resume",
        &planner,
        "--config",
        fork_cfg.to_str().unwrap(),
        "--llm-url",
        &second.url,
        "--model",
        "other-model",
    ]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["outcome"]["result"], "second model: milk", "{v}");
    let asked = second.requests();
    assert_eq!(asked.len(), 1, "only the step after the fork point");
    assert!(
        asked[0].contains("buy milk"),
        "it continued the recorded conversation: {}",
        asked[0]
    );
    assert_eq!(first.requests().len(), 2);

    let r = run(&["--json", "diff", cfg, fork_cfg.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let d: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(d["identical"], false);
    let part = d["first_difference"].as_u64().unwrap();
    assert!(
        part > at,
        "they agree up to the fork point ({at}), part at {part}: {d}"
    );
    let r = run(&["diff", cfg, cfg]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("identical"), "{}", r.stdout);
    let r = run(&["verify", "--config", fork_cfg.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn toka_serve_hosts_planners_and_resumes_them_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let (_, admin) = init(dir.path());
    let llm = Llm::start(
        dir.path(),
        json!([
            say_calls("fs_read", json!({"path": "notes.txt"})),
            say_calls("toka_finish", json!({"answer": "served: buy milk"})),
            say_calls("exec_slow", json!({})),
            say_calls(
                "toka_finish",
                json!({"answer": "resumed by the server itself"})
            ),
        ]),
    );
    configure(dir.path(), &llm);
    std::fs::create_dir_all(dir.path().join("workspace")).unwrap();
    std::fs::write(dir.path().join("workspace/notes.txt"), "buy milk").unwrap();
    let server = Server::start(dir.path());

    // The planner runs in the server; the client follows and prints the answer.
    let r = client(
        &server,
        &admin,
        &["run", "--server", &server.url, "What does notes.txt say?"],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.stdout.trim(), "served: buy milk");
    assert!(r.stderr.contains("tool fs.read"), "{}", r.stderr);

    // The server dies (SIGKILL) while the next planner's tool runs…
    let mut follower = toka()
        .args(["run", "--server", &server.url, "Run the slow job"])
        .env("TOKA_TOKEN", &admin)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let runs = dir.path().join("slow-runs.txt");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !runs.exists() {
        assert!(Instant::now() < deadline, "the slow tool never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    drop(server);
    let _ = follower.kill();
    let _ = follower.wait();

    // …and on restart resumes it by itself, from the designation in the log.
    let server = Server::start(dir.path());
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let r = client(&server, &admin, &["--json", "task", "list"]);
        if r.stdout.contains("resumed by the server itself") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the planner was not resumed: {}",
            r.stdout
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        std::fs::read_to_string(&runs).unwrap().lines().count(),
        1,
        "at most once"
    );
    let requests = llm.requests();
    assert_eq!(requests.len(), 4);
    let distinct: std::collections::BTreeSet<&String> = requests.iter().collect();
    assert_eq!(distinct.len(), 4, "no request twice");
    assert_eq!(server.stop(), 0);
    let r = run(&["verify", "--config", config(dir.path()).to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}
