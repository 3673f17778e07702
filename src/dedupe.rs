//! The duplicate guard: identical calls make one POST.
//!
//! Agents retry when unsure and sometimes call a tool twice in one turn. A
//! call whose normalised contact equals one that succeeded within the
//! window gets the earlier result back, marked `replayed`; identical calls
//! in flight together share one POST. Failures are never replayed, except
//! to calls that were waiting on that very attempt.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::contact::Contact;
use crate::outcome::{Created, ErrorKind, ToolError};

/// Remembered calls at most; the least recently used is forgotten first.
pub const DEFAULT_CAPACITY: usize = 1024;

type Outcome = Result<Map<String, Value>, ToolError>;

/// How a guarded call was answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Guarded {
    /// This call made the POST. `previous_unknown` is set when an identical
    /// earlier call ended with the contact's existence unknown.
    Sent {
        outcome: Outcome,
        previous_unknown: bool,
    },
    /// An identical call already succeeded, or was in flight and this call
    /// waited for it: no POST was made for this call.
    Replayed(Outcome),
}

pub struct DedupeGuard {
    window: Duration,
    capacity: usize,
    /// Keyed by the normalised contact as compact JSON: one allocation per
    /// entry instead of a struct of ten optional strings.
    slots: Mutex<HashMap<Box<str>, Entry>>,
}

struct Entry {
    slot: Arc<Slot>,
    touched: Instant,
}

#[derive(Default)]
struct Slot {
    /// Bumped each time an attempt finishes, so a waiter can tell that the
    /// attempt it queued behind has ended and take that outcome.
    finished: AtomicU64,
    last: tokio::sync::Mutex<Option<Finished>>,
}

struct Finished {
    at: Instant,
    outcome: Stored,
}

/// An outcome as remembered. A created contact is kept as its JSON text:
/// a parsed map costs several times the memory, and a replay is rare
/// enough that parsing it again is free by comparison.
enum Stored {
    Created(Box<str>),
    /// Boxed: successes are the common case and should not pay for the
    /// size of an error.
    Failed(Box<ToolError>),
}

impl Stored {
    fn new(outcome: &Outcome) -> Self {
        match outcome {
            Ok(contact) => Stored::Created(Value::Object(contact.clone()).to_string().into()),
            Err(error) => Stored::Failed(Box::new(error.clone())),
        }
    }

    fn outcome(&self) -> Outcome {
        match self {
            Stored::Created(text) => match serde_json::from_str(text) {
                Ok(Value::Object(contact)) => Ok(contact),
                // It was written from a map just above; this cannot happen,
                // but an empty contact is better than a panic.
                _ => Ok(Map::new()),
            },
            Stored::Failed(error) => Err(error.as_ref().clone()),
        }
    }

    fn failed(&self) -> Option<&ToolError> {
        match self {
            Stored::Created(_) => None,
            Stored::Failed(error) => Some(error),
        }
    }
}

impl DedupeGuard {
    pub fn new(window: Duration) -> Self {
        Self::with_capacity(window, DEFAULT_CAPACITY)
    }

    pub fn with_capacity(window: Duration, capacity: usize) -> Self {
        Self {
            window,
            capacity: capacity.max(1),
            slots: Mutex::new(HashMap::new()),
        }
    }

    pub fn enabled(&self) -> bool {
        !self.window.is_zero()
    }

