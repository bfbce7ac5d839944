//! Profiles: a server and a token saved under a name by `toka login`, so client
//! commands need neither `--server` nor `--token`.
//!
//! They live in `$XDG_CONFIG_HOME/toka/profiles.toml` (else `~/.config/toka/`), the
//! folder 0700 and the file 0600, since the file holds tokens. A command uses the
//! profile named by `--profile` or `TOKA_PROFILE`, else the one called `default` if
//! there is one; `--server`/`TOKA_SERVER` and `--token`/`--token-file`/`TOKA_TOKEN`
//! still win over what a profile says.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context as _, Result, anyhow};
use serde::{Deserialize, Serialize};

/// The profile used when none is named.
pub const DEFAULT: &str = "default";

/// One saved server and token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The server's base URL.
    pub server: String,
    /// The token.
    pub token: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
}

/// Where the profiles are kept.
pub fn path() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").ok_or_else(|| {
            anyhow!("neither XDG_CONFIG_HOME nor HOME is set: no place for profiles")
        })?)
        .join(".config"),
    };
    Ok(base.join("toka").join("profiles.toml"))
}

fn read() -> Result<File> {
    let path = path()?;
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text)
            .with_context(|| format!("{} is not a profiles file", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(File::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The profile `name`, or the default one when `name` is `None` (and there is one).
pub fn load(name: Option<&str>) -> Result<Option<Profile>> {
    let file = read()?;
    match name {
        Some(n) => file.profiles.get(n).cloned().map(Some).ok_or_else(|| {
            let known: Vec<&str> = file.profiles.keys().map(String::as_str).collect();
            anyhow!(
                "no profile {n:?} (known: {}); save one with `toka login --profile {n} --server URL --token-file FILE`",
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            )
        }),
        None => Ok(file.profiles.get(DEFAULT).cloned()),
    }
}

/// Saves `profile` as `name` (0600, in a 0700 folder); returns the file's path.
pub fn save(name: &str, profile: Profile) -> Result<PathBuf> {
    let path = path()?;
    let mut file = read()?;
    file.profiles.insert(name.to_string(), profile);
    let text = toml::to_string(&file)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        set_mode(dir, 0o700)?;
    }
    // Written to a new 0600 file, then renamed: never readable by others, even briefly.
    let tmp = path.with_extension("toml.tmp");
    toka_runtime::keys::write_private(&tmp, text.as_bytes())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

#[cfg(unix)]
fn set_mode(path: &std::path::Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot restrict {}", path.display()))
}

#[cfg(not(unix))]
fn set_mode(_path: &std::path::Path, _mode: u32) -> Result<()> {
    Ok(())
}
