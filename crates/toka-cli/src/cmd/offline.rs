//! Commands on a data folder, without a server. They take the store's writer lock, so
//! they refuse clearly while a `toka serve` holds it.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use toka_kernel::{OpcodeRegistry, WorldState};
use toka_store_core::{
    EventPages, EventRecord, Hash32, Head, StorageBackend, Verdict, verify as verify_chain,
};

use crate::output::{Out, table};
use crate::setup;

#[derive(Debug, Subcommand)]
pub enum SnapshotCmd {
    /// Take a snapshot at the head now.
    Create {
        #[command(flatten)]
        local: crate::Local,
    },
    /// The snapshots kept.
    List {
        #[command(flatten)]
        local: crate::Local,
    },
}

pub(crate) fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>9} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

async fn open(config_path: &Path) -> Result<std::sync::Arc<dyn StorageBackend>> {
    let config = setup::load_config(config_path)?;
    Ok(toka_runtime::open_store(&config).await?)
}

/// Replays events `1..=to` (no snapshot) into a fresh state.
async fn replay_to(
    store: &dyn StorageBackend,
    to: u64,
    progress: &ProgressBar,
) -> Result<WorldState> {
    let mut state = WorldState::new();
    let handlers = OpcodeRegistry::new();
    let mut pages = EventPages::new(store, 1).until(to);
    loop {
        let page = pages.next_page().await?;
        if page.is_empty() {
            break;
        }
        for record in &page {
            let event = toka_runtime::codec::decode(record)?;
            toka_kernel::apply(&mut state, &event, &handlers);
        }
        progress.set_position(state.applied());
    }
    Ok(state)
}

/// Verifies the chain (naming the first bad seq), then replays from seq 1 checking
/// the newest snapshot and every signed checkpoint.
pub async fn verify(
    config_path: &Path,
    checkpoint_file: Option<&Path>,
    public_key: Option<&str>,
    out: Out,
) -> Result<ExitCode> {
    let config = setup::load_config(config_path)?;
    let store = toka_runtime::open_store(&config).await?;
    let head = store.head().await?;
    let progress = bar(head.seq, "verify");
    let verdict = verify_chain(store.as_ref(), 1, Hash32::ZERO, None, |seq| {
        progress.set_position(seq)
    })
    .await?;
    progress.finish_and_clear();
    let refuse = |seq: u64, reason: String| {
        out.emit(&json!({"ok": false, "seq": seq, "reason": reason}), || {
            crate::output::warn(format!("log broken at seq {seq}: {reason}"));
        });
        Ok(ExitCode::from(1))
    };
    if let Verdict::Broken { seq, corruption } = verdict {
        return refuse(seq, corruption.to_string());
    }
    let checkpoints =
        crate::cmd::checkpoint::load(&config, store.as_ref(), checkpoint_file, public_key).await?;
    let progress = bar(head.seq, "replay");
    let recovered = toka_runtime::recovery::recover_with(
        store.as_ref(),
        &OpcodeRegistry::new(),
        &checkpoints,
        false,
        |seq| progress.set_position(seq),
    )
    .await;
    progress.finish_and_clear();
    use toka_runtime::RuntimeError as R;
    let recovered = match recovered {
        Ok(r) => r,
        Err(R::BehindCheckpoint { last, checkpoint }) => {
            return refuse(
                last + 1,
                format!(
                    "log truncated: it ends at seq {last}, but a signed checkpoint covers seq {checkpoint}"
                ),
            );
        }
        Err(e @ R::CheckpointMismatch { seq, .. })
        | Err(e @ R::BadSnapshot { seq, .. })
        | Err(e @ R::Corrupt { seq, .. })
        | Err(e @ R::Invariant { seq, .. }) => return refuse(seq, e.to_string()),
        Err(e) => return Err(e.into()),
    };
    let snapshot_check = match store.latest_snapshot().await? {
        Some(s) => format!("snapshot at seq {} matches replay", s.seq),
        None => "no snapshot".to_string(),
    };
    let newest = toka_runtime::checkpoint::newest(&checkpoints).map(|c| c.checkpoint.seq);
    let checkpoint_check = match newest {
        Some(seq) => format!(
            "{} signed checkpoints agree (newest at seq {seq})",
            checkpoints.len()
        ),
        None => "no signed checkpoint to check against".to_string(),
    };
    let digest = recovered.state.digest().to_string();
    out.emit(&json!({"ok": true, "events": head.seq, "chain_digest": head.digest.to_string(), "state_digest": digest, "checkpoints": checkpoints.len(), "newest_checkpoint": newest}), || {
        out.say(format!("ok: {} events, chain intact, {snapshot_check}", head.seq));
        out.say(format!("    {checkpoint_check}"));
        out.say(format!("chain digest  {}", head.digest));
        out.say(format!("state digest  {digest}"));
    });
    Ok(ExitCode::SUCCESS)
}

