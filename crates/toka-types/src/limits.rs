//! Every bound the core enforces on outside input, in one place.
//!
//! Text limits count characters (Unicode scalar values, as JSON Schema's `maxLength`
//! does, so the API's OpenAPI document states them exactly); a text of N characters
//! takes at most 4·N bytes. Byte limits are for bytes (observations, payloads, tokens).
//!
//! Changing one of these changes what the kernel accepts, so it changes which logs
//! replay: treat them as part of the log format.

/// Longest task description, in characters.
pub const MAX_TASK_DESCRIPTION_CHARS: usize = 4 * 1024;
/// Longest agent name, in characters.
pub const MAX_AGENT_NAME_CHARS: usize = 256;
/// Largest observation payload, in bytes.
pub const MAX_OBSERVATION_BYTES: usize = 1024 * 1024;
/// Largest capability token, in bytes.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Longest task result or failure reason, in characters.
pub const MAX_TASK_RESULT_CHARS: usize = 64 * 1024;
/// Most tasks an agent may have queued (not yet claimed) at once.
pub const MAX_QUEUED_TASKS_PER_AGENT: usize = 10_000;
/// Longest extension family name, in characters (ASCII).
pub const MAX_EXTENSION_FAMILY_BYTES: usize = 64;
/// Largest extension payload, in bytes.
pub const MAX_EXTENSION_PAYLOAD_BYTES: usize = 64 * 1024;
/// Longest idempotency key, in bytes.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 128;
/// How many idempotency keys the state remembers: the newest ones, across all
/// origins. A retry is recognised as long as fewer keyed messages than this were
/// committed after the original; older keys are forgotten in log order, so replay
/// forgets the same ones.
pub const MAX_IDEMPOTENCY_KEYS: usize = 100_000;
/// Longest token id (`jti`) accepted in a revocation, in characters.
pub const MAX_JTI_BYTES: usize = 128;

// A task result may quote its description; an observation may carry a result.
const _: () = assert!(MAX_TASK_RESULT_CHARS >= MAX_TASK_DESCRIPTION_CHARS);
const _: () = assert!(MAX_OBSERVATION_BYTES >= 4 * MAX_TASK_RESULT_CHARS);
const _: () = assert!(MAX_EXTENSION_PAYLOAD_BYTES <= MAX_OBSERVATION_BYTES);

/// Longest permission name, in characters (ASCII letters, digits and `:._*/-`).
pub const MAX_PERMISSION_BYTES: usize = 64;
/// Most permissions one token the kernel issues may carry: with names of at most
/// [`MAX_PERMISSION_BYTES`] and a full lineage, the signed token stays well under
/// [`MAX_TOKEN_BYTES`] (about 7 KiB at worst).
pub const MAX_GRANT_PERMISSIONS: usize = 64;
/// Most permissions one capability token may carry.
pub const MAX_PERMISSIONS: usize = 100;
/// Longest lifetime (`exp - iat`) of a capability token, in seconds: 24 hours.
pub const MAX_TOKEN_LIFETIME_SECS: u64 = 24 * 60 * 60;
/// The longest a chain of tokens may last when the operator sets nothing: from the
/// issuance of its root token, renewals give tokens at most this far (30 days).
pub const DEFAULT_CHAIN_LIFETIME_SECS: u64 = 30 * 24 * 60 * 60;
/// The longest chain lifetime an operator may configure (one year).
pub const MAX_CHAIN_LIFETIME_SECS: u64 = 366 * 24 * 60 * 60;
/// Largest structured input of a task, in bytes of compact JSON (1 MiB).
pub const MAX_TASK_INPUT_BYTES: usize = 1024 * 1024;
/// Largest structured output of a task, in bytes of compact JSON (1 MiB).
pub const MAX_TASK_OUTPUT_BYTES: usize = 1024 * 1024;
/// Longest reason for cancelling or requeueing a task, in characters.
pub const MAX_TASK_REASON_CHARS: usize = 1024;
/// Deepest chain of attenuations (root token, child, grandchild, …) a token may have.
pub const MAX_ATTENUATION_DEPTH: usize = 16;

/// Longest tool name, in characters: `tool:<name>` must fit a permission name.
pub const MAX_TOOL_NAME_CHARS: usize = MAX_PERMISSION_BYTES - "tool:".len();
/// Longest tool description, in characters.
pub const MAX_TOOL_DESCRIPTION_CHARS: usize = 4 * 1024;
/// Largest JSON Schema of a tool's input, in bytes of compact JSON.
pub const MAX_TOOL_SCHEMA_BYTES: usize = 64 * 1024;
/// Largest tool input, in bytes of compact JSON.
pub const MAX_TOOL_INPUT_BYTES: usize = 1024 * 1024;
/// Largest tool output the log records, in bytes of compact JSON; a larger one is
/// recorded as a failure saying so.
pub const MAX_TOOL_OUTPUT_BYTES: usize = 1024 * 1024;
/// Longest tool error, in characters (longer ones are cut).
pub const MAX_TOOL_ERROR_CHARS: usize = 4 * 1024;
/// Longest time a tool may run, in milliseconds: 10 minutes.
pub const MAX_TOOL_TIMEOUT_MS: u64 = 10 * 60 * 1000;
/// Longest time a call may wait for approval, in seconds: 7 days.
pub const MAX_APPROVAL_TTL_SECS: u64 = 7 * 24 * 60 * 60;
/// Longest reason given with an approval or a denial, in characters.
pub const MAX_APPROVAL_REASON_CHARS: usize = 1024;
/// Most calls one agent may have open (awaiting approval, ready or running) at once.
pub const MAX_OPEN_CALLS_PER_AGENT: usize = 256;
/// Most tools a log may have registered at once.
pub const MAX_REGISTERED_TOOLS: usize = 1024;
/// Longest node name recorded on a started call, in characters.
pub const MAX_NODE_NAME_CHARS: usize = 64;

/// Most tasks one task may wait for.
pub const MAX_TASK_WAITS: usize = 64;
/// Longest lease one heartbeat gives a claimed task, in seconds.
pub const MAX_LEASE_SECS: u32 = 3600;
/// Most leases one expiry decision ends (the rest at the next tick).
pub const MAX_LEASE_EXPIRIES_PER_DECISION: usize = 1024;

/// Longest model name in a recorded step, in characters.
pub const MAX_MODEL_NAME_CHARS: usize = 128;
/// Largest recorded model step (the messages it added plus the response), in bytes.
pub const MAX_MODEL_STEP_BYTES: usize = 1024 * 1024;
/// Most model steps one task's conversation may have.
pub const MAX_MODEL_STEPS_PER_TASK: u32 = 1000;

// A call event holds its input, a result event its output, each in one record.
const _: () = assert!(MAX_TOOL_INPUT_BYTES + 64 * 1024 <= 2 * 1024 * 1024);
const _: () = assert!(MAX_TOOL_OUTPUT_BYTES + 64 * 1024 <= 2 * 1024 * 1024);
const _: () = assert!(MAX_MODEL_STEP_BYTES + 64 * 1024 <= 2 * 1024 * 1024);
