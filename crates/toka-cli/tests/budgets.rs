#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Budgets from the command line (issue 12): `toka token issue --budget-*` grants at
//! most what the issuer has left, the kernel refuses past it with `budget_exhausted`,
//! and `toka token inspect` shows what is left.

mod util;

use serde_json::Value;
use util::*;

#[test]
fn a_budgeted_token_spends_what_it_was_given_and_no_more() {
    let dir = tempfile::tempdir().unwrap();
    let (root, admin) = init(dir.path());
    let server = Server::start(dir.path());
    let r = client(&server, &admin, &["--json", "agent", "spawn", "lead"]);
    let lead =
        serde_json::from_str::<Value>(r.stdout.trim()).unwrap()["events"][0]["event"]["agent"]
            .as_str()
            .unwrap()
            .to_string();
    let issue = |token: &str, sub: &str, extra: &[&str]| {
        let mut args = vec![
            "--json",
            "token",
            "issue",
            "--sub",
            sub,
            "--perm",
            "agent:spawn",
            "--perm",
            "token:issue",
        ];
        args.extend(extra);
        client(&server, token, &args)
    };
    // A misspelt permission is named as such, with what was probably meant.
    let r = issue(&admin, &lead, &["--perm", "task:clam"]);
    assert_ne!(r.code, 0);
    // Under --json the error is one JSON line.
    let error: Value = serde_json::from_str(r.stderr.trim()).unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean \"task:claim\""),
        "{}",
        r.stderr
    );
    let r = issue(&admin, &lead, &["--budget-spawns", "2"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["budget"]["spawns"], 2);
    let lead_token = v["token"].as_str().unwrap().to_string();

    let spawn = |token: &str, name: &str| {
        client(
            &server,
            token,
            &["--json", "agent", "spawn", name, "--parent", &lead],
        )
    };
    assert_eq!(spawn(&lead_token, "one").code, 0);
    // A child may not be given more than is left (1), and by default gets exactly that.
    let r = issue(&lead_token, &lead, &["--budget-spawns", "5"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("budget_exceeds_issuer"), "{}", r.stderr);
    let r = issue(&lead_token, &lead, &[]);
    let child: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(child["budget"]["spawns"], 1, "{child}");
    let child_token = child["token"].as_str().unwrap().to_string();
    assert_eq!(spawn(&child_token, "two").code, 0);
    // Both are spent now: the child's spawn counted against the lead's budget too.
    for token in [&lead_token, &child_token] {
        let r = spawn(token, "three");
        assert_ne!(r.code, 0);
        assert!(r.stderr.contains("budget_exhausted"), "{}", r.stderr);
        assert!(r.stderr.contains("spawns"), "{}", r.stderr);
    }
    let r = client(&server, &lead_token, &["--json", "token", "inspect"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let shown: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(shown["budget"]["limits"]["spawns"], 2, "{shown}");
    assert_eq!(shown["budget"]["left"]["spawns"], 0, "{shown}");
    assert_eq!(shown["budget"]["spent"]["spawns"], 2, "{shown}");
    let _ = root;
    assert_eq!(server.stop(), 0);
    let r = run(&["verify", "--config", config(dir.path()).to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}
