//! The one way a contact is sent, by either tool: through the duplicate
//! guard, paced by HiEnergy's rate-limit budget for a list, and stopped by
//! the client's cancellation only before its POST has begun.
//!
//! Inside the guard, a POST is preceded by a look for the same email on the
//! same advertiser (unless `if_exists: "add"`): found, nothing is sent. A
//! look that cannot judge never blocks the POST; it is said why. A POST
//! whose fate is unknown (timed out, cut off, a 5xx) after a look that
//! found nothing is followed, about a second later, by the same look:
//! found, it was created. (Without the look before, a contact found after
//! may have been there already, so none is made.) HiEnergy lists
//! no contact rated below 1, so "not found" never proves it was not.
//!
//! A POST already on its way is not abandoned when the client cancels: it
//! ends (within `--timeout`) and the guard remembers how, so that the same
//! call sent again replays it instead of creating the contact twice. The
//! client's cancel (the TypeScript SDK sends one after 60 s by default)
//! means "stop starting", not "forget". The server's shutdown does abort a
//! POST under way: the process is exiting, the guard's memory goes with
//! it and no answer can reach anyone, so finishing it would only hold the
//! exit up to `--timeout` for an outcome nobody can learn.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::Backend;
use crate::budget::{Permit, RateBudget, Spent};
use crate::contact::{Contact, IfExists};
pub use crate::dedupe::Sent;
use crate::existing::{self, Existing};
use crate::outcome::{Created, ErrorKind, SpecialHint, ToolError};
use crate::rows::ContactRow;

/// How long after a POST of unknown fate HiEnergy is looked at: long enough
/// for a request still being handled to finish, short beside `--timeout`.
pub const LOOKUP_DELAY: Duration = Duration::from_secs(1);

/// What the look before a POST, and the look after one of unknown fate,
/// add to how a send ended.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checked {
    /// The look before the POST could not judge, and why: the POST went
    /// ahead.
    pub existing_check: Option<String>,
    /// The POST's fate was unknown and the look after it found the
    /// contact: `Sent::Created` carries it.
    pub confirmed_by_lookup: bool,
}

