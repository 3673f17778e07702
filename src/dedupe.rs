//! The duplicate guard: identical calls make one POST.
//!
//! Agents retry when unsure and sometimes call a tool twice in one turn. A
//! call whose normalised contact equals one that succeeded within the
//! window gets the earlier result back, marked `replayed`; identical calls
//! in flight together share one POST. Failures are never replayed, except
//! to calls that were waiting on that very attempt.
//!
//! Memory is bounded twice: by entries ([`DEFAULT_CAPACITY`]) and by bytes
//! ([`DEFAULT_BUDGET_BYTES`], keys and remembered outcomes together). An
//! entry whose call is in flight, or has callers waiting on it, is never
//! forgotten, whatever the bounds say: forgetting it would let an identical
//! call make a second POST. Such entries are bounded by the number of calls
//! running at once, and each holds only its key until its outcome is known.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::contact::Contact;
use crate::outcome::{Created, ErrorKind, ToolError};

/// Remembered calls at most; the least recently used is forgotten first.
pub const DEFAULT_CAPACITY: usize = 1024;

/// Bytes the remembered calls may hold together: keys, outcomes and
/// `ENTRY_OVERHEAD_BYTES` each. 1,024 ordinary calls take about a tenth
/// of it; it only bites when HiEnergy answers with very large contacts.
pub const DEFAULT_BUDGET_BYTES: usize = 4 << 20;

/// A created contact whose JSON is longer than this is remembered in part:
/// the members that fit (each at most [`MAX_KEPT_MEMBER_BYTES`]), which keep
/// its id and email. A replay needs to name the contact, not to carry a
/// megabyte that HiEnergy chose to send back; and a contact larger than the
/// whole budget would otherwise be forgotten at once, letting an identical
/// call through to a second POST.
pub const MAX_STORED_CONTACT_BYTES: usize = 16 << 10;

/// The largest member of a large contact that is still remembered.
pub const MAX_KEPT_MEMBER_BYTES: usize = 1 << 10;

/// Counted for every entry besides its key and outcome: the map's slot, the
/// shared slot and allocation headers, roughly. It makes a flood of tiny
/// entries count against the byte budget too.
const ENTRY_OVERHEAD_BYTES: usize = 256;

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
    limits: Limits,
    state: Mutex<State>,
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    window: Duration,
    capacity: usize,
    budget: usize,
}

#[derive(Default)]
struct State {
    /// Keyed by the normalised contact as compact JSON: one allocation per
    /// entry instead of a struct of ten optional strings.
    slots: HashMap<Box<str>, Entry>,
    /// The sum of every entry's `bytes`.
    bytes: usize,
}

