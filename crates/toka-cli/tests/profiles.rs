#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Profiles and status: `toka login` saves a server and token (0600 in a 0700
//! folder), later commands use them, `toka status`/`whoami` says who you are.

mod util;

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::process::Stdio;

use serde_json::Value;
use util::*;

#[test]
fn login_saves_a_private_profile_that_later_commands_use() {
    let dir = tempfile::tempdir().unwrap();
    let config = tempfile::tempdir().unwrap();
    let (root, admin) = init(dir.path());
    let server = Server::start(dir.path());
    let with_config = |args: &[&str]| {
        let mut c = toka();
        c.args(args).env("XDG_CONFIG_HOME", config.path());
        c
    };
    let token_file = dir.path().join("admin.token");
    std::fs::write(&token_file, &admin).unwrap();
    let r = run_with(&mut with_config(&[
        "login",
        "--server",
        &server.url,
        "--token-file",
        token_file.to_str().unwrap(),
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let file = config.path().join("toka/profiles.toml");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(file.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );

    // No --server, no --token: the default profile.
    let r = run_with(&mut with_config(&["status"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains(&format!("root ({root})")), "{}", r.stdout);
    assert!(
        r.stdout.contains("expires      in 59m") || r.stdout.contains("expires      in 60m"),
        "{}",
        r.stdout
    );
    let r = run_with(&mut with_config(&["--json", "whoami"]));
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["sub"], root.as_str());
    assert_eq!(v["name"], "root");
    assert_eq!(v["server"], server.url.as_str());
    assert!(
        v["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "token:issue")
    );

    // A second profile from stdin, chosen by --profile or TOKA_PROFILE.
    let (_, wt) = agent_with(&server, &admin, "worker", &["task:claim"]);
    let mut child = with_config(&["login", "--profile", "worker", "--server", &server.url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(wt.as_bytes())
        .unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    let r = run_with(&mut with_config(&[
        "--json",
        "status",
        "--profile",
        "worker",
    ]));
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["name"], "worker");
    let r = run_with(with_config(&["--json", "status"]).env("TOKA_PROFILE", "worker"));
    assert_eq!(
        serde_json::from_str::<Value>(r.stdout.trim()).unwrap()["name"],
        "worker"
    );
    // An explicit token still wins over the profile.
    let r = run_with(&mut with_config(&[
        "--json",
        "status",
        "--profile",
        "worker",
        "--token",
        &admin,
    ]));
    assert_eq!(
        serde_json::from_str::<Value>(r.stdout.trim()).unwrap()["name"],
        "root"
    );

    // An unknown profile names the known ones; a refused token is not saved.
    let r = run_with(&mut with_config(&["status", "--profile", "nope"]));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("default, worker"), "{}", r.stderr);
    std::fs::write(&token_file, "not.a.token").unwrap();
    let r = run_with(&mut with_config(&[
        "login",
        "--profile",
        "bad",
        "--server",
        &server.url,
        "--token-file",
        token_file.to_str().unwrap(),
    ]));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("nothing was saved"), "{}", r.stderr);
    assert!(
        !std::fs::read_to_string(&file)
            .unwrap()
            .contains("[profiles.bad]")
    );
}
