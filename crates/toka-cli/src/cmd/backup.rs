//! `toka backup` (a verified copy of the log, safe while serving) and `toka restore`
//! (a verified copy back into a stopped node's data folder).
//!
//! SQLite only: SQLite's online backup copies a consistent snapshot while the node
//! appends. PostgreSQL has its own tools (`pg_dump`), sled must be copied stopped.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use serde_json::json;
use toka_store_core::{Hash32, StorageBackend, Verdict, verify as verify_chain};
use toka_store_sqlite::SqliteStore;

use super::offline::bar;
use crate::output::Out;
use crate::setup;

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    local: crate::Local,
    /// The new backup file.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    local: crate::Local,
    /// The backup file (`toka backup --out`).
    #[arg(long)]
    from: PathBuf,
    /// Replace a log that already holds events.
    #[arg(long)]
    force: bool,
}

/// What a driver other than SQLite should do instead.
fn not_sqlite(driver: &str) -> anyhow::Error {
    match driver {
        "postgres" => anyhow::anyhow!(
            "store.driver is postgres: back it up with PostgreSQL's tools, e.g. `pg_dump --format=custom --schema=<store.postgres_schema> <db> > toka.dump` (safe while serving), restore with `pg_restore`, then `toka verify`"
        ),
        "sled" => anyhow::anyhow!(
            "store.driver is sled: stop the server and copy the data folder, then `toka verify` the copy"
        ),
        other => anyhow::anyhow!("store.driver is {other}: there is nothing on disk to back up"),
    }
}

/// Checks the chain of the SQLite log in `file`: its head seq and digest.
async fn verified(file: &Path) -> Result<(u64, Hash32)> {
    let store = SqliteStore::open(file)
        .await
        .with_context(|| format!("cannot open {} as a Toka log", file.display()))?;
    let head = store.head().await?;
    let progress = bar(head.seq, "verify");
    let verdict = verify_chain(&store, 1, Hash32::ZERO, None, |seq| {
        progress.set_position(seq)
    })
    .await?;
    progress.finish_and_clear();
    match verdict {
        Verdict::Intact { checked, digest } => Ok((checked, digest)),
        Verdict::Broken { seq, corruption } => {
            bail!("{} is broken at seq {seq}: {corruption}", file.display())
        }
    }
}

pub async fn backup(args: BackupArgs, out: Out) -> Result<ExitCode> {
    let config = setup::load_config(&args.local.config)?;
    if config.store.driver != "sqlite" {
        return Err(not_sqlite(&config.store.driver));
    }
    let from = config.resolve(&config.store.path);
    let to = args.out.clone();
    let progress = bar(0, "copy");
    let shown = progress.clone();
    tokio::task::spawn_blocking(move || {
        toka_store_sqlite::backup(&from, &to, |done, total| {
            shown.set_length(total);
            shown.set_position(done);
        })
    })
    .await??;
    progress.finish_and_clear();
    // A copy is trusted once its chain checks out.
    let (events, digest) = match verified(&args.out).await {
        Ok(v) => v,
        Err(e) => {
            let _ = std::fs::remove_file(&args.out);
            return Err(e.context("the copy did not verify and was removed"));
        }
    };
    // The copy's own lock file is not part of the backup.
    let _ = std::fs::remove_file(args.out.with_extension("db.lock"));
    out.emit(
        &json!({"file": args.out.display().to_string(), "events": events, "digest": digest.to_string(), "verified": true}),
        || {
            out.say(format!(
                "backed up {events} events to {} (head digest {digest}); the copy's chain verified",
                args.out.display()
            ))
        },
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn restore(args: RestoreArgs, out: Out) -> Result<ExitCode> {
    let config = setup::load_config(&args.local.config)?;
    if config.store.driver != "sqlite" {
        return Err(not_sqlite(&config.store.driver));
    }
    let (events, digest) = verified(&args.from).await?;
    let _ = std::fs::remove_file(args.from.with_extension("db.lock"));
    let target = config.resolve(&config.store.path);
    // Opening the target takes its lock: refused while a server holds it.
    {
        let store = SqliteStore::open(&target).await?;
        let head = store.head().await?;
        if head.seq > 0 && !args.force {
            bail!(
                "{} already holds {} events; pass --force to replace them with the backup",
                target.display(),
                head.seq
            );
        }
    }
    // Copy beside, then rename over: a crash leaves the old log or the new one.
    let tmp = target.with_extension("db.restoring");
    let _ = std::fs::remove_file(&tmp);
    std::fs::copy(&args.from, &tmp)
        .with_context(|| format!("cannot copy {} to {}", args.from.display(), tmp.display()))?;
    for stale in ["db-wal", "db-shm"] {
        let _ = std::fs::remove_file(target.with_extension(stale));
    }
    std::fs::rename(&tmp, &target)
        .with_context(|| format!("cannot move the copy to {}", target.display()))?;
    let (restored, restored_digest) = verified(&target).await?;
    if (restored, restored_digest) != (events, digest) {
        bail!("the restored log differs from the backup; restore again");
    }
    out.emit(
        &json!({"file": target.display().to_string(), "events": events, "digest": digest.to_string(), "verified": true}),
        || {
            out.say(format!(
                "restored {events} events into {} (head digest {digest}); run `toka verify --config {}` to replay it",
                target.display(),
                args.local.config.display()
            ))
        },
    );
    Ok(ExitCode::SUCCESS)
}
