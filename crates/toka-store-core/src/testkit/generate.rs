//! Events for tests: realistic sizes, distinct ids.

use toka_types::{EntityId, Timestamp};

use crate::chain::seal;
use crate::record::{EventRecord, Head, NewEvent};
use crate::sealed::Sealed;

/// A test event numbered `n`, with a payload of about `payload_len` bytes of JSON.
pub fn event(n: u64, payload_len: usize) -> NewEvent {
    let filler = "x".repeat(payload_len.saturating_sub(40));
    NewEvent {
        id: EntityId::from_u128((0x7e57 << 64) | u128::from(n)),
        kind: "test.event".into(),
        timestamp: Timestamp::from_micros(1_800_000_000_000_000 + n),
        intent: EntityId::from_u128(u128::from(n / 4)),
        parents: if n > 1 {
            vec![EntityId::from_u128((0x7e57 << 64) | u128::from(n - 1))]
        } else {
            vec![]
        },
        origin: EntityId::from_u128(42),
        jti: Some("test-jti".into()),
        payload: format!("{{\"n\":{n},\"pad\":\"{filler}\"}}").into_bytes(),
    }
}

/// `count` sealed test events after `head` (numbered from `head.seq + 1`).
pub fn batch(head: Head, count: usize, payload_len: usize) -> Vec<EventRecord> {
    sealed_batch(head, count, payload_len).into_records()
}

/// [`batch`] as a [`Sealed`], for `append_sealed`.
pub fn sealed_batch(head: Head, count: usize, payload_len: usize) -> Sealed {
    let events = (0..count as u64)
        .map(|i| event(head.seq + 1 + i, payload_len))
        .collect();
    Sealed::new(head, events)
}

/// `count` sealed test events from seq 1 in which every third event repeats the payload
/// of the one before it: a log whose payloads a driver must store once each.
pub fn log_with_repeated_payloads(count: u64) -> Vec<EventRecord> {
    let events = (1..=count)
        .map(|n| {
            let mut e = event(n, 100);
            if n % 3 == 0 {
                e.payload = event(n - 1, 100).payload;
            }
            e
        })
        .collect();
    seal(Head::EMPTY, events)
}
