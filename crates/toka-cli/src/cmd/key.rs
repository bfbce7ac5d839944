//! `toka key`: rotate and retire the node's token signing keys.
//!
//! These edit the keyring file only (atomically), so they work while `toka serve` runs:
//! the server notices within a second (or at once on SIGHUP) and records the change in
//! the log (`key.rotated`, `key.retired`: the `kid`, never the key).

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;
use toka_runtime::keys::{self, NewKeyAlgorithm};

use crate::cmd::init::Alg;
use crate::output::{Out, table};
use crate::setup;

#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// Add a new signing key and make it active; tokens signed by the others keep
    /// verifying until those are retired.
    Rotate {
        #[command(flatten)]
        local: crate::Local,
        /// Algorithm of the new key.
        #[arg(long, value_enum, default_value = "hs256")]
        alg: Alg,
    },
    /// Remove a key: every token it signed is refused from then on.
    Retire {
        #[command(flatten)]
        local: crate::Local,
        /// The key's id.
        kid: String,
    },
    /// The keys in the keyring.
    List {
        #[command(flatten)]
        local: crate::Local,
    },
}

pub async fn run(cmd: KeyCmd, out: Out) -> Result<ExitCode> {
    match cmd {
        KeyCmd::Rotate { local, alg } => {
            let config = setup::load_config(&local.config)?;
            let alg = match alg {
                Alg::Hs256 => NewKeyAlgorithm::Hs256,
                Alg::Eddsa => NewKeyAlgorithm::EdDsa,
            };
            let kid = keys::rotate(&setup::key_file(&config), alg)?;
            out.emit(&json!({"active": kid}), || {
                out.say(format!("new active signing key {kid}; a running server picks it up within a second (or on SIGHUP)"));
            });
        }
        KeyCmd::Retire { local, kid } => {
            let config = setup::load_config(&local.config)?;
            keys::retire(&setup::key_file(&config), &kid)?;
            out.emit(&json!({"retired": kid}), || {
                out.say(format!(
                    "retired {kid}: tokens it signed are refused once the server has reloaded"
                ));
            });
        }
        KeyCmd::List { local } => {
            let config = setup::load_config(&local.config)?;
            let (active, all) = keys::list(&setup::key_file(&config))?;
            let rows: Vec<serde_json::Value> = all
                .iter()
                .map(|(kid, alg)| json!({"kid": kid, "alg": alg, "active": *kid == active}))
                .collect();
            out.emit(&rows, || {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|(kid, alg)| {
                        vec![
                            kid.clone(),
                            alg.clone(),
                            if *kid == active {
                                "active".into()
                            } else {
                                "verifies".into()
                            },
                        ]
                    })
                    .collect();
                table(&["kid", "alg", "use"], &rows);
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}
