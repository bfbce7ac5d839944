//! Dynamic shell completions: `source <(COMPLETE=bash toka)` completes agent names
//! and paths, task ids and permissions from the server the command would talk to
//! (the same flags, environment and profile), besides the commands and flags.
//!
//! A completion never blocks the shell for long: each lookup has a two-second budget
//! and offers nothing when the server does not answer in time.

use std::ffi::OsStr;
use std::time::Duration;

use clap_complete::CompletionCandidate;

use crate::Remote;
use crate::client::Client;

/// Longest a lookup may take.
const BUDGET: Duration = Duration::from_secs(2);

/// The client the command being completed would use, from the environment.
fn client() -> Option<Client> {
    let remote = Remote {
        server: std::env::var("TOKA_SERVER").ok(),
        profile: std::env::var("TOKA_PROFILE").ok(),
        token: std::env::var("TOKA_TOKEN").ok(),
        token_file: std::env::var_os("TOKA_TOKEN_FILE").map(Into::into),
        idempotency_key: None,
    };
    Client::new(&remote).ok()
}

/// Runs `lookup` on a small runtime within the budget; nothing on failure.
fn lookup<T, F>(lookup: impl FnOnce(Client) -> F) -> Vec<T>
where
    F: std::future::Future<Output = anyhow::Result<Vec<T>>>,
{
    let Some(client) = client() else {
        return Vec::new();
    };
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Vec::new();
    };
    rt.block_on(async {
        tokio::time::timeout(BUDGET, lookup(client))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
    })
}

fn matching(current: &OsStr, values: impl IntoIterator<Item = String>) -> Vec<CompletionCandidate> {
    let current = current.to_string_lossy();
    let mut values: Vec<String> = values
        .into_iter()
        .filter(|v| v.starts_with(current.as_ref()))
        .collect();
    values.sort();
    values.dedup();
    values.into_iter().map(CompletionCandidate::new).collect()
}

/// Agent names and paths (`root/planner/worker-1`) in the token's scope.
pub fn agents(current: &OsStr) -> Vec<CompletionCandidate> {
    let agents: Vec<toka_api::views::AgentView> =
        lookup(|c| async move { c.get_all("/v1/agents", &[]).await });
    let by_id: std::collections::HashMap<&str, &toka_api::views::AgentView> =
        agents.iter().map(|a| (a.id.as_str(), a)).collect();
    let path = |a: &toka_api::views::AgentView| {
        let mut parts = vec![a.name.clone()];
        let mut at = a.parent.as_deref();
        while let Some(p) = at.and_then(|p| by_id.get(p)) {
            parts.push(p.name.clone());
            at = p.parent.as_deref();
        }
        parts.reverse();
        parts.join("/")
    };
    let active = agents.iter().filter(|a| a.status == "active");
    matching(current, active.flat_map(|a| [a.name.clone(), path(a)]))
}

/// Ids of open tasks in the token's scope.
pub fn tasks(current: &OsStr) -> Vec<CompletionCandidate> {
    let tasks: Vec<toka_api::views::TaskView> = lookup(|c| async move {
        let mut open: Vec<toka_api::views::TaskView> = Vec::new();
        for state in ["queued", "claimed"] {
            let page: toka_api::views::TaskPage = c
                .get(
                    "/v1/tasks",
                    &[("state", state.into()), ("limit", "200".into())],
                )
                .await?;
            open.extend(page.items);
        }
        Ok(open)
    });
    matching(current, tasks.into_iter().map(|t| t.id))
}

/// The built-in permissions and the tool families.
pub fn permissions(current: &OsStr) -> Vec<CompletionCandidate> {
    let tools: Vec<String> = lookup(|c| async move {
        let list: toka_api::tools::ToolList = c.get("/v1/tools", &[]).await?;
        Ok(list
            .tools
            .into_iter()
            .map(|t| format!("tool:{}", t.name))
            .collect())
    });
    matching(
        current,
        toka_auth::permissions::ALL
            .iter()
            .map(|p| p.to_string())
            .chain(tools),
    )
}
