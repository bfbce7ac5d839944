//! The `toka` command.
//!
//! Exit codes: 0 ok, 1 failed or refused, 2 usage error.
#![forbid(unsafe_code)]

mod demo;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Toka OS: an operating-system kernel for software agents.
#[derive(Debug, Parser)]
#[command(name = "toka", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a short tour: agents with attenuated tokens, tasks, a refusal, replay.
    Demo,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo => demo::run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("toka: {err:#}");
            }
            ExitCode::from(1)
        }
    }
}
