//! [`Workspace`]: the folder the fs and exec tools work in, and the path rules.
//!
//! Every path from an input is relative to the workspace and goes through two gates:
//! [`check_path`] refuses, with a clear reason, what is plainly not a path inside it
//! (absolute, `..`, NUL bytes, over-long names); then the file is opened beneath the
//! workspace's directory handle with `cap-std`, which refuses anything that resolves
//! outside it (a symlink pointing out, a folder swapped for one) at the moment of the
//! open, not at some check before it.

use std::path::{Component, Path, PathBuf};

use cap_std::fs::Dir;
use toka_types::EntityId;

/// Longest path accepted, in bytes.
pub const MAX_PATH_BYTES: usize = 1024;
/// Longest name of one path component, in bytes (what Linux file systems allow).
pub const MAX_NAME_BYTES: usize = 255;

/// Why a path or the workspace cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// The path is not inside the workspace (or could not be, as written).
    #[error("path {path:?} is refused: {reason}")]
    Refused {
        /// The path as given.
        path: String,
        /// Why.
        reason: String,
    },
    /// The file system said no.
    #[error("{path:?}: {source}")]
    Io {
        /// The path as given.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// The workspace folder of a node, optionally one sub-folder per agent.
#[derive(Debug, Clone)]
pub struct Workspace {
    root: PathBuf,
    per_agent: bool,
}

impl Workspace {
    /// The workspace at `root` (created, private to the node's user, if missing).
    pub fn new(root: impl Into<PathBuf>, per_agent: bool) -> Result<Self, WorkspaceError> {
        let root = root.into();
        let io = |source| WorkspaceError::Io {
            path: root.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&root).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        }
        Ok(Self { root, per_agent })
    }

    /// The folder of `agent` on disk (the whole workspace unless per-agent).
    pub fn path_for(&self, agent: EntityId) -> PathBuf {
        if self.per_agent {
            self.root.join(agent.to_string())
        } else {
            self.root.clone()
        }
    }

    /// A handle on `agent`'s folder, created if missing; every open goes beneath it.
    pub fn dir_for(&self, agent: EntityId) -> Result<Dir, WorkspaceError> {
        let path = self.path_for(agent);
        let io = |source| WorkspaceError::Io {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&path).map_err(io)?;
        Dir::open_ambient_dir(&path, cap_std::ambient_authority()).map_err(io)
    }
}

/// `path` if it is a plain relative path inside the workspace; otherwise why not.
/// `""` and `"."` mean the workspace itself.
pub fn check_path(path: &str) -> Result<&Path, WorkspaceError> {
    let refuse = |reason: &str| WorkspaceError::Refused {
        path: path.chars().take(120).collect(),
        reason: reason.into(),
    };
    if path.contains('\0') {
        return Err(refuse("it contains a NUL byte"));
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(refuse(&format!("it is longer than {MAX_PATH_BYTES} bytes")));
    }
    let p = Path::new(path);
    for component in p.components() {
        match component {
            Component::Normal(name) => {
                if name.len() > MAX_NAME_BYTES {
                    return Err(refuse(&format!(
                        "a name in it is longer than {MAX_NAME_BYTES} bytes"
                    )));
                }
            }
            Component::CurDir => {}
            Component::ParentDir => return Err(refuse("`..` leaves the workspace")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(refuse(
                    "absolute paths are not allowed; give a path relative to the workspace",
                ));
            }
        }
    }
    Ok(p)
}

/// A file-system error on `path`, explaining a sandbox refusal as such.
pub(crate) fn io_error(path: &str, source: std::io::Error) -> WorkspaceError {
    // cap-std reports an escape as PermissionDenied with this text.
    let text = source.to_string();
    if text.contains("outside of the filesystem") || text.contains("escape") {
        return WorkspaceError::Refused {
            path: path.into(),
            reason: "it resolves outside the workspace (a symlink pointing out?)".into(),
        };
    }
    if source.raw_os_error() == Some(40) {
        // ELOOP: a symlink where none may be followed.
        return WorkspaceError::Refused {
            path: path.into(),
            reason: "it is a symlink, which this tool does not follow".into(),
        };
    }
    WorkspaceError::Io {
        path: path.into(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_relative_paths_only() {
        for ok in ["a.txt", "dir/b.txt", "./c", "", "."] {
            assert!(check_path(ok).is_ok(), "{ok}");
        }
        let long_name = "n".repeat(MAX_NAME_BYTES + 1);
        let long_path = "a/".repeat(MAX_PATH_BYTES);
        for bad in [
            "../x",
            "a/../../x",
            "/etc/passwd",
            "a\0b",
            &long_name,
            &long_path,
        ] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
    }
}
