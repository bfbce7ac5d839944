//! `toka init`: a configuration, a signing key, a data folder, an admin token.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use serde::Serialize;
use toka_runtime::keys::{NewKeyAlgorithm, write_new_key};
use toka_runtime::{Config, Runtime};

use crate::output::Out;
use crate::setup;

/// Signing algorithm of a new key.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Alg {
    /// HMAC-SHA256 (shared secret).
    Hs256,
    /// Ed25519 signatures.
    Eddsa,
}

#[derive(Serialize)]
struct Initialised {
    config: String,
    root: String,
    token: String,
    data: String,
}

/// Writes `dir/toka.toml`, the key and the data folder, creates the log's root agent,
/// and returns the admin token. Used by `toka init` and `toka demo`.
pub async fn initialise(dir: &Path, force: bool, alg: Alg) -> Result<(Config, String, String)> {
    let config = write_files(dir, force, alg)?;
    let runtime = Runtime::start(&config).await?;
    let root = runtime.root().context("the new log has no root agent")?;
    let admin = runtime.issue_root_token().await;
    runtime.shutdown().await;
    Ok((config, root.to_string(), admin?.token))
}

/// Creates `folder` (and its parents) readable by this user only (0700 on Unix).
fn private_dir(folder: &Path) -> Result<()> {
    std::fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("making {} private", folder.display()))?;
    }
    Ok(())
}

/// Writes the configuration and the key, and clears an old log if `force`.
fn write_files(dir: &Path, force: bool, alg: Alg) -> Result<Config> {
    let config_path = dir.join("toka.toml");
    if config_path.exists() && !force {
        bail!(
            "{} exists already; use --force to start over (this replaces the signing key)",
            config_path.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(&config_path, Config::commented_template())
        .with_context(|| format!("writing {}", config_path.display()))?;
    let config = setup::load_config(&config_path)?;
    // The log and the checkpoints are the node's alone: folders only its user may
    // open (the store's files inherit nothing looser from a umask this way).
    for file in [
        config.resolve(&config.store.path),
        config.resolve(&config.checkpoints.file),
    ] {
        if let Some(folder) = file.parent() {
            private_dir(folder)?;
        }
    }
    if force {
        let db = config.resolve(&config.store.path);
        // The old log's checkpoints would refuse the new, shorter log.
        for stale in [
            db.clone(),
            db.with_extension("db-wal"),
            db.with_extension("db-shm"),
            config.resolve(&config.checkpoints.file),
        ] {
            let _ = std::fs::remove_file(stale);
        }
    }
    let alg = match alg {
        Alg::Hs256 => NewKeyAlgorithm::Hs256,
        Alg::Eddsa => NewKeyAlgorithm::EdDsa,
    };
    write_new_key(&setup::key_file(&config), alg, force)?;
    Ok(config)
}

pub async fn run(dir: &Path, force: bool, alg: Alg, empty: bool, out: Out) -> Result<ExitCode> {
    if empty {
        let config = write_files(dir, force, alg)?;
        let path = config.resolve(&config.store.path).display().to_string();
        out.emit(&serde_json::json!({"config": dir.join("toka.toml").display().to_string(), "data": path}), || {
            out.say(format!("Created an empty Toka setup in {} (for `toka import`)", dir.display()));
        });
        return Ok(ExitCode::SUCCESS);
    }
    let (config, root, token) = initialise(dir, force, alg).await?;
    let done = Initialised {
        config: dir.join("toka.toml").display().to_string(),
        root,
        token,
        data: config.resolve(&config.store.path).display().to_string(),
    };
    out.result(&done, &[&done.token], || {
        out.say(format!("Initialised Toka in {}", dir.display()));
        out.say(format!("  config     {}", done.config));
        out.say(format!("  data       {}", done.data));
        out.say(format!("  root agent {}", done.root));
        out.say(format!(
            "\nAdmin token (valid {} s; keep it secret):\n{}",
            config.auth.token_ttl_secs, done.token
        ));
        out.say(
            "\nNext: `toka serve`, then `export TOKA_TOKEN=<token>` and try `toka agent list`.",
        );
    });
    Ok(ExitCode::SUCCESS)
}
