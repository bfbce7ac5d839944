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

/// The value of each ASCII hex digit (either case); `INVALID` for every other byte.
const HEX_VALUE: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};
const INVALID: u8 = 0xff;

/// Where each byte's two digits start in the text (the writer's layout).
const DIGITS_AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

impl FromStr for EntityId {
    type Err = ParseIdError;

    // Every id of every record passes through here on a replay, so it decodes a byte
    // per table lookup pair instead of a digit per `char` conversion.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseIdError {
            input: s.chars().take(64).collect(),
        };
        let text = s.as_bytes();
        if text.len() != 36 || [8, 13, 18, 23].iter().any(|&at| text[at] != b'-') {
            return Err(err());
        }
        let mut bytes = [0u8; 16];
        for (byte, at) in bytes.iter_mut().zip(DIGITS_AT) {
            let high = HEX_VALUE[usize::from(text[at])];
            let low = HEX_VALUE[usize::from(text[at + 1])];
            if high == INVALID || low == INVALID {
                return Err(err());
            }
            *byte = (high << 4) | low;
        }
        Ok(Self::from_bytes(bytes))
    }
}

impl Serialize for EntityId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.hyphenated().as_str())
    }
}

impl<'de> Deserialize<'de> for EntityId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A visitor rather than `String`/`Cow`: the text is parsed where the
        // deserializer holds it, never copied.
        struct IdVisitor;
        impl serde::de::Visitor<'_> for IdVisitor {
            type Value = EntityId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a UUID string")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<EntityId, E> {
                text.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(IdVisitor)
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
    fn refuses_every_non_hex_byte_in_every_digit_position() {
        let good = "0192f1c4-7d2e-4c1a-9b3e-5f6a7b8c9d0e";
        for at in DIGITS_AT.iter().flat_map(|&at| [at, at + 1]) {
            for byte in [b'g', b'G', b'-', b' ', b'/', b':', b'@', b'`', 0x7f] {
                let mut text = good.as_bytes().to_vec();
                text[at] = byte;
                let text = String::from_utf8(text).unwrap();
                assert!(text.parse::<EntityId>().is_err(), "{text}");
            }
        }
        // A multi-byte character of the right byte length is no id either.
        assert!(
            "0192f1c4-7d2e-4c1a-9b3e-5f6a7b8c9dé"
                .parse::<EntityId>()
                .is_err()
        );
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
        fn parsing_agrees_with_a_digit_by_digit_reading(
            v in any::<u128>(),
            upper in any::<bool>(),
            damage in proptest::option::of((0usize..36, 0x20u8..0x7f)),
        ) {
            let mut text = EntityId::from_u128(v).to_string();
            if upper {
                text = text.to_uppercase();
            }
            if let Some((at, byte)) = damage {
                text.replace_range(at..=at, &char::from(byte).to_string());
            }
            // The oracle: hyphens where they must be, the rest read as base 16.
            let hyphens_in_place = [8, 13, 18, 23].iter().all(|&at| text.as_bytes()[at] == b'-');
            let digits: String = text.chars().filter(|&c| c != '-').collect();
            let all_hex = digits.len() == 32 && digits.chars().all(|c| c.is_ascii_hexdigit());
            let expected = (hyphens_in_place && all_hex)
                .then(|| u128::from_str_radix(&digits, 16).unwrap());
            let parsed = text.parse::<EntityId>().ok().map(EntityId::as_u128);
            prop_assert_eq!(parsed, expected);
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
