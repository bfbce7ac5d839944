//! Output: human tables by default, JSON with `--json`. The CLI owns stdout.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write as _;

use serde::Serialize;

/// Writes `text` and a newline to stdout. A closed pipe (`toka export | head`) ends the
/// process quietly with exit code 0: the reader has what it wanted.
pub fn line(text: &str) {
    raw(text.as_bytes());
    raw(b"\n");
}

/// Writes `bytes` to stdout, ending quietly on a closed pipe (see [`line`]).
pub fn raw(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("toka: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// Whether `err` is, somewhere in its chain, a closed output pipe.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// Where command results go.
#[derive(Debug, Clone, Copy)]
pub struct Out {
    /// `--json`.
    pub json: bool,
    /// `-q`: only the ids (or the token) a command produces, one per line.
    pub quiet: bool,
}

impl Out {
    /// Prints `value` as JSON (one line) in JSON mode, else runs `human`.
    pub fn emit<T: Serialize>(&self, value: &T, human: impl FnOnce()) {
        if self.json {
            line(
                &serde_json::to_string(value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")),
            );
        } else {
            human();
        }
    }

    /// A line for people (suppressed in JSON and quiet modes).
    pub fn say(&self, text: impl AsRef<str>) {
        if !self.json && !self.quiet {
            line(text.as_ref());
        }
    }

    /// Prints `value` as JSON with `--json`, only `ids` (one per line) with `-q`, else
    /// runs `human`.
    pub fn result<T: Serialize>(&self, value: &T, ids: &[&str], human: impl FnOnce()) {
        if self.quiet && !self.json {
            for id in ids {
                line(id);
            }
        } else {
            self.emit(value, human);
        }
    }
}

/// Whether stdout may carry colour: a terminal, and `NO_COLOR` unset or empty.
pub fn colour_on_stdout() -> bool {
    use std::io::IsTerminal as _;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stdout().is_terminal()
}

/// Prints a table: a header row and rows. On a terminal it fits the terminal's width
/// (wrapping long cells) and the header is bold; into a pipe or a file it is plain
/// text with no escape codes and nothing cut.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    use comfy_table::{Attribute, Cell, ContentArrangement, Table, presets};
    let colour = colour_on_stdout();
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    if !colour {
        t.force_no_tty();
    }
    // Wrap to the terminal only when its width is known and usable (a pseudo-terminal
    // may report none, or a width of a few columns).
    let fits = colour && t.width().is_some_and(|w| w >= 40);
    t.set_content_arrangement(if fits {
        ContentArrangement::Dynamic
    } else {
        ContentArrangement::Disabled
    });
    t.set_header(headers.iter().map(|h| {
        let cell = Cell::new(h.to_uppercase());
        if colour {
            cell.add_attribute(Attribute::Bold)
        } else {
            cell
        }
    }));
    for row in rows {
        t.add_row(row);
    }
    for line in t.lines() {
        // The preset pads a column on both sides; the first one needs no indent.
        self::line(line.strip_prefix(' ').unwrap_or(&line).trim_end());
    }
}

/// Reports a failed command on stderr: `toka: <why>`, or with `--json` one line
/// `{"error": {"code", "message", "status"?}}` (the code is the server's rule when it
/// refused, else `failed`).
pub fn failure(err: &anyhow::Error, json: bool) {
    if !json {
        warn(format!("{err:#}"));
        return;
    }
    let refusal = err
        .chain()
        .find_map(|c| c.downcast_ref::<crate::client::Refusal>());
    let value = match refusal {
        Some(r) => {
            serde_json::json!({"error": {"code": r.code, "status": r.status, "message": format!("{err:#}")}})
        }
        None => serde_json::json!({"error": {"code": "failed", "message": format!("{err:#}")}}),
    };
    eprintln!("{value}");
}

/// Prints a `toka: ...` message to stderr.
pub fn warn(text: impl AsRef<str>) {
    eprintln!("toka: {}", text.as_ref());
}
