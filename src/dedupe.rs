//! The duplicate guard: identical calls make one POST.
//!
//! Agents retry when unsure and sometimes call a tool twice in one turn. A
//! call whose normalised contact equals one that succeeded within the
//! window gets the earlier result back, marked `replayed`; identical calls
//! in flight together share one POST. Failures are never replayed, except
//! to calls that were waiting on that very attempt.
//!
//! Memory is bounded by entries: at most [`CAPACITY`] calls are remembered,
//! the least recently used forgotten first, and each outcome is capped at
//! [`MAX_STORED_BYTES`] (a contact is kept by its small members, id
//! included; an error by its first field problems). An entry is found by a
//! 128-bit keyed hash of the contact, 16 bytes however long its fields
//! (up to 36 KiB of text). So the guard holds at most
//! 1,024 × (16 KiB + about 200 bytes) ≈ 16.2 MiB; an ordinary entry takes a
//! few hundred bytes. An entry whose call is in flight, or has callers
//! waiting on it, is never forgotten: forgetting it would let an identical
//! call make a second POST. Those are bounded by the calls running at once.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::contact::Contact;
use crate::outcome::{Created, ErrorKind, ToolError};

/// Remembered calls at most; the least recently used is forgotten first.
pub const CAPACITY: usize = 1024;

/// The most an outcome is remembered by, and a created contact returned
/// by: a contact whose JSON is longer is cut to the members that fit (each
/// at most [`MAX_KEPT_MEMBER_BYTES`]), which keep its id and email. The
/// agent needs to name the contact, not to carry a megabyte that HiEnergy
/// chose to send back, and a list of 100 such contacts stays a reply of
/// under 2 MiB.
pub const MAX_STORED_BYTES: usize = 16 << 10;

/// The largest member of a large contact that is still kept.
pub const MAX_KEPT_MEMBER_BYTES: usize = 1 << 10;

/// How one send of a contact ended: the one vocabulary of both tools.
#[derive(Debug, Clone, PartialEq)]
pub enum Sent {
    /// HiEnergy created the contact, now or (`replayed`) for an identical
    /// earlier call. `previous_unknown`: an identical earlier call ended
    /// with created "unknown", so this one may be a duplicate.
    Created {
        contact: Map<String, Value>,
        replayed: bool,
        previous_unknown: bool,
    },
    /// It was sent, or waited on an identical call that was, and failed.
    Failed {
        error: ToolError,
        previous_unknown: bool,
    },
    /// It never left: its error says created "no". Not remembered, so an
    /// identical call waiting behind it sends for itself.
    NotSent(ToolError),
    /// Not sent: HiEnergy already lists this contact, as given here. Not
    /// remembered either: no POST was made, and an identical call with
    /// `if_exists: "add"` must not get this back as a replay.
    Existing(Map<String, Value>),
}

impl Sent {
    /// HiEnergy's answer to a POST made for this call, the contact capped
    /// as it is remembered, so that a replay returns the very same one.
    pub fn answered(answer: Result<Map<String, Value>, ToolError>) -> Self {
        match answer {
            Ok(contact) => Sent::Created {
                contact: capped(contact),
                replayed: false,
                previous_unknown: false,
            },
            Err(error) => Sent::Failed {
                error,
                previous_unknown: false,
            },
        }
    }

    fn with_previous_unknown(mut self, unknown: bool) -> Self {
        if let Sent::Created {
            previous_unknown, ..
        }
        | Sent::Failed {
            previous_unknown, ..
        } = &mut self
        {
            *previous_unknown = unknown;
        }
        self
    }
}

pub struct DedupeGuard {
    window: Duration,
    capacity: usize,
    /// Two independently keyed hashers: 128 bits of key.
    hashers: [RandomState; 2],
    entries: Mutex<HashMap<u128, Entry>>,
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
    fn replay(&self) -> Sent {
        match self {
            Stored::Created(text) => Sent::Created {
                // Written from a map; an empty contact is better than a
                // panic should it somehow not read back as one.
                contact: serde_json::from_str(text).unwrap_or_default(),
                replayed: true,
                previous_unknown: false,
            },
            Stored::Failed(error) => Sent::Failed {
                error: error.as_ref().clone(),
                previous_unknown: false,
            },
        }
    }

