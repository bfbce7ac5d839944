//! Committed events in words, for the human view of commands that submit: what
//! happened, to whom, with long fields cut (and `--json` for the whole event).

use serde_json::Value;
use toka_api::views::CommittedEvent;

/// Longest text shown of one field.
const SHOWN: usize = 200;

fn cut(text: &str) -> String {
    let shown = toka_planner::one_line(text, SHOWN);
    if text.chars().count() > SHOWN {
        format!(
            "{shown} ({} characters; --json for all)",
            text.chars().count()
        )
    } else {
        shown
    }
}

fn field<'a>(e: &'a Value, name: &str) -> &'a str {
    e[name].as_str().unwrap_or("?")
}

/// An observation's bytes (base64 in the event) as text when they are UTF-8.
pub fn observation(b64: &str) -> String {
    use base64::Engine as _;
    match base64::engine::general_purpose::STANDARD.decode(b64) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => cut(&text),
            Err(e) => format!("({} bytes, not text)", e.into_bytes().len()),
        },
        Err(_) => "(undecodable)".into(),
    }
}

/// One committed event as a line: `#seq what happened`.
pub fn event(c: &CommittedEvent) -> String {
    format!("#{} {}", c.seq, what(&c.kind, &c.event))
}

/// What an event of `kind` with body `e` says happened.
pub fn what(kind: &str, e: &Value) -> String {
    match kind {
        "agent.spawned" => format!(
            "spawned agent {} ({})",
            field(e, "agent"),
            e["spec"]["name"].as_str().unwrap_or("?")
        ),
        "agent.terminated" => format!(
            "terminated agent {} ({} open tasks cancelled)",
            field(e, "agent"),
            e["cancelled_tasks"].as_array().map_or(0, Vec::len)
        ),
        "task.scheduled" => format!(
            "scheduled task {} for {}: {}",
            field(e, "task"),
            field(e, "agent"),
            cut(e["spec"]["description"].as_str().unwrap_or(""))
        ),
        "task.claimed" => format!("claimed task {} of {}", field(e, "task"), field(e, "agent")),
        "task.completed" => {
            let outcome = &e["outcome"];
            let (state, text) = match outcome["status"].as_str() {
                Some("success") => ("done", outcome["result"].as_str().unwrap_or("")),
                _ => ("failed", outcome["reason"].as_str().unwrap_or("")),
            };
            let data = match &outcome["output"] {
                serde_json::Value::Null => String::new(),
                v => format!(" (output {})", cut(&v.to_string())),
            };
            format!("task {} {state}: {}{data}", field(e, "task"), cut(text))
        }
        "task.cancelled" | "task.requeued" => format!(
            "{} task {}{}",
            if kind == "task.cancelled" {
                "cancelled"
            } else {
                "requeued"
            },
            field(e, "task"),
            match e["reason"].as_str() {
                Some(r) if !r.is_empty() => format!(": {}", cut(r)),
                _ => String::new(),
            }
        ),
        "observation.emitted" => format!(
            "{} observed: {}",
            field(e, "agent"),
            observation(e["data"].as_str().unwrap_or(""))
        ),
        "token.revoked" => format!("revoked token {}", field(e, "jti")),
        "token.issued" => format!("issued token {} for {}", field(e, "jti"), field(e, "sub")),
        other => format!("{other} {}", cut(&e.to_string())),
    }
}
