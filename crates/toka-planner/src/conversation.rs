//! [`Conversation`]: one task's exchange with the model, rebuilt from the log. Each
//! recorded step holds the messages its request added and the model's answer, so the
//! conversation is those, in order; nothing is asked of the model to rebuild it.
//!
//! This is how a planner resumes after a crash: it reads the conversation, and if the
//! last answer asked for tool calls, it makes them (again: each with an idempotency
//! key, so a call already made is answered from the log, never made twice) and asks
//! for the next step.

use serde_json::{Value, json};
use toka_types::{EntityId, KernelEvent};

/// A tool call the model asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCallAsk {
    /// Its id, which the tool message answers.
    pub id: String,
    /// The function name.
    pub function: String,
    /// The arguments, as the model wrote them (JSON text, maybe malformed).
    pub arguments: String,
}

/// What the model answered in one step.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// Its text.
    pub content: Option<String>,
    /// The tool calls it asked for.
    pub tool_calls: Vec<ToolCallAsk>,
    /// The assistant message to put back into the conversation.
    pub message: Value,
}

impl Reply {
    /// The first choice of a Chat Completions response; `None` if it has none.
    pub fn of(response: &Value) -> Option<Self> {
        let message = &response["choices"][0]["message"];
        if !message.is_object() {
            return None;
        }
        let tool_calls: Vec<ToolCallAsk> = message["tool_calls"]
            .as_array()
            .map(|calls| {
                calls
                    .iter()
                    .map(|c| ToolCallAsk {
                        id: c["id"].as_str().unwrap_or_default().to_string(),
                        function: c["function"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        arguments: c["function"]["arguments"]
                            .as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| c["function"]["arguments"].to_string()),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let content = message["content"].as_str().map(str::to_string);
        // Only what a request message may carry goes back.
        let mut back = json!({"role": "assistant", "content": message["content"].clone()});
        if !tool_calls.is_empty() {
            back["tool_calls"] = message["tool_calls"].clone();
        }
        Some(Self {
            content,
            tool_calls,
            message: back,
        })
    }
}

impl Reply {
    /// One line for people: `calls f(args), g(args)` or `answers: text`, each piece
    /// cut to `max_chars`.
    pub fn describe(&self, max_chars: usize) -> String {
        let cut = |t: &str| one_line(t, max_chars);
        if self.tool_calls.is_empty() {
            return format!("answers: {}", cut(self.content.as_deref().unwrap_or("")));
        }
        let calls: Vec<String> = self
            .tool_calls
            .iter()
            .map(|c| format!("{}({})", c.function, cut(&c.arguments)))
            .collect();
        format!("calls {}", calls.join(", "))
    }
}

/// `text` on one line, cut to `max_chars` characters (with `…` when cut).
pub fn one_line(text: &str, max_chars: usize) -> String {
    let flat = text.replace('\n', " ");
    if flat.chars().count() > max_chars {
        format!("{}…", flat.chars().take(max_chars).collect::<String>())
    } else {
        flat
    }
}

/// A task's conversation so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Conversation {
    /// Every message, as the next request sends it.
    pub messages: Vec<Value>,
    /// How many steps are recorded.
    pub steps: u32,
    /// The last step's answer.
    pub last: Option<Reply>,
}

impl Conversation {
    /// The conversation of `task`, read from the recorded steps.
    pub async fn load(runtime: &toka_runtime::Runtime, task: EntityId) -> Result<Self, String> {
        let seqs = runtime.read(|s| s.models().steps_of(task).to_vec());
        let mut conversation = Self::default();
        for seq in seqs {
            let KernelEvent::ModelAnswered { step, .. } = runtime.event_at(seq).await? else {
                return Err(format!("seq {seq} is not a model step"));
            };
            conversation
                .push(step.appended, &step.response)
                .map_err(|e| format!("the step at seq {seq}: {e}"))?;
        }
        Ok(conversation)
    }

    /// Adds one recorded step: the messages it added, then its answer.
    pub fn push(&mut self, appended: Vec<Value>, response: &Value) -> Result<(), String> {
        let reply = Reply::of(response).ok_or("the response has no answer")?;
        self.messages.extend(appended);
        self.messages.push(reply.message.clone());
        self.steps += 1;
        self.last = Some(reply);
        Ok(())
    }
}
