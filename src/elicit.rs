//! Asking the user which advertiser they mean: MCP elicitation, a form
//! the client shows, with one required choice.
//!
//! The form is the simplest the spec allows (a flat object with one `enum`
//! string property), so that every client that declared the capability can
//! show it: the TypeScript SDK validates it, and richer forms (titled
//! `oneOf`) are newer than some clients. Each choice is its own label,
//! "Name (domain) on network, #id", and is read back by that label.
//!
//! This uses the server-to-client `elicitation/create` request (protocol
//! revisions up to 2025-11-25). rmcp 3.11 refuses that request on a
//! 2026-07-28 session, which asks with an `input_required` result instead;
//! there the call answers as if the user could not be asked (see
//! `crate::resolve`).

use std::time::Duration;

use rmcp::model::{ElicitRequestParams, ElicitationAction, ElicitationSchema, ProtocolVersion};
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
}

/// Asks the user of one call's client.
pub struct Asker {
    peer: Peer<RoleServer>,
    timeout: Duration,
    cancelled: CancellationToken,
}

impl Asker {
    /// An asker when this call's client declared form elicitation and the
    /// session can carry the request; `None` otherwise.
    pub fn for_call(
        context: &RequestContext<RoleServer>,
        timeout: Duration,
        cancelled: CancellationToken,
    ) -> Option<Self> {
        let elicitation = context.client_capabilities()?.elicitation?;
        // An empty capability means form (the spec's default); one that
        // lists modes must list form.
        let form = elicitation.form.is_some() || elicitation.url.is_none();
        let legacy = context.protocol_version() != Some(ProtocolVersion::V_2026_07_28);
        (form && legacy).then(|| Self {
            peer: context.peer.clone(),
            timeout,
            cancelled,
        })
    }

    /// Puts the question, and waits at most `--elicitation-timeout` for
    /// the answer (or until the call is cancelled).
    pub async fn choose(&self, message: String, candidates: &[AdvertiserRecord]) -> Answer {
        let request = self
            .peer
            .create_elicitation_with_timeout(request(message, candidates), Some(self.timeout));
        let result = tokio::select! {
            biased;
            _ = self.cancelled.cancelled() => return Answer::Cancelled,
            result = request => result,
        };
        match result {
            Ok(result) => match result.action {
                ElicitationAction::Accept => chosen(result.content.as_ref(), candidates),
                ElicitationAction::Decline => Answer::Declined,
                // Cancel, and any action newer than this server: no choice.
                _ => Answer::Cancelled,
            },
            Err(rmcp::ServiceError::Timeout { .. }) => Answer::NoAnswer(self.timeout),
            Err(e) => Answer::Failed(e.to_string()),
        }
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
    fn the_form_is_one_required_enum_of_labels() {
        let params = request("Which?".into(), &[alo(42, "Awin"), alo(43, "CJ")]);
        let value = serde_json::to_value(&params).unwrap_or_default();
        assert_eq!(
            value,
            json!({
                "mode": "form",
                "message": "Which?",
                "requestedSchema": {
                    "type": "object",
                    "properties": {
                        "advertiser": {
                            "type": "string",
                            "title": "Advertiser",
                            "description": "The HiEnergy advertiser record to add the contact to",
                            "enum": ["Alo Yoga (aloyoga.com) on Awin, #42", "Alo Yoga (aloyoga.com) on CJ, #43"],
                        }
                    },
                    "required": ["advertiser"],
                }
            })
        );
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
