//! `toka bench`: acknowledged messages per second through the real runtime on a fresh
//! store, then how fast that store replays.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use toka_runtime::{Config, Runtime, RuntimeOptions, load};

use crate::output::Out;

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
}

pub async fn run(args: BenchArgs, out: Out) -> Result<ExitCode> {
    let dir = tempfile::tempdir()?;
    let mut config = Config {
        base_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    config.store.driver = args.driver.clone();
    config.store.path = if args.driver == "sled" {
        "data/sled".into()
    } else {
        "data/toka.db".into()
    };
    if let Ok(url) = std::env::var("TOKA_POSTGRES_URL") {
        config.store.postgres_url = url;
    }
    // A fresh store: on PostgreSQL, a schema of its own (left behind for inspection).
    config.store.postgres_schema = format!("toka_bench_{}", std::process::id());
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

    let bar = if out.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(args.messages)
    };
    bar.set_style(
        ProgressStyle::with_template("{msg:>7} [{bar:40}] {pos}/{len} ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message("bench");
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
    let replay_per_second = recovered.head.seq as f64 / replay_seconds.max(1e-9);
    let figures = json!({
        "driver": args.driver, "submitters": report.submitters, "acknowledged": report.acknowledged,
        "seconds": report.seconds, "per_second": report.per_second, "p50_ms": report.p50_ms,
        "p99_ms": report.p99_ms, "max_ms": report.max_ms, "commits": report.commits,
        "replay_events": recovered.head.seq, "replay_per_second": replay_per_second,
    });
    out.emit(&figures, || {
        out.say(format!(
            "driver {} ({}), {} submitters, {} messages",
            args.driver,
            if args.driver == "memory" {
                "not durable"
            } else {
                "durable"
            },
            report.submitters,
            report.acknowledged
        ));
        out.say(format!(
            "  acknowledged   {:>10.0} msg/s over {:.2} s ({} commits, {:.1} msg/commit)",
            report.per_second,
            report.seconds,
            report.commits,
            report.acknowledged as f64 / report.commits.max(1) as f64
        ));
        out.say(format!(
            "  latency        p50 {:.2} ms   p99 {:.2} ms   max {:.2} ms",
            report.p50_ms, report.p99_ms, report.max_ms
        ));
        out.say(format!(
            "  replay         {:>10.0} events/s ({} events in {:.2} s)",
            replay_per_second, recovered.head.seq, replay_seconds
        ));
    });
    Ok(ExitCode::SUCCESS)
}
