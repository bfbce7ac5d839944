//! Output: human tables by default, JSON with `--json`. The CLI owns stdout.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use serde::Serialize;

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
            println!(
                "{}",
                serde_json::to_string(value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
            );
        } else {
            human();
        }
    }

    /// A line for people (suppressed in JSON mode).
    pub fn say(&self, text: impl AsRef<str>) {
        if !self.json {
            println!("{}", text.as_ref());
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
        println!("{}", padded.join("  ").trim_end());
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