    /// Runs `send` unless an identical call makes it unnecessary.
    ///
    /// `send` must not be dropped half-way for a reason the caller cares
    /// about: cancellation should come back as an outcome (kind
    /// `cancelled`), so that it is remembered as "unknown".
    pub async fn run<F, Fut>(&self, contact: &Contact, send: F) -> Guarded
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Outcome>,
    {
        if !self.enabled() {
            return Guarded::Sent {
                outcome: send().await,
                previous_unknown: false,
            };
        }
        let slot = self.slot(key(contact));
        let seen = slot.finished.load(Ordering::Acquire);
        let mut last = slot.last.lock().await;
        if let Some(done) = last.as_ref() {
            let fresh = done.at.elapsed() < self.window;
            let waited_on_it = slot.finished.load(Ordering::Acquire) != seen;
            let failure = done.outcome.failed();
            let was_cancelled = failure.is_some_and(|e| e.kind == ErrorKind::Cancelled);
            if fresh && (failure.is_none() || (waited_on_it && !was_cancelled)) {
                return Guarded::Replayed(done.outcome.outcome());
            }
        }
        let previous_unknown = last.as_ref().is_some_and(|done| {
            done.at.elapsed() < self.window
                && done
                    .outcome
                    .failed()
                    .is_some_and(|e| e.created == Created::Unknown)
        });
        let outcome = send().await;
        *last = Some(Finished {
            at: Instant::now(),
            outcome: Stored::new(&outcome),
        });
        slot.finished.fetch_add(1, Ordering::AcqRel);
        Guarded::Sent {
            outcome,
            previous_unknown,
        }
    }

    fn slot(&self, key: Box<str>) -> Arc<Slot> {
        let now = Instant::now();
        // A poisoned lock only means another call panicked mid-update; the
        // map itself is still a valid cache.
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = slots.get_mut(&key) {
            entry.touched = now;
            return entry.slot.clone();
        }
        if slots.len() >= self.capacity {
            self.evict(&mut slots, now);
        }
        let slot = Arc::new(Slot::default());
        slots.insert(
            key,
            Entry {
                slot: slot.clone(),
                touched: now,
            },
        );
        slot
    }

    /// Drops entries nobody has used within the window, then, if still
    /// full, the least recently used one. An evicted entry still in use
    /// stays alive for its callers; it is only forgotten for later calls.
    fn evict(&self, slots: &mut HashMap<Box<str>, Entry>, now: Instant) {
        slots.retain(|_, e| {
            now.duration_since(e.touched) < self.window || Arc::strong_count(&e.slot) > 1
        });
        while slots.len() >= self.capacity {
            let Some(oldest) = slots
                .iter()
                .min_by_key(|(_, e)| e.touched)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            slots.remove(&oldest);
        }
    }

    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.slots.lock().map(|s| s.len()).unwrap_or(0)
    }
}

