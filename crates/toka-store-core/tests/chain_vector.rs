#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]
//! The chain test vector of the crate docs, and properties of the chain.

use proptest::prelude::*;
use toka_store_core::*;
use toka_types::{EntityId, Timestamp};

fn id(n: u128) -> EntityId {
    EntityId::from_u128(n)
}

fn vector_events() -> Vec<NewEvent> {
    (1..=3u128)
        .map(|n| NewEvent {
            id: id(n),
            kind: "test.event".into(),
            timestamp: Timestamp::from_micros(n as u64 * 1_000_000),
            intent: id(0x0a),
            parents: if n == 3 { vec![id(2)] } else { vec![] },
            origin: id(0x0b),
            jti: if n == 1 { None } else { Some("jti-1".into()) },
            payload: format!("{{\"n\":{n}}}").into_bytes(),
        })
        .collect()
}

/// The published vector: (seq, payload_hash, digest).
const VECTOR: [(u64, &str, &str); 3] = [
    (
        1,
        "d88775a5e63750fdc32c2ffeb7d3b456e0ca8cb74a2b71fad447eb67e05d7d30",
        "3a25f8ce6b573762fdcf93da7030540172c0d0db1595685eae63d38cbc5805dd",
    ),
    (
        2,
        "232172f768d1cbbbb48d1ae201e7a5df5b56236ebf11716bb68fbd5eb07ec0be",
        "4a385acf8b6c1b618973b36462fab191e62cd6bc00c05ceeac564a5572c2e7d2",
    ),
    (
        3,
        "f1ec0f25e982ad12ae821b4c397a57583c5d5b9500be7726b9d7032e06f97c33",
        "8c68da5bb11a809351ab76e1b88abd717df5b8498ed2b985fac6278df34bdf13",
    ),
];

#[test]
fn test_vector_matches_the_docs() {
    let sealed = seal(Head::EMPTY, vector_events());
    for (record, (seq, ph, d)) in sealed.iter().zip(VECTOR) {
        assert_eq!(record.header.seq, seq);
        assert_eq!(record.header.payload_hash.to_string(), ph);
        assert_eq!(record.header.digest.to_string(), d);
    }
}

#[test]
fn digest_recomputes_by_hand_from_the_documented_layout() {
    let sealed = seal(Head::EMPTY, vector_events());
    let r = &sealed[2];
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"toka.chain.v1");
    bytes.extend_from_slice(sealed[1].header.digest.as_bytes());
    bytes.extend_from_slice(&3u64.to_le_bytes());
    bytes.extend_from_slice(&id(3).to_bytes());
    bytes.extend_from_slice(&10u32.to_le_bytes());
    bytes.extend_from_slice(b"test.event");
    bytes.extend_from_slice(&3_000_000u64.to_le_bytes());
    bytes.extend_from_slice(&id(0x0a).to_bytes());
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&id(2).to_bytes());
    bytes.extend_from_slice(&id(0x0b).to_bytes());
    bytes.extend_from_slice(&5u32.to_le_bytes());
    bytes.extend_from_slice(b"jti-1");
    bytes.extend_from_slice(blake3::hash(b"{\"n\":3}").as_bytes());
    assert_eq!(r.header.digest.0, *blake3::hash(&bytes).as_bytes());
}

fn arb_events() -> impl Strategy<Value = Vec<NewEvent>> {
    proptest::collection::vec(
        (
            any::<u128>(),
            "[a-z.]{1,20}",
            any::<u64>(),
            proptest::collection::vec(any::<u8>(), 0..64),
            proptest::option::of("[a-z0-9-]{1,10}"),
        ),
        1..20,
    )
    .prop_map(|items| {
        items
            .into_iter()
            .enumerate()
            .map(|(i, (n, kind, ts, payload, jti))| NewEvent {
                id: id(n ^ i as u128),
                kind,
                timestamp: Timestamp::from_micros(ts),
                intent: id(7),
                parents: vec![],
                origin: id(8),
                jti,
                payload,
            })
            .collect()
    })
}

proptest! {
    /// A sealed batch always passes check_batch; flipping any bit of any payload or
    /// changing any header field makes it fail at that record.
    #[test]
    fn any_single_change_breaks_the_chain_at_that_record(events in arb_events(), pick in any::<prop::sample::Index>(), field in 0u8..6) {
        let mut ids = std::collections::HashSet::new();
        prop_assume!(events.iter().all(|e| ids.insert(e.id)));
        let sealed = seal(Head::EMPTY, events);
        prop_assert!(check_batch(&Head::EMPTY, &sealed).is_ok());
        let mut tampered = sealed.clone();
        let i = pick.index(tampered.len());
        let r = &mut tampered[i];
        match field {
            0 => r.payload.push(0),
            1 => r.header.kind.push('x'),
            2 => r.header.timestamp = Timestamp::from_micros(r.header.timestamp.as_micros() ^ 1),
            3 => r.header.origin = id(r.header.origin.as_u128() ^ 1),
            4 => r.header.jti = Some(format!("{}x", r.header.jti.clone().unwrap_or_default())),
            _ => r.header.parents.push(id(1)),
        }
        match check_batch(&Head::EMPTY, &tampered) {
            Err(AppendError::InvalidBatch { seq, .. }) => prop_assert_eq!(seq, i as u64 + 1),
            other => prop_assert!(false, "tampering not detected: {:?}", other),
        }
    }

    /// Sealing in two parts gives the same records as sealing at once.
    #[test]
    fn sealing_is_incremental(events in arb_events(), split in any::<prop::sample::Index>()) {
        let whole = seal(Head::EMPTY, events.clone());
        let k = split.index(events.len() + 1);
        let first = seal(Head::EMPTY, events[..k].to_vec());
        let head = head_after(Head::EMPTY, &first);
        let second = seal(head, events[k..].to_vec());
        prop_assert_eq!(whole, [first, second].concat());
    }
}

