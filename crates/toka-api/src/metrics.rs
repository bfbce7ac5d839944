//! `/metrics` in the Prometheus text format.

use std::fmt::Write as _;

use toka_runtime::{BATCH_BUCKETS, LATENCY_BUCKETS_MS, Runtime};

fn histogram(
    out: &mut String,
    name: &str,
    help: &str,
    bounds: &[String],
    counts: &[u64],
    sum: Option<f64>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    let mut cumulative = 0;
    for (bound, count) in bounds.iter().zip(counts) {
        cumulative += count;
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
    }
    cumulative += counts.get(bounds.len()).copied().unwrap_or(0);
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
    if let Some(sum) = sum {
        let _ = writeln!(out, "{name}_sum {sum}");
    }
    let _ = writeln!(out, "{name}_count {cumulative}");
}

/// The metrics page.
pub fn render(runtime: &Runtime) -> String {
    let m = runtime.metrics().snapshot();
    let mut out = String::new();
    let counter = |out: &mut String, name: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
        );
    };
    counter(
        &mut out,
        "toka_submits_total",
        "Messages submitted.",
        m.submitted,
    );
    counter(
        &mut out,
        "toka_committed_messages_total",
        "Messages committed.",
        m.committed_messages,
    );
    counter(
        &mut out,
        "toka_committed_events_total",
        "Events committed.",
        m.committed_events,
    );
    counter(
        &mut out,
        "toka_rate_limited_total",
        "Messages refused by the rate limit.",
        m.rate_limited,
    );
    counter(
        &mut out,
        "toka_busy_total",
        "Messages refused because the queue was full.",
        m.busy,
    );
    counter(
        &mut out,
        "toka_commit_failures_total",
        "Failed storage appends.",
        m.commit_failures,
    );
    counter(
        &mut out,
        "toka_head_conflicts_total",
        "Batches decided without a shared log's head that another node's append voided (decided again).",
        m.head_conflicts,
    );
    let _ = writeln!(
        out,
        "# HELP toka_rejections_total Messages the kernel rejected, by reason.\n# TYPE toka_rejections_total counter"
    );
    if m.rejections.is_empty() {
        let _ = writeln!(out, "toka_rejections_total{{reason=\"none\"}} 0");
    }
    for (reason, n) in &m.rejections {
        let _ = writeln!(out, "toka_rejections_total{{reason=\"{reason}\"}} {n}");
    }
    let lat: Vec<String> = LATENCY_BUCKETS_MS
        .iter()
        .map(|b| format!("{}", b / 1000.0))
        .collect();
    histogram(
        &mut out,
        "toka_commit_latency_seconds",
        "Storage append latency per batch.",
        &lat,
        &m.commit_latency,
        Some(m.commit_micros_total as f64 / 1e6),
    );
    let sizes: Vec<String> = BATCH_BUCKETS.iter().map(|b| b.to_string()).collect();
    histogram(
        &mut out,
        "toka_commit_batch_size",
        "Messages per committed batch.",
        &sizes,
        &m.batch_sizes,
        None,
    );
    let _ = writeln!(
        out,
        "# HELP toka_queue_depth Messages waiting for the writer.\n# TYPE toka_queue_depth gauge\ntoka_queue_depth {}",
        m.queue_depth
    );
    let _ = writeln!(
        out,
        "# HELP toka_subscribers Live event subscribers.\n# TYPE toka_subscribers gauge\ntoka_subscribers {}",
        runtime.subscriber_count()
    );
    let _ = writeln!(
        out,
        "# HELP toka_head_seq The committed head.\n# TYPE toka_head_seq gauge\ntoka_head_seq {}",
        runtime.head().seq
    );
    out
}
