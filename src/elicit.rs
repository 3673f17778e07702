//! Asking the user which advertiser they mean: MCP elicitation, a form
//! the client shows, with one required choice.
//!
//! The form is the simplest the spec allows (a flat object with one `enum`
//! string property), so that every client that declared the capability can
//! show it: the TypeScript SDK validates it, and richer forms (titled
//! `oneOf`) are newer than some clients. Each choice is its own label,
//! "Name (domain) on network, #id", and is read back by that label.
//!
//! How the question travels depends on the session's protocol revision:
//! up to 2025-11-25 it is a server-to-client `elicitation/create` request,
//! awaited within `--elicitation-timeout`. On 2026-07-28 (SEP-2322, which
//! rmcp 3.11 implements and where it refuses server-to-client requests) the
//! call answers `input_required` with the same form among its
//! `inputRequests`, sending nothing; the client asks its user and retries
//! the call with the answer in `inputResponses`. The retry runs the search
//! again and takes the answer only if it names one of the records found
//! then, so nothing is kept between the rounds and nothing the client
//! echoes is trusted.

use std::sync::Mutex;
use std::time::Duration;

use rmcp::model::{
    ElicitRequest, ElicitRequestParams, ElicitResult, ElicitationAction, ElicitationSchema,
    InputRequest, InputRequests, InputRequiredResult, InputResponses, ProtocolVersion,
};
use rmcp::service::RequestContext;
use rmcp::{Peer, RoleServer};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::outcome::AdvertiserRecord;

/// The one property of the form.
pub const FIELD: &str = "advertiser";

/// How the user answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Chose(AdvertiserRecord),
    Declined,
    Cancelled,
    /// No answer within this long.
    NoAnswer(Duration),
    /// The question could not be put, or its answer was not one of the
    /// choices: why.
    Failed(String),
    /// 2026-07-28: the question is now among this call's input requests;
    /// the call must send nothing and answer `input_required`.
    Asked,
}

/// Asks the user of one call's client.
pub struct Asker {
    how: How,
    cancelled: CancellationToken,
}

enum How {
    /// Up to 2025-11-25: a request to the client, awaited.
    Request {
        peer: Peer<RoleServer>,
        timeout: Duration,
    },
    /// 2026-07-28: the answers this retry carries, and the questions still
    /// to put in an `input_required` result.
    Rounds {
        answers: InputResponses,
        questions: Mutex<InputRequests>,
    },
}

impl Asker {
    /// An asker when this call's client declared form elicitation; `None`
    /// otherwise. `answers` is the call's `inputResponses`.
    pub fn for_call(
        context: &RequestContext<RoleServer>,
        answers: Option<InputResponses>,
        timeout: Duration,
        cancelled: CancellationToken,
    ) -> Option<Self> {
        let elicitation = context.client_capabilities()?.elicitation?;
        // An empty capability means form (the spec's default); one that
        // lists modes must list form.
        if elicitation.form.is_none() && elicitation.url.is_some() {
            return None;
        }
        let how = if context.protocol_version() == Some(ProtocolVersion::V_2026_07_28) {
            How::Rounds {
                answers: answers.unwrap_or_default(),
                questions: Mutex::default(),
            }
        } else {
            How::Request {
                peer: context.peer.clone(),
                timeout,
            }
        };
        Some(Self { how, cancelled })
    }

    /// Puts the question `key` (the same key for the same question in a
    /// retried call), and waits at most `--elicitation-timeout` for the
    /// answer (or until the call is cancelled); on 2026-07-28, reads the
    /// answer the retry carries, or adds the question to the call's.
    pub async fn choose(
        &self,
        key: &str,
        message: String,
        candidates: &[AdvertiserRecord],
    ) -> Answer {
        let (peer, timeout) = match &self.how {
            How::Request { peer, timeout } => (peer, *timeout),
            How::Rounds { answers, questions } => {
                if let Some(answer) = answers.get(key) {
                    return match serde_json::from_value::<ElicitResult>(answer.clone()) {
                        Ok(result) => read(result, candidates),
                        Err(e) => {
                            Answer::Failed(format!("the client's answer was unreadable: {e}"))
                        }
                    };
                }
                if let Ok(mut questions) = questions.lock() {
                    let question = ElicitRequest::new(request(message, candidates));
                    questions.insert(key.to_owned(), InputRequest::Elicitation(question));
                }
                return Answer::Asked;
            }
        };
        let request =
            peer.create_elicitation_with_timeout(request(message, candidates), Some(timeout));
        let result = tokio::select! {
            biased;
            _ = self.cancelled.cancelled() => return Answer::Cancelled,
            result = request => result,
        };
        match result {
            Ok(result) => read(result, candidates),
            Err(rmcp::ServiceError::Timeout { .. }) => Answer::NoAnswer(timeout),
            Err(e) => Answer::Failed(e.to_string()),
        }
    }

