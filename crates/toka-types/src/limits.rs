//! Every bound the core enforces on outside input, in one place.
//!
//! Changing one of these changes what the kernel accepts, so it changes which logs
//! replay: treat them as part of the log format.

/// Largest task description, in bytes of UTF-8.
pub const MAX_TASK_DESCRIPTION_BYTES: usize = 4 * 1024;
/// Largest agent name, in bytes of UTF-8.
pub const MAX_AGENT_NAME_BYTES: usize = 256;
/// Largest observation payload, in bytes.
pub const MAX_OBSERVATION_BYTES: usize = 1024 * 1024;
/// Largest capability token, in bytes.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Largest task result or failure reason, in bytes of UTF-8.
pub const MAX_TASK_RESULT_BYTES: usize = 64 * 1024;
/// Most tasks an agent may have queued (not yet claimed) at once.
pub const MAX_QUEUED_TASKS_PER_AGENT: usize = 10_000;
/// Largest extension family name, in bytes.
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
/// Largest token id (`jti`) accepted in a revocation, in bytes.
pub const MAX_JTI_BYTES: usize = 128;

// A task result may quote its description; an observation may carry a result.
const _: () = assert!(MAX_TASK_RESULT_BYTES >= MAX_TASK_DESCRIPTION_BYTES);
const _: () = assert!(MAX_OBSERVATION_BYTES >= MAX_TASK_RESULT_BYTES);
const _: () = assert!(MAX_EXTENSION_PAYLOAD_BYTES <= MAX_OBSERVATION_BYTES);

/// Longest permission name, in bytes.
pub const MAX_PERMISSION_BYTES: usize = 128;
/// Most bytes of permission names one issued token may carry in all: with a full
/// lineage, the signed token stays under [`MAX_TOKEN_BYTES`].
pub const MAX_GRANT_PERMISSION_BYTES: usize = 4 * 1024;
/// Most permissions one capability token may carry.
pub const MAX_PERMISSIONS: usize = 100;
/// Longest lifetime (`exp - iat`) of a capability token, in seconds: 24 hours.
pub const MAX_TOKEN_LIFETIME_SECS: u64 = 24 * 60 * 60;
/// Deepest chain of attenuations (root token, child, grandchild, …) a token may have.
pub const MAX_ATTENUATION_DEPTH: usize = 16;