    fn failed(&self) -> Option<&ToolError> {
        match self {
            Stored::Created(_) => None,
            Stored::Failed(error) => Some(error),
        }
    }
}

/// The contact, or, when its JSON is longer than [`MAX_STORED_BYTES`],
/// the members that fit: the small ones, in order.
pub fn capped(contact: Map<String, Value>) -> Map<String, Value> {
    if json_within(&contact, MAX_STORED_BYTES).is_some() {
        return contact;
    }
    let mut kept = Map::new();
    // `{}` and a comma per member after the first: an upper bound.
    let mut size = 2;
    for (name, value) in contact {
        let Some(value_text) = json_within(&value, MAX_KEPT_MEMBER_BYTES) else {
            continue;
        };
        let cost = name.len() + value_text.len() + 4;
        if size + cost <= MAX_STORED_BYTES {
            size += cost;
            kept.insert(name, value);
        }
    }
    kept
}

/// The contact's JSON text, capped. [`Sent::answered`] has capped it
/// already, so this is nearly always the first branch.
fn remembered(contact: &Map<String, Value>) -> Box<str> {
    json_within(contact, MAX_STORED_BYTES)
        .unwrap_or_else(|| serde_json::to_string(&capped(contact.clone())).unwrap_or_default())
        .into()
}

