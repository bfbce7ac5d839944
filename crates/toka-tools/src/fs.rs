//! `fs.read`, `fs.write`, `fs.list`: files inside the workspace (see [`crate::workspace`]
//! for the path rules).

use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use cap_fs_ext::{FollowSymlinks, OpenOptionsFollowExt};
use serde_json::{Value, json};
use toka_types::{ApprovalPolicy, RetryPolicy};

use crate::workspace::{Workspace, WorkspaceError, check_path, io_error};
use crate::{Tool, ToolContext, ToolError, ToolInfo};

/// Most entries `fs.list` returns.
pub const MAX_LIST_ENTRIES: usize = 1000;

/// What the three fs tools share.
#[derive(Debug)]
pub(crate) struct FsSettings {
    pub workspace: Workspace,
    pub max_read_bytes: u64,
    pub max_write_bytes: u64,
    pub timeout_ms: u64,
}

fn path_schema(description: &str) -> Value {
    json!({"type": "string", "maxLength": crate::workspace::MAX_PATH_BYTES, "description": description})
}

impl From<WorkspaceError> for ToolError {
    fn from(e: WorkspaceError) -> Self {
        ToolError(e.to_string())
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ToolError> + Send + 'static,
) -> Result<T, ToolError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ToolError::new(format!("the file operation stopped: {e}")))?
}

fn input_str<'a>(input: &'a Value, key: &str) -> Option<&'a str> {
    input.get(key).and_then(Value::as_str)
}

/// `fs.read`.
pub(crate) struct FsRead(pub Arc<FsSettings>);
/// `fs.write`.
pub(crate) struct FsWrite(pub Arc<FsSettings>);
/// `fs.list`.
pub(crate) struct FsList(pub Arc<FsSettings>);

#[async_trait]
impl Tool for FsRead {
    fn info(&self) -> ToolInfo {
        ToolInfo {
            name: "fs.read".into(),
            description: format!(
                "Read a file in the workspace (at most {} bytes from `offset`). Text comes back as `content`, other bytes as `content_base64`.",
                self.0.max_read_bytes
            ),
            input_schema: json!({
                "type": "object",
                "properties": {
                    "path": path_schema("the file, relative to the workspace"),
                    "offset": {"type": "integer", "minimum": 0, "description": "where to start, in bytes"}
                },
                "required": ["path"],
                "additionalProperties": false
            }),
            approval: ApprovalPolicy::Never,
            retry: RetryPolicy::Repeatable,
            timeout_ms: self.0.timeout_ms,
        }
    }

    async fn call(&self, input: Value, ctx: &ToolContext) -> Result<Value, ToolError> {
        let settings = Arc::clone(&self.0);
        let agent = ctx.agent;
        blocking(move || {
            let path = input_str(&input, "path").unwrap_or_default().to_string();
            let offset = input.get("offset").and_then(Value::as_u64).unwrap_or(0);
            let rel = check_path(&path)?;
            let dir = settings.workspace.dir_for(agent)?;
            let mut file = dir.open(rel).map_err(|e| io_error(&path, e))?;
            let meta = file.metadata().map_err(|e| io_error(&path, e))?;
            if !meta.is_file() {
                return Err(ToolError::new(format!("{path:?} is not a file")));
            }
            file.seek(SeekFrom::Start(offset)).map_err(|e| io_error(&path, e))?;
            let mut bytes = Vec::new();
            (&mut file)
                .take(settings.max_read_bytes)
                .read_to_end(&mut bytes)
                .map_err(|e| io_error(&path, e))?;
            let size = meta.len();
            let truncated = offset.saturating_add(bytes.len() as u64) < size;
            let read = bytes.len();
            let body = match String::from_utf8(bytes) {
                Ok(text) => json!({"content": text}),
                Err(e) => json!({"content_base64": base64::engine::general_purpose::STANDARD.encode(e.into_bytes())}),
            };
            let mut out = json!({"path": path, "size": size, "offset": offset, "read": read, "truncated": truncated});
            if let (Some(o), Value::Object(b)) = (out.as_object_mut(), body) {
                o.extend(b);
            }
            Ok(out)
        })
        .await
    }
}

