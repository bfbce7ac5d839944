//! `toka checkpoint`: the node's newest signed checkpoint and its public key.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use serde_json::{Value, json};
use toka_runtime::Config;
use toka_runtime::checkpoint::{CheckpointKey, CheckpointVerifier, SignedCheckpoint, trusted};

use crate::client::Client;
use crate::output::Out;

#[derive(Debug, Subcommand)]
pub enum CheckpointCmd {
    /// The newest checkpoint a running server signed.
    Latest {
        #[command(flatten)]
        remote: crate::Remote,
    },
    /// The node's checkpoint public key (hand it to an auditor).
    Key {
        #[command(flatten)]
        local: crate::Local,
    },
}

/// The signed checkpoints to check a log against: from `file` (default: the configured
/// one) and from the store, verified with `public_key` (default: the configured key).
/// None when the node has no checkpoint key yet and no file or key was named.
pub async fn load(
    config: &Config,
    store: &dyn toka_store_core::StorageBackend,
    file: Option<&Path>,
    public_key: Option<&str>,
) -> Result<Vec<SignedCheckpoint>> {
    let key_file = config.resolve(&config.checkpoints.key_file);
    let verifier = match public_key {
        Some(hex) => {
            CheckpointVerifier::from_hex(hex).map_err(|e| anyhow::anyhow!("--public-key: {e}"))?
        }
        None if key_file.exists() => CheckpointKey::load(&key_file)?.verifier().clone(),
        None if file.is_some() => bail!(
            "no checkpoint key at {}: pass the node's public key with --public-key",
            key_file.display()
        ),
        None => return Ok(Vec::new()),
    };
    let path = file
        .map(Path::to_path_buf)
        .unwrap_or_else(|| config.resolve(&config.checkpoints.file));
    if file.is_some() && !path.exists() {
        bail!("no checkpoint file at {}", path.display());
    }
    trusted(&path, store, &verifier)
        .await
        .with_context(|| format!("reading checkpoints from {} and the store", path.display()))
}

pub async fn run(cmd: CheckpointCmd, out: Out) -> Result<ExitCode> {
    match cmd {
        CheckpointCmd::Latest { remote } => {
            let client = Client::new(&remote)?;
            let v: Value = client.get("/v1/checkpoints/latest", &[]).await?;
            out.emit(&v, || {
                let c = &v["checkpoint"];
                out.say(format!("seq           {}", c["seq"]));
                out.say(format!(
                    "chain digest  {}",
                    c["chain_digest"].as_str().unwrap_or("")
                ));
                out.say(format!(
                    "state digest  {}",
                    c["state_digest"].as_str().unwrap_or("")
                ));
                out.say(format!("time (µs)     {}", c["time"]));
                out.say(format!(
                    "key id        {}",
                    c["key_id"].as_str().unwrap_or("")
                ));
                out.say(format!(
                    "signature     {}",
                    c["signature"].as_str().unwrap_or("")
                ));
                out.say(format!(
                    "public key    {}",
                    v["public_key"].as_str().unwrap_or("")
                ));
            });
        }
        CheckpointCmd::Key { local } => {
            let config = crate::setup::load_config(&local.config)?;
            let path = config.resolve(&config.checkpoints.key_file);
            let key = CheckpointKey::load(&path)?;
            let v = key.verifier();
            out.emit(
                &json!({"key_id": v.key_id(), "public_key": v.public_hex(), "algorithm": "Ed25519"}),
                || {
                    out.say(format!("Ed25519 public key {}", v.public_hex()));
                    out.say(format!("key id             {}", v.key_id()));
                },
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
