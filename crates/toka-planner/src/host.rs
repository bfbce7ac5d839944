//! [`PlannerHost`]: the planners a node runs by itself. The log says which agents are
//! planners (`planner.designated`: the agent, the token it acts with, its model); the
//! host runs each one that is active, with the node's `[planner]` endpoint and the
//! recorded model, acting with that token (signed again by the node, which holds the
//! key). At start it hosts every designation in the log, so a node that restarts
//! resumes its planners, each continuing from its recorded conversation; then it
//! hosts each new designation as it is committed.

use std::collections::BTreeMap;
use std::sync::Arc;

use toka_runtime::Runtime;
use toka_runtime::host::{AgentHandle, host};
use toka_types::{EntityId, KernelEvent};

use crate::config::PlannerConfig;
use crate::planner::Planner;

/// The running planner host of a node; dropping it stops its planners.
#[derive(Debug)]
pub struct PlannerHost {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PlannerHost {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The hosted planners; stopped when dropped (with the host's task).
#[derive(Default)]
struct Hosted(BTreeMap<EntityId, AgentHandle>);

impl Drop for Hosted {
    fn drop(&mut self) {
        for h in self.0.values() {
            h.abort();
        }
    }
}

/// Hosts the planner `agent` as designated with `jti` and `model`, if it can.
fn start_one(
    runtime: &Runtime,
    config: &PlannerConfig,
    max_restarts: u32,
    (agent, jti, model): (EntityId, &str, Option<&str>),
) -> Option<AgentHandle> {
    let active = runtime.read(|s| {
        s.agent(agent)
            .is_some_and(|a| a.status == toka_kernel::AgentStatus::Active)
    });
    if !active {
        return None;
    }
    // The designated token, or its newest renewal: the host renews it as it goes.
    let newest = runtime.read(|s| s.newest_of_family(jti).to_string());
    let token = match runtime.sign_recorded(&newest) {
        Some(Ok(t)) => t,
        Some(Err(e)) => {
            tracing::warn!(%agent, error = %e, "cannot sign the planner's token; it is not hosted");
            return None;
        }
        None => return None,
    };
    let mut config = config.clone();
    if let Some(model) = model {
        config.model = model.to_string();
    }
    let model = config.model.clone();
    let planner = match Planner::new(config) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(%agent, error = %e, "cannot start the planner");
            return None;
        }
    };
    tracing::info!(%agent, %model, "hosting planner");
    Some(host(runtime, agent, token, Arc::new(planner), max_restarts))
}

/// Starts hosting the designated planners of `runtime` with `config`.
pub fn host_planners(runtime: &Runtime, config: PlannerConfig, max_restarts: u32) -> PlannerHost {
    let runtime = runtime.clone();
    // Subscribed before reading the designations, so none is missed in between.
    let mut feed = runtime.subscribe(runtime.head().seq + 1);
    let task = tokio::spawn(async move {
        let mut hosted = Hosted::default();
        let designated: Vec<(EntityId, String, Option<String>)> = runtime.read(|s| {
            s.planners()
                .entries()
                .map(|(a, r)| (a, r.jti.clone(), r.model.clone()))
                .collect()
        });
        for (agent, jti, model) in designated {
            if let Some(h) = start_one(
                &runtime,
                &config,
                max_restarts,
                (agent, &jti, model.as_deref()),
            ) {
                hosted.0.insert(agent, h);
            }
        }
        while let Some(Ok(record)) = feed.next().await {
            if record.header.kind != "planner.designated" {
                continue;
            }
            if let Ok(KernelEvent::PlannerDesignated { agent, jti, model }) =
                toka_runtime::codec::decode(&record)
            {
                if let Some(old) = hosted.0.remove(&agent) {
                    old.abort();
                }
                if let Some(h) = start_one(
                    &runtime,
                    &config,
                    max_restarts,
                    (agent, &jti, model.as_deref()),
                ) {
                    hosted.0.insert(agent, h);
                }
            }
        }
    });
    PlannerHost { task }
}
