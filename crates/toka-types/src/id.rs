//! [`EntityId`]: the 128-bit name of an agent, a task or an event.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// A 128-bit identifier, printed and parsed as a UUID string
/// (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, lowercase hex).
///
/// The kernel derives new ids from the log position, never from randomness, so a
/// replayed log names every entity exactly as the live run did.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EntityId(u128);

impl EntityId {
    /// The id whose 128 bits are `value`.
    pub const fn from_u128(value: u128) -> Self {
        Self(value)
    }

    /// The 128 bits of this id.
    pub const fn as_u128(self) -> u128 {
        self.0
    }

    /// The id as 16 big-endian bytes (the order in which it prints).
    pub const fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    /// The id whose big-endian bytes are `bytes`.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(u128::from_be_bytes(bytes))
    }
}

impl EntityId {
    /// The id's UUID text, without allocating (e.g. for a database column).
    pub fn hyphenated(self) -> Hyphenated {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        // Where each byte's two digits go: hyphens sit at 8, 13, 18 and 23.
        const AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
        let mut text = [b'-'; 36];
        for (byte, at) in self.to_bytes().into_iter().zip(AT) {
            text[at] = HEX[usize::from(byte >> 4)];
            text[at + 1] = HEX[usize::from(byte & 0xf)];
        }
        Hyphenated(text)
    }
}

/// The 36 characters of an [`EntityId`] as a UUID (lowercase hex, hyphens at 8, 13, 18
/// and 23), held on the stack.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Hyphenated([u8; 36]);

impl Hyphenated {
    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits and hyphens are ever written: this cannot fail.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::ops::Deref for Hyphenated {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hyphenated().as_str())
    }
}

impl fmt::Debug for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a string is not an [`EntityId`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid id {input:?}: expected a UUID like 0192f1c4-7d2e-4c1a-9b3e-5f6a7b8c9d0e")]
pub struct ParseIdError {
    input: String,
}

impl FromStr for EntityId {
    type Err = ParseIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseIdError {
            input: s.chars().take(64).collect(),
        };
        let bytes = s.as_bytes();
        if bytes.len() != 36 {
            return Err(err());
        }
        let mut value: u128 = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if b != b'-' {
                    return Err(err());
                }
                continue;
            }
            let digit = (b as char).to_digit(16).ok_or_else(err)?;
            value = (value << 4) | u128::from(digit);
        }
        Ok(Self(value))
    }
}

impl Serialize for EntityId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EntityId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn prints_as_uuid() {
        let id = EntityId::from_u128(0x0192f1c4_7d2e_4c1a_9b3e_5f6a7b8c9d0e);
        assert_eq!(id.to_string(), "0192f1c4-7d2e-4c1a-9b3e-5f6a7b8c9d0e");
        assert_eq!(
            EntityId::from_u128(1).to_string(),
            "00000000-0000-0000-0000-000000000001"
        );
    }

    #[test]
    fn refuses_malformed() {
        for bad in [
            "",
            "0192f1c4",
            "0192f1c4-7d2e-4c1a-9b3e-5f6a7b8c9d0",
            "0192f1c4_7d2e-4c1a-9b3e-5f6a7b8c9d0e",
            "g192f1c4-7d2e-4c1a-9b3e-5f6a7b8c9d0e",
        ] {
            assert!(bad.parse::<EntityId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_uppercase() {
        let id: EntityId = "0192F1C4-7D2E-4C1A-9B3E-5F6A7B8C9D0E".parse().unwrap();
        assert_eq!(id.as_u128(), 0x0192f1c4_7d2e_4c1a_9b3e_5f6a7b8c9d0e);
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(v in any::<u128>()) {
            let id = EntityId::from_u128(v);
            prop_assert_eq!(id.to_string().parse::<EntityId>().unwrap(), id);
            let json = serde_json::to_string(&id).unwrap();
            prop_assert_eq!(serde_json::from_str::<EntityId>(&json).unwrap(), id);
            prop_assert_eq!(EntityId::from_bytes(id.to_bytes()), id);
        }

        #[test]
        fn hyphenated_text_is_the_formatted_uuid(v in any::<u128>()) {
            // The format machinery as the oracle for the table-driven writer.
            let expected = format!(
                "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                (v >> 96) as u32,
                (v >> 80) as u16,
                (v >> 64) as u16,
                (v >> 48) as u16,
                v & 0xffff_ffff_ffff
            );
            let id = EntityId::from_u128(v);
            let text = id.hyphenated();
            prop_assert_eq!(text.as_str(), expected.as_str());
            prop_assert_eq!(id.to_string(), expected);
        }
    }
}