#[async_trait]
impl Tool for FsWrite {
    fn info(&self) -> ToolInfo {
        ToolInfo {
            name: "fs.write".into(),
            description: format!(
                "Write text to a file in the workspace (at most {} bytes), replacing it or appending. Never writes through a symlink.",
                self.0.max_write_bytes
            ),
            input_schema: json!({
                "type": "object",
                "properties": {
                    "path": path_schema("the file, relative to the workspace"),
                    "content": {"type": "string", "description": "the text to write"},
                    "append": {"type": "boolean", "description": "append instead of replacing"},
                    "create_dirs": {"type": "boolean", "description": "create missing parent folders"}
                },
                "required": ["path", "content"],
                "additionalProperties": false
            }),
            approval: ApprovalPolicy::Required,
            retry: RetryPolicy::AtMostOnce,
            timeout_ms: self.0.timeout_ms,
        }
    }

    async fn call(&self, input: Value, ctx: &ToolContext) -> Result<Value, ToolError> {
        let settings = Arc::clone(&self.0);
        let agent = ctx.agent;
        blocking(move || {
            let path = input_str(&input, "path").unwrap_or_default().to_string();
            let content = input_str(&input, "content").unwrap_or_default();
            let append = input
                .get("append")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let create_dirs = input
                .get("create_dirs")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if content.len() as u64 > settings.max_write_bytes {
                return Err(ToolError::new(format!(
                    "content is {} bytes, limit {}",
                    content.len(),
                    settings.max_write_bytes
                )));
            }
            let rel = check_path(&path)?;
            if rel.file_name().is_none() {
                return Err(ToolError::new(format!("{path:?} names no file")));
            }
            let dir = settings.workspace.dir_for(agent)?;
            if create_dirs && let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty())
            {
                dir.create_dir_all(parent).map_err(|e| io_error(&path, e))?;
            }
            let mut options = cap_std::fs::OpenOptions::new();
            options.write(true).create(true);
            if append {
                options.append(true);
            } else {
                options.truncate(true);
            }
            options.follow(FollowSymlinks::No);
            let mut file = dir
                .open_with(rel, &options)
                .map_err(|e| io_error(&path, e))?;
            file.write_all(content.as_bytes())
                .map_err(|e| io_error(&path, e))?;
            file.sync_all().map_err(|e| io_error(&path, e))?;
            Ok(json!({"path": path, "written": content.len(), "appended": append}))
        })
        .await
    }
}

#[async_trait]
impl Tool for FsList {
    fn info(&self) -> ToolInfo {
        ToolInfo {
            name: "fs.list".into(),
            description: format!(
                "List a folder of the workspace (at most {MAX_LIST_ENTRIES} entries, by name)."
            ),
            input_schema: json!({
                "type": "object",
                "properties": {"path": path_schema("the folder, relative to the workspace (default: the workspace)")},
                "additionalProperties": false
            }),
            approval: ApprovalPolicy::Never,
            retry: RetryPolicy::Repeatable,
            timeout_ms: self.0.timeout_ms,
        }
    }

    async fn call(&self, input: Value, ctx: &ToolContext) -> Result<Value, ToolError> {
        let settings = Arc::clone(&self.0);
        let agent = ctx.agent;
        blocking(move || {
            let path = input_str(&input, "path").unwrap_or("").to_string();
            let rel = check_path(&path)?;
            let dir = settings.workspace.dir_for(agent)?;
            let listed = if rel.as_os_str().is_empty() || rel == std::path::Path::new(".") {
                dir.entries()
            } else {
                dir.read_dir(rel)
            }
            .map_err(|e| io_error(&path, e))?;
            let mut entries = Vec::new();
            let mut total = 0usize;
            for entry in listed {
                let entry = entry.map_err(|e| io_error(&path, e))?;
                total += 1;
                if entries.len() >= MAX_LIST_ENTRIES * 4 {
                    continue; // count the rest, keep memory bounded
                }
                let kind = match entry.file_type() {
                    Ok(t) if t.is_symlink() => "symlink",
                    Ok(t) if t.is_dir() => "dir",
                    Ok(t) if t.is_file() => "file",
                    _ => "other",
                };
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                let name = entry.file_name().to_string_lossy().into_owned();
                entries.push((name, kind, size));
            }
            entries.sort();
            entries.truncate(MAX_LIST_ENTRIES);
            let entries: Vec<Value> = entries
                .into_iter()
                .map(|(name, kind, size)| json!({"name": name, "kind": kind, "size": size}))
                .collect();
            Ok(json!({"path": path, "entries": entries, "total": total, "truncated": total > MAX_LIST_ENTRIES}))
        })
        .await
    }
}
