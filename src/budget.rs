//! HiEnergy's rate-limit budget for this key, as its answers state it
//! (`X-RateLimit-Limit`, `-Remaining`, `-Reset`, and a 429's
//! `Retry-After`: [`retry_after`]), so that a list of contacts can be paced
//! instead of running into 429s.
//!
//! The client ([`crate::hienergy`]) tells the budget about every answer;
//! `add_contacts` takes a [`Permit`] before each POST and waits, or stops,
//! when the budget is spent. `add_contact` sends without asking: one call
//! cannot outrun a budget, and a 429 is already handled where it comes.
//!
//! Answers to requests in flight together can arrive in any order, and a
//! `Remaining` may or may not count the others. The estimate assumes the
//! worst (uncounted) and takes back what later answers prove counted, so
//! it never over-sends and, once every answer is in, is exact. (An
//! `add_contact` call answered beside a list is taken for one of the
//! list's own requests: the estimate can be one too high for each, and
//! HiEnergy's 429 is then handled where it comes.)

use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use tokio::sync::Notify;

#[derive(Debug, Default)]
pub struct RateBudget {
    state: Mutex<State>,
    /// Woken on every answer and every finished request: either may free
    /// budget for a request that waits.
    changed: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// The lowest `Remaining` stated in this window: the latest count
    /// HiEnergy has made, since its count only grows within a window.
    /// `None` when HiEnergy has not said, or its window has passed.
    stated: Option<u64>,
    /// Paced requests that may not be in `stated`: started after it, or
    /// in flight when it was read and not since shown to be counted.
    uncounted: u64,
    /// Paced requests started and not yet finished.
    outstanding: u64,
    /// When HiEnergy's window resets, from `X-RateLimit-Reset` (or a 429's
    /// `Retry-After`).
    reset_at: Option<Instant>,
    /// `X-RateLimit-Limit`: the budget of a fresh window.
    limit: Option<u64>,
}

/// Why a request may not start yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spent {
    /// The estimate is spent, but requests in flight may still prove it
    /// was too low: wait for their answers ([`RateBudget::changed`]).
    AnswersPending,
    /// Spent until HiEnergy's window resets, this long from now.
    Until(Duration),
}

/// One paced request, counted as in flight until dropped.
#[derive(Debug)]
pub struct Permit<'a> {
    budget: &'a RateBudget,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        {
            let mut state = self.budget.lock();
            state.outstanding = state.outstanding.saturating_sub(1);
        }
        self.budget.changed.notify_waiters();
    }
}

impl RateBudget {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means a panic elsewhere mid-update; the
        // numbers are still a usable estimate.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Resolves at the next change to the budget. Create it before calling
    /// [`Self::take`], so that a change in between is not missed.
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// One request from the budget, or why not yet. With no figures from
    /// HiEnergy, or a spent budget and no reset time, the request goes:
    /// there is nothing to pace by, and a 429 is handled where it comes.
    pub fn take(&self) -> Result<Permit<'_>, Spent> {
        self.take_at(Instant::now())
    }

    fn take_at(&self, now: Instant) -> Result<Permit<'_>, Spent> {
        let mut state = self.lock();
        if state.reset_at.is_some_and(|at| at <= now) {
            // A fresh window; requests still in flight from the last one
            // may yet land in it.
            state.stated = state.limit;
            state.uncounted = state.outstanding;
            state.reset_at = None;
        }
        if let Some(stated) = state.stated
            && stated <= state.uncounted
        {
            if stated > 0 && state.outstanding > 0 {
                return Err(Spent::AnswersPending);
            }
            if let Some(at) = state.reset_at {
                return Err(Spent::Until(at.saturating_duration_since(now)));
            }
        }
        state.uncounted += 1;
        state.outstanding += 1;
        Ok(Permit { budget: self })
    }

    /// Reads the budget off an answer, whatever its status. Called while
    /// the request it answers still holds its permit, if it has one.
    pub fn observe(&self, status: StatusCode, headers: &HeaderMap) {
        self.observe_at(status, headers, Instant::now());
        self.changed.notify_waiters();
    }

    fn observe_at(&self, status: StatusCode, headers: &HeaderMap, now: Instant) {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let mut state = self.lock();
        if let Some(limit) = number("x-ratelimit-limit") {
            state.limit = Some(limit);
        }
        if let Some(seconds) = retry_after(headers) {
            state.reset_at = now.checked_add(Duration::from_secs(seconds));
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            // Nothing left, whatever was estimated.
            state.stated = Some(0);
            return;
        }
        let Some(remaining) = number("x-ratelimit-remaining") else {
            return;
        };
        match state.stated {
            Some(lowest) if remaining >= lowest => {
                // Counted no later than the request that gave the lowest
                // figure, so it was in flight then and assumed uncounted.
                state.uncounted = state.uncounted.saturating_sub(1);
            }
            _ => {
                // The latest count: every other request in flight may be
                // missing from it.
                state.stated = Some(remaining);
                state.uncounted = state.outstanding.saturating_sub(1);
            }
        }
    }
}

