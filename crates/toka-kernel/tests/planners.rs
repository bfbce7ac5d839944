#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Planner designations (issue 12): only with `token:issue`, for an agent in scope,
//! naming a token the sender's chain issued for that agent and that is not revoked.

mod common;

use common::{World, assert_replays, refused};
use toka_auth::permissions as p;
use toka_types::{Budget, EntityId, Operation, TokenGrant};

fn grant(sub: EntityId) -> TokenGrant {
    TokenGrant {
        sub,
        permissions: vec![p::MODEL_USE.into(), p::TASK_CLAIM.into()],
        scope: None,
        ttl_secs: None,
        budget: Budget::default(),
    }
}

fn designate(agent: EntityId, jti: &str) -> Operation {
    Operation::DesignatePlanner {
        agent,
        jti: jti.into(),
        model: Some("m".into()),
    }
}

#[test]
fn only_a_token_from_the_senders_chain_for_that_agent_is_accepted() {
    let mut w = World::new();
    let root_token = w.root_token.clone();
    let lead = w.spawn(w.root, "lead");
    let other = w.spawn(w.root, "other");
    let (lead_token, _) = w
        .issue(
            w.root,
            &root_token,
            TokenGrant {
                permissions: vec![
                    p::TOKEN_ISSUE.into(),
                    p::MODEL_USE.into(),
                    p::TASK_CLAIM.into(),
                    p::AGENT_SPAWN.into(),
                ],
                ..grant(lead)
            },
        )
        .unwrap();
    let planner = w.spawn(lead, "planner");
    let (_, planner_jti) = w.issue(lead, &lead_token, grant(planner)).unwrap();
    let (_, other_jti) = w.issue(w.root, &root_token, grant(other)).unwrap();
    let (_, root_issued_for_planner) = w.issue(w.root, &root_token, grant(planner)).unwrap();

    refused(
        &mut w,
        lead,
        &lead_token,
        designate(planner, "never-issued"),
        "planner_token_refused",
    );
    refused(
        &mut w,
        lead,
        &lead_token,
        designate(planner, &other_jti),
        "planner_token_refused",
    );
    // Issued for the planner, but by the root's token, not the lead's: not the lead's to hand over.
    refused(
        &mut w,
        lead,
        &lead_token,
        designate(planner, &root_issued_for_planner),
        "planner_token_refused",
    );
    refused(
        &mut w,
        lead,
        &lead_token,
        designate(other, &other_jti),
        "out_of_scope",
    );
    w.submit(lead, &lead_token, designate(planner, &planner_jti))
        .unwrap();
    let record = w.kernel.state().planners().of(planner).unwrap();
    assert_eq!(record.jti, planner_jti);
    // A revoked token cannot be designated.
    w.submit(
        w.root,
        &root_token,
        Operation::RevokeToken {
            jti: planner_jti.clone(),
        },
    )
    .unwrap();
    refused(
        &mut w,
        lead,
        &lead_token,
        designate(planner, &planner_jti),
        "planner_token_refused",
    );
    assert_replays(&w);
}