/// The contact as compared: parsing already trimmed strings, dropped empty
/// optionals and made advertiser_id a number; email case does not matter.
/// Serialising a struct writes its fields in one fixed order, so equal
/// contacts give equal text.
pub(crate) fn key(contact: &Contact) -> Box<str> {
    let mut key = contact.clone();
    key.email = key.email.to_lowercase();
    serde_json::to_string(&key)
        .unwrap_or_else(|_| format!("{key:?}"))
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::atomic::AtomicUsize;

    fn contact(email: &str) -> Contact {
        Contact {
            advertiser_id: 1,
            email: email.into(),
            name: None,
            given_name: None,
            family_name: None,
            phone: None,
            job_title: None,
            source: None,
            status: None,
            linkedin_profile_url: None,
        }
    }

    fn created() -> Outcome {
        match json!({"id": 1}) {
            Value::Object(m) => Ok(m),
            _ => Ok(Map::new()),
        }
    }

    fn failed(kind: ErrorKind, created: Created) -> Outcome {
        Err(ToolError::new(kind, created, "x"))
    }

    #[tokio::test]
    async fn second_identical_success_is_replayed() {
        let guard = DedupeGuard::new(Duration::from_secs(60));
        let sends = AtomicUsize::new(0);
        let send = || async {
            sends.fetch_add(1, Ordering::SeqCst);
            created()
        };
        let first = guard.run(&contact("a@b.co"), send).await;
        assert!(matches!(
            first,
            Guarded::Sent {
                outcome: Ok(_),
                previous_unknown: false
            }
        ));
        let second = guard.run(&contact("A@B.CO"), send).await;
        assert_eq!(second, Guarded::Replayed(created()));
        assert_eq!(sends.load(Ordering::SeqCst), 1);
        guard.run(&contact("other@b.co"), send).await;
        assert_eq!(sends.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn failures_are_not_replayed_and_unknown_is_flagged() {
        let guard = DedupeGuard::new(Duration::from_secs(60));
        let c = contact("a@b.co");
        let r = guard
            .run(&c, || async {
                failed(ErrorKind::Unauthorized, Created::No)
            })
            .await;
        assert!(matches!(
            r,
            Guarded::Sent {
                outcome: Err(_),
                previous_unknown: false
            }
        ));
        let r = guard
            .run(&c, || async {
                failed(ErrorKind::Timeout, Created::Unknown)
            })
            .await;
        assert!(matches!(
            r,
            Guarded::Sent {
                previous_unknown: false,
                ..
            }
        ));
        let r = guard.run(&c, || async { created() }).await;
        assert_eq!(
            r,
            Guarded::Sent {
                outcome: created(),
                previous_unknown: true
            }
        );
    }

    #[tokio::test]
    async fn concurrent_identical_calls_share_one_send() {
        let guard = DedupeGuard::new(Duration::from_secs(60));
        let sends = AtomicUsize::new(0);
        let c = contact("a@b.co");
        let calls = (0..20).map(|_| {
            guard.run(&c, || async {
                sends.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                failed(ErrorKind::Forbidden, Created::No)
            })
        });
        let results = futures::future::join_all(calls).await;
        assert_eq!(sends.load(Ordering::SeqCst), 1);
        let sent = results
            .iter()
            .filter(|r| matches!(r, Guarded::Sent { .. }))
            .count();
        assert_eq!(sent, 1);
        assert!(results.iter().all(|r| match r {
            Guarded::Sent { outcome, .. } | Guarded::Replayed(outcome) =>
                outcome.as_ref().err().map(|e| e.kind) == Some(ErrorKind::Forbidden),
        }));
    }

    #[tokio::test]
    async fn a_cancelled_leader_does_not_answer_for_its_waiters() {
        let guard = DedupeGuard::new(Duration::from_secs(60));
        let c = contact("a@b.co");
        let leader = guard.run(&c, || async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            failed(ErrorKind::Cancelled, Created::Unknown)
        });
        let waiter = guard.run(&c, || async { created() });
        let (l, w) = tokio::join!(leader, waiter);
        assert!(matches!(
            l,
            Guarded::Sent {
                outcome: Err(_),
                ..
            }
        ));
        assert_eq!(
            w,
            Guarded::Sent {
                outcome: created(),
                previous_unknown: true
            }
        );
    }

    #[tokio::test]
    async fn zero_window_turns_it_off() {
        let guard = DedupeGuard::new(Duration::ZERO);
        let sends = AtomicUsize::new(0);
        for _ in 0..3 {
            guard
                .run(&contact("a@b.co"), || async {
                    sends.fetch_add(1, Ordering::SeqCst);
                    created()
                })
                .await;
        }
        assert_eq!(sends.load(Ordering::SeqCst), 3);
        assert_eq!(guard.remembered(), 0);
    }

    #[tokio::test]
    async fn expired_successes_are_sent_again() {
        let guard = DedupeGuard::new(Duration::from_millis(30));
        let c = contact("a@b.co");
        guard.run(&c, || async { created() }).await;
        tokio::time::sleep(Duration::from_millis(40)).await;
        let r = guard.run(&c, || async { created() }).await;
        assert!(matches!(r, Guarded::Sent { .. }));
    }

    #[tokio::test]
    async fn memory_is_bounded() {
        let guard = DedupeGuard::with_capacity(Duration::from_secs(60), 8);
        for i in 0..100 {
            guard
                .run(&contact(&format!("u{i}@b.co")), || async { created() })
                .await;
        }
        assert!(guard.remembered() <= 8, "{}", guard.remembered());
        // The most recent one is still remembered.
        let r = guard
            .run(&contact("u99@b.co"), || async { created() })
            .await;
        assert!(matches!(r, Guarded::Replayed(_)));
    }
}
