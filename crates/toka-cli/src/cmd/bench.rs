//! `toka bench`: acknowledged messages per second through the real runtime on a fresh
//! store, then how fast that store replays; with `--compare`, the plain-table baseline
//! of the same database on the same disk right after, and the ratio of the two.
//!
//! For the memory driver, which has no database, the baseline is the kernel alone: the
//! same messages decided and applied on one thread, with no log and nobody to answer
//! (`load::kernel_alone`).
//!
//! The ratio is the figure to quote: absolute rates say as much about the machine as
//! about Toka. With `--runs N` each side runs N times, alternating, and the medians
//! are reported.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use toka_runtime::{Config, Runtime, RuntimeOptions, load};
use toka_store_bench::plain;

use crate::output::Out;

/// Rows per transaction of the batched baseline.
const BASELINE_ROWS_PER_COMMIT: u64 = 1000;
/// Rows of the one-row-per-commit baseline (each is an fsync: kept short).
const SINGLE_COMMIT_ROWS: u64 = 2000;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Storage driver (durable drivers really fsync every commit).
    #[arg(long, default_value = "sqlite", value_parser = ["memory", "sled", "sqlite", "postgres"])]
    driver: String,
    /// Concurrent submitters (1 to 65535).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    submitters: u16,
    /// Messages in all (1 to 100 million).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    messages: u64,
    /// Also run the baseline with as many rows (a plain table: SQLite for sqlite and
    /// sled, PostgreSQL for postgres; for memory, the kernel alone), and print the ratios.
    #[arg(long)]
    compare: bool,
    /// Also time each message's own work on one thread, stage by stage (decide, encode,
    /// seal, apply; check and decode for replay), and print the ceilings it sets on
    /// this machine's cores: what no pipeline of this design can beat here.
    #[arg(long)]
    floor: bool,
    /// Runs of each side (1 to 9); medians are reported.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=9))]
    runs: u8,
}

/// One run of Toka's side.
#[derive(Debug, Clone, Serialize)]
struct TokaRun {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    commits: u64,
    acknowledged: u64,
    seconds: f64,
    replay_events: u64,
    replay_per_second: f64,
}

/// One run of the baseline.
#[derive(Debug, Clone, Serialize)]
struct BaselineRun {
    batched: plain::PlainFigures,
    /// One row per transaction (SQLite only).
    single_commit_per_second: Option<f64>,
}

pub async fn run(args: BenchArgs, out: Out) -> Result<ExitCode> {
    let postgres_url = std::env::var("TOKA_POSTGRES_URL").ok();
    let mut toka = Vec::new();
    let mut baseline = Vec::new();
    let mut kernel = Vec::new();
    let mut floors = Vec::new();
    for run in 0..args.runs {
        let dir = tempfile::tempdir()?;
        toka.push(toka_once(&args, dir.path(), postgres_url.as_deref(), &out, run).await?);
        if args.compare && args.driver == "memory" {
            let (submitters, messages) = (usize::from(args.submitters), args.messages);
            let alone =
                tokio::task::spawn_blocking(move || load::kernel_alone(submitters, messages))
                    .await??;
            kernel.push(alone);
        } else if args.compare {
            let rows = args.messages;
            let plain =
                baseline_once(&args.driver, dir.path(), postgres_url.as_deref(), rows, run).await?;
            baseline.push(plain);
        }
        if args.floor {
            let (submitters, messages) = (usize::from(args.submitters), args.messages);
            let floor =
                tokio::task::spawn_blocking(move || load::floor(submitters, messages)).await??;
            floors.push(floor);
        }
    }
    // The run whose writer ceiling is the median, whole (its stages add up).
    floors.sort_by(|a, b| a.writer_ceiling.total_cmp(&b.writer_ceiling));
    let floor = floors.get(floors.len() / 2);
    report(&args, &toka, &baseline, &kernel, floor, &out);
    Ok(ExitCode::SUCCESS)
}

