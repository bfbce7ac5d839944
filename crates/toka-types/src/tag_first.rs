//! Reading an internally tagged enum (`{"kind": "...", ...fields}`) without buffering
//! it first, when the tag comes first, as every writer of Toka puts it.
//!
//! `serde`'s derive for `#[serde(tag = "...")]` cannot know where the tag is, so it
//! copies the whole object into an intermediate tree, finds the tag, then reads the
//! variant from the tree: on a replay that was half of the time spent decoding each
//! event. Here the first key is looked at: if it is the tag, the variant's fields are
//! read straight from the rest of the object. If it is not (JSON written by hand, or by
//! a map that sorts its keys), the object is collected into a `serde_json` map and read
//! from there: slower, same result, same errors for bad input.
//!
//! The enum opts in through [`TaggedEnum`], whose implementation is the enum's
//! *externally* tagged derive (a `#[serde(remote = "...")]` twin that shares the enum's
//! variants, see `event.rs`); this module only presents the tag as the variant's name
//! and the remaining entries as its body. Not here: writing (the internally tagged
//! `Serialize` derive already writes the tag first).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{BorrowedStrDeserializer, MapAccessDeserializer, MapDeserializer};
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, VariantAccess,
    Visitor,
};

/// An enum that reads its variants externally tagged: `deserialize_enum` on the
/// deserializer it is given, which here is the tag and the rest of the object.
pub(crate) trait TaggedEnum<'de>: Sized {
    /// The tag's key (`kind`).
    const TAG: &'static str;
    /// What the enum is, for error messages.
    const EXPECTING: &'static str;
    /// Reads one variant through `deserialize_enum`.
    fn deserialize_variant<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error>;
}

/// Reads `T` from an object whose tag is [`TaggedEnum::TAG`].
pub(crate) fn deserialize<'de, T: TaggedEnum<'de>, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<T, D::Error> {
    deserializer.deserialize_map(ObjectVisitor(PhantomData))
}

struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: TaggedEnum<'de>> Visitor<'de> for ObjectVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let first: Option<Key<'de>> = map.next_key_seed(KeySeed(T::TAG))?;
        match first {
            None => Err(de::Error::missing_field(T::TAG)),
            Some(Key::Tag) => {
                let variant = map.next_value_seed(TextSeed)?;
                T::deserialize_variant(Variant {
                    name: variant,
                    body: map,
                })
            }
            Some(Key::Other(first)) => {
                // The slow road: collect every entry, take the tag out, read the rest.
                let mut entries = serde_json::Map::new();
                entries.insert(first.into_owned(), map.next_value()?);
                while let Some(key) = map.next_key::<String>()? {
                    if entries.contains_key(&key) {
                        return Err(de::Error::custom(format_args!("duplicate field `{key}`")));
                    }
                    entries.insert(key, map.next_value()?);
                }
                let name = match entries.remove(T::TAG) {
                    Some(serde_json::Value::String(name)) => name,
                    Some(other) => {
                        return Err(de::Error::invalid_type(unexpected(&other), &"a string"));
                    }
                    None => return Err(de::Error::missing_field(T::TAG)),
                };
                let body = MapDeserializer::new(entries.into_iter());
                T::deserialize_variant(Variant {
                    name: Cow::Owned(name),
                    body,
                })
                .map_err(|e: serde_json::Error| de::Error::custom(e))
            }
        }
    }
}

fn unexpected(value: &serde_json::Value) -> de::Unexpected<'_> {
    match value {
        serde_json::Value::Null => de::Unexpected::Unit,
        serde_json::Value::Bool(b) => de::Unexpected::Bool(*b),
        serde_json::Value::Number(_) => de::Unexpected::Other("a number"),
        serde_json::Value::String(s) => de::Unexpected::Str(s),
        serde_json::Value::Array(_) => de::Unexpected::Seq,
        serde_json::Value::Object(_) => de::Unexpected::Map,
    }
}

/// The first key of the object: the tag, or another (kept for the slow road).
enum Key<'de> {
    Tag,
    Other(Cow<'de, str>),
}

struct KeySeed(&'static str);

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key<'de>, D::Error> {
        let text = TextSeed.deserialize(deserializer)?;
        Ok(if text == self.0 {
            Key::Tag
        } else {
            Key::Other(text)
        })
    }
}

