//! The permission names a token may carry, one per kernel operation.
//!
//! A permission is `resource:action`. Extension handlers are allowed by
//! `ext:<family>` (see [`extension`]); tools by `tool:<name>` (see [`tool`]).
//!
//! The one wildcard is a *tool family*: `tool:<prefix>*` allows every tool whose name
//! starts with `<prefix>` (`tool:fs.*` allows `fs.read`, `fs.write`, `fs.list`;
//! `tool:*` every tool, including tools registered later). Attenuation goes through
//! [`covers`], so a child may hold `tool:fs.read` or `tool:fs.*` under a parent's
//! `tool:*`, never the other way round. Every other permission is matched exactly.

/// Queue a task for an agent in scope.
pub const TASK_SCHEDULE: &str = "task:schedule";
/// Claim a queued task of an agent in scope.
pub const TASK_CLAIM: &str = "task:claim";
/// Complete (succeed or fail) a claimed task of an agent in scope.
pub const TASK_COMPLETE: &str = "task:complete";
/// Spawn a child of an agent in scope.
pub const AGENT_SPAWN: &str = "agent:spawn";
/// Terminate an agent in scope (and its descendants).
pub const AGENT_TERMINATE: &str = "agent:terminate";
/// Emit an observation as an agent in scope.
pub const OBSERVATION_EMIT: &str = "observation:emit";
/// Revoke a token (by `jti`).
pub const TOKEN_REVOKE: &str = "token:revoke";
/// Mint attenuated tokens for agents in scope (checked by the runtime's token service).
pub const TOKEN_ISSUE: &str = "token:issue";

/// Decide a call waiting for approval, of an agent in scope.
pub const APPROVAL_GRANT: &str = "approval:grant";
/// Every tool (the widest tool family).
pub const TOOL_ALL: &str = "tool:*";
/// Record exchanges with a language model (a planner's steps).
pub const MODEL_USE: &str = "model:use";

/// Cancel a queued or claimed task of an agent in scope.
pub const TASK_CANCEL: &str = "task:cancel";
/// Put a claimed task of an agent in scope back in its queue.
pub const TASK_REQUEUE: &str = "task:requeue";

/// Every built-in permission, for minting a root token.
pub const ALL: &[&str] = &[
    TOOL_ALL,
    APPROVAL_GRANT,
    TASK_SCHEDULE,
    TASK_CLAIM,
    TASK_COMPLETE,
    TASK_CANCEL,
    TASK_REQUEUE,
    AGENT_SPAWN,
    AGENT_TERMINATE,
    OBSERVATION_EMIT,
    TOKEN_REVOKE,
    TOKEN_ISSUE,
    MODEL_USE,
];

/// A permission name as a token holds it: one of Toka's own names borrowed from
/// [`ALL`], or any other name owned.
pub type Permission = std::borrow::Cow<'static, str>;

/// `name` as a [`Permission`]: borrowed if it is one of [`ALL`].
pub fn name(name: String) -> Permission {
    match builtin(&name) {
        Some(known) => Permission::Borrowed(known),
        None => Permission::Owned(name),
    }
}

/// `name` as one of [`ALL`], if it is.
fn builtin(name: &str) -> Option<&'static str> {
    ALL.iter().copied().find(|known| *known == name)
}

/// Each of `names` as a [`Permission`].
pub fn names(names: Vec<String>) -> Vec<Permission> {
    names.into_iter().map(name).collect()
}

/// Reads a JSON list of permission names, allocating only for names that are not
/// Toka's own (a token with every built-in permission reads without one allocation
/// per name).
pub fn read_names<'de, D>(deserializer: D) -> Result<Vec<Permission>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Names;
    struct OneName;

    impl<'de> serde::de::Visitor<'de> for Names {
        type Value = Vec<Permission>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of permission names")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            // Bounded by the token's size limit, checked before its claims are read.
            let mut names = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
            while let Some(name) = seq.next_element_seed(OneName)? {
                names.push(name);
            }
            Ok(names)
        }
    }

    impl<'de> serde::de::DeserializeSeed<'de> for OneName {
        type Value = Permission;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Permission, D::Error> {
            d.deserialize_str(self)
        }
    }

    impl serde::de::Visitor<'_> for OneName {
        type Value = Permission;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a permission name")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Permission, E> {
            Ok(match builtin(v) {
                Some(known) => Permission::Borrowed(known),
                None => Permission::Owned(v.to_string()),
            })
        }
    }

    deserializer.deserialize_seq(Names)
}

/// For a permission name that is none of Toka's, the built-in one it most likely
/// meant (`task:clam` → `task:claim`); `None` for a known name or no close match.
pub fn closest(name: &str) -> Option<&'static str> {
    if is_known(name) {
        return None;
    }
    ALL.iter()
        .copied()
        .map(|p| (toka_types::edit_distance(p, name), p))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, p)| p)
}

/// Whether `name` is a permission Toka knows: a built-in one, `tool:<name>` or
/// `ext:<family>`.
pub fn is_known(name: &str) -> bool {
    ALL.contains(&name) || name.starts_with("tool:") || name.starts_with("ext:")
}

/// The permission that allows calling the extension handler family `family`.
pub fn extension(family: &str) -> String {
    format!("ext:{family}")
}

/// The permission that allows calling tool `name`.
pub fn tool(name: &str) -> String {
    format!("tool:{name}")
}

/// Whether holding `granted` allows `wanted`: equal, or `granted` is a tool family
/// `tool:<prefix>*` and `wanted` is a tool permission (or family) starting with
/// `tool:<prefix>`.
pub fn covers(granted: &str, wanted: &str) -> bool {
    if granted == wanted {
        return true;
    }
    match granted.strip_suffix('*') {
        Some(prefix) if prefix.starts_with("tool:") => {
            wanted.starts_with("tool:") && wanted.starts_with(prefix)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_families_cover_only_tools_below_them() {
        assert!(covers("tool:*", "tool:fs.read"));
        assert!(covers("tool:*", "tool:fs.*"));
        assert!(covers("tool:fs.*", "tool:fs.read"));
        assert!(covers("tool:fs.read", "tool:fs.read"));
        assert!(!covers("tool:fs.*", "tool:*"));
        assert!(!covers("tool:fs.*", "tool:exec.ls"));
        assert!(!covers("tool:fs.read", "tool:fs.write"));
        assert!(!covers("tool:*", "task:claim"));
        assert!(
            !covers("task:*", "task:claim"),
            "only tool families are wildcards"
        );
    }

    #[test]
    fn names_read_from_a_token_are_the_same_whether_borrowed_or_owned() {
        #![allow(clippy::unwrap_used)]
        #[derive(serde::Deserialize)]
        struct Held {
            #[serde(deserialize_with = "read_names")]
            p: Vec<Permission>,
        }
        let json = r#"{"p":["task:claim","tool:fs.read","task\u003aschedule","ext:x"]}"#;
        let held: Held = serde_json::from_str(json).unwrap();
        assert_eq!(
            held.p,
            ["task:claim", "tool:fs.read", "task:schedule", "ext:x"]
        );
        let borrowed: Vec<bool> = held
            .p
            .iter()
            .map(|p| matches!(p, Permission::Borrowed(_)))
            .collect();
        assert_eq!(borrowed, [true, false, true, false]);
        assert!(serde_json::from_str::<Held>(r#"{"p":[1]}"#).is_err());
        assert!(serde_json::from_str::<Held>(r#"{"p":"task:claim"}"#).is_err());
    }
}
