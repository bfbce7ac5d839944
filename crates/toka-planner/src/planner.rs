//! [`Planner`]: the hosted agent. For each task of its queue (and, after a restart,
//! each task it had claimed), it asks the model for a step, **records the exchange
//! before acting on it** (`RecordModelStep`), then does what the answer asks: tool
//! calls through the kernel with its own token, or `toka_finish` with the answer.
//!
//! One loop serves a fresh task and a resumed one: the conversation is always read
//! back from the log, and the tool calls of the last recorded answer are made with
//! idempotency keys derived from (task, step, call id), so after a crash a call that
//! was made is answered from the log and never made twice.
//!
//! The model gets no more than the token allows: a malformed call (bad JSON, unknown
//! function) and a refusal by the kernel (permission, scope, schema) go back to it as
//! the tool's answer, and the loop is bounded by `max_steps`.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use toka_kernel::KernelError;
use toka_runtime::host::{AbortOnDrop, Agent, AgentContext, AgentError};
use toka_runtime::{Refused, SubmitError};
use toka_types::{EntityId, KernelEvent, Message, ModelStep, Operation, TaskOutcome, TaskState};

use crate::config::PlannerConfig;
use crate::conversation::{Conversation, ToolCallAsk};
use crate::provider::ChatClient;
use crate::toolbox::{Target, Toolbox};

/// Longest tool answer put back into the conversation, in bytes.
const MAX_TOOL_MESSAGE_BYTES: usize = 64 * 1024;
/// Longest wait for one tool call in one go (approval included); then it waits again.
const CALL_WAIT: Duration = Duration::from_secs(120);
/// The lease the planner holds on a task it works: if it dies, the task is queued
/// again this long after its last heartbeat.
pub const LEASE_SECS: u32 = 60;
/// How often it renews the lease.
const HEARTBEAT: Duration = Duration::from_secs(20);

/// The planner agent.
#[derive(Debug, Clone)]
pub struct Planner {
    config: PlannerConfig,
    client: ChatClient,
}

/// What one tool call of the model came to.
enum Acted {
    /// The answer for the tool message.
    Answer(String),
    /// `toka_finish`: the task's answer.
    Finish(String),
}

impl Planner {
    /// A planner with `config`.
    pub fn new(config: PlannerConfig) -> Result<Self, String> {
        let client = ChatClient::new(&config)?;
        Ok(Self { config, client })
    }

    /// Works `task` until it is done or failed (resuming what the log holds), holding
    /// a lease on it while it does.
    async fn work(
        &self,
        ctx: &AgentContext,
        task: EntityId,
        description: &str,
    ) -> Result<(), AgentError> {
        ctx.heartbeat(task, LEASE_SECS).await?;
        let _lease = heartbeats(ctx, task);
        self.steps(ctx, task, description).await
    }

