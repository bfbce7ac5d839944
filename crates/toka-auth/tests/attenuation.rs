#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]
//! No chain of attenuations ever yields a token wider than its root.

use proptest::prelude::*;
use toka_auth::*;
use toka_types::EntityId;

const NOW: u64 = 1_800_000_000;

/// A fixed agent tree: agent i's parent is i / 2 (a binary heap), agent 1 the root.
fn is_within(descendant: EntityId, ancestor: EntityId) -> bool {
    let a = ancestor.as_u128();
    let mut d = descendant.as_u128();
    while d >= 1 {
        if d == a {
            return true;
        }
        d /= 2;
    }
    false
}

fn root() -> Claims {
    Claims::new(EntityId::from_u128(2), "root", NOW, NOW + 3600)
        .with_permissions(permissions::ALL.iter().take(5).copied())
}

#[derive(Debug, Clone)]
struct Step {
    sub: u128,
    exp_delta: i64,
    permissions: Vec<usize>,
    scope: Option<u128>,
    star: bool,
}

fn step() -> impl Strategy<Value = Step> {
    (
        1u128..64,
        -4000i64..200,
        proptest::collection::vec(0usize..permissions::ALL.len(), 0..6),
        proptest::option::of(1u128..64),
        any::<bool>(),
    )
        .prop_map(|(sub, exp_delta, permissions, scope, star)| Step {
            sub,
            exp_delta,
            permissions,
            scope,
            star,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn chains_never_widen(steps in proptest::collection::vec(step(), 1..12)) {
        let root = root();
        let mut current = root.clone();
        for (i, s) in steps.into_iter().enumerate() {
            let exp = (current.exp as i64 + s.exp_delta).max(NOW as i64 + 1) as u64;
            let grant = ChildGrant {
                sub: EntityId::from_u128(s.sub),
                jti: format!("t{i}"),
                iat: NOW,
                exp,
                permissions: s.permissions.iter().map(|&p| permissions::ALL[p].to_string()).collect(),
                scope: if s.star { Some(Scope::All) } else { s.scope.map(|x| Scope::Subtree(EntityId::from_u128(x))) },
            };
            let Ok(child) = attenuate(&current, grant, is_within) else { continue };
            // Every property of the child is inside the root.
            prop_assert!(child.exp <= root.exp);
            prop_assert!(child.permissions.iter().all(|p| root.allows(p)));
            let Scope::Subtree(root_scope) = root.effective_scope() else { unreachable!() };
            match child.effective_scope() {
                Scope::All => prop_assert!(false, "child got scope *"),
                Scope::Subtree(s) => prop_assert!(is_within(s, root_scope)),
            }
            prop_assert!(child.lineage.first().map(String::as_str) == Some("root"));
            current = child;
        }
    }
}

#[test]
fn each_widening_is_refused_with_its_error() {
    let parent = root();
    let base = ChildGrant {
        sub: EntityId::from_u128(4),
        jti: "c".into(),
        iat: NOW,
        exp: NOW + 60,
        permissions: vec![permissions::TASK_SCHEDULE.into()],
        scope: None,
    };
    assert!(attenuate(&parent, base.clone(), is_within).is_ok());
    let wider_perm = ChildGrant {
        permissions: vec![permissions::TOKEN_ISSUE.into()],
        ..base.clone()
    };
    assert_eq!(
        attenuate(&parent, wider_perm, is_within),
        Err(AuthError::PermissionEscalation {
            permission: permissions::TOKEN_ISSUE.into()
        })
    );
    let longer = ChildGrant {
        exp: parent.exp + 1,
        ..base.clone()
    };
    assert!(matches!(
        attenuate(&parent, longer, is_within),
        Err(AuthError::ExpiryExtension { .. })
    ));
    let star = ChildGrant {
        scope: Some(Scope::All),
        ..base.clone()
    };
    assert!(matches!(
        attenuate(&parent, star, is_within),
        Err(AuthError::ScopeWidening { .. })
    ));
    // Agent 3 is not under agent 2.
    let sibling = ChildGrant {
        sub: EntityId::from_u128(3),
        ..base.clone()
    };
    assert!(matches!(
        attenuate(&parent, sibling, is_within),
        Err(AuthError::ScopeWidening { .. })
    ));
    // Depth is bounded.
    let mut current = parent;
    let mut depth_error = None;
    for i in 0..20 {
        match attenuate(
            &current,
            ChildGrant {
                jti: format!("d{i}"),
                ..base.clone()
            },
            is_within,
        ) {
            Ok(c) => current = c,
            Err(e) => {
                depth_error = Some(e);
                break;
            }
        }
    }
    assert!(matches!(
        depth_error,
        Some(AuthError::AttenuationTooDeep { .. })
    ));
}
