//! The world both kernel benchmarks start from: a root with a token for everything and
//! `agents` children to schedule tasks for.

use toka_auth::{Claims, KeySet, mint, permissions};
use toka_kernel::{Context, Kernel};
use toka_types::{AgentSpec, EntityId, Message, Operation, Timestamp};

pub const T0: u64 = 1_800_000_000;

pub struct World {
    pub kernel: Kernel,
    pub root: EntityId,
    pub token: String,
    pub claims: Claims,
    pub agents: Vec<EntityId>,
}

/// Genesis on `kernel`, a root token signed with `keys`, then `agents` children.
pub fn world(mut kernel: Kernel, keys: &KeySet, agents: usize) -> World {
    let now = Timestamp::from_unix_secs(T0);
    kernel
        .genesis(&AgentSpec::new("root").unwrap(), &Context::new(now, 1))
        .unwrap();
    let root = kernel.state().root().unwrap();
    let claims = Claims::new(root, "bench", T0, T0 + 36_000)
        .with_permissions(permissions::ALL.iter().copied());
    let token = mint(keys, &claims).unwrap();
    let mut spawned = Vec::with_capacity(agents);
    for i in 0..agents {
        let op = Operation::SpawnSubAgent {
            parent: root,
            spec: AgentSpec::new(format!("worker-{i}")).unwrap(),
        };
        let ctx = Context::new(now, kernel.state().next_seq());
        match &kernel
            .submit_verified(&Message::new(root, token.clone(), op), &claims, &ctx)
            .unwrap()[0]
        {
            toka_types::KernelEvent::AgentSpawned { agent, .. } => spawned.push(*agent),
            _ => unreachable!(),
        }
    }
    World {
        kernel,
        root,
        token,
        claims,
        agents: spawned,
    }
}