/// A contact HiEnergy listed, as a created one is shown.
pub fn listed(row: &ContactRow) -> Map<String, Value> {
    match serde_json::to_value(row) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

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
    if_exists: IfExists,
    cancelled: &CancellationToken,
    pacing: Option<&Pacing<'_>>,
) -> (Sent, Checked) {
    let shutdown = &backend.shutdown;
    // Written by the send below, read once the guard is done with it.
    let checked = Mutex::new(Checked::default());
    let note = |f: &dyn Fn(&mut Checked)| {
        f(&mut checked.lock().unwrap_or_else(PoisonError::into_inner));
    };
    let send = || async {
        // It may have waited behind an identical call: checked again here.
        if let Some(why) = stopped_by(cancelled, shutdown) {
            return Sent::NotSent(not_started(why));
        }
        // Whether HiEnergy was seen not to have it: only then does a
        // contact found after a POST of unknown fate prove that POST made it.
        let mut seen_absent = false;
        if if_exists == IfExists::Skip {
            // Paced inside the guard, as the POST, so that a replay costs
            // no budget.
            let _permit = match paced(pacing, cancelled, shutdown).await {
                Ok(permit) => permit,
                Err(error) => return Sent::NotSent(error),
            };
            let look = existing::find_existing(
                &backend.api,
                api_key,
                &contact.email,
                contact.advertiser_id,
            );
            let found = tokio::select! {
                biased;
                _ = cancelled.cancelled() => return Sent::NotSent(not_started(CLIENT_CANCELLED)),
                _ = shutdown.cancelled() => return Sent::NotSent(not_started(SHUTTING_DOWN)),
                found = look => found,
            };
            match found {
                Existing::Found(row) => return Sent::Existing(listed(&row)),
                Existing::NotFound => seen_absent = true,
                // The POST would be refused the same way.
                Existing::Unauthorized(error) => {
                    return Sent::Failed {
                        error,
                        previous_unknown: false,
                    };
                }
                Existing::Unknown(why) => note(&|c| c.existing_check = Some(why.clone())),
            }
        }
        let _permit = match paced(pacing, cancelled, shutdown).await {
            Ok(permit) => permit,
            Err(error) => return Sent::NotSent(error),
        };
        let sent = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Sent::Failed {
                error: cancelled_error(SHUTTING_DOWN),
                previous_unknown: false,
            },
            answer = backend.api.add_contact(api_key, contact, cancelled) => Sent::answered(answer),
        };
        match sent {
            Sent::Failed {
                mut error,
                previous_unknown,
            } if seen_absent && fate_unknown(&error) => {
                match look_after(backend, api_key, contact, pacing).await {
                    Existing::Found(row) => {
                        note(&|c| c.confirmed_by_lookup = true);
                        Sent::Created {
                            contact: listed(&row),
                            replayed: false,
                            previous_unknown,
                        }
                    }
                    Existing::NotFound => {
                        error
                            .message
                            .push_str(" A lookup in HiEnergy afterwards did not find it.");
                        error.special_hint = Some(SpecialHint::NotFoundByLookup);
                        Sent::Failed {
                            error,
                            previous_unknown,
                        }
                    }
                    Existing::Unauthorized(_) | Existing::Unknown(_) => Sent::Failed {
                        error,
                        previous_unknown,
                    },
                }
            }
            sent => sent,
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
    let sent = backend.guard.run(contact, stopped, send).await;
    let checked = checked.into_inner().unwrap_or_else(PoisonError::into_inner);
    (sent, checked)
}

/// What a real call would do, as a dry run tells it.
#[derive(Debug, Clone, PartialEq)]
pub enum Would {
    /// Send it: HiEnergy lists no such contact.
    Add,
    /// Skip it: HiEnergy lists this contact already.
    Skip(Map<String, Value>),
    /// Send it, unchecked: the check could not judge, for this reason.
    Unchecked(String),
}

/// The dry run's read-only check. A 401 is the call's error, as it would
/// be for a real call; a cancel or the shutdown ends it as not started.
pub async fn would_exist(
    backend: &Backend,
    api_key: &str,
    contact: &Contact,
    cancelled: &CancellationToken,
) -> Result<Would, ToolError> {
    let look =
        existing::find_existing(&backend.api, api_key, &contact.email, contact.advertiser_id);
    let found = tokio::select! {
        biased;
        _ = cancelled.cancelled() => return Err(not_started(CLIENT_CANCELLED)),
        _ = backend.shutdown.cancelled() => return Err(not_started(SHUTTING_DOWN)),
        found = look => found,
    };
    match found {
        Existing::Found(row) => Ok(Would::Skip(listed(&row))),
        Existing::NotFound => Ok(Would::Add),
        Existing::Unauthorized(error) => Err(error),
        Existing::Unknown(why) => Ok(Would::Unchecked(why)),
    }
}

/// A permit from the budget for a paced send; none needed otherwise.
async fn paced<'a>(
    pacing: Option<&'a Pacing<'_>>,
    cancelled: &CancellationToken,
    shutdown: &CancellationToken,
) -> Result<Option<Permit<'a>>, ToolError> {
    match pacing {
        None => Ok(None),
        Some(pacing) => pacing.ready(cancelled, shutdown).await.map(Some),
    }
}

/// Whether a POST may or may not have created the contact because no
/// answer said (timed out, cut off after sending, a 5xx, an unreadable
/// answer): what a look afterwards can settle.
fn fate_unknown(error: &ToolError) -> bool {
    error.created == Created::Unknown
        && matches!(
            error.kind,
            ErrorKind::Timeout
                | ErrorKind::Network
                | ErrorKind::UpstreamError
                | ErrorKind::BadResponse
        )
}

/// Looks for the contact about [`LOOKUP_DELAY`] after a POST of unknown
/// fate, all within `--timeout`. The client's cancel does not stop it (the
/// POST's outcome is what the guard must learn); the shutdown does.
pub async fn look_after(
    backend: &Backend,
    api_key: &str,
    contact: &Contact,
    pacing: Option<&Pacing<'_>>,
) -> Existing {
    let within = backend.config.timeout;
    let shutdown = &backend.shutdown;
    let look = async {
        tokio::time::sleep(LOOKUP_DELAY.min(within / 2)).await;
        let _permit = match paced(pacing, shutdown, shutdown).await {
            Ok(permit) => permit,
            Err(error) => return Existing::Unknown(error.message),
        };
        existing::find_existing(&backend.api, api_key, &contact.email, contact.advertiser_id).await
    };
    tokio::select! {
        biased;
        _ = shutdown.cancelled() => Existing::Unknown(SHUTTING_DOWN.into()),
        found = tokio::time::timeout(within, look) => found.unwrap_or_else(|_| {
            Existing::Unknown("the lookup did not finish within --timeout".into())
        }),
    }
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

/// Not started because HiEnergy refused the API key (401) for an earlier
/// item of the list: every other would be refused the same way.
pub fn stopped_by_unauthorized() -> ToolError {
    ToolError::new(
        ErrorKind::Unauthorized,
        Created::No,
        "Not sent: HiEnergy refused the API key (401) for an earlier item, so no more were started.",
    )
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
