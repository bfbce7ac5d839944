//! The `toka` command.
//!
//! Exit codes: 0 ok, 1 failed or refused (the message says why and what to do),
//! 2 usage error (from clap), 3 a tool call still open when `--wait` ran out
//! (`toka tool call|show`, `toka approve`).
#![forbid(unsafe_code)]

mod client;
mod cmd;
mod complete;
mod describe;
mod output;
mod profile;
mod setup;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Toka OS: an operating-system kernel for software agents.
#[derive(Debug, Parser)]
#[command(name = "toka", version, about, propagate_version = true)]
pub struct Cli {
    /// Machine-readable JSON output (one shape per command; streams as JSON Lines).
    #[arg(long, global = true)]
    pub json: bool,
    /// Print only the ids a command produces (the token, for token commands).
    #[arg(short, long, global = true, conflicts_with = "json")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// Where a client command's server is and which token it uses.
#[derive(Debug, Clone, Args)]
pub struct Remote {
    /// The server's base URL (default: the profile's, else http://127.0.0.1:7878).
    #[arg(long, env = "TOKA_SERVER")]
    pub server: Option<String>,
    /// The saved profile to use (`toka login`; default: the one called `default`).
    #[arg(long, env = "TOKA_PROFILE")]
    pub profile: Option<String>,
    /// The capability token (e.g. from `toka init`).
    #[arg(long, env = "TOKA_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A file holding the token (keeps it out of the process list and shell history).
    #[arg(long, env = "TOKA_TOKEN_FILE", conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
    /// Makes a submission safe to retry: the same key and request get the first
    /// answer and write nothing (1 to 128 bytes).
    #[arg(long)]
    pub idempotency_key: Option<String>,
}

/// Which data folder an offline command works on.
#[derive(Debug, Clone, Args)]
pub struct Local {
    /// The configuration file.
    #[arg(long, env = "TOKA_CONFIG", default_value = "toka.toml")]
    pub config: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a configuration, a signing key and a data folder; print an admin token.
    Init {
        /// Where to create them.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Overwrite an existing setup.
        #[arg(long)]
        force: bool,
        /// Signing algorithm.
        #[arg(long, value_enum, default_value = "hs256")]
        alg: cmd::init::Alg,
        /// Leave the log empty (no root agent, no token): a target for `toka import`.
        #[arg(long)]
        empty: bool,
    },
    /// Run the runtime with the HTTP API.
    Serve {
        #[command(flatten)]
        local: Local,
        /// Listen address (overrides server.listen).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Agents: spawn, terminate, list.
    #[command(subcommand)]
    Agent(cmd::client::AgentCmd),
    /// Tasks: schedule, claim, complete, list.
    #[command(subcommand)]
    Task(cmd::client::TaskCmd),
    /// Record an observation.
    Observe(cmd::client::ObserveArgs),
    /// Save a server and a token as a named profile (0600 in your config folder), so
    /// other commands need neither --server nor --token.
    Login(cmd::status::LoginArgs),
    /// Who you are on the server: subject, permissions, scope, budgets, expiry.
    #[command(alias = "whoami")]
    Status {
        #[command(flatten)]
        remote: Remote,
    },
    /// Tokens: issue (attenuated), inspect, revoke, root.
    #[command(subcommand)]
    Token(cmd::token::TokenCmd),
    /// Tools: list the ones you may call, call one, show a call.
    #[command(subcommand)]
    Tool(cmd::tool::ToolCmd),
    /// Serve MCP on stdio: an MCP client lists and calls your token's tools through
    /// a running `toka serve` (token from TOKA_TOKEN or --token-file); `toka mcp
    /// config` prints a client's configuration entry.
    Mcp(cmd::mcp::McpArgs),
    /// A planner agent works a goal on the data folder, live; prints the answer.
    Run(cmd::run::RunArgs),
    /// Tool calls waiting for approval, in your token's scope.
    Approvals {
        #[command(flatten)]
        remote: Remote,
    },
    /// Approve a waiting call (needs approval:grant; never your own or a descendant's).
    Approve {
        #[command(flatten)]
        remote: Remote,
        /// The call id.
        #[arg(value_parser = parse_id)]
        call: String,
        /// Why (recorded in the log).
        #[arg(long, default_value = "")]
        reason: String,
        /// Seconds to wait for the approved call to end (0 to 120).
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=120))]
        wait: u64,
    },
    /// Deny a waiting call; it ends with your reason.
    Deny {
        #[command(flatten)]
        remote: Remote,
        /// The call id.
        #[arg(value_parser = parse_id)]
        call: String,
        /// Why (required, recorded in the log).
        #[arg(long)]
        reason: String,
    },
    /// Read events; `--follow` streams live ones.
    Events(cmd::events::EventsArgs),
    /// The head `seq` and the state digest.
    State {
        #[command(flatten)]
        remote: Remote,
    },
    /// Verify the log's chain and that replay reaches the recorded state (offline).
    Verify {
        #[command(flatten)]
        local: Local,
        /// Check against the signed checkpoints in this file (default: the configured
        /// checkpoints.file).
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// The node's checkpoint public key, 64 hex digits (default: from the
        /// configured checkpoints.key_file). An auditor passes the key they were given.
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Signing keys: rotate, retire, list (works while the server runs).
    #[command(subcommand)]
    Key(cmd::key::KeyCmd),
    /// Signed checkpoints: the newest one, the node's public key.
    #[command(subcommand)]
    Checkpoint(cmd::checkpoint::CheckpointCmd),
    /// The state as it was at a `seq` (offline).
    Replay {
        #[command(flatten)]
        local: Local,
        /// Stop after this `seq` (default: the head).
        #[arg(long)]
        to: Option<u64>,
    },
    /// Snapshots (offline): create, list.
    #[command(subcommand)]
    Snapshot(cmd::offline::SnapshotCmd),
    /// A verified copy of the SQLite log, safe while `toka serve` runs.
    Backup(cmd::backup::BackupArgs),
    /// Put a verified backup back into a stopped node's data folder.
    Restore(cmd::backup::RestoreArgs),
    /// Write the log as JSON Lines (offline).
    Export {
        #[command(flatten)]
        local: Local,
        /// Output file (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Load a JSON Lines export into an empty store, verifying as it goes (offline).
    Import {
        #[command(flatten)]
        local: Local,
        /// The export file.
        file: PathBuf,
    },
    /// Branch the log: a new folder with the verified log up to --at (offline).
    Fork(cmd::fork::ForkArgs),
    /// The first seq where two logs differ (exit 0 identical, 1 different; offline).
    Diff {
        /// One configuration.
        a: PathBuf,
        /// The other.
        b: PathBuf,
    },
    /// A short tour on an embedded SQLite store in a fresh folder.
    Demo {
        /// Where to put the demo's data (default: a new temporary folder).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// An OpenAI-compatible endpoint (up to /v1) for the planner step, instead of
        /// the built-in scripted model (its key, if any, in OPENAI_API_KEY is not read:
        /// use a local server such as Ollama).
        #[arg(long)]
        llm_url: Option<String>,
        /// The model at --llm-url.
        #[arg(long, default_value = "llama3.1", requires = "llm_url")]
        model: String,
    },
    /// Measure acknowledged messages per second through the real runtime.
    Bench(cmd::bench::BenchArgs),
    /// The man page (roff), generated from this command's definition: `toka man >
    /// toka.1`, or `toka man task` for one command's.
    Man {
        /// A subcommand (default: the whole `toka`).
        command: Option<String>,
    },
    /// Shell completions.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// An id argument (task, call, token): a UUID, else a usage error (exit 2) before
/// anything is sent.
pub fn parse_id(text: &str) -> Result<String, String> {
    text.trim()
        .parse::<toka_types::EntityId>()
        .map(|id| id.to_string())
        .map_err(|e| format!("{text:?} is not an id ({e}); ids look like 3f2a…-…, as `toka task list` and `toka tool list` print them"))
}

/// Whole seconds (`3600`) or a duration (`90m`, `8h`, `1h 30m`) from the command line;
/// `example` shows the form in the error. Callers check their own range.
pub fn duration_secs(text: &str, example: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(n) => Ok(n),
        Err(_) => humantime::parse_duration(text)
            .map(|d| d.as_secs())
            .map_err(|e| format!("{text:?} is not a duration ({e}); write e.g. {example}")),
    }
}

fn main() -> ExitCode {
    // `COMPLETE=bash toka …` (from `source <(COMPLETE=bash toka)`) answers a completion
    // request and exits.
    clap_complete::CompleteEnv::with_factory(<Cli as clap::CommandFactory>::command).complete();
    let cli = Cli::parse();
    setup::logging();
    let out = output::Out {
        json: cli.json,
        quiet: cli.quiet,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            output::warn(format!("cannot start the async runtime: {e}"));
            return ExitCode::from(1);
        }
    };
    let json = cli.json;
    match runtime.block_on(cmd::run(cli.command, out)) {
        Ok(code) => code,
        // `toka export | head`: the reader closed the pipe; nothing went wrong.
        Err(err) if output::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            output::failure(&err, json);
            ExitCode::from(1)
        }
    }
}
