//! `toka tool list|call|show`, `toka approvals`, `toka approve`, `toka deny`.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Subcommand;
use serde_json::{Value, json};
use toka_api::tools::{ApprovalList, CallResponse, ToolList};

use crate::Remote;
use crate::client::Client;
use crate::output::{Out, table};

/// Exit code of `tool call`/`tool show` when the call is still open after the wait.
pub const EXIT_PENDING: u8 = 3;

#[derive(Debug, Subcommand)]
pub enum ToolCmd {
    /// The tools your token may call.
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Call a tool and wait for its result (or until --wait runs out).
    Call {
        #[command(flatten)]
        remote: Remote,
        /// The tool, e.g. fs.read.
        name: String,
        /// The agent the call is for (default: the token's subject).
        #[arg(long, add = clap_complete::ArgValueCompleter::new(crate::complete::agents))]
        agent: Option<String>,
        /// The input, as JSON, e.g. '{"path": "notes.txt"}'.
        #[arg(long, default_value = "{}")]
        input: String,
        /// Seconds to wait for the call to end (0 to 120; approval included).
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=120))]
        wait: u64,
    },
    /// A call: its input, status and result.
    Show {
        #[command(flatten)]
        remote: Remote,
        /// The call id.
        #[arg(value_parser = crate::parse_id)]
        call: String,
        /// Seconds to wait for it to end (0 to 120).
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=120))]
        wait: u64,
    },
}

pub async fn tool(cmd: ToolCmd, out: Out) -> Result<ExitCode> {
    match cmd {
        ToolCmd::List { remote } => {
            let list: ToolList = Client::new(&remote)?.get("/v1/tools", &[]).await?;
            out.emit(&list, || {
                let rows: Vec<Vec<String>> = list
                    .tools
                    .iter()
                    .map(|t| {
                        vec![
                            t.name.clone(),
                            t.approval.clone(),
                            t.retry.clone(),
                            format!("{} ms", t.timeout_ms),
                            t.description.chars().take(70).collect(),
                        ]
                    })
                    .collect();
                table(
                    &["tool", "approval", "retry", "timeout", "description"],
                    &rows,
                );
            });
            Ok(ExitCode::SUCCESS)
        }
        ToolCmd::Call {
            remote,
            name,
            agent,
            input,
            wait,
        } => {
            let input = json_arg(&input, "--input")?;
            let mut body = json!({"input": input, "wait_secs": wait});
            if let Some(agent) = agent {
                body["agent"] = json!(agent);
            }
            let call: CallResponse = Client::new(&remote)?
                .post(&format!("/v1/tools/{name}/calls"), &body)
                .await?;
            Ok(show(&call, out))
        }
        ToolCmd::Show { remote, call, wait } => {
            let call: CallResponse = Client::new(&remote)?
                .get(
                    &format!("/v1/calls/{call}"),
                    &[("wait_secs", wait.to_string())],
                )
                .await?;
            Ok(show(&call, out))
        }
    }
}

/// Prints a call; the exit code says how it ended (0 succeeded, 1 ended otherwise,
/// [`EXIT_PENDING`] still open).
fn show(call: &CallResponse, out: Out) -> ExitCode {
    out.result(call, &[&call.call], || {
        out.say(format!(
            "call {}: {} ({} for agent {}, attempt {})",
            call.call, call.status, call.tool, call.agent, call.attempts
        ));
        if call.status == "awaiting_approval" {
            out.say(format!(
                "  waiting for approval: toka approve {}   (or: toka deny {} --reason ...)",
                call.call, call.call
            ));
        }
        if let Some(reason) = &call.reason {
            out.say(format!("  reason: {reason}"));
        }
        match &call.result {
            Some(result) if result["status"] == "ok" => {
                out.say(serde_json::to_string_pretty(&result["output"]).unwrap_or_default());
            }
            Some(result) => out.say(format!(
                "  error: {}",
                result["error"].as_str().unwrap_or("")
            )),
            None => {}
        }
    });
    match call.status.as_str() {
        "succeeded" => ExitCode::SUCCESS,
        "awaiting_approval" | "ready" | "running" => ExitCode::from(EXIT_PENDING),
        _ => ExitCode::from(1),
    }
}

pub async fn approvals(remote: Remote, out: Out) -> Result<ExitCode> {
    let list: ApprovalList = Client::new(&remote)?.get("/v1/approvals", &[]).await?;
    out.emit(&list, || {
        if list.approvals.is_empty() {
            out.say("no calls are waiting for approval");
            return;
        }
        let rows: Vec<Vec<String>> = list
            .approvals
            .iter()
            .map(|c| {
                vec![
                    c.call.clone(),
                    c.tool.clone(),
                    c.agent.clone(),
                    serde_json::to_string(&c.input)
                        .unwrap_or_default()
                        .chars()
                        .take(60)
                        .collect(),
                ]
            })
            .collect();
        table(&["call", "tool", "agent", "input"], &rows);
    });
    Ok(ExitCode::SUCCESS)
}

/// `approve` (with the input hash of the call as read now) or `deny`.
pub async fn decide(
    remote: Remote,
    call: String,
    approve: bool,
    reason: String,
    wait: u64,
    out: Out,
) -> Result<ExitCode> {
    let client = Client::new(&remote)?;
    let current: CallResponse = client.get(&format!("/v1/calls/{call}"), &[]).await?;
    if approve {
        out.say(format!(
            "asking to approve {} of {} with input {}",
            current.tool,
            current.agent,
            serde_json::to_string(&current.input).unwrap_or_default()
        ));
    }
    let body = json!({
        "approve": approve,
        "reason": reason,
        "input_hash": approve.then_some(current.input_hash),
        "wait_secs": wait,
    });
    let decided: CallResponse = client
        .post(&format!("/v1/calls/{call}/approval"), &body)
        .await?;
    let code = show(&decided, out);
    // Deciding succeeded; a denial ending the call is what was asked for.
    Ok(if approve { code } else { ExitCode::SUCCESS })
}

/// A JSON argument: the text itself, or `@FILE` for a file's contents (at most 1 MiB).
pub fn json_arg(text: &str, flag: &str) -> Result<Value> {
    let owned;
    let body = match text.strip_prefix('@') {
        Some(path) => {
            let meta =
                std::fs::metadata(path).with_context(|| format!("{flag}: cannot read {path}"))?;
            if meta.len() > toka_types::limits::MAX_TASK_INPUT_BYTES as u64 {
                anyhow::bail!("{flag}: {path} is {} bytes; at most 1 MiB", meta.len());
            }
            owned = std::fs::read_to_string(path)
                .with_context(|| format!("{flag}: cannot read {path}"))?;
            owned.as_str()
        }
        None => text,
    };
    serde_json::from_str(body)
        .with_context(|| format!("{flag} is not JSON: {}", toka_planner::one_line(body, 80)))
}
