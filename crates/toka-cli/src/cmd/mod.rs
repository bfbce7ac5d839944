//! One module per command family.

pub mod backup;
pub mod bench;
pub mod checkpoint;
pub mod client;
pub mod demo;
mod demo_planner;
pub mod events;
pub mod fork;
pub mod init;
pub mod key;
pub mod mcp;
pub mod offline;
pub mod run;
mod run_remote;
pub mod serve;
pub mod status;
pub mod token;
pub mod tool;

use std::process::ExitCode;

use anyhow::Result;
use clap::CommandFactory as _;

use crate::output::Out;
use crate::{Cli, Command};

/// Runs one command.
pub async fn run(command: Command, out: Out) -> Result<ExitCode> {
    match command {
        Command::Init {
            dir,
            force,
            alg,
            empty,
        } => init::run(&dir, force, alg, empty, out).await,
        Command::Serve { local, listen } => serve::run(&local.config, listen, out).await,
        Command::Agent(c) => client::agent(c, out).await,
        Command::Task(c) => client::task(c, out).await,
        Command::Observe(a) => client::observe(a, out).await,
        Command::Token(c) => token::token(c, out).await,
        Command::Login(a) => status::login(a, out).await,
        Command::Backup(a) => backup::backup(a, out).await,
        Command::Restore(a) => backup::restore(a, out).await,
        Command::Status { remote } => status::status(remote, out).await,
        Command::Events(a) => events::events(a, out).await,
        Command::Tool(c) => tool::tool(c, out).await,
        Command::Mcp(a) => mcp::run(a).await,
        Command::Run(a) => run::run(a, out).await,
        Command::Approvals { remote } => tool::approvals(remote, out).await,
        Command::Approve {
            remote,
            call,
            reason,
            wait,
        } => tool::decide(remote, call, true, reason, wait, out).await,
        Command::Deny {
            remote,
            call,
            reason,
        } => tool::decide(remote, call, false, reason, 0, out).await,
        Command::State { remote } => client::state(remote, out).await,
        Command::Verify {
            local,
            checkpoint,
            public_key,
        } => {
            offline::verify(
                &local.config,
                checkpoint.as_deref(),
                public_key.as_deref(),
                out,
            )
            .await
        }
        Command::Checkpoint(c) => checkpoint::run(c, out).await,
        Command::Key(c) => key::run(c, out).await,
        Command::Replay { local, to } => offline::replay(&local.config, to, out).await,
        Command::Snapshot(c) => offline::snapshot(c, out).await,
        Command::Export { local, out: file } => {
            offline::export(&local.config, file.as_deref(), out).await
        }
        Command::Import { local, file } => offline::import(&local.config, &file, out).await,
        Command::Fork(a) => fork::fork(&a.config, a.at, &a.out, out).await,
        Command::Diff { a, b } => fork::diff(&a, &b, out).await,
        Command::Demo {
            dir,
            llm_url,
            model,
        } => demo::run(dir, llm_url.map(|u| (u, model)), out).await,
        Command::Bench(args) => bench::run(args, out).await,
        Command::Man { command } => {
            let mut cli = Cli::command().name("toka");
            cli.build();
            let page = match command {
                None => cli,
                Some(name) => match cli.find_subcommand(&name) {
                    Some(sub) => sub.clone(),
                    None => anyhow::bail!("no command {name:?}; `toka --help` lists them"),
                },
            };
            let mut roff = Vec::new();
            clap_mangen::Man::new(page).render(&mut roff)?;
            crate::output::raw(&roff);
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "toka", &mut script);
            crate::output::raw(&script);
            Ok(ExitCode::SUCCESS)
        }
    }
}