    /// The step loop of [`Planner::work`].
    async fn steps(
        &self,
        ctx: &AgentContext,
        task: EntityId,
        description: &str,
    ) -> Result<(), AgentError> {
        // Read from the log once, then kept up to date with what this loop records
        // (read again only if another run of this planner recorded a step).
        let mut conversation = Conversation::load(ctx.runtime(), task)
            .await
            .map_err(AgentError)?;
        loop {
            if !self.still_mine(ctx, task) {
                return Ok(()); // completed, or cancelled (terminated) meanwhile
            }
            let mut appended = Vec::new();
            if conversation.steps == 0 {
                appended.push(json!({"role": "system", "content": self.config.system_prompt}));
                appended.push(json!({"role": "user", "content": description}));
            } else if let Some(last) = &conversation.last {
                if last.tool_calls.is_empty() {
                    // An answer without tool calls is the final answer.
                    let answer = last.content.clone().unwrap_or_default();
                    return self.finish(ctx, task, Ok(answer)).await;
                }
                let toolbox = self.toolbox(ctx)?;
                for call in &last.tool_calls {
                    match self
                        .act(ctx, &toolbox, task, conversation.steps, call)
                        .await?
                    {
                        Acted::Finish(answer) => {
                            return self.finish(ctx, task, Ok(answer)).await;
                        }
                        Acted::Answer(text) => appended.push(json!({
                            "role": "tool", "tool_call_id": call.id, "content": bounded(text),
                        })),
                    }
                }
            }
            if conversation.steps >= self.config.max_steps {
                let why = format!(
                    "the planner reached max_steps ({}) without finishing",
                    self.config.max_steps
                );
                return self.finish(ctx, task, Err(why)).await;
            }
            // Never pay for an answer the kernel would refuse to record.
            if let Some((0, jti)) = self.left(ctx, toka_types::BudgetKind::ModelTokens)? {
                let why = format!("budget exhausted: model_tokens of token {jti} is spent");
                return self.finish(ctx, task, Err(why)).await;
            }
            let toolbox = self.toolbox(ctx)?;
            let mut messages = conversation.messages.clone();
            messages.extend(appended.iter().cloned());
            let request = json!({
                "model": self.config.model,
                "messages": messages,
                "tools": toolbox.request_tools(),
                "temperature": self.config.temperature,
            });
            let answer = match self.client.complete(&request).await {
                Ok(a) => a,
                Err(e) => return self.finish(ctx, task, Err(e.to_string())).await,
            };
            let step = ModelStep {
                agent: ctx.id(),
                task,
                step: conversation.steps + 1,
                model: self.config.model.clone(),
                request_hash: answer.request_hash,
                appended,
                response: answer.response,
            };
            let (added, response) = (step.appended.clone(), step.response.clone());
            if let Err(e) = step.validate() {
                return self
                    .finish(
                        ctx,
                        task,
                        Err(format!("the model's answer cannot be recorded: {e}")),
                    )
                    .await;
            }
            let recorded = ctx
                .runtime()
                .submit(Message::new(
                    ctx.id(),
                    ctx.token(),
                    Operation::RecordModelStep(Box::new(step)),
                ))
                .await;
            match recorded {
                Ok(_) => conversation.push(added, &response).map_err(AgentError)?,
                // Another run of this planner recorded the step first: read it back.
                Err(Refused {
                    error: SubmitError::Rejected(KernelError::ModelStepOutOfOrder { .. }),
                    ..
                }) => {
                    conversation = Conversation::load(ctx.runtime(), task)
                        .await
                        .map_err(AgentError)?;
                }
                Err(Refused {
                    error: SubmitError::Rejected(e),
                    ..
                }) => {
                    let why = format!("the kernel refused the model step ({}): {e}", e.code());
                    return self.finish(ctx, task, Err(why)).await;
                }
                Err(r) => return Err(r.into()),
            }
        }
    }

    fn still_mine(&self, ctx: &AgentContext, task: EntityId) -> bool {
        ctx.runtime().read(|s| {
            s.task(task)
                .is_some_and(|t| t.agent == ctx.id() && t.state == TaskState::Claimed)
        })
    }

    /// Reads the state with the planner's verified claims.
    fn with_claims<T>(
        &self,
        ctx: &AgentContext,
        read: impl FnOnce(&toka_kernel::WorldState, &toka_auth::Claims) -> T,
    ) -> Result<T, AgentError> {
        let runtime = ctx.runtime();
        let keys = runtime.keys();
        let now = runtime.now_secs();
        runtime.read(|state| {
            let claims = toka_auth::validate(&ctx.token(), now, state, &keys)?;
            Ok(read(state, &claims))
        })
    }

    fn toolbox(&self, ctx: &AgentContext) -> Result<Toolbox, AgentError> {
        self.with_claims(ctx, Toolbox::for_claims)
    }

    /// What the planner's token has left of `kind` (`None`: no limit).
    fn left(
        &self,
        ctx: &AgentContext,
        kind: toka_types::BudgetKind,
    ) -> Result<Option<(u64, String)>, AgentError> {
        self.with_claims(ctx, |state, claims| {
            toka_kernel::remaining(state, claims, kind)
        })
    }

