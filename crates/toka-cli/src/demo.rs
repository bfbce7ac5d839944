//! `toka demo`: a short tour of what Toka does, end to end.

#![allow(clippy::print_stdout)]

use anyhow::{Context as _, Result, bail};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use toka_auth::{ChildGrant, Claims, KeySet, SigningKey, attenuate, mint, permissions};
use toka_kernel::{Context, Kernel, WorldState};
use toka_types::{
    AgentSpec, EntityId, KernelEvent, Message, Observation, Operation, TaskOutcome, TaskSpec,
    Timestamp,
};

struct Demo {
    kernel: Kernel,
    keys: KeySet,
    log: Vec<KernelEvent>,
    now: Timestamp,
    rng: SystemRandom,
}

impl Demo {
    fn jti(&self) -> Result<String> {
        let mut bytes = [0u8; 16];
        self.rng
            .fill(&mut bytes)
            .map_err(|_| anyhow::anyhow!("system randomness unavailable"))?;
        Ok(EntityId::from_bytes(bytes).to_string())
    }

    fn submit(
        &mut self,
        origin: EntityId,
        token: &str,
        op: Operation,
    ) -> Result<Vec<KernelEvent>, toka_kernel::KernelError> {
        let ctx = Context::new(self.now, self.kernel.state().next_seq());
        let events = self.kernel.submit(&Message::new(origin, token, op), &ctx)?;
        self.log.extend(events.iter().cloned());
        Ok(events)
    }

    fn child_token(
        &self,
        parent: &Claims,
        sub: EntityId,
        perms: &[&str],
    ) -> Result<(Claims, String)> {
        let grant = ChildGrant {
            sub,
            jti: self.jti()?,
            iat: self.now.as_unix_secs(),
            exp: parent.exp,
            permissions: perms.iter().map(|p| p.to_string()).collect(),
            scope: None,
        };
        let state = self.kernel.state();
        let claims = attenuate(parent, grant, |d, a| state.is_within(d, a))?;
        let token = mint(&self.keys, &claims)?;
        Ok((claims, token))
    }
}

fn spawned(events: &[KernelEvent]) -> Result<EntityId> {
    match events.first() {
        Some(KernelEvent::AgentSpawned { agent, .. }) => Ok(*agent),
        other => bail!("expected agent.spawned, got {other:?}"),
    }
}

fn scheduled(events: &[KernelEvent]) -> Result<EntityId> {
    match events.first() {
        Some(KernelEvent::TaskScheduled { task, .. }) => Ok(*task),
        other => bail!("expected task.scheduled, got {other:?}"),
    }
}

