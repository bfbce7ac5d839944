//! [`Toolbox`]: the tools the model is offered, which are exactly what the planner's
//! own token permits: the registered tools it may call (as `GET /v1/tools` and MCP's
//! `tools/list` show them) and the Toka operations it has the permission for, plus
//! `toka_finish`, which completes the task with the answer.
//!
//! Function names follow the Chat Completions rule (`[A-Za-z0-9_-]{1,64}`): a tool's
//! dots become underscores (`fs.read` → `fs_read`), made unique in name order.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use toka_auth::{Claims, permissions};
use toka_kernel::WorldState;

/// What a function of the toolbox does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A registered tool, by its Toka name.
    Tool(String),
    /// Complete the task with the answer.
    Finish,
    /// Record an observation.
    Observe,
    /// Spawn a helper agent under the planner.
    Spawn,
    /// Schedule a task for an agent in scope.
    Schedule,
    /// Wait for tasks to end; their outcomes.
    Wait,
}

/// One function offered to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The function name the model calls.
    pub function: String,
    /// What it does.
    pub target: Target,
    description: String,
    parameters: Value,
}

/// The functions offered, in a fixed order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Toolbox {
    entries: Vec<Entry>,
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
}

impl Toolbox {
    /// The toolbox of a token with `claims`, in `state`.
    pub fn for_claims(state: &WorldState, claims: &Claims) -> Self {
        let mut taken = BTreeSet::new();
        let mut entries = Vec::new();
        let mut push = |name: String, target: Target, description: String, parameters: Value| {
            let mut function: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .take(60)
                .collect();
            let mut n = 2;
            while !taken.insert(function.clone()) {
                function = format!(
                    "{}_{n}",
                    &name.chars().take(56).collect::<String>().replace('.', "_")
                );
                n += 1;
            }
            entries.push(Entry {
                function,
                target,
                description,
                parameters,
            });
        };
        push(
            "toka_finish".into(),
            Target::Finish,
            "Finish the task: your answer is recorded as its result.".into(),
            object(
                &["answer"],
                json!({"answer": {"type": "string", "maxLength": 60000}}),
            ),
        );
        if claims.allows(permissions::OBSERVATION_EMIT) {
            push(
                "toka_observe".into(),
                Target::Observe,
                "Record an observation (a note for the people overseeing you).".into(),
                object(
                    &["text"],
                    json!({"text": {"type": "string", "maxLength": 60000}}),
                ),
            );
        }
        if claims.allows(permissions::AGENT_SPAWN) {
            let mut properties =
                json!({"name": {"type": "string", "minLength": 1, "maxLength": 128}});
            let mut description =
                "Spawn a helper agent under you; answers with its id.".to_string();
            if claims.allows(permissions::TOKEN_ISSUE) {
                properties["as_planner"] = json!({"type": "boolean",
                    "description": "make it a planner the node runs on the tasks you schedule for it"});
                properties["budget_tokens"] = json!({"type": "integer", "minimum": 1,
                    "description": "its share of your model-token budget"});
                description.push_str(" With as_planner, it gets a token attenuated from yours (budget_tokens of what you have left) and works the tasks you schedule for it.");
            }
            push(
                "toka_spawn_agent".into(),
                Target::Spawn,
                description,
                object(&["name"], properties),
            );
        }
        if claims.allows(permissions::TASK_SCHEDULE) {
            push(
                "toka_schedule_task".into(),
                Target::Schedule,
                "Schedule a task for an agent in your scope (a helper you spawned); answers with its id.".into(),
                object(
                    &["agent", "description"],
                    json!({"agent": {"type": "string", "description": "the agent's id"},
                           "description": {"type": "string", "minLength": 1, "maxLength": 4096},
                           "waits_for": {"type": "array", "items": {"type": "string"}, "maxItems": 64,
                                         "description": "ids of tasks that must end before this one may start"}}),
                ),
            );
            push(
                "toka_wait_tasks".into(),
                Target::Wait,
                "Wait until the listed tasks (e.g. your helpers') have ended; answers with their outcomes.".into(),
                object(
                    &["tasks"],
                    json!({"tasks": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 64},
                           "max_secs": {"type": "integer", "minimum": 1, "maximum": 600}}),
                ),
            );
        }
        for tool in state.tools().tools() {
            if tool.retired || !claims.allows(&permissions::tool(&tool.spec.name)) {
                continue;
            }
            push(
                tool.spec.name.clone(),
                Target::Tool(tool.spec.name.clone()),
                tool.spec.description.clone(),
                tool.spec.input_schema.clone(),
            );
        }
        Self { entries }
    }

    /// The `tools` of a Chat Completions request.
    pub fn request_tools(&self) -> Value {
        Value::Array(
            self.entries
                .iter()
                .map(|e| {
                    json!({"type": "function", "function": {
                        "name": e.function, "description": e.description, "parameters": e.parameters,
                    }})
                })
                .collect(),
        )
    }

    /// The entry the model called `function`.
    pub fn resolve(&self, function: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.function == function)
    }

    /// The function names, for an error that lists them.
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.function.as_str()).collect()
    }
}