async fn toka_once(
    args: &BenchArgs,
    dir: &std::path::Path,
    postgres_url: Option<&str>,
    out: &Out,
    run: u8,
) -> Result<TokaRun> {
    let mut config = Config {
        base_dir: dir.to_path_buf(),
        ..Default::default()
    };
    config.store.driver = args.driver.clone();
    config.store.path = if args.driver == "sled" {
        "data/sled".into()
    } else {
        "data/toka.db".into()
    };
    if let Some(url) = postgres_url {
        config.store.postgres_url = url.to_string();
    }
    // A fresh store: on PostgreSQL, a schema of its own (left behind for inspection).
    config.store.postgres_schema = format!("toka_bench_{}_{run}", std::process::id());
    let store = toka_runtime::open_store(&config).await?;
    let keys = toka_auth::KeySet::new(toka_auth::SigningKey::hs256("bench", &{
        let mut secret = [0u8; 32];
        toka_runtime::keys::random_bytes(&mut secret)?;
        secret
    })?);
    let mut options = RuntimeOptions::from_config(&config);
    options.snapshots.every_events = 0;
    options.snapshots.on_shutdown = false;
    let runtime = Runtime::with_store(Arc::clone(&store), keys, options).await?;

    let bar = if out.json || out.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(args.messages)
    };
    bar.set_style(
        ProgressStyle::with_template("{msg:>7} [{bar:40}] {pos}/{len} ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(format!("toka {}", run + 1));
    let progress = bar.clone();
    let report = load::run(
        &runtime,
        usize::from(args.submitters),
        args.messages,
        move |n| progress.set_position(n),
    )
    .await?;
    bar.finish_and_clear();
    runtime.shutdown().await;
    drop(runtime);

    let started = Instant::now();
    let recovered =
        toka_runtime::recovery::recover(store.as_ref(), &Default::default(), |_| {}).await?;
    let replay_seconds = started.elapsed().as_secs_f64();
    Ok(TokaRun {
        per_second: report.per_second,
        p50_ms: report.p50_ms,
        p99_ms: report.p99_ms,
        max_ms: report.max_ms,
        commits: report.commits,
        acknowledged: report.acknowledged,
        seconds: report.seconds,
        replay_events: recovered.head.seq,
        replay_per_second: recovered.head.seq as f64 / replay_seconds.max(1e-9),
    })
}

async fn baseline_once(
    driver: &str,
    dir: &std::path::Path,
    postgres_url: Option<&str>,
    rows: u64,
    run: u8,
) -> Result<BaselineRun> {
    if driver == "postgres" {
        let Some(url) = postgres_url else {
            bail!("the postgres driver needs TOKA_POSTGRES_URL (a libpq connection string)");
        };
        let schema = format!("toka_bench_plain_{}_{run}", std::process::id());
        let batched = plain::postgres(url, &schema, rows, BASELINE_ROWS_PER_COMMIT).await?;
        return Ok(BaselineRun {
            batched,
            single_commit_per_second: None,
        });
    }
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let batched = plain::sqlite(&dir.join("plain.db"), rows, BASELINE_ROWS_PER_COMMIT)?;
        let single = plain::sqlite(
            &dir.join("plain-single.db"),
            SINGLE_COMMIT_ROWS.min(rows),
            1,
        )?;
        Ok(BaselineRun {
            batched,
            single_commit_per_second: Some(single.append_per_second),
        })
    })
    .await?
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn report(
    args: &BenchArgs,
    toka: &[TokaRun],
    baseline: &[BaselineRun],
    kernel: &[load::KernelReport],
    floor: Option<&load::FloorReport>,
    out: &Out,
) {
    let per_second = median(toka.iter().map(|r| r.per_second).collect());
    let replay = median(toka.iter().map(|r| r.replay_per_second).collect());
    let p50 = median(toka.iter().map(|r| r.p50_ms).collect());
    let p99 = median(toka.iter().map(|r| r.p99_ms).collect());
    let commits = median(toka.iter().map(|r| r.commits as f64).collect());
    let acknowledged = toka.iter().map(|r| r.acknowledged).min().unwrap_or(0);
    let replay_events = toka.iter().map(|r| r.replay_events).min().unwrap_or(0);
    let seconds = median(toka.iter().map(|r| r.seconds).collect());
    let max_ms = median(toka.iter().map(|r| r.max_ms).collect());
    let plain_append = (!baseline.is_empty()).then(|| {
        median(
            baseline
                .iter()
                .map(|b| b.batched.append_per_second)
                .collect(),
        )
    });
    let plain_read = (!baseline.is_empty())
        .then(|| median(baseline.iter().map(|b| b.batched.read_per_second).collect()));
    let single = median(
        baseline
            .iter()
            .filter_map(|b| b.single_commit_per_second)
            .collect(),
    );
    let ratio = |a: f64, b: Option<f64>| b.map(|b| a / b.max(1e-9));
    let kernel_alone =
        (!kernel.is_empty()).then(|| median(kernel.iter().map(|k| k.per_second).collect()));
    let baseline_figures = match (plain_append, kernel_alone) {
        (Some(append), _) => Some(serde_json::json!({
            "table": "t(id INTEGER PRIMARY KEY, digest BLOB, payload BLOB)",
            "rows_per_commit": BASELINE_ROWS_PER_COMMIT,
            "append_per_second": append,
            "read_per_second": plain_read,
            "single_commit_per_second": (single > 0.0).then_some(single),
        })),
        (None, Some(alone)) => Some(serde_json::json!({
            "kernel_alone": "decide+apply of the same messages on one thread, HS256 verified",
            "per_second": alone,
        })),
        (None, None) => None,
    };
    let baseline_runs = if kernel.is_empty() {
        serde_json::to_value(baseline)
    } else {
        serde_json::to_value(kernel)
    }
    .unwrap_or_default();
    // Toka's figures over the floor's ceilings: one writer, all cores, replay.
    let floor_ratios = floor.map(|f| {
        [
            per_second / f.writer_ceiling.max(1e-9),
            per_second / f.commit_ceiling.max(1e-9),
            replay / f.replay_ceiling.max(1e-9),
        ]
    });
    let figures = serde_json::json!({
        "driver": args.driver, "submitters": args.submitters, "messages": args.messages,
        "runs": args.runs, "acknowledged": acknowledged, "seconds": seconds,
        "per_second": per_second, "p50_ms": p50, "p99_ms": p99, "max_ms": max_ms,
        "commits": commits, "replay_events": replay_events, "replay_per_second": replay,
        "baseline": baseline_figures,
        "append_ratio": ratio(per_second, plain_append.or(kernel_alone)),
        "replay_ratio": ratio(replay, plain_read),
        "toka_runs": toka, "baseline_runs": baseline_runs,
        "floor": floor,
        "floor_ratios": floor_ratios.map(|[writer, commit, replay]| serde_json::json!({
            "writer": writer, "commit": commit, "replay": replay,
        })),
    });
    out.emit(&figures, || {
        let runs = if args.runs > 1 {
            format!(", medians of {} runs", args.runs)
        } else {
            String::new()
        };
        out.say(format!(
            "driver {} ({}), {} submitters, {} messages{runs}",
            args.driver,
            if args.driver == "memory" {
                "not durable"
            } else {
                "durable"
            },
            args.submitters,
            args.messages
        ));
        out.say(format!(
            "  acknowledged   {per_second:>10.0} msg/s ({commits:.0} commits, {:.1} msg/commit)",
            args.messages as f64 / commits.max(1.0)
        ));
        out.say(format!("  latency        p50 {p50:.2} ms   p99 {p99:.2} ms"));
        out.say(format!(
            "  replay         {replay:>10.0} events/s (chain verified, state applied)"
        ));
        if let (Some(append), Some(read)) = (plain_append, plain_read) {
            let db = if args.driver == "postgres" {
                "PostgreSQL"
            } else {
                "SQLite (WAL, synchronous=FULL)"
            };
            out.say(format!(
                "baseline: a plain table in {db}, {BASELINE_ROWS_PER_COMMIT} rows per commit, same disk"
            ));
            out.say(format!(
                "  append         {append:>10.0} rows/s      toka/plain {:.2}x",
                per_second / append.max(1e-9)
            ));
            if single > 0.0 {
                out.say(format!("  one row/commit {single:>10.0} rows/s"));
            }
            out.say(format!(
                "  read back      {read:>10.0} rows/s      toka/plain {:.2}x",
                replay / read.max(1e-9)
            ));
        }
        if let Some(alone) = kernel_alone {
            out.say("baseline: the kernel alone, the same messages on one thread (no log)");
            out.say(format!(
                "  decide+apply   {alone:>10.0} msg/s      toka/kernel {:.2}x",
                per_second / alone.max(1e-9)
            ));
        }
        if let (Some(f), Some(ratios)) = (floor, floor_ratios) {
            say_floor(out, f, ratios);
        }
    });
}

/// The floor's human view: each stage's cost, then the ceilings with Toka's figure over
/// each (`ratios`: one writer, all cores, replay).
fn say_floor(out: &Out, f: &load::FloorReport, ratios: [f64; 3]) {
    let [writer, commit, replay] = ratios;
    out.say("floor: each message's own work on one thread (no queue, store or answers)");
    out.say(format!(
        "  per message    decide {:.2} µs, encode {:.2}, seal {:.2}, readers' apply {:.2}",
        f.decide_us, f.encode_us, f.seal_us, f.apply_us
    ));
    out.say(format!(
        "  per replay     check {:.2} µs, decode {:.2}, apply {:.2} (the store's read not counted)",
        f.check_us, f.decode_us, f.apply_us
    ));
    out.say(format!(
        "  one writer     {:>10.0} msg/s at most toka/ceiling {writer:.2}x",
        f.writer_ceiling
    ));
    out.say(format!(
        "  {} cores        {:>10.0} msg/s at most toka/ceiling {commit:.2}x",
        f.cores, f.commit_ceiling
    ));
    out.say(format!(
        "  replay         {:>10.0} events/s at most toka/ceiling {replay:.2}x",
        f.replay_ceiling
    ));
}