pub(crate) fn run() -> Result<()> {
    let rng = SystemRandom::new();
    let mut secret = [0u8; 32];
    rng.fill(&mut secret)
        .map_err(|_| anyhow::anyhow!("system randomness unavailable"))?;
    let keys = KeySet::new(SigningKey::hs256("demo-1", &secret)?);
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let now = Timestamp::from_unix_secs(secs);
    let mut demo = Demo {
        kernel: Kernel::new(keys.clone()),
        keys,
        log: Vec::new(),
        now,
        rng,
    };

    println!("Toka demo: agents, capability tokens, tasks, and a log that replays.\n");
    let genesis = demo
        .kernel
        .genesis(&AgentSpec::new("root")?, &Context::new(now, 1))?;
    demo.log.extend(genesis);
    let root = demo.kernel.state().root().context("genesis made no root")?;
    let root_claims = Claims::new(root, demo.jti()?, secs, secs + 3600)
        .with_permissions(permissions::ALL.iter().copied());
    let root_token = mint(&demo.keys, &root_claims)?;

    let planner = spawned(&demo.submit(
        root,
        &root_token,
        Operation::SpawnSubAgent {
            parent: root,
            spec: AgentSpec::new("planner")?,
        },
    )?)?;
    let (planner_claims, planner_token) = demo.child_token(
        &root_claims,
        planner,
        &[
            permissions::AGENT_SPAWN,
            permissions::TASK_SCHEDULE,
            permissions::OBSERVATION_EMIT,
        ],
    )?;
    println!(
        "1. root spawned planner {planner}; its token allows agent:spawn, task:schedule, observation:emit"
    );

    let mut workers = Vec::new();
    for name in ["worker-1", "worker-2"] {
        let id = spawned(&demo.submit(
            planner,
            &planner_token,
            Operation::SpawnSubAgent {
                parent: planner,
                spec: AgentSpec::new(name)?,
            },
        )?)?;
        // The planner cannot grant task:claim (it lacks it); the root grants workers theirs.
        let (_, token) = demo.child_token(
            &root_claims,
            id,
            &[
                permissions::TASK_CLAIM,
                permissions::TASK_COMPLETE,
                permissions::OBSERVATION_EMIT,
            ],
        )?;
        workers.push((id, token));
    }
    println!(
        "2. planner spawned worker-1 and worker-2; their tokens allow task:claim, task:complete, observation:emit"
    );

    let jobs = [
        ("fetch the incident report", 0),
        ("summarise the incident report", 1),
        ("draft the postmortem", 0),
        ("file follow-up tickets", 1),
    ];
    let mut tasks = Vec::new();
    for (what, w) in jobs {
        let worker = workers[w].0;
        let task = scheduled(&demo.submit(
            planner,
            &planner_token,
            Operation::ScheduleAgentTask {
                agent: worker,
                task: TaskSpec::new(what)?,
            },
        )?)?;
        tasks.push((task, w, what));
    }
    println!("3. planner scheduled {} tasks", tasks.len());

    for (i, (task, w, what)) in tasks.iter().enumerate() {
        let (worker, token) = workers[*w].clone();
        demo.submit(
            worker,
            &token,
            Operation::ClaimTask {
                agent: worker,
                task: *task,
            },
        )?;
        demo.submit(
            worker,
            &token,
            Operation::EmitObservation {
                agent: worker,
                data: Observation::new(format!("working on: {what}").into_bytes())?,
            },
        )?;
        let outcome = if i == 3 {
            TaskOutcome::failure("ticket tracker unreachable")?
        } else {
            TaskOutcome::success(format!("done: {what}"))?
        };
        demo.submit(
            worker,
            &token,
            Operation::CompleteTask {
                agent: worker,
                task: *task,
                outcome,
            },
        )?;
    }
    println!("4. workers claimed, observed and completed their tasks (one failed)");

    let (w2, w2_token) = workers[1].clone();
    match demo.submit(
        w2,
        &w2_token,
        Operation::SpawnSubAgent {
            parent: w2,
            spec: AgentSpec::new("rogue")?,
        },
    ) {
        Ok(_) => bail!("worker-2 spawned an agent its token does not allow"),
        Err(e) => println!("5. worker-2 tried to spawn an agent and was refused: {e}"),
    }
    let _ = planner_claims;

    println!("\nAgent tree:");
    print_tree(demo.kernel.state(), root, 0);
    println!("\nTasks:");
    for (task, _, what) in &tasks {
        if let Some(t) = demo.kernel.state().task(*task) {
            println!("  {}  {:<9}  {}", t.id, t.state.as_str(), what);
        }
    }
    println!("\nLast events:");
    for (i, e) in demo
        .log
        .iter()
        .enumerate()
        .skip(demo.log.len().saturating_sub(5))
    {
        println!("  #{:<3} {}", i + 1, e.kind());
    }

    let mut replayed = WorldState::new();
    for e in &demo.log {
        toka_kernel::apply(&mut replayed, e, demo.kernel.handlers());
    }
    let (live, again) = (demo.kernel.state().digest(), replayed.digest());
    println!("\n{} events. Live state digest   {live}", demo.log.len());
    println!("{} events. Replayed digest     {again}", replayed.applied());
    if live != again {
        bail!("replay diverged from the live state");
    }
    println!("Replay reproduces the live state exactly.");
    Ok(())
}

fn print_tree(state: &WorldState, id: EntityId, depth: usize) {
    let Some(agent) = state.agent(id) else { return };
    let tasks = state.tasks_of(id).len();
    println!(
        "  {}{} {} ({} tasks, {} observations)",
        "  ".repeat(depth),
        agent.spec.name(),
        agent.id,
        tasks,
        agent.observations
    );
    for child in &agent.children {
        print_tree(state, *child, depth + 1);
    }
}
