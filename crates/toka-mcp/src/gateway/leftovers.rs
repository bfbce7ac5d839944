//! Downstream servers a killed node left running. A node stopped by SIGKILL (or a
//! power cut) cannot stop the servers it started; one stuck in a call would run on
//! for as long as the call does. So every server the node starts is recorded in
//! `mcp-servers.pids` beside the store (its pid and its start time, so a pid the
//! system gave to another process since is never touched), and the next start of
//! the node kills those still running before it starts new ones. Their open calls
//! are already settled by the crash rules (at most once: abandoned).
//!
//! Linux only (start times come from `/proc`); elsewhere nothing is recorded.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

/// The servers this node started and that still run.
#[derive(Debug)]
pub(super) struct Leftovers {
    path: PathBuf,
    live: Mutex<BTreeMap<u32, u64>>,
}

/// The start time of process `pid` (clock ticks after boot), if it runs.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

impl Leftovers {
    /// Kills the servers recorded in `path` that still run, and starts a new record.
    pub(super) fn reap(path: PathBuf) -> Self {
        let recorded = std::fs::read_to_string(&path).unwrap_or_default();
        for line in recorded.lines() {
            let mut fields = line.split_whitespace().map(str::parse::<u64>);
            let (Some(Ok(pid)), Some(Ok(started))) = (fields.next(), fields.next()) else {
                continue;
            };
            let Ok(pid) = u32::try_from(pid) else {
                continue;
            };
            if start_time(pid) == Some(started) {
                let target = nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX));
                match nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGKILL) {
                    Ok(()) => tracing::warn!(
                        pid,
                        "stopped a downstream MCP server left running by a node that did not stop cleanly"
                    ),
                    Err(e) => {
                        tracing::warn!(pid, error = %e, "cannot stop a downstream MCP server left running")
                    }
                }
            }
        }
        let leftovers = Self {
            path,
            live: Mutex::new(BTreeMap::new()),
        };
        leftovers.write();
        leftovers
    }

    /// Records that the node started server process `pid`.
    pub(super) fn started(&self, pid: u32) {
        if let Some(at) = start_time(pid)
            && let Ok(mut live) = self.live.lock()
        {
            live.insert(pid, at);
        }
        self.write();
    }

    /// Records that server process `pid` was stopped.
    pub(super) fn stopped(&self, pid: u32) {
        if let Ok(mut live) = self.live.lock() {
            live.remove(&pid);
        }
        self.write();
    }

    fn write(&self) {
        let Ok(live) = self.live.lock() else { return };
        let text: String = live
            .iter()
            .map(|(pid, at)| format!("{pid} {at}\n"))
            .collect();
        if let Err(e) = std::fs::write(&self.path, text) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot record the downstream MCP servers started");
        }
    }
}