#[test]
fn check_batch_refuses_gaps_and_foreign_heads() {
    let sealed = seal(Head::EMPTY, vector_events());
    let head = head_after(Head::EMPTY, &sealed[..1]);
    assert!(check_batch(&head, &sealed[1..]).is_ok());
    // Skipping a record.
    assert!(matches!(
        check_batch(&head, &sealed[2..]),
        Err(AppendError::InvalidBatch { seq: 3, .. })
    ));
    // Right seq, wrong previous digest.
    let other = Head {
        seq: 1,
        digest: Hash32::of(b"another log"),
    };
    assert!(matches!(
        check_batch(&other, &sealed[1..]),
        Err(AppendError::InvalidBatch { seq: 2, .. })
    ));
}

#[test]
fn records_round_trip_through_json_with_readable_payloads() {
    let sealed = seal(Head::EMPTY, vector_events());
    let json = serde_json::to_string(&sealed[0]).unwrap();
    assert!(json.contains(r#""payload":"{\"n\":1}""#), "{json}");
    assert_eq!(
        serde_json::from_str::<EventRecord>(&json).unwrap(),
        sealed[0]
    );
    let mut binary = sealed[0].clone();
    binary.payload = vec![0xff, 0x00];
    let json = serde_json::to_string(&binary).unwrap();
    assert!(json.contains("base64"), "{json}");
    assert_eq!(serde_json::from_str::<EventRecord>(&json).unwrap(), binary);
}

/// The documented digest input, written out in one piece (the oracle for the buffered
/// hashing in `chain_digest`).
fn layout(prev: &Hash32, h: &EventHeader) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"toka.chain.v1");
    bytes.extend_from_slice(prev.as_bytes());
    bytes.extend_from_slice(&h.seq.to_le_bytes());
    bytes.extend_from_slice(&h.id.to_bytes());
    bytes.extend_from_slice(&(h.kind.len() as u32).to_le_bytes());
    bytes.extend_from_slice(h.kind.as_bytes());
    bytes.extend_from_slice(&h.timestamp.as_micros().to_le_bytes());
    bytes.extend_from_slice(&h.intent.to_bytes());
    bytes.extend_from_slice(&(h.parents.len() as u32).to_le_bytes());
    for p in &h.parents {
        bytes.extend_from_slice(&p.to_bytes());
    }
    bytes.extend_from_slice(&h.origin.to_bytes());
    let jti = h.jti.as_deref().unwrap_or("");
    bytes.extend_from_slice(&(jti.len() as u32).to_le_bytes());
    bytes.extend_from_slice(jti.as_bytes());
    bytes.extend_from_slice(h.payload_hash.as_bytes());
    bytes
}

proptest! {
    /// Whatever the field sizes (a kind or jti longer than the hashing buffer, many
    /// parents), the digest is BLAKE3 of the documented layout.
    #[test]
    fn digest_is_the_hash_of_the_layout_whatever_the_field_sizes(
        prev in any::<[u8; 32]>(),
        seq in any::<u64>(),
        kind in "[a-z.]{1,700}",
        jti in proptest::option::of("[a-z0-9-]{0,1100}"),
        parents in proptest::collection::vec(any::<u128>(), 0..40),
        ids in any::<(u128, u128, u128)>(),
    ) {
        let header = EventHeader {
            seq,
            id: id(ids.0),
            kind,
            timestamp: Timestamp::from_micros(seq / 3),
            intent: id(ids.1),
            parents: parents.into_iter().map(id).collect(),
            origin: id(ids.2),
            jti,
            payload_hash: Hash32::of(b"payload"),
            digest: Hash32::ZERO,
        };
        let prev = Hash32(prev);
        prop_assert_eq!(
            chain_digest(&prev, &header).0,
            *blake3::hash(&layout(&prev, &header)).as_bytes()
        );
    }
}

#[test]
fn parents_json_is_read_back_and_is_plain_json() {
    for n in [0usize, 1, 2, 7] {
        let parents: Vec<EntityId> = (0..n as u128).map(|i| id(i * 0x1234_5678_9abc)).collect();
        let json = parents_json(&parents);
        assert_eq!(parents_from_json(&json).unwrap(), parents);
        let strings: Vec<String> = serde_json::from_str(&json).unwrap();
        assert_eq!(
            strings,
            parents.iter().map(|p| p.to_string()).collect::<Vec<_>>()
        );
    }
}
