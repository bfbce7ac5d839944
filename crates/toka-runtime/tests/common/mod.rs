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

pub async fn admin(rt: &Runtime) -> (EntityId, String) {
    let root = rt.root().unwrap();
    (root, rt.issue_root_token().await.unwrap().token)
}

/// A token for `sub` delegated by the root's admin token.
pub async fn child_token(rt: &Runtime, sub: EntityId, permissions: &[&str]) -> String {
    let (root, admin) = admin(rt).await;
    delegate(rt, root, &admin, sub, permissions).await.unwrap()
}

/// A token for `sub` delegated by `issuer` with `issuer_token`.
pub async fn delegate(
    rt: &Runtime,
    issuer: EntityId,
    issuer_token: &str,
    sub: EntityId,
    permissions: &[&str],
) -> Result<String, toka_runtime::IssueError> {
    let grant = toka_types::TokenGrant {
        sub,
        permissions: permissions.iter().map(|p| p.to_string()).collect(),
        scope: None,
        ttl_secs: None,
        budget: Default::default(),
    };
    Ok(rt.issue_token(issuer, issuer_token, grant).await?.token)
}

pub async fn spawn(rt: &Runtime, parent: EntityId, name: &str) -> EntityId {
    let (root, token) = admin(rt).await;
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

/// A memory store whose appends, snapshot writes and reads go through a hook: to fail
/// them, hold them, count them.
pub struct Hooked<H> {
    pub inner: toka_store_memory::MemoryStore,
    pub hook: H,
}

/// What a [`Hooked`] store does on append, snapshot write and read (it may call the
/// inner store or not).
#[async_trait::async_trait]
pub trait StoreHook: Send + Sync + 'static {
    /// By default, appends.
    async fn append(
        &self,
        inner: &toka_store_memory::MemoryStore,
        expected: u64,
        batch: &[toka_store_core::EventRecord],
    ) -> Result<toka_store_core::Head, toka_store_core::AppendError> {
        inner.append(expected, batch).await
    }

    /// What it does on `read_range`: by default, reads.
    async fn read_range(
        &self,
        inner: &toka_store_memory::MemoryStore,
        from: u64,
        limit: usize,
    ) -> Result<Vec<toka_store_core::EventRecord>, toka_store_core::StoreError> {
        inner.read_range(from, limit).await
    }

    /// What it does on `put_snapshot`: by default, stores it.
    async fn put_snapshot(
        &self,
        inner: &toka_store_memory::MemoryStore,
        snapshot: &toka_store_core::Snapshot,
    ) -> Result<(), toka_store_core::StoreError> {
        inner.put_snapshot(snapshot).await
    }
}

#[async_trait::async_trait]
impl<H: StoreHook> StorageBackend for Hooked<H> {
    fn driver(&self) -> &'static str {
        "hooked"
    }
    async fn head(&self) -> Result<toka_store_core::Head, toka_store_core::StoreError> {
        self.inner.head().await
    }
    async fn append(
        &self,
        expected: u64,
        batch: &[toka_store_core::EventRecord],
    ) -> Result<toka_store_core::Head, toka_store_core::AppendError> {
        self.hook.append(&self.inner, expected, batch).await
    }
    async fn read_range(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<toka_store_core::EventRecord>, toka_store_core::StoreError> {
        self.hook.read_range(&self.inner, from, limit).await
    }
    async fn read_by_id(
        &self,
        id: EntityId,
    ) -> Result<Option<toka_store_core::EventRecord>, toka_store_core::StoreError> {
        self.inner.read_by_id(id).await
    }
    async fn read_payload(
        &self,
        hash: &toka_store_core::Hash32,
    ) -> Result<Option<Vec<u8>>, toka_store_core::StoreError> {
        self.inner.read_payload(hash).await
    }
    async fn put_snapshot(
        &self,
        s: &toka_store_core::Snapshot,
    ) -> Result<(), toka_store_core::StoreError> {
        self.hook.put_snapshot(&self.inner, s).await
    }
    async fn latest_snapshot(
        &self,
    ) -> Result<Option<toka_store_core::Snapshot>, toka_store_core::StoreError> {
        self.inner.latest_snapshot().await
    }
    async fn snapshot_seqs(&self) -> Result<Vec<u64>, toka_store_core::StoreError> {
        self.inner.snapshot_seqs().await
    }
    async fn prune_snapshots(&self, keep: usize) -> Result<usize, toka_store_core::StoreError> {
        self.inner.prune_snapshots(keep).await
    }
    async fn put_checkpoint(
        &self,
        seq: u64,
        checkpoint: &[u8],
    ) -> Result<(), toka_store_core::StoreError> {
        self.inner.put_checkpoint(seq, checkpoint).await
    }
    async fn checkpoints(&self) -> Result<Vec<Vec<u8>>, toka_store_core::StoreError> {
        self.inner.checkpoints().await
    }
}
