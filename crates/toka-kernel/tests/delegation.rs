#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Delegation is a decided fact and revocation is scoped (issue 9): the refusal matrix
//! for `IssueToken` and `RevokeToken`, each refusal leaving the state untouched, and
//! replay of the resulting log reaching the same digest.

mod common;

use common::World;
use toka_auth::{AuthError, Scope, permissions as p};
use toka_kernel::{Kernel, KernelError};
use toka_types::{EntityId, KernelEvent, Operation, TaskSpec, TokenGrant};

fn grant(sub: EntityId, perms: &[&str]) -> TokenGrant {
    TokenGrant {
        sub,
        permissions: perms.iter().map(|s| s.to_string()).collect(),
        scope: None,
        ttl_secs: None,
        budget: Default::default(),
    }
}

/// Submits `op`, expects `expected`, and checks that nothing changed.
fn refused(w: &mut World, origin: EntityId, token: &str, op: Operation, expected: KernelError) {
    let before = w.kernel.state().digest();
    let head = w.kernel.state().applied();
    let got = w.submit(origin, token, op).unwrap_err();
    assert_eq!(got, expected);
    assert_eq!(
        w.kernel.state().digest(),
        before,
        "a refusal changed the state"
    );
    assert_eq!(w.kernel.state().applied(), head);
}

struct Tree {
    w: World,
    root_token: String,
    root_jti: String,
    a: EntityId,
    a_token: String,
    a_jti: String,
    a1: EntityId,
    b: EntityId,
    b_jti: String,
}

/// root → a → a1, root → b; a holds issue/revoke/schedule/spawn on its subtree.
fn tree() -> Tree {
    let mut w = World::new();
    let (root_token, root_jti) = w.issue_root();
    let root = w.root;
    let a = w.spawn(root, "a");
    let a1 = w.spawn(a, "a1");
    let b = w.spawn(root, "b");
    let a_perms = [
        p::TOKEN_ISSUE,
        p::TOKEN_REVOKE,
        p::TASK_SCHEDULE,
        p::AGENT_SPAWN,
    ];
    let (a_token, a_jti) = w.issue(root, &root_token, grant(a, &a_perms)).unwrap();
    let (_, b_jti) = w
        .issue(root, &root_token, grant(b, &[p::TASK_CLAIM]))
        .unwrap();
    Tree {
        w,
        root_token,
        root_jti,
        a,
        a_token,
        a_jti,
        a1,
        b,
        b_jti,
    }
}

#[test]
fn issuance_records_the_grant_and_derives_the_jti() {
    let mut t = tree();
    let seq = t.w.kernel.state().next_seq();
    let events =
        t.w.submit(
            t.a,
            &t.a_token.clone(),
            Operation::IssueToken(grant(t.a1, &[p::TASK_SCHEDULE])),
        )
        .unwrap();
    let [KernelEvent::TokenIssued(issued)] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!(issued.sub, t.a1);
    assert_eq!(issued.issuer, Some(t.a));
    assert_eq!(issued.permissions, vec![p::TASK_SCHEDULE.to_string()]);
    assert_eq!(issued.parent.as_deref(), Some(t.a_jti.as_str()));
    assert_eq!(issued.lineage, vec![t.root_jti.clone(), t.a_jti.clone()]);
    assert_eq!(
        issued.exp,
        common::T0 + 3600,
        "defaults to the issuer's expiry"
    );
    assert_eq!(t.w.kernel.state().issued_token(&issued.jti), Some(issued));

    // The same log gives the same jti: it is derived from the position, not drawn.
    let mut again = tree();
    assert_eq!(again.w.kernel.state().next_seq(), seq);
    let again_events = again
        .w
        .submit(
            again.a,
            &again.a_token.clone(),
            Operation::IssueToken(grant(again.a1, &[p::TASK_SCHEDULE])),
        )
        .unwrap();
    match &again_events[0] {
        KernelEvent::TokenIssued(i) => assert_eq!(i.jti, issued.jti),
        other => panic!("{other:?}"),
    }
}