/// Seconds to wait, from `Retry-After` (seconds or an HTTP date) or else
/// `X-RateLimit-Reset` (an epoch time or seconds from now). A value that is
/// neither (negative, NaN, a decimal Retry-After) counts as absent, never as
/// "now"; one too large for a u64 saturates, since it still means "not soon".
pub fn retry_after(headers: &HeaderMap) -> Option<u64> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let now = std::time::SystemTime::now();
    if let Some(value) = text("retry-after") {
        if let Some(seconds) = delta_seconds(value) {
            return Some(seconds);
        }
        if let Ok(at) = httpdate::parse_http_date(value) {
            return Some(
                at.duration_since(now)
                    .map_or(0, |d| d.as_secs_f64().ceil() as u64),
            );
        }
    }
    let reset = text("x-ratelimit-reset")?.parse::<f64>().ok()?;
    if !reset.is_finite() || reset < 0.0 {
        return None;
    }
    // Reset values past a billion are Unix times; smaller ones are deltas.
    // `as u64` saturates.
    if reset > 1e9 {
        let epoch = now
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Some((reset - epoch).max(0.0).ceil() as u64)
    } else {
        Some(reset.ceil() as u64)
    }
}

/// Retry-After's delta-seconds: digits only (RFC 9110 §10.2.3), so no sign.
fn delta_seconds(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // All digits: the only failure left is a number past u64::MAX.
    Some(value.parse().unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(remaining: &str, reset: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in [
            ("x-ratelimit-remaining", remaining),
            ("x-ratelimit-reset", reset),
        ] {
            if let Ok(value) = HeaderValue::from_str(value) {
                map.insert(name, value);
            }
        }
        map
    }

    const OK: StatusCode = StatusCode::CREATED;

    #[test]
    fn without_figures_everything_goes() {
        let budget = RateBudget::default();
        let permits: Vec<_> = (0..50).filter_map(|_| budget.take().ok()).collect();
        assert_eq!(permits.len(), 50);
        budget.observe(OK, &HeaderMap::new());
        assert!(budget.take().is_ok());
    }

    #[test]
    fn a_spent_budget_waits_for_the_reset_then_goes_again() {
        let budget = RateBudget::default();
        let now = Instant::now();
        let first = budget.take_at(now);
        budget.observe_at(OK, &headers("2", "3"), now);
        drop(first);
        let a = budget.take_at(now);
        let b = budget.take_at(now);
        assert!(a.is_ok() && b.is_ok());
        // Their answers are still out, and might show room: wait for them.
        assert_eq!(budget.take_at(now).err(), Some(Spent::AnswersPending));
        budget.observe_at(OK, &headers("1", "3"), now);
        budget.observe_at(OK, &headers("0", "3"), now);
        drop((a, b));
        assert_eq!(
            budget.take_at(now).err(),
            Some(Spent::Until(Duration::from_secs(3)))
        );
        let later = now + Duration::from_secs(3);
        assert!(budget.take_at(later).is_ok(), "the window has reset");
    }

    #[test]
    fn requests_in_flight_are_assumed_uncounted_until_shown_otherwise() {
        let budget = RateBudget::default();
        let now = Instant::now();
        let mut permits: Vec<_> = (0..4).filter_map(|_| budget.take_at(now).ok()).collect();
        // The first answer says 5 left; the other three may not be in it.
        budget.observe_at(OK, &headers("5", "10"), now);
        permits.truncate(3);
        permits.push(budget.take_at(now).unwrap_or_else(|_| panic!("1")));
        permits.push(budget.take_at(now).unwrap_or_else(|_| panic!("2")));
        assert_eq!(budget.take_at(now).err(), Some(Spent::AnswersPending));
        // An answer stating more than 5 was counted before it: one back.
        budget.observe_at(OK, &headers("7", "10"), now);
        assert!(budget.take_at(now).is_ok());
    }

    #[test]
    fn answers_out_of_order_end_exact_not_short() {
        // HiEnergy counts four requests (limit 6: Remaining 5, 4, 3, 2);
        // their answers arrive lowest first.
        let budget = RateBudget::default();
        let now = Instant::now();
        let permits: Vec<_> = (0..4).filter_map(|_| budget.take_at(now).ok()).collect();
        for remaining in ["2", "5", "4", "3"] {
            budget.observe_at(OK, &headers(remaining, "60"), now);
        }
        drop(permits);
        // Exactly two left, though the first answer alone suggested none.
        let a = budget.take_at(now);
        let b = budget.take_at(now);
        assert!(a.is_ok() && b.is_ok());
        assert_eq!(budget.take_at(now).err(), Some(Spent::AnswersPending));
        budget.observe_at(OK, &headers("1", "60"), now);
        budget.observe_at(OK, &headers("0", "60"), now);
        drop((a, b));
        assert_eq!(
            budget.take_at(now).err(),
            Some(Spent::Until(Duration::from_secs(60)))
        );
    }

    #[test]
    fn a_fresh_window_has_the_stated_limit() {
        let budget = RateBudget::default();
        let now = Instant::now();
        let mut map = headers("0", "1");
        map.insert("x-ratelimit-limit", HeaderValue::from_static("2"));
        budget.observe_at(OK, &map, now);
        assert!(matches!(budget.take_at(now), Err(Spent::Until(_))));
        let later = now + Duration::from_secs(1);
        let a = budget.take_at(later);
        let b = budget.take_at(later);
        assert!(a.is_ok() && b.is_ok());
        assert_eq!(budget.take_at(later).err(), Some(Spent::AnswersPending));
    }

    #[test]
    fn a_429_spends_the_budget_until_retry_after() {
        let budget = RateBudget::default();
        let now = Instant::now();
        let mut map = HeaderMap::new();
        map.insert("retry-after", HeaderValue::from_static("60"));
        budget.observe_at(StatusCode::TOO_MANY_REQUESTS, &map, now);
        assert_eq!(
            budget.take_at(now).err(),
            Some(Spent::Until(Duration::from_secs(60)))
        );
    }

    #[test]
    fn spent_without_a_reset_time_is_nothing_to_pace_by() {
        let budget = RateBudget::default();
        budget.observe(OK, &headers("0", ""));
        assert!(budget.take().is_ok());
    }

    #[test]
    fn permits_count_until_dropped() {
        let budget = RateBudget::default();
        let permit = budget.take();
        assert_eq!(budget.lock().outstanding, 1);
        drop(permit);
        assert_eq!(budget.lock().outstanding, 0);
    }

    #[test]
    fn retry_after_that_is_not_a_wait_counts_as_absent_never_as_now() {
        let wait = |pairs: &[(&'static str, &str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(
                    *name,
                    HeaderValue::from_str(value).unwrap_or_else(|e| panic!("{e}")),
                );
            }
            retry_after(&map)
        };
        for (name, value) in [
            ("x-ratelimit-reset", "-5"),
            ("x-ratelimit-reset", "-1700000000"),
            ("x-ratelimit-reset", "NaN"),
            ("x-ratelimit-reset", "inf"),
            ("x-ratelimit-reset", "-inf"),
            ("x-ratelimit-reset", "soon"),
            ("retry-after", "-5"),
            ("retry-after", "+5"),
            ("retry-after", "1.5"),
            ("retry-after", ""),
            ("retry-after", "soon"),
        ] {
            assert_eq!(wait(&[(name, value)]), None, "{name}: {value}");
        }
        // Too large for a u64 still means "not soon".
        assert_eq!(
            wait(&[("retry-after", "99999999999999999999999")]),
            Some(u64::MAX)
        );
        assert_eq!(
            wait(&[("retry-after", "17000000000000000000")]),
            Some(17_000_000_000_000_000_000)
        );
        assert_eq!(wait(&[("x-ratelimit-reset", "1e300")]), Some(u64::MAX));
        // A bad Retry-After leaves X-RateLimit-Reset to say it.
        assert_eq!(
            wait(&[("retry-after", "-5"), ("x-ratelimit-reset", "9")]),
            Some(9)
        );
        // Now, or a moment that has passed, is a wait of zero.
        assert_eq!(wait(&[("retry-after", "0")]), Some(0));
        assert_eq!(wait(&[("x-ratelimit-reset", "1000000001")]), Some(0));
        assert_eq!(
            wait(&[("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT")]),
            Some(0)
        );
        assert_eq!(wait(&[("x-ratelimit-reset", "0")]), Some(0));
        assert_eq!(wait(&[("x-ratelimit-reset", "2.1")]), Some(3));
        assert_eq!(
            wait(&[("x-ratelimit-reset", "1000000000")]),
            Some(1_000_000_000)
        );
    }

    #[test]
    fn each_source_of_the_wait_is_read() {
        let wait = |name: &'static str, value: &str| {
            let mut map = HeaderMap::new();
            map.insert(
                name,
                HeaderValue::from_str(value).unwrap_or_else(|e| panic!("{e}")),
            );
            retry_after(&map)
        };
        assert_eq!(wait("retry-after", "7"), Some(7));
        assert_eq!(wait("x-ratelimit-reset", "12"), Some(12));
        // A reset given as the moment, in seconds since the epoch.
        let soon = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() + 30)
            .unwrap_or(0);
        let got = wait("x-ratelimit-reset", &soon.to_string());
        assert!(got.is_some_and(|s| (28..=31).contains(&s)), "{got:?}");
        let date = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(60));
        let got = wait("retry-after", &date);
        assert!(got.is_some_and(|s| (58..=61).contains(&s)), "{got:?}");
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }
}