struct Entry {
    slot: Arc<Slot>,
    touched: Instant,
    /// What this entry counts against the budget.
    bytes: usize,
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
            Ok(contact) => Stored::Created(remembered_contact(contact)),
            Err(error) => Stored::Failed(Box::new(error.clone())),
        }
    }

    fn outcome(&self) -> Outcome {
        match self {
            Stored::Created(text) => match serde_json::from_str(text) {
                Ok(Value::Object(contact)) => Ok(contact),
                // It was written from a map; this cannot happen, but an
                // empty contact is better than a panic.
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

    /// The heap this outcome holds, near enough.
    fn bytes(&self) -> usize {
        std::mem::size_of::<Finished>()
            + match self {
                Stored::Created(text) => text.len(),
                Stored::Failed(error) => {
                    std::mem::size_of::<ToolError>()
                        + error.message.len()
                        + error.code.as_ref().map_or(0, String::len)
                        + error.request_id.as_ref().map_or(0, String::len)
                        + error
                            .fields
                            .iter()
                            .map(|f| std::mem::size_of_val(f) + f.field.len() + f.problem.len())
                            .sum::<usize>()
                }
            }
    }
}

/// The contact's JSON, cut down to its small members when it is larger than
/// [`MAX_STORED_CONTACT_BYTES`].
fn remembered_contact(contact: &Map<String, Value>) -> Box<str> {
    if let Some(text) = json_within(contact, MAX_STORED_CONTACT_BYTES) {
        return text.into();
    }
    let mut kept = Map::new();
    // `{}` and a comma per member after the first: an upper bound.
    let mut size = 2;
    for (name, value) in contact {
        let Some(value_text) = json_within(value, MAX_KEPT_MEMBER_BYTES) else {
            continue;
        };
        let cost = name.len() + value_text.len() + 4;
        if size + cost <= MAX_STORED_CONTACT_BYTES {
            kept.insert(name.clone(), value.clone());
            size += cost;
        }
    }
    serde_json::to_string(&kept).unwrap_or_default().into()
}

/// The value as JSON text, or None as soon as it passes `limit` bytes:
/// a megabyte member is never written out only to be thrown away.
fn json_within(value: &impl serde::Serialize, limit: usize) -> Option<String> {
    struct Capped {
        text: Vec<u8>,
        limit: usize,
    }
    impl std::io::Write for Capped {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.text.len() + buf.len() > self.limit {
                return Err(std::io::ErrorKind::FileTooLarge.into());
            }
            self.text.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut out = Capped {
        // A created contact is a few hundred bytes: one allocation, not
        // a doubling from eight.
        text: Vec::with_capacity(limit.min(512)),
        limit,
    };
    serde_json::to_writer(&mut out, value).ok()?;
    String::from_utf8(out.text).ok()
}

impl DedupeGuard {
    pub fn new(window: Duration) -> Self {
        Self::with_limits(window, DEFAULT_CAPACITY, DEFAULT_BUDGET_BYTES)
    }

    /// A guard remembering at most `capacity` calls and `budget` bytes,
    /// besides the calls in flight.
    pub fn with_limits(window: Duration, capacity: usize, budget: usize) -> Self {
        Self {
            limits: Limits {
                window,
                capacity: capacity.max(1),
                budget,
            },
            state: Mutex::new(State::default()),
        }
    }

    pub fn enabled(&self) -> bool {
        !self.limits.window.is_zero()
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
        let window = self.limits.window;
        let key = key(contact);
        let slot = self.slot(&key);
        let seen = slot.finished.load(Ordering::Acquire);
        let mut last = slot.last.lock().await;
        if let Some(done) = last.as_ref() {
            let fresh = done.at.elapsed() < window;
            let waited_on_it = slot.finished.load(Ordering::Acquire) != seen;
            let failure = done.outcome.failed();
            let was_cancelled = failure.is_some_and(|e| e.kind == ErrorKind::Cancelled);
            if fresh && (failure.is_none() || (waited_on_it && !was_cancelled)) {
                return Guarded::Replayed(done.outcome.outcome());
            }
        }
        let previous_unknown = last.as_ref().is_some_and(|done| {
            done.at.elapsed() < window
                && done
                    .outcome
                    .failed()
                    .is_some_and(|e| e.created == Created::Unknown)
        });
        let outcome = send().await;
        let stored = Stored::new(&outcome);
        let stored_bytes = stored.bytes();
        *last = Some(Finished {
            at: Instant::now(),
            outcome: stored,
        });
        slot.finished.fetch_add(1, Ordering::AcqRel);
        drop(last);
        self.account(&key, slot, stored_bytes);
        Guarded::Sent {
            outcome,
            previous_unknown,
        }
    }

    /// The entry for `key`, made if new. The caller's clone of the slot is
    /// what marks the entry as in use, so it cannot be evicted meanwhile.
    fn slot(&self, key: &str) -> Arc<Slot> {
        let now = Instant::now();
        let mut state = self.lock();
        if let Some(entry) = state.slots.get_mut(key) {
            entry.touched = now;
            return entry.slot.clone();
        }
        let slot = Arc::new(Slot::default());
        let bytes = ENTRY_OVERHEAD_BYTES + key.len();
        state.slots.insert(
            key.into(),
            Entry {
                slot: slot.clone(),
                touched: now,
                bytes,
            },
        );
        state.bytes += bytes;
        state.evict(now, &self.limits);
        slot
    }

    /// Counts the outcome just stored for `key` against the budget. Takes
    /// the caller's hold on the slot: from here on only waiters keep the
    /// entry from being evicted.
    fn account(&self, key: &str, slot: Arc<Slot>, stored_bytes: usize) {
        let mut state = self.lock();
        let state = &mut *state;
        if let Some(entry) = state.slots.get_mut(key)
            && Arc::ptr_eq(&entry.slot, &slot)
        {
            let bytes = ENTRY_OVERHEAD_BYTES + key.len() + stored_bytes;
            state.bytes = state.bytes.saturating_sub(entry.bytes) + bytes;
            entry.bytes = bytes;
        }
        drop(slot);
        state.evict(Instant::now(), &self.limits);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another call panicked mid-update; the
        // map itself is still a valid cache.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.lock().slots.len()
    }
}

impl State {
    /// Once over either bound, forgets the entries idle for a whole window,
    /// then the least recently used, until within both. Entries in use (an
    /// `Arc` held outside the map: a call in flight or waiting) are never
    /// forgotten, so the map can stay over its bounds while they last.
    fn evict(&mut self, now: Instant, limits: &Limits) {
        if !self.over(limits) {
            return;
        }
        let idle = |e: &Entry| Arc::strong_count(&e.slot) == 1;
        let mut freed = 0;
        self.slots.retain(|_, e| {
            let expired = now.saturating_duration_since(e.touched) >= limits.window;
            let forget = expired && idle(e);
            if forget {
                freed += e.bytes;
            }
            !forget
        });
        self.bytes = self.bytes.saturating_sub(freed);
        // Nearly always one entry goes: a scan per entry forgotten is
        // cheaper than sorting them all.
        while self.over(limits) {
            let Some(oldest) = self
                .slots
                .iter()
                .filter(|(_, e)| idle(e))
                .min_by_key(|(_, e)| e.touched)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(entry) = self.slots.remove(&oldest) {
                self.bytes = self.bytes.saturating_sub(entry.bytes);
            }
        }
    }

    fn over(&self, limits: &Limits) -> bool {
        self.slots.len() > limits.capacity || self.bytes > limits.budget
    }
}

/// The contact as compared: parsing already trimmed strings, dropped empty
/// optionals and made advertiser_id a number. The email is folded to lower
/// case in ASCII only, local part included: every mail provider in use
/// treats `Jane.Doe@` and `jane.doe@` as one mailbox, but Unicode folding
/// goes further (the Kelvin sign `K` becomes `k`) and would take two
/// different addresses for one. Serialising a struct writes its fields in
/// one fixed order, so equal contacts give equal text.
pub(crate) fn key(contact: &Contact) -> Box<str> {
    let mut key = contact.clone();
    key.email.make_ascii_lowercase();
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

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn created() -> Outcome {
        Ok(object(json!({"id": 1})))
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
    async fn emails_differing_beyond_ascii_case_are_different_contacts() {
        let guard = DedupeGuard::new(Duration::from_secs(60));
        let sends = AtomicUsize::new(0);
        let send = || async {
            sends.fetch_add(1, Ordering::SeqCst);
            created()
        };
        guard.run(&contact("kim@example.org"), send).await;
        // U+212A KELVIN SIGN lower-cases to "k" under Unicode rules.
        let r = guard.run(&contact("\u{212A}im@example.org"), send).await;
        assert!(matches!(r, Guarded::Sent { .. }), "{r:?}");
        let r = guard.run(&contact("\u{212A}IM@Example.ORG"), send).await;
        assert!(matches!(r, Guarded::Replayed(_)), "{r:?}");
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
    async fn memory_is_bounded_by_count() {
        let guard = DedupeGuard::with_limits(Duration::from_secs(60), 8, DEFAULT_BUDGET_BYTES);
        for i in 0..100 {
            guard
                .run(&contact(&format!("u{i}@b.co")), || async { created() })
                .await;
        }
        assert_eq!(guard.remembered(), 8);
        // The most recent one is still remembered, the oldest is not.
        let r = guard
            .run(&contact("u99@b.co"), || async { created() })
            .await;
        assert!(matches!(r, Guarded::Replayed(_)));
        let r = guard.run(&contact("u0@b.co"), || async { created() }).await;
        assert!(matches!(r, Guarded::Sent { .. }));
    }

    /// What the entries hold, counted from the entries themselves rather
    /// than from the running total the guard keeps.
    fn held_bytes(guard: &DedupeGuard) -> usize {
        let state = guard.lock();
        state
            .slots
            .iter()
            .map(|(key, entry)| {
                let outcome = match entry.slot.last.try_lock().ok().as_deref() {
                    Some(Some(Finished {
                        outcome: Stored::Created(text),
                        ..
                    })) => text.len(),
                    Some(Some(Finished {
                        outcome: Stored::Failed(e),
                        ..
                    })) => e.message.len(),
                    _ => 0,
                };
                key.len() + outcome
            })
            .sum()
    }

    fn counted_bytes(guard: &DedupeGuard) -> (usize, usize) {
        let state = guard.lock();
        (
            state.bytes,
            state.slots.values().map(|e| e.bytes).sum::<usize>(),
        )
    }

    #[tokio::test]
    async fn memory_is_bounded_in_bytes() {
        let guard = DedupeGuard::new(Duration::from_secs(60));
        // Many members of 10 kB each: too large to keep whole, each member
        // small enough to be kept, so only the byte budget can bound this.
        let member = "x".repeat(900);
        // About 18 kB an entry: 300 of them are over the budget.
        for i in 0..300 {
            let email = format!("u{i}{}@b.co", "y".repeat(2000));
            guard
                .run(&contact(&email), || async {
                    let mut c = object(json!({"id": i}));
                    for m in 0..30 {
                        c.insert(format!("m{m}"), json!(member));
                    }
                    Ok(c)
                })
                .await;
        }
        let held = held_bytes(&guard);
        assert!(held <= DEFAULT_BUDGET_BYTES, "{held}");
        assert!(held > DEFAULT_BUDGET_BYTES / 2, "{held}");
        let (total, sum) = counted_bytes(&guard);
        assert_eq!(total, sum);
        assert!(total <= DEFAULT_BUDGET_BYTES, "{total}");
    }

    #[test]
    fn an_entry_in_flight_counts_its_key() {
        let guard = DedupeGuard::new(Duration::from_secs(60));
        let _in_flight = guard.slot(&"k".repeat(10));
        let expected = ENTRY_OVERHEAD_BYTES + 10;
        assert_eq!(counted_bytes(&guard), (expected, expected));
    }

    #[test]
    fn an_outcome_counts_every_string_it_holds() {
        use std::mem::size_of;
        let mut error = ToolError::new(ErrorKind::Rejected, Created::No, "m".repeat(100));
        error.code = Some("c".repeat(10));
        error.request_id = Some("r".repeat(20));
        error.fields = vec![
            crate::outcome::FieldProblem::new("f", "p".repeat(3)),
            crate::outcome::FieldProblem::new("g".repeat(5), "q"),
        ];
        let problem = size_of::<crate::outcome::FieldProblem>();
        assert_eq!(
            Stored::new(&Err(error)).bytes(),
            size_of::<Finished>()
                + size_of::<ToolError>()
                + 100
                + 10
                + 20
                + (problem + 4)
                + (problem + 6)
        );
        let contact = object(json!({"id": 1}));
        assert_eq!(
            Stored::new(&Ok(contact)).bytes(),
            size_of::<Finished>() + r#"{"id":1}"#.len()
        );
    }

    #[tokio::test]
    async fn a_large_contact_is_remembered_by_its_small_members() {
        let guard = DedupeGuard::new(Duration::from_secs(60));
        let c = contact("big@b.co");
        let big = object(json!({
            "id": 9, "email": "big@b.co", "advertiser_id": 1,
            "notes": "n".repeat(1 << 20),
            "tags": ["t", "u"],
        }));
        let sent = guard.run(&c, || async { Ok(big.clone()) }).await;
        assert_eq!(
            sent,
            Guarded::Sent {
                outcome: Ok(big.clone()),
                previous_unknown: false
            }
        );
        let replay = guard.run(&c, || async { created() }).await;
        assert_eq!(
            replay,
            Guarded::Replayed(Ok(object(json!({
                "id": 9, "email": "big@b.co", "advertiser_id": 1, "tags": ["t", "u"]
            }))))
        );
        assert!(held_bytes(&guard) <= MAX_STORED_CONTACT_BYTES + 100);
    }

    #[test]
    fn a_contact_at_the_limit_is_kept_whole() {
        let pad = |n: usize| object(json!({"id": 1, "notes": "n".repeat(n)}));
        // {"id":1,"notes":""} is 19 bytes.
        let exact = pad(MAX_STORED_CONTACT_BYTES - 19);
        assert_eq!(remembered_contact(&exact).len(), MAX_STORED_CONTACT_BYTES);
        let over = pad(MAX_STORED_CONTACT_BYTES - 18);
        assert_eq!(&*remembered_contact(&over), r#"{"id":1}"#);
        // A member at its own limit is kept, one byte more is not.
        let member = |n: usize| {
            let mut c = pad(MAX_STORED_CONTACT_BYTES);
            c.insert("m".into(), json!("v".repeat(n - 2)));
            remembered_contact(&c)
        };
        assert!(member(MAX_KEPT_MEMBER_BYTES).contains("\"m\""));
        assert!(!member(MAX_KEPT_MEMBER_BYTES + 1).contains("\"m\""));
    }

    #[tokio::test]
    async fn a_call_in_flight_is_never_forgotten() {
        let guard = DedupeGuard::with_limits(Duration::from_secs(60), 4, DEFAULT_BUDGET_BYTES);
        let sends = AtomicUsize::new(0);
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let a = contact("a@b.co");
        let first = guard.run(&a, || async {
            sends.fetch_add(1, Ordering::SeqCst);
            let _ = released.await;
            created()
        });
        let rest = async {
            while sends.load(Ordering::SeqCst) == 0 {
                tokio::task::yield_now().await;
            }
            for i in 0..10 {
                guard
                    .run(&contact(&format!("u{i}@b.co")), || async { created() })
                    .await;
            }
            assert_eq!(guard.remembered(), 4);
            let again = guard.run(&a, || async {
                sends.fetch_add(1, Ordering::SeqCst);
                created()
            });
            let (again, _) = tokio::join!(again, async {
                tokio::task::yield_now().await;
                let _ = release.send(());
            });
            again
        };
        let (first, again) = tokio::join!(first, rest);
        assert!(matches!(first, Guarded::Sent { outcome: Ok(_), .. }));
        assert_eq!(again, Guarded::Replayed(created()));
        assert_eq!(sends.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_poisoned_lock_still_counts_and_guards() {
        let guard = DedupeGuard::new(Duration::from_secs(60));
        let c = contact("a@b.co");
        guard.run(&c, || async { created() }).await;
        let poison = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _held = guard.state.lock();
            panic!("poison the lock");
        }));
        assert!(poison.is_err());
        assert!(guard.state.is_poisoned());
        assert_eq!(guard.remembered(), 1);
        let r = guard.run(&c, || async { created() }).await;
        assert!(matches!(r, Guarded::Replayed(_)));
    }

    // ------------------------------------------------------------ eviction

    const WINDOW: Duration = Duration::from_secs(10);

    /// A state with one entry per `(name, touched, bytes, in_use)`; the
    /// returned slots are the holds that make entries in use.
    fn state(entries: &[(&str, Instant, usize, bool)]) -> (State, Vec<Arc<Slot>>) {
        let mut state = State::default();
        let mut holds = Vec::new();
        for (name, touched, bytes, in_use) in entries {
            let slot = Arc::new(Slot::default());
            if *in_use {
                holds.push(slot.clone());
            }
            state.slots.insert(
                (*name).into(),
                Entry {
                    slot,
                    touched: *touched,
                    bytes: *bytes,
                },
            );
            state.bytes += bytes;
        }
        (state, holds)
    }

    fn names(state: &State) -> Vec<&str> {
        let mut names: Vec<&str> = state.slots.keys().map(|k| &**k).collect();
        names.sort_unstable();
        names
    }

    fn limits(capacity: usize, budget: usize) -> Limits {
        Limits {
            window: WINDOW,
            capacity,
            budget,
        }
    }

    #[test]
    fn nothing_is_forgotten_at_exactly_both_bounds() {
        let t0 = Instant::now();
        let (mut s, _holds) = state(&[("a", t0, 100, false), ("b", t0, 100, false)]);
        // Both long expired, but neither bound is exceeded.
        s.evict(t0 + WINDOW * 100, &limits(2, 200));
        assert_eq!(names(&s), ["a", "b"]);
        assert_eq!(s.bytes, 200);
    }

    #[test]
    fn over_by_count_alone_forgets_the_least_recently_used() {
        let t0 = Instant::now();
        let secs = Duration::from_secs;
        let (mut s, _holds) = state(&[
            ("a", t0, 1, false),
            ("b", t0 + secs(2), 1, false),
            ("c", t0 + secs(1), 1, false),
        ]);
        s.evict(t0 + secs(3), &limits(2, usize::MAX));
        assert_eq!(names(&s), ["b", "c"]);
        assert_eq!(s.bytes, 2);
        // Touched later than b, c stays when one more must go.
        let (mut s, _holds) = state(&[
            ("a", t0, 1, false),
            ("b", t0 + secs(2), 1, false),
            ("c", t0 + secs(3), 1, false),
        ]);
        s.evict(t0 + secs(3), &limits(1, usize::MAX));
        assert_eq!(names(&s), ["c"]);
    }

    #[test]
    fn over_by_bytes_alone_forgets_until_within_the_budget() {
        let t0 = Instant::now();
        let secs = Duration::from_secs;
        let (mut s, _holds) = state(&[
            ("a", t0, 100, false),
            ("b", t0 + secs(1), 100, false),
            ("c", t0 + secs(2), 100, false),
        ]);
        s.evict(t0 + secs(3), &limits(100, 250));
        assert_eq!(names(&s), ["b", "c"]);
        assert_eq!(s.bytes, 200);
        // One byte over is over.
        let (mut s, _holds) = state(&[("a", t0, 100, false), ("b", t0 + secs(1), 101, false)]);
        s.evict(t0 + secs(3), &limits(100, 200));
        assert_eq!(names(&s), ["b"]);
        assert_eq!(s.bytes, 101);
    }

    #[test]
    fn once_over_every_idle_entry_a_window_old_goes() {
        let t0 = Instant::now();
        let secs = Duration::from_secs;
        let now = t0 + secs(11);
        let (mut s, _holds) = state(&[
            ("a", t0, 10, false),                     // 11 s old
            ("b", now - WINDOW, 10, false),           // exactly a window old
            ("c", now - WINDOW + secs(1), 10, false), // just inside
            ("d", now, 10, false),
        ]);
        // Over by one entry, yet both expired ones go.
        s.evict(now, &limits(3, usize::MAX));
        assert_eq!(names(&s), ["c", "d"]);
        assert_eq!(s.bytes, 20);
    }

    #[test]
    fn entries_in_use_are_never_forgotten() {
        let t0 = Instant::now();
        let secs = Duration::from_secs;
        let (mut s, holds) = state(&[
            ("a", t0, 100, true),           // expired and oldest, but in use
            ("b", t0 + secs(1), 100, true), // in use
            ("c", t0 + secs(30), 100, false),
        ]);
        s.evict(t0 + secs(30), &limits(1, 0));
        // Still over both bounds: in-use entries are bounded by the calls
        // running, not by the limits.
        assert_eq!(names(&s), ["a", "b"]);
        assert_eq!(s.bytes, 200);
        drop(holds);
        s.evict(t0 + secs(5), &limits(1, 1_000));
        assert_eq!(names(&s), ["b"]);
    }
}