#[test]
fn issuance_never_widens_or_leaves_the_scope() {
    let mut t = tree();
    let (a, a1, b, root) = (t.a, t.a1, t.b, t.w.root);
    let token = t.a_token.clone();
    let out_of_scope = |target: EntityId| KernelError::OutOfScope {
        target,
        scope: a.to_string(),
    };
    // For the root, a sibling, a stranger: outside a's scope.
    refused(
        &mut t.w,
        a,
        &token,
        Operation::IssueToken(grant(root, &[])),
        out_of_scope(root),
    );
    refused(
        &mut t.w,
        a,
        &token,
        Operation::IssueToken(grant(b, &[])),
        out_of_scope(b),
    );
    let stranger = EntityId::from_u128(77);
    refused(
        &mut t.w,
        a,
        &token,
        Operation::IssueToken(grant(stranger, &[])),
        out_of_scope(stranger),
    );
    // For a terminated agent inside the scope.
    let gone = t.w.spawn(a, "gone");
    let root_token = t.root_token.clone();
    t.w.submit(root, &root_token, Operation::TerminateAgent { agent: gone })
        .unwrap();
    refused(
        &mut t.w,
        a,
        &token,
        Operation::IssueToken(grant(gone, &[])),
        KernelError::AgentTerminated(gone),
    );
    // Wider permissions, scope or lifetime.
    refused(
        &mut t.w,
        a,
        &token,
        Operation::IssueToken(grant(a1, &[p::AGENT_TERMINATE])),
        KernelError::Delegation(AuthError::PermissionEscalation {
            permission: p::AGENT_TERMINATE.into(),
        }),
    );
    for scope in [Scope::All, Scope::Subtree(root)] {
        let mut g = grant(a1, &[]);
        g.scope = Some(scope);
        refused(
            &mut t.w,
            a,
            &token,
            Operation::IssueToken(g),
            KernelError::Delegation(AuthError::ScopeWidening {
                child: scope.to_string(),
                parent: a.to_string(),
            }),
        );
    }
    let mut g = grant(a1, &[]);
    g.ttl_secs = Some(7200);
    refused(
        &mut t.w,
        a,
        &token,
        Operation::IssueToken(g),
        KernelError::Delegation(AuthError::ExpiryExtension {
            child: common::T0 + 7200,
            parent: common::T0 + 3600,
        }),
    );
    // Without token:issue.
    let (a1_token, _) =
        t.w.issue(a, &token, grant(a1, &[p::TASK_SCHEDULE]))
            .unwrap();
    refused(
        &mut t.w,
        a1,
        &a1_token,
        Operation::IssueToken(grant(a1, &[])),
        KernelError::PermissionDenied {
            operation: "token.issue",
            permission: p::TOKEN_ISSUE.into(),
        },
    );
    // A narrower grant, with an explicit shorter lifetime, is fine.
    let mut g = grant(a1, &[p::TASK_SCHEDULE]);
    g.ttl_secs = Some(60);
    let (_, jti) = t.w.issue(a, &token, g).unwrap();
    assert_eq!(
        t.w.kernel.state().issued_token(&jti).unwrap().exp,
        common::T0 + 60
    );
}

#[test]
fn revocation_is_scoped_and_never_reaches_an_ancestor() {
    let mut t = tree();
    let (a, a1) = (t.a, t.a1);
    let a_token = t.a_token.clone();
    let (a1_token, a1_jti) =
        t.w.issue(
            a,
            &a_token,
            grant(a1, &[p::TOKEN_REVOKE, p::TASK_SCHEDULE, p::TOKEN_ISSUE]),
        )
        .unwrap();
    // The leaf cannot revoke its ancestors (the root's token included)...
    for jti in [t.root_jti.clone(), t.a_jti.clone()] {
        refused(
            &mut t.w,
            a1,
            &a1_token,
            Operation::RevokeToken { jti: jti.clone() },
            KernelError::CannotRevokeAncestor { jti },
        );
    }
    // ... nor a token of an agent outside its scope, nor an unknown jti.
    refused(
        &mut t.w,
        a1,
        &a1_token,
        Operation::RevokeToken {
            jti: t.b_jti.clone(),
        },
        KernelError::RevokeOutOfScope {
            jti: t.b_jti.clone(),
            subject: t.b,
            scope: a1.to_string(),
        },
    );
    refused(
        &mut t.w,
        a1,
        &a1_token,
        Operation::RevokeToken {
            jti: "never-issued".into(),
        },
        KernelError::UnknownTokenNeedsGlobalScope {
            jti: "never-issued".into(),
        },
    );
    // The legitimate path still works: a revokes a1's token, and with it every token
    // derived from it.
    let (grandchild_token, _) =
        t.w.issue(a1, &a1_token, grant(a1, &[p::TASK_SCHEDULE]))
            .unwrap();
    t.w.submit(
        a,
        &a_token,
        Operation::RevokeToken {
            jti: a1_jti.clone(),
        },
    )
    .unwrap();
    for token in [&a1_token, &grandchild_token] {
        refused(
            &mut t.w,
            a1,
            token,
            Operation::ScheduleAgentTask {
                agent: a1,
                task: TaskSpec::new("x").unwrap(),
            },
            KernelError::Unauthenticated(AuthError::Revoked {
                jti: a1_jti.clone(),
            }),
        );
    }
    // Scope `*` may revoke a jti the log never issued.
    let root = t.w.root;
    let root_token = t.root_token.clone();
    t.w.submit(
        root,
        &root_token,
        Operation::RevokeToken {
            jti: "minted-elsewhere".into(),
        },
    )
    .unwrap();
    assert!(t.w.kernel.state().is_revoked("minted-elsewhere"));

    // The whole log replays to the same state, issuances and revocations included.
    let mut replica = Kernel::new(t.w.keys.clone());
    for event in &t.w.log {
        replica.apply(event);
    }
    assert_eq!(replica.state().digest(), t.w.kernel.state().digest());
    replica.state().check_invariants().unwrap();
}

#[test]
fn snapshot_image_keeps_issued_tokens() {
    let t = tree();
    let state = t.w.kernel.state();
    assert_eq!(state.issued_count(), 3);
    let image = state.image();
    let loaded = toka_kernel::WorldState::from_image(image).unwrap();
    assert_eq!(loaded.digest(), state.digest());
    assert_eq!(loaded.issued_token(&t.a_jti), state.issued_token(&t.a_jti));
}