    /// The `input_required` result this call must answer with instead of
    /// its own, when it put questions (2026-07-28 only).
    pub fn input_required(&self) -> Option<InputRequiredResult> {
        let How::Rounds { questions, .. } = &self.how else {
            return None;
        };
        let questions = questions.lock().map(|q| q.clone()).unwrap_or_default();
        (!questions.is_empty()).then(|| InputRequiredResult::from_input_requests(questions))
    }

    /// Whether this call put a question it must wait for (2026-07-28): then
    /// it sends nothing.
    pub fn waiting(&self) -> bool {
        match &self.how {
            How::Rounds { questions, .. } => questions.lock().is_ok_and(|q| !q.is_empty()),
            How::Request { .. } => false,
        }
    }
}

fn read(result: ElicitResult, candidates: &[AdvertiserRecord]) -> Answer {
    match result.action {
        ElicitationAction::Accept => chosen(result.content.as_ref(), candidates),
        ElicitationAction::Decline => Answer::Declined,
        // Cancel, and any action newer than this server: no choice.
        _ => Answer::Cancelled,
    }
}

/// The `elicitation/create` params: the message, and a form of one
/// required choice among the candidates' labels.
pub fn request(message: String, candidates: &[AdvertiserRecord]) -> ElicitRequestParams {
    let labels: Vec<String> = candidates.iter().map(AdvertiserRecord::label).collect();
    let schema = json!({
        "type": "object",
        "properties": {
            FIELD: {
                "type": "string",
                "title": "Advertiser",
                "description": "The HiEnergy advertiser record to add the contact to",
                "enum": labels,
            }
        },
        "required": [FIELD],
    });
    let requested_schema = match schema {
        Value::Object(map) => ElicitationSchema::from_json_schema(map).unwrap_or_else(|_| {
            // Not reached: the schema above is a valid form.
            ElicitationSchema::builder()
                .build()
                .unwrap_or_else(|_| ElicitationSchema::new(Default::default()))
        }),
        _ => ElicitationSchema::new(Default::default()),
    };
    ElicitRequestParams::FormElicitationParams {
        meta: None,
        message,
        requested_schema,
    }
}

/// The record whose label the user picked; anything else is no choice.
fn chosen(content: Option<&Value>, candidates: &[AdvertiserRecord]) -> Answer {
    let label = content.and_then(|c| c.get(FIELD)).and_then(Value::as_str);
    match candidates
        .iter()
        .find(|c| Some(c.label().as_str()) == label)
    {
        Some(record) => Answer::Chose(record.clone()),
        None => Answer::Failed(format!(
            "the client accepted with {} instead of one of the choices",
            content.map_or("no content".to_owned(), Value::to_string)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alo(id: u64, network: &str) -> AdvertiserRecord {
        AdvertiserRecord {
            id,
            name: Some("Alo Yoga".into()),
            domain: Some("aloyoga.com".into()),
            network: Some(network.into()),
        }
    }

    #[test]
    fn the_answer_is_read_back_by_its_label_only() {
        let candidates = [alo(42, "Awin"), alo(43, "CJ")];
        let pick = |v: Value| chosen(Some(&v), &candidates);
        assert_eq!(
            pick(json!({"advertiser": "Alo Yoga (aloyoga.com) on CJ, #43"})),
            Answer::Chose(alo(43, "CJ"))
        );
        assert!(matches!(
            pick(json!({"advertiser": "43"})),
            Answer::Failed(_)
        ));
        assert!(matches!(pick(json!({})), Answer::Failed(_)));
        assert!(matches!(chosen(None, &candidates), Answer::Failed(_)));
    }
}