/// A string, borrowed from the input where the deserializer can lend it.
struct TextSeed;

impl<'de> DeserializeSeed<'de> for TextSeed {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for TextSeed {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(text))
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(text.to_owned()))
    }
    fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(text))
    }
}

/// The tag as a variant name and the object's remaining entries as the variant's body,
/// offered to an externally tagged `Deserialize`.
struct Variant<'de, M> {
    name: Cow<'de, str>,
    body: M,
}

impl<'de, M: MapAccess<'de>> Deserializer<'de> for Variant<'de, M> {
    type Error = M::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, M::Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

impl<'de, M: MapAccess<'de>> EnumAccess<'de> for Variant<'de, M> {
    type Error = M::Error;
    type Variant = Body<M>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Body<M>), M::Error> {
        let variant = match self.name {
            Cow::Borrowed(name) => seed.deserialize(BorrowedStrDeserializer::new(name))?,
            Cow::Owned(name) => seed.deserialize(name.into_deserializer())?,
        };
        Ok((variant, Body(self.body)))
    }
}

/// A variant's fields: the entries after the tag.
struct Body<M>(M);

impl<'de, M: MapAccess<'de>> VariantAccess<'de> for Body<M> {
    type Error = M::Error;

    fn unit_variant(mut self) -> Result<(), M::Error> {
        match self.0.next_key::<de::IgnoredAny>()? {
            None => Ok(()),
            Some(_) => Err(de::Error::custom("this variant has no fields")),
        }
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, M::Error> {
        // A newtype variant's struct is flattened beside the tag.
        seed.deserialize(MapAccessDeserializer::new(self.0))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, M::Error> {
        Err(de::Error::invalid_type(de::Unexpected::Map, &visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, M::Error> {
        visitor.visit_map(self.0)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use crate::KernelEvent;
    use crate::event::SerdeTagged;

    /// One event of every kind, as Toka writes them (most taken from the demo's log).
    const SAMPLES: &str = include_str!("../tests/data/events.jsonl");

    fn samples() -> Vec<(String, serde_json::Map<String, serde_json::Value>)> {
        SAMPLES
            .lines()
            .map(|line| {
                let serde_json::Value::Object(map) = serde_json::from_str(line).unwrap() else {
                    panic!("{line}")
                };
                (line.to_string(), map)
            })
            .collect()
    }

    fn ours(json: &str) -> Result<KernelEvent, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    fn oracle(json: &str) -> Result<KernelEvent, String> {
        let mut d = serde_json::Deserializer::from_str(json);
        let event = SerdeTagged::deserialize(&mut d).map_err(|e| e.to_string())?;
        d.end().map_err(|e| e.to_string())?;
        Ok(event)
    }

    /// The object with its entries in the given order, as JSON text.
    fn object(entries: &[(&str, &serde_json::Value)]) -> String {
        let inner: Vec<String> = entries
            .iter()
            .map(|(k, v)| format!("{}:{v}", serde_json::Value::from(*k)))
            .collect();
        format!("{{{}}}", inner.join(","))
    }

    fn agree(json: &str) {
        let (ours, oracle) = (ours(json), oracle(json));
        match (&ours, &oracle) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{json}"),
            (Err(_), Err(_)) => {}
            _ => panic!("{json}: ours {ours:?}, serde's {oracle:?}"),
        }
    }

    #[test]
    fn every_sample_reads_as_serde_reads_it_and_writes_back_byte_for_byte() {
        for (line, _) in samples() {
            let event = ours(&line).unwrap();
            assert_eq!(oracle(&line).unwrap(), event);
            assert_eq!(serde_json::to_string(&event).unwrap(), line);
        }
    }

    #[test]
    fn the_samples_hold_every_kind_of_event() {
        // Exhaustive on purpose: a new variant does not compile here until it has a
        // sample.
        fn index(event: &KernelEvent) -> usize {
            use KernelEvent::*;
            match event {
                AgentSpawned { .. } => 0,
                TaskScheduled { .. } => 1,
                TaskClaimed { .. } => 2,
                TaskCompleted { .. } => 3,
                ObservationEmitted { .. } => 4,
                AgentTerminated { .. } => 5,
                TokenIssued(_) => 6,
                IdempotencyKeyRecorded(_) => 7,
                KeyRotated { .. } => 8,
                KeyRetired { .. } => 9,
                TokenRevoked { .. } => 10,
                ToolRegistered(_) => 11,
                ToolRetired { .. } => 12,
                ToolCalled(_) => 13,
                ToolApproved { .. } => 14,
                ToolDenied { .. } => 15,
                ToolApprovalExpired { .. } => 16,
                ToolStarted { .. } => 17,
                ToolReturned { .. } => 18,
                ToolAbandoned { .. } => 19,
                ModelAnswered { .. } => 20,
                PlannerDesignated { .. } => 21,
                TaskHeartbeat { .. } => 22,
                TaskLeaseExpired { .. } => 23,
                TaskCancelled { .. } => 24,
                TaskRequeued { .. } => 25,
                BudgetSpent(_) => 26,
                Extension(_) => 27,
            }
        }
        let mut covered = [false; 28];
        for (line, _) in samples() {
            covered[index(&ours(&line).unwrap())] = true;
        }
        assert!(covered.iter().all(|&c| c), "{covered:?}");
    }

    #[test]
    fn the_tag_anywhere_but_first_takes_the_slow_road_to_the_same_event() {
        for (line, map) in samples() {
            let expected = ours(&line).unwrap();
            let mut entries: Vec<(&str, &serde_json::Value)> =
                map.iter().map(|(k, v)| (k.as_str(), v)).collect();
            entries.reverse();
            let reversed = object(&entries);
            assert_eq!(ours(&reversed).unwrap(), expected, "{reversed}");
            agree(&reversed);
            // A `serde_json::Value` hands its keys over sorted.
            let value = serde_json::Value::Object(map.clone());
            assert_eq!(KernelEvent::deserialize(value).unwrap(), expected);
        }
    }

    #[test]
    fn bad_objects_are_refused_wherever_the_tag_is() {
        let unknown = serde_json::Value::from("surprise");
        let five = serde_json::Value::from(5);
        for (_, map) in samples() {
            let entries: Vec<(&str, &serde_json::Value)> =
                map.iter().map(|(k, v)| (k.as_str(), v)).collect();
            let kind = &map["kind"];
            let body: Vec<_> = entries
                .iter()
                .filter(|(k, _)| *k != "kind")
                .copied()
                .collect();
            // Each field left out: some are optional, so only agreement is asked.
            for skip in 0..entries.len() {
                let mut e = entries.clone();
                e.remove(skip);
                agree(&object(&e));
            }
            let mut must_fail = Vec::new();
            for tag_first in [true, false] {
                let with_tag = |tag| {
                    let mut e = body.clone();
                    e.insert(if tag_first { 0 } else { e.len() }, ("kind", tag));
                    e
                };
                must_fail.push(with_tag(&unknown));
                must_fail.push(with_tag(&five));
                let mut extra = with_tag(kind);
                extra.push(("no_such_field", &five));
                must_fail.push(extra);
                let mut twice = with_tag(kind);
                twice.push(("kind", kind));
                must_fail.push(twice);
            }
            for case in must_fail.iter().map(|e| object(e)) {
                assert!(ours(&case).is_err(), "{case}");
                agree(&case);
            }
        }
        for not_an_object in ["[]", "\"task_claimed\"", "null", "{}", "5"] {
            assert!(ours(not_an_object).is_err(), "{not_an_object}");
        }
    }

    #[test]
    fn an_escaped_tag_reads_like_a_plain_one() {
        let json = r#"{"kind":"task\u005fclaimed","agent":"232dd964-0d99-84f9-b46b-5e485c802f87","task":"64c55b01-c708-8c51-9a59-e79231381c0e"}"#;
        assert!(matches!(ours(json), Ok(KernelEvent::TaskClaimed { .. })));
        agree(json);
        let escaped_key = json.replacen("\"kind\"", "\"ki\\u006ed\"", 1);
        assert!(matches!(
            ours(&escaped_key),
            Ok(KernelEvent::TaskClaimed { .. })
        ));
    }
}