    /// Completes `task` with the answer (`Ok`) or why it failed (`Err`), cut to what a
    /// task result holds.
    async fn finish(
        &self,
        ctx: &AgentContext,
        task: EntityId,
        outcome: Result<String, String>,
    ) -> Result<(), AgentError> {
        if !self.still_mine(ctx, task) {
            return Ok(());
        }
        let cut = |t: String| -> String {
            t.chars()
                .take(toka_types::limits::MAX_TASK_RESULT_CHARS)
                .collect()
        };
        let outcome = match outcome {
            Ok(answer) => TaskOutcome::success(cut(answer))?,
            Err(why) if why.trim().is_empty() => TaskOutcome::failure("the planner failed")?,
            Err(why) => TaskOutcome::failure(cut(why))?,
        };
        ctx.complete(task, outcome).await
    }

    /// Does one tool call of the model.
    async fn act(
        &self,
        ctx: &AgentContext,
        toolbox: &Toolbox,
        task: EntityId,
        step: u32,
        call: &ToolCallAsk,
    ) -> Result<Acted, AgentError> {
        let Some(entry) = toolbox.resolve(&call.function) else {
            return Ok(Acted::Answer(format!(
                "error: there is no function {:?}; the functions are {}",
                call.function,
                toolbox.names().join(", ")
            )));
        };
        let args: Value = match serde_json::from_str(&call.arguments) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                return Ok(Acted::Answer(
                    "error: the arguments must be a JSON object".into(),
                ));
            }
            Err(e) => {
                return Ok(Acted::Answer(format!(
                    "error: the arguments are not valid JSON ({e})"
                )));
            }
        };
        let text = |key: &str| args[key].as_str().unwrap_or_default().to_string();
        let me = ctx.id();
        let operation = match &entry.target {
            Target::Finish => return Ok(Acted::Finish(text("answer"))),
            Target::Tool(name) => Operation::CallTool {
                agent: me,
                tool: name.clone(),
                input: args.clone(),
            },
            Target::Observe => match toka_types::Observation::new(text("text").into_bytes()) {
                Ok(data) => Operation::EmitObservation { agent: me, data },
                Err(e) => return Ok(Acted::Answer(format!("error: {e}"))),
            },
            Target::Spawn => match toka_types::AgentSpec::new(text("name")) {
                Ok(spec) => Operation::SpawnSubAgent { parent: me, spec },
                Err(e) => return Ok(Acted::Answer(format!("error: {e}"))),
            },
            Target::Schedule => {
                let Ok(agent) = text("agent").parse::<EntityId>() else {
                    return Ok(Acted::Answer(
                        "error: agent must be an agent id (a UUID)".into(),
                    ));
                };
                let Some(waits) = ids(&args["waits_for"]) else {
                    return Ok(Acted::Answer(
                        "error: waits_for must be task ids (UUIDs)".into(),
                    ));
                };
                match toka_types::TaskSpec::new(text("description"))
                    .and_then(|t| t.waiting_for(waits))
                {
                    Ok(task) => Operation::ScheduleAgentTask { agent, task },
                    Err(e) => return Ok(Acted::Answer(format!("error: {e}"))),
                }
            }
            Target::Wait => {
                let Some(tasks) = ids(&args["tasks"]).filter(|t| !t.is_empty()) else {
                    return Ok(Acted::Answer(
                        "error: tasks must be task ids (UUIDs)".into(),
                    ));
                };
                let secs = args["max_secs"].as_u64().unwrap_or(300).clamp(1, 600);
                return Ok(Acted::Answer(
                    wait_tasks(ctx, &tasks, Duration::from_secs(secs)).await,
                ));
            }
        };
        // The same call of the same step always carries the same key: made once.
        let key = blake3::hash(format!("{task}/{step}/{}", call.id).as_bytes()).to_hex();
        let key = format!("planner-{}", &key[..32]);
        let events = match submit_keyed(ctx, operation, &key).await? {
            Ok(events) => events,
            Err(refusal) => return Ok(Acted::Answer(refusal)),
        };
        Ok(Acted::Answer(match events.first() {
            Some(KernelEvent::ToolCalled(c)) => self.result_of(ctx, c.call).await?,
            Some(KernelEvent::AgentSpawned { agent, .. }) if args["as_planner"] == true => {
                let budget = args["budget_tokens"].as_u64();
                match self.make_planner(ctx, *agent, budget, &key).await? {
                    Ok(jti) => json!({"agent": agent, "planner": true, "token": jti,
                                      "budget_tokens": budget})
                    .to_string(),
                    Err(refusal) => {
                        json!({"agent": agent, "planner": false, "why": refusal}).to_string()
                    }
                }
            }
            Some(KernelEvent::AgentSpawned { agent, .. }) => json!({"agent": agent}).to_string(),
            Some(KernelEvent::TaskScheduled { task, .. }) => json!({"task": task}).to_string(),
            Some(KernelEvent::ObservationEmitted { .. }) => "recorded".into(),
            _ => "done".into(),
        }))
    }

    /// Makes the helper `agent` a planner the node runs: a token attenuated from this
    /// planner's own (the same permissions, `budget` model tokens of what is left) and
    /// its designation. `Ok(Err)`: the kernel's refusal, for the model.
    async fn make_planner(
        &self,
        ctx: &AgentContext,
        agent: EntityId,
        budget: Option<u64>,
        key: &str,
    ) -> Result<Result<String, String>, AgentError> {
        let permissions = self.with_claims(ctx, |_, c| {
            c.permissions.iter().map(|p| p.to_string()).collect()
        })?;
        let grant = toka_types::TokenGrant {
            sub: agent,
            permissions,
            scope: None,
            ttl_secs: None,
            budget: toka_types::Budget {
                model_tokens: budget,
                ..toka_types::Budget::default()
            },
        };
        let issued =
            match submit_keyed(ctx, Operation::IssueToken(grant), &format!("{key}/issue")).await? {
                Ok(events) => events,
                Err(refusal) => return Ok(Err(refusal)),
            };
        let Some(KernelEvent::TokenIssued(token)) = issued.first() else {
            return Ok(Err("the issuance produced no token".into()));
        };
        let designate = Operation::DesignatePlanner {
            agent,
            jti: token.jti.clone(),
            model: Some(self.config.model.clone()),
        };
        Ok(submit_keyed(ctx, designate, &format!("{key}/designate"))
            .await?
            .map(|_| token.jti.clone()))
    }

    /// The result of tool call `call`, once it ended.
    async fn result_of(&self, ctx: &AgentContext, call: EntityId) -> Result<String, AgentError> {
        loop {
            let record = ctx.runtime().wait_call(call, CALL_WAIT).await;
            if record.as_ref().is_some_and(|r| !r.status.is_open()) {
                break;
            }
            if !ctx.runtime().read(|s| s.tools().call(call).is_some()) {
                return Err(AgentError(format!("call {call} is not in the state")));
            }
        }
        let view = ctx
            .runtime()
            .call_view(call)
            .await
            .map_err(AgentError)?
            .ok_or_else(|| AgentError(format!("call {call} is not in the state")))?;
        Ok(match view.result {
            Some(toka_types::ToolResult::Ok { output }) => output.to_string(),
            Some(toka_types::ToolResult::Error { error }) => format!("error: {error}"),
            None => format!(
                "the call ended {}: {}",
                view.record.status.as_str(),
                view.record.reason.unwrap_or_default()
            ),
        })
    }
}

