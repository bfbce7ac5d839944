//! `toka events`: reading the log from a running server, a page at a time or as a
//! live stream that survives server restarts, filtered by kind, agent and age.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use futures::StreamExt as _;
use toka_api::views::{EventPage, EventView};

use crate::Remote;
use crate::client::Client;
use crate::output::{Out, table};

#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(flatten)]
    remote: Remote,
    /// First seq (default 1, with or without --follow).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    from: Option<u64>,
    /// Keep streaming new events (after the history), reconnecting across restarts.
    #[arg(long)]
    follow: bool,
    /// Most events to print (without --follow).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    limit: u64,
    /// Only events whose kind starts with this (`tool.`, `task.claimed`; repeat).
    #[arg(long)]
    kind: Vec<String>,
    /// Only events sent by or about this agent (an id, prefix, name or path).
    #[arg(long, add = clap_complete::ArgValueCompleter::new(crate::complete::agents))]
    agent: Option<String>,
    /// Only events decided in the last DURATION (`10m`, `2h`).
    #[arg(long, value_parser = humantime::parse_duration)]
    since: Option<std::time::Duration>,
}

/// Which events `toka events` prints.
struct EventFilter {
    kinds: Vec<String>,
    agent: Option<String>,
    since_micros: Option<u64>,
}

impl EventFilter {
    fn matches(&self, e: &EventView) -> bool {
        let kind = self.kinds.is_empty() || self.kinds.iter().any(|k| e.kind.starts_with(k));
        let agent = self.agent.as_deref().is_none_or(|a| {
            e.origin == a
                || [
                    &e.event["agent"],
                    &e.event["sub"],
                    &e.event["step"]["agent"],
                ]
                .iter()
                .any(|v| v.as_str() == Some(a))
        });
        let recent = self.since_micros.is_none_or(|t| e.timestamp >= t);
        kind && agent && recent
    }
}

fn print_event(out: Out, e: &EventView) {
    out.emit(e, || {
        out.say(format!(
            "#{:<6} {:<20} origin {}  {}",
            e.seq, e.kind, e.origin, e.event
        ))
    });
}

pub async fn events(args: EventsArgs, out: Out) -> Result<ExitCode> {
    let client = Client::new(&args.remote)?;
    let agent = match &args.agent {
        Some(r) => Some(client.agent_id(r).await?),
        None => None,
    };
    let now_micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    let filter = EventFilter {
        kinds: args.kind.clone(),
        agent,
        since_micros: args
            .since
            .map(|d| now_micros.saturating_sub(d.as_micros() as u64)),
    };
    let from = args.from.unwrap_or(1);
    if args.follow {
        return follow(&client, from, &filter, out).await;
    }
    // Page through the log until `limit` events matched or the head is reached.
    let mut next = from;
    let mut shown: Vec<EventView> = Vec::new();
    for _ in 0..100_000 {
        let page: EventPage = client
            .get(
                "/v1/events",
                &[("from", next.to_string()), ("limit", "1000".to_string())],
            )
            .await?;
        for e in page.events {
            if shown.len() as u64 == args.limit {
                break;
            }
            if filter.matches(&e) {
                shown.push(e);
            }
        }
        if shown.len() as u64 == args.limit || page.next > page.head || page.next == next {
            break;
        }
        next = page.next;
    }
    if out.json {
        for e in &shown {
            print_event(out, e);
        }
    } else {
        let rows: Vec<Vec<String>> = shown
            .iter()
            .map(|e| {
                vec![
                    e.seq.to_string(),
                    when(e.timestamp),
                    e.kind.clone(),
                    e.origin[..8.min(e.origin.len())].to_string(),
                    summary(e),
                ]
            })
            .collect();
        table(&["seq", "time", "kind", "origin", "what"], &rows);
    }
    Ok(ExitCode::SUCCESS)
}

/// An event time (µs since the epoch) as ISO 8601, UTC, to the second.
fn when(micros: u64) -> String {
    humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_micros(micros),
    )
    .to_string()
}

/// What an event says, in a few words (the JSON view has it all).
fn summary(e: &EventView) -> String {
    toka_planner::one_line(&crate::describe::what(&e.kind, &e.event), 80)
}

/// Longest pause between reconnections of `events --follow`.
const MAX_RECONNECT_PAUSE: std::time::Duration = std::time::Duration::from_secs(5);

/// Prints the event stream from `from` (history, then live) for as long as it runs;
/// when the server goes away (a restart), reconnects with `Last-Event-ID` set to the
/// last event seen, so nothing is missed or printed twice.
async fn follow(client: &Client, from: u64, filter: &EventFilter, out: Out) -> Result<ExitCode> {
    use eventsource_stream::Eventsource as _;
    let mut last = from.saturating_sub(1);
    let mut pause = std::time::Duration::from_millis(250);
    loop {
        match client.stream(last).await {
            Ok(response) => {
                pause = std::time::Duration::from_millis(250);
                let mut events = response.bytes_stream().eventsource();
                while let Some(Ok(event)) = events.next().await {
                    if event.event == "closed" {
                        break; // the server is stopping
                    }
                    if let Ok(view) = serde_json::from_str::<EventView>(&event.data)
                        && view.seq > last
                    {
                        last = view.seq;
                        if filter.matches(&view) {
                            print_event(out, &view);
                        }
                    }
                }
                crate::output::warn(format!(
                    "the event stream ended after seq {last}; reconnecting"
                ));
            }
            Err(e) => crate::output::warn(format!("{e}; retrying in {} ms", pause.as_millis())),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_RECONNECT_PAUSE);
    }
}
