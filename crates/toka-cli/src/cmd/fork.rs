//! `toka fork` and `toka diff`: branching a log and telling where two logs part.
//!
//! `toka fork --config C --at SEQ --out DIR` makes DIR a new Toka folder holding the
//! log of C up to SEQ, verified: the same configuration and keys (tokens of C work on
//! the fork), a store of its own, no checkpoints yet. A planner continued there (e.g.
//! `toka run --resume AGENT --model other`) reuses every answer recorded up to SEQ and
//! asks only for what comes after. The workspace's files are copied as they are now:
//! files are not rewound with the log.
//!
//! `toka diff A B` names the first `seq` where two logs differ (exit 0: identical,
//! 1: they differ or one is a prefix of the other).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use serde_json::json;
use toka_store_core::{EventPages, Hash32, Verdict, verify};

use crate::output::Out;
use crate::setup;

/// Copies `from` to `to`, creating `to`'s folder (permissions are copied too).
fn copy_file(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// A path of the configuration, relative to its folder (a fork needs that).
fn relative<'a>(what: &str, path: &'a Path) -> Result<&'a Path> {
    if path.is_absolute() {
        bail!(
            "{what} is an absolute path ({}); a fork needs paths relative to toka.toml",
            path.display()
        );
    }
    Ok(path)
}

pub async fn fork(config_path: &Path, at: u64, out_dir: &Path, out: Out) -> Result<ExitCode> {
    let config = setup::load_config(config_path)?;
    if config.store.driver != "sqlite" {
        bail!(
            "toka fork copies SQLite logs (this one is {}); export and import into a new folder instead",
            config.store.driver
        );
    }
    if out_dir.exists() && std::fs::read_dir(out_dir)?.next().is_some() {
        bail!(
            "{} exists and is not empty; fork into a new folder",
            out_dir.display()
        );
    }
    let source = toka_runtime::open_store(&config).await?;
    let head = source.head().await?;
    if at == 0 || at > head.seq {
        bail!("--at {at} is outside the log (1 to {})", head.seq);
    }
    let Verdict::Intact { digest, .. } =
        verify(source.as_ref(), 1, Hash32::ZERO, Some(at), |_| {}).await?
    else {
        bail!(
            "the log of {} does not verify up to {at}; run `toka verify` to see where",
            config_path.display()
        );
    };
    // The same settings and keys; a store and checkpoint file of its own.
    std::fs::create_dir_all(out_dir)?;
    copy_file(config_path, &out_dir.join("toka.toml"))?;
    for (what, path) in [
        ("auth.key_file", &config.auth.key_file),
        ("checkpoints.key_file", &config.checkpoints.key_file),
    ] {
        let rel = relative(what, path)?;
        copy_file(&config.resolve(path), &out_dir.join(rel))?;
    }
    relative("store.path", &config.store.path)?;
    let workspace = config.base_dir.join("workspace");
    if workspace.is_dir() {
        copy_dir(&workspace, &out_dir.join("workspace"))?;
    }
    let fork_config = setup::load_config(&out_dir.join("toka.toml"))?;
    if let Some(parent) = fork_config.resolve(&fork_config.store.path).parent() {
        std::fs::create_dir_all(parent)?;
    }
    let target = toka_runtime::open_store(&fork_config).await?;
    let mut pages = EventPages::new(source.as_ref(), 1);
    let mut copied = 0u64;
    'copy: loop {
        let page = pages.next_page().await?;
        if page.is_empty() {
            break;
        }
        let batch: Vec<_> = page
            .into_iter()
            .take_while(|r| r.header.seq <= at)
            .collect();
        let done = batch.last().is_none_or(|r| r.header.seq >= at);
        if !batch.is_empty() {
            target.append(copied, &batch).await?;
            copied += batch.len() as u64;
        }
        if done {
            break 'copy;
        }
    }
    let forked = target.head().await?;
    if forked.seq != at || forked.digest != digest {
        bail!(
            "the fork's head ({}, {}) is not the source's at {at}",
            forked.seq,
            forked.digest
        );
    }
    out.emit(
        &json!({"forked": out_dir.display().to_string(), "at": at, "chain_digest": digest.to_string()}),
        || {
            out.say(format!("forked {at} of {} events into {}; chain digest {digest}", head.seq, out_dir.display()));
            out.say(format!("continue there: toka run --resume AGENT --config {}", out_dir.join("toka.toml").display()));
        },
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn diff(a: &Path, b: &Path, out: Out) -> Result<ExitCode> {
    let (ca, cb) = (setup::load_config(a)?, setup::load_config(b)?);
    let left = toka_runtime::open_store(&ca).await?;
    // The same data folder twice is opened once (a store is locked by its opener).
    let where_ = |c: &toka_runtime::Config| {
        let p = c.resolve(&c.store.path);
        (
            c.store.driver.clone(),
            std::fs::canonicalize(&p).unwrap_or(p),
        )
    };
    let right = if where_(&ca) == where_(&cb) && ca.store.driver != "postgres" {
        std::sync::Arc::clone(&left)
    } else {
        toka_runtime::open_store(&cb).await?
    };
    let (mut pa, mut pb) = (
        EventPages::new(left.as_ref(), 1),
        EventPages::new(right.as_ref(), 1),
    );
    let (mut ra, mut rb) = (Vec::new().into_iter(), Vec::new().into_iter());
    let mut same = 0u64;
    loop {
        let x = match ra.next() {
            Some(r) => Some(r),
            None => {
                ra = pa.next_page().await?.into_iter();
                ra.next()
            }
        };
        let y = match rb.next() {
            Some(r) => Some(r),
            None => {
                rb = pb.next_page().await?.into_iter();
                rb.next()
            }
        };
        let (x, y) = match (x, y) {
            (None, None) => {
                out.emit(&json!({"identical": true, "events": same}), || {
                    out.say(format!("identical: {same} events"))
                });
                return Ok(ExitCode::SUCCESS);
            }
            (x, y) => (x, y),
        };
        match (&x, &y) {
            (Some(x), Some(y)) if x.header.digest == y.header.digest => same += 1,
            _ => {
                let kind = |r: &Option<toka_store_core::EventRecord>| {
                    r.as_ref()
                        .map_or("(end of log)".to_string(), |r| r.header.kind.clone())
                };
                let at = same + 1;
                out.emit(
                    &json!({"identical": false, "agree_up_to": same, "first_difference": at,
                            "a": kind(&x), "b": kind(&y)}),
                    || {
                        out.say(format!(
                            "the logs agree up to seq {same} and part at seq {at}:"
                        ));
                        out.say(format!("  {}: {}", a.display(), kind(&x)));
                        out.say(format!("  {}: {}", b.display(), kind(&y)));
                    },
                );
                return Ok(ExitCode::from(1));
            }
        }
    }
}

/// Arguments of `toka fork`.
#[derive(Debug, clap::Args)]
pub struct ForkArgs {
    /// The configuration of the log to fork.
    #[arg(long, env = "TOKA_CONFIG", default_value = "toka.toml")]
    pub config: PathBuf,
    /// The last `seq` the fork keeps.
    #[arg(long)]
    pub at: u64,
    /// The new folder.
    #[arg(long)]
    pub out: PathBuf,
}
