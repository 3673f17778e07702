//! The one way a contact is sent, by either tool: through the duplicate
//! guard, stopped by the client's cancellation or the server's shutdown,
//! and, for a list, paced by HiEnergy's rate-limit budget.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::Backend;
use crate::budget::{Permit, RateBudget, Spent};
use crate::contact::Contact;
use crate::dedupe::Guarded;
use crate::outcome::{Created, ErrorKind, SpecialHint, ToolError};

/// How one guarded send ended.
#[derive(Debug)]
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
    /// It never left: the rate-limit budget was spent for longer than the
    /// server waits, or the call was stopped while it waited to go. Its
    /// error always says created "no".
    NotSent(ToolError),
}

/// Pacing for a list: each POST first takes a permit from the budget,
/// waiting up to `max_wait` for HiEnergy's window to reset.
pub struct Pacing<'a> {
    pub budget: &'a RateBudget,
    pub max_wait: Duration,
}

/// Sends one contact through the duplicate guard. A cancellation while
/// the POST may be on its way ends in created "unknown", remembered as
/// such by the guard; one while waiting for the budget ends in
/// [`Sent::NotSent`].
pub async fn guarded(
    backend: &Backend,
    api_key: &str,
    contact: &Contact,
    cancelled: &CancellationToken,
    pacing: Option<&Pacing<'_>>,
) -> Sent {
    let not_sent = AtomicBool::new(false);
    let send = || async {
        // Paced inside the guard, so that a replay costs no budget.
        let _permit = match pacing {
            None => None,
            Some(pacing) => match pacing.ready(cancelled, &backend.shutdown).await {
                Ok(permit) => Some(permit),
                Err(error) => {
                    not_sent.store(true, Ordering::Relaxed);
                    return Err(error);
                }
            },
        };
        // biased: a cancellation that races the answer is reported as
        // such, so the duplicate guard remembers the outcome as unknown.
        tokio::select! {
            biased;
            _ = cancelled.cancelled() => Err(cancelled_error("the client cancelled the call")),
            _ = backend.shutdown.cancelled() => Err(cancelled_error("the server is shutting down")),
            outcome = backend.api.add_contact(api_key, contact) => outcome,
        }
    };
    // A call waiting behind an identical one must still notice its own
    // cancellation; the guard future comes first so that a leader's
    // cancelled send is recorded before it is dropped.
    let guarded = tokio::select! {
        biased;
        guarded = backend.guard.run(contact, send) => guarded,
        _ = cancelled.cancelled() => return Sent::Failed {
            error: cancelled_error("the client cancelled the call"),
            previous_unknown: false,
        },
        _ = backend.shutdown.cancelled() => return Sent::Failed {
            error: cancelled_error("the server is shutting down"),
            previous_unknown: false,
        },
    };
    match guarded {
        Guarded::Sent {
            outcome: Ok(contact),
            previous_unknown,
        } => Sent::Created {
            contact,
            replayed: false,
            previous_unknown,
        },
        Guarded::Sent {
            outcome: Err(error),
            ..
        } if not_sent.load(Ordering::Relaxed) => Sent::NotSent(error),
        Guarded::Sent {
            outcome: Err(error),
            previous_unknown,
        } => Sent::Failed {
            error,
            previous_unknown,
        },
        Guarded::Replayed(Ok(contact)) => Sent::Created {
            contact,
            replayed: true,
            previous_unknown: false,
        },
        Guarded::Replayed(Err(error)) => Sent::Failed {
            error,
            previous_unknown: false,
        },
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
                _ = cancelled.cancelled() => return Err(not_started("the client cancelled the call")),
                _ = shutdown.cancelled() => return Err(not_started("the server is shutting down")),
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
