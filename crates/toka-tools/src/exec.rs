//! `exec.<name>`: the commands declared in `[tools.exec.<name>]`, and nothing else.
//!
//! Each is a fixed program (an absolute path) with an argument template. A template
//! entry is one argument; `{param}` in it is replaced by the input's value for that
//! parameter, so a value is never split, globbed or interpreted: there is no shell.
//! Values may not start with `-` (an input cannot add an option) unless the command
//! allows it for that parameter. The environment is cleared (only the command's fixed
//! `env` is set), stdin is empty, the working folder is the workspace, the output is
//! capped, and the process is killed when the call times out.

use std::collections::BTreeMap;
use std::process::Stdio;

use async_trait::async_trait;
use serde_json::{Value, json};
use toka_types::{ApprovalPolicy, RetryPolicy};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::config::ExecCommand;
use crate::workspace::Workspace;
use crate::{Tool, ToolContext, ToolError, ToolInfo};

/// Largest output cap a command may configure, per stream.
pub const MAX_OUTPUT_CAP: usize = 256 * 1024;
const SCALAR_TYPES: &[&str] = &["string", "integer", "number", "boolean"];

/// One piece of an argument template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Param(String),
}

/// Splits `{name}` placeholders out of a template entry (`{{` and `}}` are braces).
fn parse_template(arg: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = arg.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                text.push('}');
            }
            '{' => {
                let name: String = chars.by_ref().take_while(|c| *c != '}').collect();
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!("bad placeholder {{{name}}} in argument {arg:?}"));
                }
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Param(name));
            }
            '}' => return Err(format!("unmatched }} in argument {arg:?}")),
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// Checks one `[tools.exec.<name>]`.
pub(crate) fn check_command(name: &str, cmd: &ExecCommand) -> Result<(), String> {
    toka_types::check_tool_name(&format!("exec.{name}")).map_err(|e| e.to_string())?;
    if !cmd.program.is_absolute() {
        return Err(format!(
            "program {:?} must be an absolute path (there is no PATH lookup)",
            cmd.program
        ));
    }
    for arg in &cmd.args {
        for piece in parse_template(arg)? {
            if let Piece::Param(p) = piece
                && !cmd.params.contains_key(&p)
            {
                return Err(format!(
                    "argument {arg:?} uses {{{p}}}, which is not in params"
                ));
            }
        }
    }
    for (param, schema) in &cmd.params {
        let ty = schema.get("type").and_then(|t| t.as_str()).unwrap_or("");
        if !SCALAR_TYPES.contains(&ty) {
            return Err(format!(
                "params.{param} needs type = one of {}",
                SCALAR_TYPES.join(", ")
            ));
        }
    }
    for p in &cmd.allow_leading_dash {
        if !cmd.params.contains_key(p) {
            return Err(format!(
                "allow_leading_dash names {p:?}, which is not in params"
            ));
        }
    }
    if !(1..=toka_types::limits::MAX_TOOL_TIMEOUT_MS).contains(&cmd.timeout_ms) {
        return Err("timeout_ms out of range".into());
    }
    if !(1..=MAX_OUTPUT_CAP).contains(&cmd.max_output_bytes) {
        return Err(format!("max_output_bytes must be 1 to {MAX_OUTPUT_CAP}"));
    }
    Ok(())
}

/// One declared command.
pub(crate) struct ExecTool {
    name: String,
    cmd: ExecCommand,
    template: Vec<Vec<Piece>>,
    schema: Value,
    workspace: Workspace,
}

impl ExecTool {
    pub(crate) fn new(name: &str, cmd: &ExecCommand, workspace: Workspace) -> Result<Self, String> {
        check_command(name, cmd)?;
        let template = cmd
            .args
            .iter()
            .map(|a| parse_template(a))
            .collect::<Result<_, _>>()?;
        let properties: BTreeMap<&String, Value> = cmd
            .params
            .iter()
            .map(|(k, v)| Ok((k, serde_json::to_value(v).map_err(|e| e.to_string())?)))
            .collect::<Result<_, String>>()?;
        let schema = json!({
            "type": "object",
            "properties": properties,
            "required": cmd.params.keys().collect::<Vec<_>>(),
            "additionalProperties": false
        });
        Ok(Self {
            name: format!("exec.{name}"),
            cmd: cmd.clone(),
            template,
            schema,
            workspace,
        })
    }

