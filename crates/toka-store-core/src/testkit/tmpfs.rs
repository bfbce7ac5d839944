//! [`Tmpfs`]: a small file system of a chosen size, for tests of what a driver does when
//! the disk fills up. Mounting needs root, which CI has; elsewhere the test is skipped,
//! loudly, and under CI a failed mount fails the test instead.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted on a folder, unmounted when dropped (however the test ends).
#[derive(Debug)]
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `bytes` on `dir`; `None` (after saying so) where that is not
    /// allowed outside CI. `test` names the test in the message.
    #[allow(clippy::print_stderr)]
    pub fn mount(dir: &Path, bytes: u64, test: &str) -> Option<Self> {
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir)
            .output()
            .is_ok_and(|o| o.status.success());
        if !mounted {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs as root and can mount a tmpfs"
            );
            eprintln!("\n*** SKIPPED {test}: cannot mount a tmpfs (not root) ***\n");
            return None;
        }
        Some(Self(dir.to_path_buf()))
    }

    /// Changes its size to `bytes` (what is stored stays).
    pub fn resize(&self, bytes: u64) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={bytes}")])
            .arg(&self.0)
            .status()
            .expect("mount -o remount");
        assert!(status.success(), "remounting {} failed", self.0.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}