/// The error with its field problems cut to what fits in
/// [`MAX_STORED_BYTES`]; its other texts are already short.
fn capped_error(error: &ToolError) -> ToolError {
    let mut error = error.clone();
    let mut size = error.message.len()
        + error.code.as_ref().map_or(0, String::len)
        + error.request_id.as_ref().map_or(0, String::len);
    let fit = error
        .fields
        .iter()
        .take_while(|f| {
            size += f.field.len() + f.problem.len();
            size <= MAX_STORED_BYTES
        })
        .count();
    error.fields.truncate(fit);
    error
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
        Self::with_capacity(window, CAPACITY)
    }

    /// A guard remembering at most `capacity` calls besides those in flight.
    pub fn with_capacity(window: Duration, capacity: usize) -> Self {
        Self {
            window,
            capacity: capacity.max(1),
            hashers: [RandomState::new(), RandomState::new()],
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn enabled(&self) -> bool {
        !self.window.is_zero()
    }

    /// Sends through `send` unless an identical call makes it unnecessary.
    ///
    /// `stopped` ends only the wait behind an identical call in flight,
    /// with what it resolves to; once this call's own `send` has begun it
    /// runs to its end, so that its outcome is known and remembered.
    pub async fn run<S, F, Fut>(&self, contact: &Contact, stopped: S, send: F) -> Sent
    where
        S: Future<Output = Sent>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Sent>,
    {
        if !self.enabled() {
            return send().await;
        }
        let window = self.window;
        let slot = self.slot(self.hash(contact));
        let seen = slot.finished.load(Ordering::Acquire);
        let mut last = tokio::select! {
            biased;
            last = slot.last.lock() => last,
            sent = stopped => return sent,
        };
        if let Some(done) = last.as_ref() {
            let fresh = done.at.elapsed() < window;
            let waited_on_it = slot.finished.load(Ordering::Acquire) != seen;
            let failure = done.outcome.failed();
            let was_cancelled = failure.is_some_and(|e| e.kind == ErrorKind::Cancelled);
            if fresh && (failure.is_none() || (waited_on_it && !was_cancelled)) {
                return done.outcome.replay();
            }
        }
        let previous_unknown = last.as_ref().is_some_and(|done| {
            done.at.elapsed() < window
                && done
                    .outcome
                    .failed()
                    .is_some_and(|e| e.created == Created::Unknown)
        });
        let sent = send().await;
        let outcome = match &sent {
            Sent::Created { contact, .. } => Stored::Created(remembered(contact)),
            Sent::Failed { error, .. } => Stored::Failed(Box::new(capped_error(error))),
            Sent::NotSent(_) | Sent::Existing(_) => return sent,
        };
        *last = Some(Finished {
            at: Instant::now(),
            outcome,
        });
        slot.finished.fetch_add(1, Ordering::AcqRel);
        sent.with_previous_unknown(previous_unknown)
    }

    /// The contact's [`key`] hashed by both hashers: two SipHash keys drawn
    /// at random for this process, so no input can be chosen to collide.
    fn hash(&self, contact: &Contact) -> u128 {
        let key = key(contact);
        let [high, low] = &self.hashers;
        u128::from(high.hash_one(&key)) << 64 | u128::from(low.hash_one(&key))
    }

    /// The entry for `key`, made if new. The caller's clone of the slot is
    /// what marks the entry as in use, so it cannot be forgotten meanwhile.
    fn slot(&self, key: u128) -> Arc<Slot> {
        let now = Instant::now();
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(&key) {
            entry.touched = now;
            return entry.slot.clone();
        }
        let slot = Arc::new(Slot::default());
        entries.insert(
            key,
            Entry {
                slot: slot.clone(),
                touched: now,
            },
        );
        forget(&mut entries, now, self.window, self.capacity);
        slot
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u128, Entry>> {
        // A poisoned lock only means another call panicked mid-update; the
        // map itself is still a valid cache.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Once over `capacity`, forgets the entries idle for a whole window, then
/// the least recently used, until within it. Entries in use (an `Arc` held
/// outside the map: a call in flight or waiting) are never forgotten, so
/// the map can stay over while they last.
fn forget(entries: &mut HashMap<u128, Entry>, now: Instant, window: Duration, capacity: usize) {
    if entries.len() <= capacity {
        return;
    }
    let idle = |e: &Entry| Arc::strong_count(&e.slot) == 1;
    entries.retain(|_, e| !(idle(e) && now.saturating_duration_since(e.touched) >= window));
    // Nearly always one entry goes: a scan per entry forgotten is cheaper
    // than sorting them all.
    while entries.len() > capacity {
        let Some(oldest) = entries
            .iter()
            .filter(|(_, e)| idle(e))
            .min_by_key(|(_, e)| e.touched)
            .map(|(k, _)| *k)
        else {
            break;
        };
        entries.remove(&oldest);
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
    use std::future::pending;
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

    fn created() -> Sent {
        Sent::answered(Ok(object(json!({"id": 1}))))
    }

    fn replayed() -> Sent {
        Sent::Created {
            contact: object(json!({"id": 1})),
            replayed: true,
            previous_unknown: false,
        }
    }

    fn failed(kind: ErrorKind, created: Created) -> Sent {
        Sent::answered(Err(ToolError::new(kind, created, "x")))
    }

    fn kind(sent: &Sent) -> Option<ErrorKind> {
        match sent {
            Sent::Failed { error, .. } | Sent::NotSent(error) => Some(error.kind),
            Sent::Created { .. } | Sent::Existing(_) => None,
        }
    }

    fn was_replayed(sent: &Sent) -> bool {
        matches!(sent, Sent::Created { replayed: true, .. })
    }

    impl DedupeGuard {
        /// `run` with no stop.
        async fn send<F, Fut>(&self, contact: &Contact, send: F) -> Sent
        where
            F: FnOnce() -> Fut,
            Fut: Future<Output = Sent>,
        {
            self.run(contact, pending(), send).await
        }

        fn remembered(&self) -> usize {
            self.lock().len()
        }
    }

    #[tokio::test]
    async fn second_identical_success_is_replayed() {
        let guard = DedupeGuard::new(Duration::from_secs(60));
        let sends = AtomicUsize::new(0);
        let send = || async {
            sends.fetch_add(1, Ordering::SeqCst);
            created()
        };
        let first = guard.send(&contact("a@b.co"), send).await;
        assert_eq!(first, created());
        let second = guard.send(&contact("A@B.CO"), send).await;
        assert_eq!(second, replayed());
        assert_eq!(sends.load(Ordering::SeqCst), 1);
        guard.send(&contact("other@b.co"), send).await;
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
        guard.send(&contact("kim@example.org"), send).await;
        // U+212A KELVIN SIGN lower-cases to "k" under Unicode rules.
        let r = guard.send(&contact("\u{212A}im@example.org"), send).await;
        assert!(!was_replayed(&r), "{r:?}");
        let r = guard.send(&contact("\u{212A}IM@Example.ORG"), send).await;
        assert!(was_replayed(&r), "{r:?}");
        assert_eq!(sends.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn failures_are_not_replayed_and_unknown_is_flagged() {
        let guard = DedupeGuard::new(Duration::from_secs(60));
        let c = contact("a@b.co");
        let r = guard
            .send(&c, || async {
                failed(ErrorKind::Unauthorized, Created::No)
            })
            .await;
        assert_eq!(r, failed(ErrorKind::Unauthorized, Created::No));
        let r = guard
            .send(&c, || async {
                failed(ErrorKind::Timeout, Created::Unknown)
            })
            .await;
        assert_eq!(r, failed(ErrorKind::Timeout, Created::Unknown));
        let r = guard.send(&c, || async { created() }).await;
        assert_eq!(r, created().with_previous_unknown(true));
    }

    #[tokio::test]
    async fn concurrent_identical_calls_share_one_send() {
        let guard = DedupeGuard::new(Duration::from_secs(60));
        let sends = AtomicUsize::new(0);
        let c = contact("a@b.co");
        let calls = (0..20).map(|_| {
            guard.send(&c, || async {
                sends.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                failed(ErrorKind::Forbidden, Created::No)
            })
        });
        let results = futures::future::join_all(calls).await;
        assert_eq!(sends.load(Ordering::SeqCst), 1);
        assert!(
            results
                .iter()
                .all(|r| kind(r) == Some(ErrorKind::Forbidden))
        );
    }

    #[tokio::test]
    async fn a_cancelled_leader_does_not_answer_for_its_waiters() {
        let guard = DedupeGuard::new(Duration::from_secs(60));
        let c = contact("a@b.co");
        let leader = guard.send(&c, || async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            failed(ErrorKind::Cancelled, Created::Unknown)
        });
        let waiter = guard.send(&c, || async { created() });
        let (l, w) = tokio::join!(leader, waiter);
        assert_eq!(kind(&l), Some(ErrorKind::Cancelled));
        assert_eq!(w, created().with_previous_unknown(true));
    }

    #[tokio::test]
    async fn an_attempt_not_sent_is_not_remembered_and_its_waiter_sends() {
        let guard = DedupeGuard::new(Duration::from_secs(60));
        let c = contact("a@b.co");
        let not_sent = || Sent::NotSent(ToolError::new(ErrorKind::RateLimited, Created::No, "x"));
        let leader = guard.send(&c, || async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            not_sent()
        });
        let waiter = guard.send(&c, || async { created() });
        let (l, w) = tokio::join!(leader, waiter);
        assert_eq!(l, not_sent());
        assert_eq!(w, created());
    }

    #[tokio::test]
    async fn a_stop_ends_a_wait_but_never_a_send_under_way() {
        let guard = DedupeGuard::new(Duration::from_secs(60));
        let c = contact("a@b.co");
        let stop = || async {
            Sent::NotSent(ToolError::new(ErrorKind::Cancelled, Created::No, "stopped"))
        };
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let leader = guard.run(&c, stop(), || async {
            let _ = released.await;
            created()
        });
        let waiter = async {
            tokio::task::yield_now().await;
            let stopped = guard.run(&c, stop(), || async { created() }).await;
            let _ = release.send(());
            stopped
        };
        let (l, w) = tokio::join!(leader, waiter);
        assert_eq!(l, created(), "the leader's send was cut short");
        assert_eq!(kind(&w), Some(ErrorKind::Cancelled));
        // The leader's outcome was remembered.
        assert_eq!(guard.send(&c, || async { created() }).await, replayed());
    }

    #[tokio::test]
    async fn zero_window_turns_it_off() {
        let guard = DedupeGuard::new(Duration::ZERO);
        let sends = AtomicUsize::new(0);
        for _ in 0..3 {
            guard
                .send(&contact("a@b.co"), || async {
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
        guard.send(&c, || async { created() }).await;
        tokio::time::sleep(Duration::from_millis(40)).await;
        let r = guard.send(&c, || async { created() }).await;
        assert_eq!(r, created());
    }

    #[tokio::test]
    async fn memory_is_bounded_by_count() {
        let guard = DedupeGuard::with_capacity(Duration::from_secs(60), 8);
        for i in 0..100 {
            guard
                .send(&contact(&format!("u{i}@b.co")), || async { created() })
                .await;
        }
        assert_eq!(guard.remembered(), 8);
        // The most recent one is still remembered, the oldest is not.
        let r = guard
            .send(&contact("u99@b.co"), || async { created() })
            .await;
        assert!(was_replayed(&r));
        let r = guard
            .send(&contact("u0@b.co"), || async { created() })
            .await;
        assert!(!was_replayed(&r));
    }

    /// The bytes of the outcome remembered for `c`.
    fn stored_bytes(guard: &DedupeGuard, c: &Contact) -> usize {
        let entries = guard.lock();
        let Some(entry) = entries.get(&guard.hash(c)) else {
            return 0;
        };
        match entry.slot.last.try_lock().ok().as_deref() {
            Some(Some(Finished {
                outcome: Stored::Created(text),
                ..
            })) => text.len(),
            Some(Some(Finished {
                outcome: Stored::Failed(e),
                ..
            })) => {
                e.message.len()
                    + e.fields
                        .iter()
                        .map(|f| f.field.len() + f.problem.len())
                        .sum::<usize>()
            }
            _ => 0,
        }
    }

    #[tokio::test]
    async fn a_large_contact_is_returned_and_remembered_by_its_small_members() {
        let guard = DedupeGuard::new(Duration::from_secs(60));
        let c = contact("big@b.co");
        let big = object(json!({
            "id": 9, "email": "big@b.co", "advertiser_id": 1,
            "notes": "n".repeat(1 << 20),
            "tags": ["t", "u"],
        }));
        let small = object(json!({
            "id": 9, "email": "big@b.co", "advertiser_id": 1, "tags": ["t", "u"]
        }));
        let sent = guard
            .send(&c, || async { Sent::answered(Ok(big.clone())) })
            .await;
        assert_eq!(sent, Sent::answered(Ok(small.clone())));
        let replay = guard.send(&c, || async { created() }).await;
        assert_eq!(
            replay,
            Sent::Created {
                contact: small,
                replayed: true,
                previous_unknown: false
            }
        );
        assert!(stored_bytes(&guard, &c) <= MAX_STORED_BYTES);
    }

    #[tokio::test]
    async fn an_error_is_remembered_within_the_cap() {
        let guard = DedupeGuard::new(Duration::from_secs(60));
        let c = contact("a@b.co");
        let mut error = ToolError::new(ErrorKind::Rejected, Created::No, "m");
        error.fields = (0..50)
            .map(|i| crate::outcome::FieldProblem::new(format!("f{i}"), "p".repeat(1000)))
            .collect();
        guard
            .send(&c, || async {
                Sent::Failed {
                    error,
                    previous_unknown: false,
                }
            })
            .await;
        let held = stored_bytes(&guard, &c);
        assert!(held <= MAX_STORED_BYTES, "{held}");
        assert!(held > MAX_STORED_BYTES - 1100, "{held}");
    }

    #[test]
    fn a_contact_at_the_limit_is_kept_whole() {
        let pad = |n: usize| object(json!({"id": 1, "notes": "n".repeat(n)}));
        // {"id":1,"notes":""} is 19 bytes.
        let exact = pad(MAX_STORED_BYTES - 19);
        assert_eq!(capped(exact.clone()), exact);
        let over = pad(MAX_STORED_BYTES - 18);
        assert_eq!(capped(over), object(json!({"id": 1})));
        // A member at its own limit is kept, one byte more is not.
        let member = |n: usize| {
            let mut c = pad(MAX_STORED_BYTES);
            c.insert("m".into(), json!("v".repeat(n - 2)));
            capped(c).contains_key("m")
        };
        assert!(member(MAX_KEPT_MEMBER_BYTES));
        assert!(!member(MAX_KEPT_MEMBER_BYTES + 1));
    }

    #[tokio::test]
    async fn a_call_in_flight_is_never_forgotten() {
        let guard = DedupeGuard::with_capacity(Duration::from_secs(60), 4);
        let sends = AtomicUsize::new(0);
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let a = contact("a@b.co");
        let first = guard.send(&a, || async {
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
                    .send(&contact(&format!("u{i}@b.co")), || async { created() })
                    .await;
            }
            assert_eq!(guard.remembered(), 4);
            let again = guard.send(&a, || async {
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
        assert_eq!(first, created());
        assert_eq!(again, replayed());
        assert_eq!(sends.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_poisoned_lock_still_guards() {
        let guard = DedupeGuard::new(Duration::from_secs(60));
        let c = contact("a@b.co");
        guard.send(&c, || async { created() }).await;
        let poison = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _held = guard.entries.lock();
            panic!("poison the lock");
        }));
        assert!(poison.is_err());
        assert!(guard.entries.is_poisoned());
        assert_eq!(guard.remembered(), 1);
        let r = guard.send(&c, || async { created() }).await;
        assert!(was_replayed(&r));
    }

    // ------------------------------------------------------------ forgetting

    const WINDOW: Duration = Duration::from_secs(10);

    /// Entries keyed 0, 1, … with these `(touched, in_use)`; the returned
    /// slots are the holds that make entries in use.
    fn entries(list: &[(Instant, bool)]) -> (HashMap<u128, Entry>, Vec<Arc<Slot>>) {
        let mut entries = HashMap::new();
        let mut holds = Vec::new();
        for (key, (touched, in_use)) in (0..).zip(list) {
            let slot = Arc::new(Slot::default());
            if *in_use {
                holds.push(slot.clone());
            }
            entries.insert(
                key,
                Entry {
                    slot,
                    touched: *touched,
                },
            );
        }
        (entries, holds)
    }

    fn keys(entries: &HashMap<u128, Entry>) -> Vec<u128> {
        let mut keys: Vec<u128> = entries.keys().copied().collect();
        keys.sort_unstable();
        keys
    }

    #[test]
    fn nothing_is_forgotten_at_capacity() {
        let t0 = Instant::now();
        let (mut e, _holds) = entries(&[(t0, false), (t0, false)]);
        // Both long expired, but the bound is not exceeded.
        forget(&mut e, t0 + WINDOW * 100, WINDOW, 2);
        assert_eq!(keys(&e), [0, 1]);
    }

    #[test]
    fn over_capacity_forgets_the_least_recently_used() {
        let t0 = Instant::now();
        let secs = Duration::from_secs;
        let (mut e, _holds) = entries(&[(t0, false), (t0 + secs(2), false), (t0 + secs(1), false)]);
        forget(&mut e, t0 + secs(3), WINDOW, 2);
        assert_eq!(keys(&e), [1, 2]);
        let (mut e, _holds) = entries(&[(t0, false), (t0 + secs(2), false), (t0 + secs(3), false)]);
        forget(&mut e, t0 + secs(3), WINDOW, 1);
        assert_eq!(keys(&e), [2]);
    }

    #[test]
    fn once_over_every_idle_entry_a_window_old_goes() {
        let t0 = Instant::now();
        let secs = Duration::from_secs;
        let now = t0 + secs(11);
        let (mut e, _holds) = entries(&[
            (t0, false),                     // 11 s old
            (now - WINDOW, false),           // exactly a window old
            (now - WINDOW + secs(1), false), // just inside
            (now, false),
        ]);
        // Over by one entry, yet both expired ones go.
        forget(&mut e, now, WINDOW, 3);
        assert_eq!(keys(&e), [2, 3]);
    }

    #[test]
    fn entries_in_use_are_never_forgotten() {
        let t0 = Instant::now();
        let secs = Duration::from_secs;
        let (mut e, holds) = entries(&[
            (t0, true),           // expired and oldest, but in use
            (t0 + secs(1), true), // in use
            (t0 + secs(30), false),
        ]);
        forget(&mut e, t0 + secs(30), WINDOW, 1);
        // Still over: in-use entries are bounded by the calls running, not
        // by the capacity.
        assert_eq!(keys(&e), [0, 1]);
        drop(holds);
        forget(&mut e, t0 + secs(5), WINDOW, 1);
        assert_eq!(keys(&e), [1]);
    }
}
