//! Helpers shared by the runtime's tests.
#![allow(dead_code)]

use std::sync::Arc;

use toka_auth::{KeySet, SigningKey};
use toka_kernel::{OpcodeRegistry, WorldState};
use toka_runtime::{Runtime, RuntimeOptions};
use toka_store_core::{EventPages, StorageBackend};
use toka_types::{AgentSpec, EntityId, KernelEvent, Message, Operation, TaskSpec};

pub fn keys() -> KeySet {
    KeySet::new(SigningKey::hs256("test", &[3u8; 32]).unwrap())
}

pub fn options() -> RuntimeOptions {
    let mut o = RuntimeOptions::default();
    o.snapshots.every_events = 0;
    o.snapshots.on_shutdown = false;
    o
}

pub async fn start(store: Arc<dyn StorageBackend>, options: RuntimeOptions) -> Runtime {
    Runtime::with_store(store, keys(), options).await.unwrap()
}

pub fn admin(rt: &Runtime) -> (EntityId, String) {
    let root = rt.root().unwrap();
    (root, rt.mint_admin_token(root).unwrap())
}

pub async fn spawn(rt: &Runtime, parent: EntityId, name: &str) -> EntityId {
    let (root, token) = admin(rt);
    let op = Operation::SpawnSubAgent {
        parent,
        spec: AgentSpec::new(name).unwrap(),
    };
    let c = rt.submit(Message::new(root, token, op)).await.unwrap();
    match &c.events[0] {
        KernelEvent::AgentSpawned { agent, .. } => *agent,
        other => panic!("{other:?}"),
    }
}

pub fn schedule(origin: EntityId, token: &str, agent: EntityId, what: &str) -> Message {
    Message::new(
        origin,
        token,
        Operation::ScheduleAgentTask {
            agent,
            task: TaskSpec::new(what).unwrap(),
        },
    )
}

/// Every event in the store, decoded, with its seq.
pub async fn log(store: &dyn StorageBackend) -> Vec<(u64, KernelEvent)> {
    let mut out = Vec::new();
    let mut pages = EventPages::new(store, 1);
    loop {
        let page = pages.next_page().await.unwrap();
        if page.is_empty() {
            break;
        }
        for r in page {
            out.push((r.header.seq, toka_runtime::codec::decode(&r).unwrap()));
        }
    }
    out
}

/// The state a fresh replay of the whole log gives (no snapshot).
pub async fn replay(store: &dyn StorageBackend) -> WorldState {
    let mut state = WorldState::new();
    let handlers = OpcodeRegistry::new();
    for (_, e) in log(store).await {
        toka_kernel::apply(&mut state, &e, &handlers);
    }
    state
}