/// Submits `operation` as the planner with idempotency `key`: the committed events,
/// or (inside `Ok`) the kernel's refusal as text for the model; node trouble (busy,
/// storage) is an error (the agent runs again and resumes from the log).
async fn submit_keyed(
    ctx: &AgentContext,
    operation: Operation,
    key: &str,
) -> Result<Result<Vec<KernelEvent>, String>, AgentError> {
    let mut message = Message::new(ctx.id(), ctx.token(), operation);
    message.idempotency_key = Some(
        key.chars()
            .take(toka_types::limits::MAX_IDEMPOTENCY_KEY_BYTES)
            .collect(),
    );
    match ctx.runtime().submit(message).await {
        Ok(committed) => Ok(Ok(committed.events)),
        Err(Refused {
            error: SubmitError::Rejected(e),
            ..
        }) => Ok(Err(format!("refused by Toka ({}): {e}", e.code()))),
        Err(r) => Err(r.into()),
    }
}

/// Task ids from a JSON array (absent: none); `None` if one is not an id.
fn ids(v: &Value) -> Option<Vec<EntityId>> {
    match v {
        Value::Null => Some(Vec::new()),
        Value::Array(items) => items.iter().map(|i| i.as_str()?.parse().ok()).collect(),
        _ => None,
    }
}

