//! The one way a contact is sent, by either tool: through the duplicate
//! guard, paced by HiEnergy's rate-limit budget for a list, and stopped by
//! the client's cancellation only before its POST has begun.
//!
//! A POST already on its way is not abandoned when the client cancels: it
//! ends (within `--timeout`) and the guard remembers how, so that the same
//! call sent again replays it instead of creating the contact twice. The
//! client's cancel (the TypeScript SDK sends one after 60 s by default)
//! means "stop starting", not "forget". The server's shutdown does abort a
//! POST under way: the process is exiting, the guard's memory goes with
//! it and no answer can reach anyone, so finishing it would only hold the
//! exit up to `--timeout` for an outcome nobody can learn.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Backend;
use crate::budget::{Permit, RateBudget, Spent};
use crate::contact::Contact;
pub use crate::dedupe::Sent;
use crate::outcome::{Created, ErrorKind, SpecialHint, ToolError};

const CLIENT_CANCELLED: &str = "the client cancelled the call";
const SHUTTING_DOWN: &str = "the server is shutting down";

/// Pacing for a list: each POST first takes a permit from the budget,
/// waiting up to `max_wait` for HiEnergy's window to reset.
pub struct Pacing<'a> {
    pub budget: &'a RateBudget,
    pub max_wait: Duration,
}

/// Sends one contact through the duplicate guard. Stopped before its POST
/// (cancelled while it waited for the budget or for an identical call),
/// it is [`Sent::NotSent`] or, behind an identical call, created
/// "unknown"; once its POST has begun only the server's shutdown ends it
/// early, as created "unknown".
pub async fn guarded(
    backend: &Backend,
    api_key: &str,
    contact: &Contact,
    cancelled: &CancellationToken,
    pacing: Option<&Pacing<'_>>,
) -> Sent {
    let shutdown = &backend.shutdown;
    let send = || async {
        // It may have waited behind an identical call: checked again here.
        if let Some(why) = stopped_by(cancelled, shutdown) {
            return Sent::NotSent(not_started(why));
        }
        // Paced inside the guard, so that a replay costs no budget.
        let _permit = match pacing {
            None => None,
            Some(pacing) => match pacing.ready(cancelled, shutdown).await {
                Ok(permit) => Some(permit),
                Err(error) => return Sent::NotSent(error),
            },
        };
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => Sent::Failed {
                error: cancelled_error(SHUTTING_DOWN),
                previous_unknown: false,
            },
            answer = backend.api.add_contact(api_key, contact, cancelled) => Sent::answered(answer),
        }
    };
    // Waiting behind an identical call in flight: that call may still
    // create the contact, so this one's own outcome is "unknown".
    let stopped = async {
        tokio::select! {
            _ = cancelled.cancelled() => {}
            _ = shutdown.cancelled() => {}
        }
        Sent::Failed {
            error: cancelled_error(stopped_by(cancelled, shutdown).unwrap_or(CLIENT_CANCELLED)),
            previous_unknown: false,
        }
    };
    backend.guard.run(contact, stopped, send).await
}

/// What stopped the call, if anything has.
pub fn stopped_by(
    cancelled: &CancellationToken,
    shutdown: &CancellationToken,
) -> Option<&'static str> {
    if shutdown.is_cancelled() {
        Some(SHUTTING_DOWN)
    } else if cancelled.is_cancelled() {
        Some(CLIENT_CANCELLED)
    } else {
        None
    }
}

impl Pacing<'_> {
    /// A permit to send, once the budget allows it.
    async fn ready(
        &self,
        cancelled: &CancellationToken,
        shutdown: &CancellationToken,
    ) -> Result<Permit<'_>, ToolError> {
        loop {
            // Registered before looking, so that an answer that lands in
            // between still wakes this request.
            let changed = self.budget.changed();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let wait = match self.budget.take() {
                Ok(permit) => return Ok(permit),
                Err(Spent::AnswersPending) => None,
                Err(Spent::Until(wait)) if wait > self.max_wait => {
                    return Err(rate_limit_spent(wait, self.max_wait));
                }
                Err(Spent::Until(wait)) => Some(wait),
            };
            if let Some(wait) = wait {
                tracing::info!(
                    wait_ms = wait.as_millis() as u64,
                    "HiEnergy's rate-limit budget is spent; waiting for its reset"
                );
            }
            tokio::select! {
                biased;
                _ = cancelled.cancelled() => return Err(not_started(CLIENT_CANCELLED)),
                _ = shutdown.cancelled() => return Err(not_started(SHUTTING_DOWN)),
                _ = changed, if wait.is_none() => {}
                _ = tokio::time::sleep(wait.unwrap_or_default()), if wait.is_some() => {}
            }
        }
    }
}

/// Stopped while the POST may already have reached HiEnergy.
pub fn cancelled_error(why: &str) -> ToolError {
    ToolError::new(
        ErrorKind::Cancelled,
        Created::Unknown,
        format!("The call was stopped before HiEnergy answered: {why}."),
    )
}

/// Stopped before this contact was sent at all.
pub fn not_started(why: &str) -> ToolError {
    let mut error = ToolError::new(
        ErrorKind::Cancelled,
        Created::No,
        format!("Not sent: {why} before this contact was sent."),
    );
    error.special_hint = Some(SpecialHint::NotStarted);
    error
}

/// Not started because HiEnergy answered an earlier item of the list with
/// 429: a list stops at the first, whether or not HiEnergy said for how
/// long (Rails' rack-attack, by default, does not).
pub fn stopped_by_rate_limit(answered: &ToolError) -> ToolError {
    let mut error = ToolError::new(
        ErrorKind::RateLimited,
        Created::No,
        "Not sent: HiEnergy answered an earlier item with 429 (rate limited), so no more were started.",
    );
    error.retry_after_seconds = answered.retry_after_seconds;
    error
}

/// HiEnergy's budget for this key is spent until a reset further off than
/// the server waits by itself.
pub fn rate_limit_spent(wait: Duration, max_wait: Duration) -> ToolError {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut error = ToolError::new(
        ErrorKind::RateLimited,
        Created::No,
        format!(
            "Not sent: HiEnergy's rate limit for this key is spent for another {seconds} seconds, longer than the server waits by itself (--max-retry-wait {}).",
            humantime::format_duration(max_wait)
        ),
    );
    error.retry_after_seconds = Some(seconds);
    error
}