pub async fn replay(config_path: &Path, to: Option<u64>, out: Out) -> Result<ExitCode> {
    let store = open(config_path).await?;
    let head = store.head().await?;
    let to = to.unwrap_or(head.seq);
    if to > head.seq {
        bail!("--to {to} is past the head ({})", head.seq);
    }
    let progress = bar(to, "replay");
    let state = replay_to(store.as_ref(), to, &progress).await?;
    progress.finish_and_clear();
    let agents: Vec<_> = state.agents().into_iter().map(|a| json!({
        "id": a.id.to_string(), "name": a.spec.name(), "parent": a.parent.map(|p| p.to_string()),
        "status": format!("{:?}", a.status).to_lowercase(), "tasks": a.tasks.len(), "observations": a.observations,
    })).collect();
    let mut counts = std::collections::BTreeMap::new();
    for t in state.tasks() {
        *counts.entry(t.state.as_str()).or_insert(0u64) += 1;
    }
    let digest = state.digest().to_string();
    out.emit(
        &json!({"seq": to, "digest": digest, "agents": agents, "tasks": counts}),
        || {
            out.say(format!("state at seq {to} (digest {digest})"));
            let rows: Vec<Vec<String>> = state
                .agents()
                .into_iter()
                .map(|a| {
                    vec![
                        a.spec.name().to_string(),
                        a.id.to_string(),
                        format!("{:?}", a.status).to_lowercase(),
                        a.tasks.len().to_string(),
                    ]
                })
                .collect();
            table(&["agent", "id", "status", "tasks"], &rows);
            let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
            out.say(format!(
                "tasks: {}",
                if summary.is_empty() {
                    "none".into()
                } else {
                    summary.join(", ")
                }
            ));
        },
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn snapshot(cmd: SnapshotCmd, out: Out) -> Result<ExitCode> {
    match cmd {
        SnapshotCmd::Create { local } => {
            let config = setup::load_config(&local.config)?;
            let runtime = toka_runtime::Runtime::start(&config).await?;
            let seq = runtime.snapshot().await.map_err(|e| anyhow::anyhow!(e))?;
            runtime.shutdown().await;
            out.emit(&json!({"snapshot": seq}), || {
                out.say(format!("snapshot taken at seq {seq}"))
            });
        }
        SnapshotCmd::List { local } => {
            let store = open(&local.config).await?;
            let seqs = store.snapshot_seqs().await?;
            out.emit(&json!({"snapshots": seqs}), || {
                let rows: Vec<Vec<String>> = seqs.iter().map(|s| vec![s.to_string()]).collect();
                table(&["seq"], &rows);
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn export(config_path: &Path, file: Option<&Path>, out: Out) -> Result<ExitCode> {
    let store = open(config_path).await?;
    let head = store.head().await?;
    let mut sink: Box<dyn Write> = match file {
        Some(f) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(f).with_context(|| format!("creating {}", f.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let progress = if file.is_some() {
        bar(head.seq, "export")
    } else {
        ProgressBar::hidden()
    };
    let mut pages = EventPages::new(store.as_ref(), 1);
    let mut written = 0u64;
    loop {
        let page = pages.next_page().await?;
        if page.is_empty() {
            break;
        }
        for record in &page {
            serde_json::to_writer(&mut sink, record)?;
            sink.write_all(b"\n")?;
            written += 1;
        }
        progress.set_position(written);
    }
    sink.flush()?;
    progress.finish_and_clear();
    if file.is_some() {
        out.emit(&json!({"exported": written}), || {
            out.say(format!("exported {written} events"))
        });
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads an export line by line, checking the chain; calls `each` with every batch.
async fn walk_export(
    file: &Path,
    mut each: impl AsyncFnMut(&[EventRecord]) -> Result<()>,
) -> Result<Head> {
    let reader = BufReader::new(
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?,
    );
    let mut head = Head::EMPTY;
    let mut batch = Vec::with_capacity(1024);
    for (n, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let record: EventRecord = serde_json::from_str(&line)
            .with_context(|| format!("line {}: not an exported event", n + 1))?;
        let h = &record.header;
        match toka_store_core::ChainCursor::after(head).accept(&record) {
            Ok(()) => {}
            Err(
                toka_store_core::Corruption::Missing { .. }
                | toka_store_core::Corruption::Reordered,
            ) => bail!(
                "line {}: seq {} where {} was expected; the export is broken, nothing imported",
                n + 1,
                h.seq,
                head.seq + 1
            ),
            Err(corruption) => bail!(
                "line {}: seq {}: {corruption}; nothing imported",
                n + 1,
                h.seq
            ),
        }
        head = Head {
            seq: h.seq,
            digest: h.digest,
        };
        batch.push(record);
        if batch.len() == 1024 {
            each(&batch).await?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        each(&batch).await?;
    }
    Ok(head)
}

pub async fn import(config_path: &Path, file: &Path, out: Out) -> Result<ExitCode> {
    let store = open(config_path).await?;
    if store.head().await?.seq != 0 {
        bail!(
            "the store of {} is not empty; import into a fresh data folder (`toka init --dir NEW`)",
            config_path.display()
        );
    }
    // Pass 1: the whole chain checks out before anything is written.
    let checked = walk_export(file, async |_| Ok(())).await?;
    // Pass 2: append it (the driver re-checks every batch).
    let progress = bar(checked.seq, "import");
    let head = walk_export(file, async |batch: &[EventRecord]| {
        let at = batch[0].header.seq - 1;
        store.append(at, batch).await?;
        progress.set_position(at + batch.len() as u64);
        Ok(())
    })
    .await?;
    progress.finish_and_clear();
    out.emit(
        &json!({"imported": head.seq, "chain_digest": head.digest.to_string()}),
        || {
            out.say(format!(
                "imported {} events, chain digest {}",
                head.seq, head.digest
            ));
        },
    );
    Ok(ExitCode::SUCCESS)
}