    /// The argument vector for `input`, or why not.
    fn argv(&self, input: &Value) -> Result<Vec<String>, ToolError> {
        let value_of = |param: &str| -> Result<String, ToolError> {
            let v = input
                .get(param)
                .ok_or_else(|| ToolError::new(format!("missing parameter {param:?}")))?;
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(ToolError::new(format!(
                        "parameter {param:?} must be a scalar"
                    )));
                }
            };
            if text.contains('\0') {
                return Err(ToolError::new(format!(
                    "parameter {param:?} contains a NUL byte"
                )));
            }
            if text.starts_with('-') && !self.cmd.allow_leading_dash.iter().any(|p| p == param) {
                return Err(ToolError::new(format!(
                    "parameter {param:?} starts with '-', which could pass an option to {}; refused",
                    self.cmd.program.display()
                )));
            }
            Ok(text)
        };
        self.template
            .iter()
            .map(|pieces| {
                pieces.iter().try_fold(String::new(), |mut arg, piece| {
                    match piece {
                        Piece::Text(t) => arg.push_str(t),
                        Piece::Param(p) => arg.push_str(&value_of(p)?),
                    }
                    Ok(arg)
                })
            })
            .collect()
    }
}

/// Reads `stream` to its end, keeping the first `cap` bytes.
async fn capped(mut stream: impl AsyncRead + Unpin, cap: usize) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    let mut truncated = false;
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                if n > room {
                    truncated = true;
                }
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    (kept, truncated)
}

#[async_trait]
impl Tool for ExecTool {
    fn info(&self) -> ToolInfo {
        let description = if self.cmd.description.is_empty() {
            format!(
                "Run {} {}",
                self.cmd.program.display(),
                self.cmd.args.join(" ")
            )
        } else {
            self.cmd.description.clone()
        };
        ToolInfo {
            name: self.name.clone(),
            description,
            input_schema: self.schema.clone(),
            approval: ApprovalPolicy::Required,
            retry: if self.cmd.repeatable {
                RetryPolicy::Repeatable
            } else {
                RetryPolicy::AtMostOnce
            },
            timeout_ms: self.cmd.timeout_ms,
        }
    }

    async fn call(&self, input: Value, ctx: &ToolContext) -> Result<Value, ToolError> {
        let args = self.argv(&input)?;
        self.workspace.dir_for(ctx.agent)?;
        let cwd = self.workspace.path_for(ctx.agent);
        let mut child = tokio::process::Command::new(&self.cmd.program)
            .args(&args)
            .env_clear()
            .envs(&self.cmd.env)
            .current_dir(&cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                ToolError::new(format!("cannot start {}: {e}", self.cmd.program.display()))
            })?;
        let cap = self.cmd.max_output_bytes;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let ((out, out_cut), (err, err_cut)) = tokio::join!(
            async move {
                match stdout {
                    Some(s) => capped(s, cap).await,
                    None => (Vec::new(), false),
                }
            },
            async move {
                match stderr {
                    Some(s) => capped(s, cap).await,
                    None => (Vec::new(), false),
                }
            }
        );
        let status = child.wait().await.map_err(|e| {
            ToolError::new(format!(
                "waiting for {} failed: {e}",
                self.cmd.program.display()
            ))
        })?;
        #[cfg(unix)]
        let signal = std::os::unix::process::ExitStatusExt::signal(&status);
        #[cfg(not(unix))]
        let signal: Option<i32> = None;
        Ok(json!({
            "program": self.cmd.program.display().to_string(),
            "args": args,
            "exit_code": status.code(),
            "signal": signal,
            "stdout": String::from_utf8_lossy(&out),
            "stderr": String::from_utf8_lossy(&err),
            "stdout_truncated": out_cut,
            "stderr_truncated": err_cut,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_keep_values_whole() {
        assert_eq!(
            parse_template("--file={path}.txt").unwrap(),
            vec![
                Piece::Text("--file=".into()),
                Piece::Param("path".into()),
                Piece::Text(".txt".into())
            ]
        );
        assert_eq!(
            parse_template("{{x}}").unwrap(),
            vec![Piece::Text("{x}".into())]
        );
        assert!(parse_template("{a b}").is_err());
        assert!(parse_template("x}").is_err());
    }
}