/// Waits (up to `limit`) until `tasks` ended; their states and outcomes, as JSON.
/// Only tasks in the planner's scope are shown (others as unknown).
async fn wait_tasks(ctx: &AgentContext, tasks: &[EntityId], limit: Duration) -> String {
    let runtime = ctx.runtime();
    let me = ctx.id();
    let deadline = tokio::time::Instant::now() + limit;
    let mut head = runtime.watch_head();
    loop {
        let open = runtime.read(|s| {
            tasks
                .iter()
                .any(|t| s.task(*t).is_some_and(|r| r.state.is_open()))
        });
        if !open
            || tokio::time::timeout_at(deadline, head.changed())
                .await
                .is_err()
        {
            break;
        }
    }
    let report: Vec<Value> = runtime.read(|s| {
        tasks
            .iter()
            .map(|t| match s.task(*t).filter(|r| s.is_within(r.agent, me)) {
                Some(r) => json!({"task": t, "state": r.state.as_str(), "outcome": r.outcome}),
                None => json!({"task": t, "state": "unknown (not in your scope)"}),
            })
            .collect()
    });
    Value::Array(report).to_string()
}

/// Renews the lease on `task` every [`HEARTBEAT`] until the returned guard is dropped.
fn heartbeats(ctx: &AgentContext, task: EntityId) -> AbortOnDrop<()> {
    let (runtime, agent, token) = (ctx.runtime().clone(), ctx.id(), ctx.token().to_string());
    AbortOnDrop(tokio::spawn(async move {
        loop {
            tokio::time::sleep(HEARTBEAT).await;
            let beat = Operation::Heartbeat {
                agent,
                task,
                lease_secs: LEASE_SECS,
            };
            if let Err(r) = runtime
                .submit(Message::new(agent, token.clone(), beat))
                .await
            {
                tracing::debug!(%task, error = %r.error, "heartbeat refused; the task ended or moved");
                return;
            }
        }
    }))
}

/// `text`, cut to [`MAX_TOOL_MESSAGE_BYTES`] on a character boundary.
fn bounded(text: String) -> String {
    if text.len() <= MAX_TOOL_MESSAGE_BYTES {
        return text;
    }
    let mut end = MAX_TOOL_MESSAGE_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… (cut at {MAX_TOOL_MESSAGE_BYTES} bytes)", &text[..end])
}

#[async_trait]
impl Agent for Planner {
    async fn run(&self, ctx: &mut AgentContext) -> Result<(), AgentError> {
        // First what a previous run left claimed, then the queue.
        let me = ctx.id();
        let claimed: Vec<(EntityId, String)> = ctx.runtime().read(|s| {
            s.tasks_of(me)
                .into_iter()
                .filter(|t| t.state == TaskState::Claimed)
                .map(|t| (t.id, brief(&t.spec)))
                .collect()
        });
        for (task, description) in claimed {
            tracing::info!(%task, "resuming a task from its recorded conversation");
            self.work(ctx, task, &description).await?;
        }
        while let Some(task) = ctx.next_task().await {
            ctx.claim(task.id).await?;
            let what = ctx
                .runtime()
                .read(|s| s.task(task.id).map(|t| brief(&t.spec)))
                .unwrap_or(task.description);
            self.work(ctx, task.id, &what).await?;
        }
        Ok(())
    }
}

/// What the model is told the task asks: its description, and its structured input
/// when it has one.
fn brief(spec: &toka_types::TaskSpec) -> String {
    match spec.input_text() {
        None => spec.description().to_string(),
        Some(input) => format!("{}\n\nInput (JSON):\n{input}", spec.description()),
    }
}
