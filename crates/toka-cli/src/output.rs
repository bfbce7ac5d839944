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

    /// A line for people (suppressed in JSON mode).
    pub fn say(&self, text: impl AsRef<str>) {
        if !self.json {
            line(text.as_ref());
        }
    }
}

/// Prints a table: a header row and rows, columns padded to fit.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        line(padded.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_uppercase()).collect());
    for row in rows {
        line(row.clone());
    }
}

/// Prints a `toka: ...` message to stderr.
pub fn warn(text: impl AsRef<str>) {
    eprintln!("toka: {}", text.as_ref());
}
