//! Shared helpers: a kernel with a root agent, tokens on demand, and a context that
//! follows the log position.
#![allow(dead_code)]

use toka_auth::{Claims, KeySet, Scope, SigningKey, mint, permissions};
use toka_kernel::{Context, Kernel, KernelError, WorldState};
use toka_types::{
    AgentSpec, EntityId, KernelEvent, Message, Operation, TaskSpec, Timestamp, TokenGrant,
};

pub const T0: u64 = 1_800_000_000;

pub struct World {
    pub kernel: Kernel,
    pub keys: KeySet,
    pub now: u64,
    pub root: EntityId,
    pub root_token: String,
    pub log: Vec<KernelEvent>,
    jti: u64,
}

impl World {
    pub fn new() -> Self {
        let keys = KeySet::new(SigningKey::hs256("test", &[42u8; 32]).unwrap());
        let mut kernel = Kernel::new(keys.clone());
        let log = kernel
            .genesis(
                &AgentSpec::new("root").unwrap(),
                &Context::new(Timestamp::from_unix_secs(T0), 1),
            )
            .unwrap();
        let root = kernel.state().root().unwrap();
        let mut world = Self {
            kernel,
            keys,
            now: T0,
            root,
            root_token: String::new(),
            log,
            jti: 0,
        };
        world.root_token = world.token(root, permissions::ALL, None);
        world
    }

    pub fn token(&mut self, sub: EntityId, perms: &[&str], scope: Option<Scope>) -> String {
        self.jti += 1;
        let mut claims = Claims::new(sub, format!("jti-{}", self.jti), T0, T0 + 3600)
            .with_permissions(perms.iter().copied());
        claims.scope = scope;
        mint(&self.keys, &claims).unwrap()
    }

    /// A root token issued through the kernel (a `token.issued` event), signed.
    pub fn issue_root(&mut self) -> (String, String) {
        let ctx = self.ctx();
        let events = self.kernel.issue_root_token(3600, &ctx).unwrap();
        self.log.extend(events.iter().cloned());
        self.sign(&events)
    }

    /// Issues a token through the kernel: `issuer` delegates `grant` with
    /// `issuer_token`. Returns (token, jti).
    pub fn issue(
        &mut self,
        issuer: EntityId,
        issuer_token: &str,
        grant: TokenGrant,
    ) -> Result<(String, String), KernelError> {
        let events = self.submit(issuer, issuer_token, Operation::IssueToken(grant))?;
        Ok(self.sign(&events))
    }

    fn sign(&self, events: &[KernelEvent]) -> (String, String) {
        match &events[0] {
            KernelEvent::TokenIssued(issued) => (
                mint(&self.keys, &Claims::of_issued(issued)).unwrap(),
                issued.jti.clone(),
            ),
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn ctx(&self) -> Context {
        Context::new(
            Timestamp::from_unix_secs(self.now),
            self.kernel.state().next_seq(),
        )
    }

    pub fn submit(
        &mut self,
        origin: EntityId,
        token: &str,
        op: Operation,
    ) -> Result<Vec<KernelEvent>, KernelError> {
        let ctx = self.ctx();
        let events = self.kernel.submit(&Message::new(origin, token, op), &ctx)?;
        self.log.extend(events.iter().cloned());
        Ok(events)
    }

    pub fn spawn(&mut self, parent: EntityId, name: &str) -> EntityId {
        let token = self.root_token.clone();
        let events = self
            .submit(
                self.root,
                &token,
                Operation::SpawnSubAgent {
                    parent,
                    spec: AgentSpec::new(name).unwrap(),
                },
            )
            .unwrap();
        match &events[0] {
            KernelEvent::AgentSpawned { agent, .. } => *agent,
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn schedule(&mut self, agent: EntityId, what: &str) -> EntityId {
        let token = self.root_token.clone();
        let events = self
            .submit(
                self.root,
                &token,
                Operation::ScheduleAgentTask {
                    agent,
                    task: TaskSpec::new(what).unwrap(),
                },
            )
            .unwrap();
        match &events[0] {
            KernelEvent::TaskScheduled { task, .. } => *task,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// A real JSON Schema check (the crate the node plugs in), for the tool rules.
pub struct JsonSchema;

impl toka_kernel::SchemaCheck for JsonSchema {
    fn compile(&self, schema: &serde_json::Value) -> Result<(), String> {
        jsonschema::validator_for(schema)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
    fn errors(
        &self,
        schema: &serde_json::Value,
        input: &serde_json::Value,
        limit: usize,
    ) -> Vec<String> {
        match jsonschema::validator_for(schema) {
            Ok(v) => v
                .iter_errors(input)
                .take(limit)
                .map(|e| e.to_string())
                .collect(),
            Err(e) => vec![e.to_string()],
        }
    }
}

/// Submits `op`, expects refusal `code`, and checks that nothing changed.
pub fn refused(
    w: &mut World,
    origin: EntityId,
    token: &str,
    op: Operation,
    code: &str,
) -> KernelError {
    let before = w.kernel.state().digest();
    let err = w.submit(origin, token, op).unwrap_err();
    assert_eq!(err.code(), code, "{err}");
    assert_eq!(
        w.kernel.state().digest(),
        before,
        "a refusal changed the state"
    );
    err
}

/// The log replayed into a fresh kernel, and the state through a snapshot image, both
/// equal the live state.
pub fn assert_replays(w: &World) {
    let mut replay = Kernel::new(w.keys.clone());
    for e in &w.log {
        replay.apply(e);
        replay.state().check_invariants().unwrap();
    }
    assert_eq!(replay.state().digest(), w.kernel.state().digest());
    assert_eq!(replay.state(), w.kernel.state());
    let loaded = WorldState::from_image(w.kernel.state().image()).unwrap();
    assert_eq!(loaded.digest(), w.kernel.state().digest());
}
