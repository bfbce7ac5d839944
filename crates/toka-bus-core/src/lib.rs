//! In-memory broadcast of events to live subscribers.
//!
//! The runtime publishes each event on the bus only after it is durable in the log;
//! subscribers (the HTTP event stream, agents, metrics) receive them in publish order.
//!
//! The bus never blocks the publisher: it keeps the last `capacity` events, and a
//! subscriber that falls further behind is told how many it missed
//! ([`RecvError::Lagged`]) and continues from the oldest event still kept. Catching up
//! on what was missed is the subscriber's job (the runtime reads it back from the log).
//!
//! What this crate is not: durable, ordered across processes, or a queue with
//! acknowledgements. It is the last hop from the commit pipeline to in-process readers.
//!
//! ```
//! use toka_bus_core::{BroadcastBus, EventBus, RecvError};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let bus = BroadcastBus::new(2);
//! let mut sub = bus.subscribe();
//! for i in 0..3 { bus.publish(i); }
//! assert_eq!(sub.recv().await, Err(RecvError::Lagged(1)));
//! assert_eq!(sub.recv().await, Ok(1));
//! # });
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use thiserror::Error;
use tokio::sync::broadcast;

/// Why a subscriber got no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RecvError {
    /// The subscriber fell behind and this many events were dropped for it; the next
    /// `recv` returns the oldest event still kept.
    #[error("subscriber lagged: {0} events were dropped")]
    Lagged(u64),
    /// The bus is gone and every kept event has been received.
    #[error("event bus closed")]
    Closed,
}

/// Publishes events to every current subscriber.
pub trait EventBus<E>: Send + Sync {
    /// Sends `event` to every subscriber; returns how many there were. Never blocks.
    fn publish(&self, event: E) -> usize;
    /// A new subscriber that receives events published from now on.
    fn subscribe(&self) -> Subscription<E>;
    /// How many subscribers there are now.
    fn subscriber_count(&self) -> usize;
}

/// One subscriber's end of a bus.
#[derive(Debug)]
pub struct Subscription<E> {
    receiver: broadcast::Receiver<E>,
}

impl<E: Clone> Subscription<E> {
    /// The next event, waiting for one if none is pending.
    pub async fn recv(&mut self) -> Result<E, RecvError> {
        self.receiver.recv().await.map_err(|e| match e {
            broadcast::error::RecvError::Lagged(n) => RecvError::Lagged(n),
            broadcast::error::RecvError::Closed => RecvError::Closed,
        })
    }

    /// The next event if one is pending, without waiting; `Ok(None)` if none is.
    pub fn try_recv(&mut self) -> Result<Option<E>, RecvError> {
        match self.receiver.try_recv() {
            Ok(e) => Ok(Some(e)),
            Err(broadcast::error::TryRecvError::Empty) => Ok(None),
            Err(broadcast::error::TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
            Err(broadcast::error::TryRecvError::Closed) => Err(RecvError::Closed),
        }
    }
}

/// An [`EventBus`] on a tokio broadcast channel keeping the last `capacity` events.
#[derive(Debug, Clone)]
pub struct BroadcastBus<E> {
    sender: broadcast::Sender<E>,
}

impl<E: Clone + Send> BroadcastBus<E> {
    /// A bus keeping the last `capacity` events for slow subscribers (at least 1).
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self { sender }
    }
}

impl<E: Clone + Send + 'static> EventBus<E> for BroadcastBus<E> {
    fn publish(&self, event: E) -> usize {
        // An error only means there is no subscriber right now, which is fine.
        self.sender.send(event).unwrap_or(0)
    }

    fn subscribe(&self) -> Subscription<E> {
        Subscription {
            receiver: self.sender.subscribe(),
        }
    }

    fn subscriber_count(&self) -> usize {
        self.sender.receiver_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_subscriber_gets_every_event_in_order() {
        let bus = BroadcastBus::new(16);
        let mut a = bus.subscribe();
        let mut b = bus.subscribe();
        assert_eq!(bus.subscriber_count(), 2);
        for i in 0..10 {
            assert_eq!(bus.publish(i), 2);
        }
        for i in 0..10 {
            assert_eq!(a.recv().await, Ok(i));
            assert_eq!(b.recv().await, Ok(i));
        }
        assert_eq!(a.try_recv(), Ok(None));
    }

    #[tokio::test]
    async fn slow_subscriber_is_told_it_lagged_and_publisher_never_blocks() {
        let bus = BroadcastBus::new(4);
        let mut slow = bus.subscribe();
        // Far more than capacity: publish returns immediately each time.
        for i in 0..1000u32 {
            bus.publish(i);
        }
        assert_eq!(slow.recv().await, Err(RecvError::Lagged(996)));
        for i in 996..1000 {
            assert_eq!(slow.recv().await, Ok(i));
        }
    }

    #[tokio::test]
    async fn closed_after_bus_dropped() {
        let bus = BroadcastBus::new(4);
        let mut sub = bus.subscribe();
        bus.publish(1);
        drop(bus);
        assert_eq!(sub.recv().await, Ok(1));
        assert_eq!(sub.recv().await, Err(RecvError::Closed));
    }

    #[test]
    fn is_object_safe() {
        let bus: Box<dyn EventBus<u8>> = Box::new(BroadcastBus::new(1));
        assert_eq!(bus.publish(1), 0);
    }
}
