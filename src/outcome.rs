//! What a call ends in: the created contact, a preview, or a [`ToolError`].
//!
//! This file is the one place that owns the error taxonomy. Every failure
//! anywhere in the server becomes a [`ToolError`] with an [`ErrorKind`], and
//! every kind has its hint, its retry advice and its wire name here.

use rmcp::model::{CallToolResult, ContentBlock};
use serde::Serialize;
use serde_json::{Map, Value, json};

/// The error kinds an agent can branch on. The wire name is the snake_case
/// form (`advertiser_not_found`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The arguments failed validation; nothing was sent.
    InvalidArguments,
    /// No API key is configured; nothing was sent.
    NotConfigured,
    /// HiEnergy answered 401: the key is missing, wrong or revoked.
    Unauthorized,
    /// HiEnergy answered 403: the key is valid but not an admin key.
    Forbidden,
    /// HiEnergy answered 404: advertiser_id is not a HiEnergy advertiser.
    AdvertiserNotFound,
    /// HiEnergy refused the contact (400, 409, 422 or another 4xx).
    Rejected,
    /// HiEnergy answered 429.
    RateLimited,
    /// HiEnergy answered 5xx.
    UpstreamError,
    /// No complete answer within the configured time.
    Timeout,
    /// The connection could not be made or broke.
    Network,
    /// HiEnergy's answer was not what the API promises (not JSON, wrong
    /// shape, a redirect, too large).
    BadResponse,
    /// The client cancelled the call, or the server is shutting down.
    Cancelled,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::InvalidArguments,
        ErrorKind::NotConfigured,
        ErrorKind::Unauthorized,
        ErrorKind::Forbidden,
        ErrorKind::AdvertiserNotFound,
        ErrorKind::Rejected,
        ErrorKind::RateLimited,
        ErrorKind::UpstreamError,
        ErrorKind::Timeout,
        ErrorKind::Network,
        ErrorKind::BadResponse,
        ErrorKind::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidArguments => "invalid_arguments",
            ErrorKind::NotConfigured => "not_configured",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::AdvertiserNotFound => "advertiser_not_found",
            ErrorKind::Rejected => "rejected",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::UpstreamError => "upstream_error",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Network => "network",
            ErrorKind::BadResponse => "bad_response",
            ErrorKind::Cancelled => "cancelled",
        }
    }

    /// Whether sending the same arguments again, unchanged, can succeed.
    /// Where the contact may already exist, `created: "unknown"` and the hint
    /// say to check first; this flag only says the failure is not permanent.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimited
                | ErrorKind::UpstreamError
                | ErrorKind::Timeout
                | ErrorKind::Network
                | ErrorKind::Cancelled
        )
    }

    /// One sentence telling an agent what to do next.
    pub fn hint(self) -> &'static str {
        match self {
            ErrorKind::InvalidArguments => {
                "Fix the fields listed in `fields` and call again; nothing was sent to HiEnergy."
            }
            ErrorKind::NotConfigured => {
                "Ask the user to set HIENERGY_API_KEY (an admin API key from HiEnergy) in the \"env\" block of this server's entry in their MCP client config, then restart the client; use dry_run to preview meanwhile."
            }
            ErrorKind::Unauthorized => {
                "The API key is missing, wrong or revoked: ask the user to check HIENERGY_API_KEY in their MCP client config; retrying with the same key will not help."
            }
            ErrorKind::Forbidden => {
                "This endpoint needs an admin API key: ask the user for a HiEnergy admin key and to put it in HIENERGY_API_KEY; retrying with the same key will not help."
            }
            ErrorKind::AdvertiserNotFound => {
                "The advertiser_id does not resolve to a HiEnergy advertiser: look the advertiser up in HiEnergy (by name or domain) and retry with its id."
            }
            ErrorKind::Rejected => {
                "HiEnergy refused the contact: fix the fields listed in `fields` (or the problem in `message`) and retry; nothing was created."
            }
            ErrorKind::RateLimited => {
                "HiEnergy is rate limiting this key: wait retry_after_seconds (or a minute if absent) and retry; nothing was created."
            }
            ErrorKind::UpstreamError => {
                "HiEnergy failed while handling the request and the contact may or may not exist: check for it in HiEnergy before retrying, or retry and accept a possible duplicate."
            }
            ErrorKind::Timeout => {
                "HiEnergy did not answer in time and the contact may or may not exist: check for it in HiEnergy before retrying."
            }
            ErrorKind::Network => {
                "The connection to HiEnergy failed: if created is \"no\" retry in a moment; if \"unknown\", check for the contact in HiEnergy before retrying."
            }
            ErrorKind::BadResponse => {
                "HiEnergy's answer could not be understood, so the contact may or may not exist: check for it in HiEnergy before retrying, and check HIENERGY_BASE_URL if this repeats."
            }
            ErrorKind::Cancelled => {
                "The call was cancelled before HiEnergy answered and the contact may or may not exist: check for it in HiEnergy before calling again."
            }
        }
    }
}

/// Whether HiEnergy may have created the contact despite the failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Created {
    /// HiEnergy certainly did not create it: the request never left, or
    /// HiEnergy answered that it refused it.
    No,
    /// The request may have reached HiEnergy and been processed.
    Unknown,
}

/// Problems an error lists at most; the message counts the rest. Ten
/// thousand unknown argument names once made a 5 MB reply.
pub const MAX_LISTED_PROBLEMS: usize = 50;

/// One problem with one field, from local validation or HiEnergy's details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    pub field: String,
    pub problem: String,
}

impl FieldProblem {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// A failed call, as the agent sees it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ToolError {
    pub kind: ErrorKind,
    pub message: String,
    pub created: Created,
    /// The HTTP status HiEnergy answered with, where it answered.
    pub status: Option<u16>,
    /// HiEnergy's own error code, from its error envelope.
    pub code: Option<String>,
    /// HiEnergy's request id, for support tickets.
    pub request_id: Option<String>,
    pub fields: Vec<FieldProblem>,
    pub retry_after_seconds: Option<u64>,
    /// A hint more specific than the kind's own. One byte, not a string:
    /// every `Result` in the server carries this type.
    pub special_hint: Option<SpecialHint>,
}

/// Hints for cases narrower than their kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialHint {
    /// not_configured because a setting, not the key, is unusable.
    FixSettings,
    /// cancelled before this contact was ever sent (an item of a list).
    NotStarted,
    /// network because HiEnergy's TLS certificate was not trusted: the
    /// same call fails the same way until the user's trust store changes.
    UntrustedCertificate,
}

impl SpecialHint {
    fn text(self) -> &'static str {
        match self {
            SpecialHint::FixSettings => {
                "Ask the user to fix the settings named in `message` (in the \"env\" block of this server's entry in their MCP client config, or in the extension's settings), then restart the client; nothing is sent until then."
            }
            SpecialHint::NotStarted => {
                "This contact was never sent, so it was not created: send it again when the user still wants it."
            }
            SpecialHint::UntrustedCertificate => {
                "Nothing was sent: the certificate HiEnergy's address presented is not trusted on this machine. Retrying will not help. If the user's network inspects HTTPS (a corporate proxy or firewall), ask them to set SSL_CERT_FILE (or SSL_CERT_DIR) in this server's \"env\" block to that CA's certificates, then restart the client; otherwise check HIENERGY_BASE_URL."
            }
        }
    }
}

impl ToolError {
    pub fn new(kind: ErrorKind, created: Created, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            created,
            status: None,
            code: None,
            request_id: None,
            fields: Vec::new(),
            retry_after_seconds: None,
            special_hint: None,
        }
    }

    /// The first [`MAX_LISTED_PROBLEMS`] problems, in the order given; the
    /// message says how many more there were.
    pub fn invalid_arguments(mut fields: Vec<FieldProblem>) -> Self {
        let total = fields.len();
        fields.truncate(MAX_LISTED_PROBLEMS);
        let list = fields
            .iter()
            .map(|f| format!("{}: {}", f.field, f.problem))
            .collect::<Vec<_>>()
            .join("; ");
        let message = match total - fields.len() {
            0 => format!("Invalid arguments ({list})."),
            more => format!(
                "Invalid arguments ({list}; and {more} more not listed, {total} problems in all)."
            ),
        };
        let mut error = Self::new(ErrorKind::InvalidArguments, Created::No, message);
        error.fields = fields;
        error
    }

    pub fn not_configured() -> Self {
        Self::new(
            ErrorKind::NotConfigured,
            Created::No,
            "No HiEnergy API key is configured (HIENERGY_API_KEY is not set), so nothing was sent.",
        )
    }

    /// A setting of the server's own is not usable: the message names it.
    pub fn misconfigured(message: String) -> Self {
        let mut error = Self::new(ErrorKind::NotConfigured, Created::No, message);
        error.special_hint = Some(SpecialHint::FixSettings);
        error
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Whether the same call, unchanged, can succeed later: the kind's
    /// answer, except where this error knows it cannot.
    pub fn retryable(&self) -> bool {
        self.kind.retryable() && self.special_hint != Some(SpecialHint::UntrustedCertificate)
    }

    /// The hint, made specific where the error knows more than its kind.
    pub fn hint(&self) -> String {
        if let Some(special) = self.special_hint {
            return special.text().to_owned();
        }
        match (self.kind, self.retry_after_seconds) {
            (ErrorKind::RateLimited, Some(seconds)) => format!(
                "HiEnergy is rate limiting this key: retry after {seconds} seconds; nothing was created."
            ),
            // A refusal that is not HiEnergy's (a 404 page, a router's
            // "no route"): the kind's own hint would say the contact may
            // exist, which a 4xx rules out.
            (ErrorKind::BadResponse, _) if self.created == Created::No => {
                "Nothing was created: the answer did not come from HiEnergy's contacts endpoint. Ask the user to check HIENERGY_BASE_URL: it should be the HiEnergy host alone, such as https://app.hienergy.ai; retrying unchanged will not help.".to_owned()
            }
            _ => self.kind.hint().to_owned(),
        }
    }

    pub fn to_json(&self) -> Value {
        let mut error = Map::new();
        error.insert("kind".into(), json!(self.kind));
        error.insert("message".into(), json!(self.message));
        error.insert("hint".into(), json!(self.hint()));
        error.insert("retryable".into(), json!(self.retryable()));
        error.insert("created".into(), json!(self.created));
        if let Some(status) = self.status {
            error.insert("status".into(), json!(status));
        }
        if let Some(code) = &self.code {
            error.insert("code".into(), json!(code));
        }
        if let Some(request_id) = &self.request_id {
            error.insert("request_id".into(), json!(request_id));
        }
        if !self.fields.is_empty() {
            error.insert("fields".into(), json!(self.fields));
        }
        if let Some(seconds) = self.retry_after_seconds {
            error.insert("retry_after_seconds".into(), json!(seconds));
        }
        json!({ "error": error })
    }

    /// The sentence the text content carries, for clients that show only text.
    pub fn sentence(&self) -> String {
        let created = match self.created {
            Created::No => "The contact was not created.",
            Created::Unknown => "The contact may or may not have been created.",
        };
        format!(
            "Failed ({}): {} {} {}",
            self.kind.as_str(),
            self.message,
            created,
            self.hint()
        )
    }

    pub fn into_result(self) -> CallToolResult {
        self.into_result_with(Map::new())
    }

    /// The error result, with extra top-level members beside `error`
    /// (such as `previous_attempt`).
    pub fn into_result_with(self, extra: Map<String, Value>) -> CallToolResult {
        let mut structured = self.to_json();
        if let Value::Object(map) = &mut structured {
            map.extend(extra);
        }
        tool_result(structured, self.sentence(), true)
    }
}

/// A tool result: `structured` for clients that read structuredContent,
/// `text` for those that show only text. Built directly rather than with
/// rmcp's `CallToolResult::structured`, which serialises the whole value
/// into a text block that would only be replaced (a sixth of a dry run's
/// instructions).
pub fn tool_result(structured: Value, text: String, is_error: bool) -> CallToolResult {
    let mut result = if is_error {
        CallToolResult::error(vec![ContentBlock::text(text)])
    } else {
        CallToolResult::success(vec![ContentBlock::text(text)])
    };
    result.structured_content = Some(structured);
    result
}

/// The schema of the `error` member every tool's error result carries:
/// exactly what [`ToolError::to_json`] writes, member by member, so strict
/// clients accept error results as they accept successes.
pub fn error_schema() -> Value {
    let kinds: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
    json!({
        "type": "object",
        "description": "Present when the call failed (isError: true): what went wrong and what to do next.",
        "properties": {
            "kind": {
                "type": "string",
                "enum": kinds,
                "description": "What failed, for branching on."
            },
            "message": {"type": "string", "description": "What happened, including what HiEnergy said."},
            "hint": {"type": "string", "description": "What to do next."},
            "retryable": {
                "type": "boolean",
                "description": "Whether the same call, unchanged, can succeed later."
            },
            "created": {
                "type": "string",
                "enum": ["no", "unknown"],
                "description": "\"no\": nothing was created. \"unknown\": the contact may exist; check HiEnergy before retrying."
            },
            "status": {
                "type": "integer",
                "minimum": 100,
                "maximum": 599,
                "description": "The HTTP status HiEnergy answered with, where it answered."
            },
            "code": {"type": "string", "description": "HiEnergy's own error code."},
            "request_id": {"type": "string", "description": "HiEnergy's request id, for support."},
            "fields": {
                "type": "array",
                "description": "The fields at fault and what is wrong with each.",
                "items": {
                    "type": "object",
                    "properties": {
                        "field": {"type": "string"},
                        "problem": {"type": "string"}
                    },
                    "required": ["field", "problem"],
                    "additionalProperties": false
                }
            },
            "retry_after_seconds": {
                "type": "integer",
                "minimum": 0,
                "description": "With rate_limited: seconds to wait before retrying."
            }
        },
        "required": ["kind", "message", "hint", "retryable", "created"],
        "additionalProperties": false
    })
}

/// The result of a successful call: the contact object, with flags that say
/// whether it is a replay of an earlier call.
pub fn success_result(contact: Map<String, Value>, extra: Map<String, Value>) -> CallToolResult {
    let replayed = extra.get("replayed").and_then(Value::as_bool) == Some(true);
    let text = success_sentence(&contact, replayed);
    let mut structured = Map::new();
    structured.insert("contact".into(), Value::Object(contact));
    structured.extend(extra);
    tool_result(Value::Object(structured), text, false)
}

fn success_sentence(contact: &Map<String, Value>, replayed: bool) -> String {
    use std::fmt::Write;
    // One string written in place: this runs on every created contact.
    let mut text = String::with_capacity(160);
    text.push_str(if replayed {
        "Contact"
    } else {
        "Created HiEnergy contact"
    });
    match contact.get("id") {
        Some(Value::String(id)) => {
            let _ = write!(text, " {id}");
        }
        Some(id) => {
            let _ = write!(text, " {id}");
        }
        None => {}
    }
    if let Some(email) = contact.get("email").and_then(Value::as_str) {
        let _ = write!(text, " <{email}>");
    }
    if let Some(advertiser) = contact.get("advertiser_id") {
        let _ = write!(text, " for advertiser {advertiser}");
    }
    text.push_str(if replayed {
        " was already created by an identical earlier call; no new contact was made (replayed)."
    } else {
        "."
    });
    text
}

/// Cuts text to `max_chars` characters, marking the cut: anything quoted
/// back to the agent (upstream text, argument names) stays bounded.
pub fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_distinct_wire_name_and_a_hint() {
        let mut names = std::collections::HashSet::new();
        for kind in ErrorKind::ALL {
            let wire = serde_json::to_value(kind).unwrap_or_default();
            assert_eq!(wire, json!(kind.as_str()));
            assert!(names.insert(kind.as_str()));
            assert!(kind.hint().ends_with('.'), "{kind:?}");
        }
    }

    #[test]
    fn a_special_hint_replaces_the_kind_s_own() {
        // Each says what its case needs and the kind's hint does not.
        for (special, kind, words) in [
            (
                SpecialHint::FixSettings,
                ErrorKind::NotConfigured,
                "fix the settings named in `message`",
            ),
            (
                SpecialHint::NotStarted,
                ErrorKind::Cancelled,
                "never sent, so it was not created",
            ),
            (
                SpecialHint::UntrustedCertificate,
                ErrorKind::Network,
                "SSL_CERT_FILE",
            ),
        ] {
            let mut error = ToolError::new(kind, Created::No, "m");
            error.special_hint = Some(special);
            let hint = error.hint();
            assert!(hint.contains(words), "{special:?}: {hint}");
            assert_ne!(hint, kind.hint(), "{special:?}");
            assert_eq!(error.to_json()["error"]["hint"], json!(hint));
            assert!(error.sentence().ends_with(&hint), "{special:?}");
        }
    }

    #[test]
    fn retryable_is_pinned_per_kind() {
        // Retrying the same arguments can help only where the failure is
        // not in the arguments, the key or the configuration.
        let expected = |kind: ErrorKind| match kind {
            ErrorKind::InvalidArguments => false,
            ErrorKind::NotConfigured => false,
            ErrorKind::Unauthorized => false,
            ErrorKind::Forbidden => false,
            ErrorKind::AdvertiserNotFound => false,
            ErrorKind::Rejected => false,
            ErrorKind::RateLimited => true,
            ErrorKind::UpstreamError => true,
            ErrorKind::Timeout => true,
            ErrorKind::Network => true,
            ErrorKind::BadResponse => false,
            ErrorKind::Cancelled => true,
        };
        for kind in ErrorKind::ALL {
            assert_eq!(kind.retryable(), expected(kind), "{kind:?}");
            let json = ToolError::new(kind, Created::No, "m").to_json();
            assert_eq!(json["error"]["retryable"], expected(kind), "{kind:?}");
        }
        // A refused certificate is refused again until the trust store
        // changes: network, but not retryable, and the hint says why.
        let mut error = ToolError::new(ErrorKind::Network, Created::No, "m");
        error.special_hint = Some(SpecialHint::UntrustedCertificate);
        let json = error.to_json();
        assert_eq!(json["error"]["retryable"], false);
        let hint = json["error"]["hint"].as_str().unwrap_or_default();
        assert!(hint.contains("SSL_CERT_FILE"), "{hint}");
        assert!(hint.contains("Retrying will not help"), "{hint}");
    }

    #[test]
    fn error_json_carries_every_member_the_agent_branches_on() {
        let mut error =
            ToolError::new(ErrorKind::RateLimited, Created::No, "slow down").with_status(429);
        error.retry_after_seconds = Some(7);
        error.request_id = Some("req-1".into());
        let value = error.to_json();
        assert_eq!(value["error"]["kind"], "rate_limited");
        assert_eq!(value["error"]["created"], "no");
        assert_eq!(value["error"]["retryable"], true);
        assert_eq!(value["error"]["status"], 429);
        assert_eq!(value["error"]["retry_after_seconds"], 7);
        assert_eq!(value["error"]["request_id"], "req-1");
        assert!(
            value["error"]["hint"]
                .as_str()
                .is_some_and(|h| h.contains("7 seconds"))
        );
        assert!(value["error"].get("fields").is_none());
    }

    #[test]
    fn error_result_is_flagged_and_says_the_same_in_text() {
        let result = ToolError::invalid_arguments(vec![FieldProblem::new("email", "is required")])
            .into_result();
        assert_eq!(result.is_error, Some(true));
        let text = result.content[0].as_text().map(|t| t.text.clone());
        let text = text.unwrap_or_default();
        assert!(text.contains("invalid_arguments"), "{text}");
        assert!(text.contains("email: is required"), "{text}");
        assert!(text.contains("not created"), "{text}");
    }

    /// Every kind, with every optional member set, is what the schema
    /// says: a member added to `to_json` without the schema fails here.
    #[test]
    fn every_error_matches_the_error_schema() {
        let schema = json!({
            "type": "object",
            "properties": {"error": error_schema()},
            "required": ["error"],
            "additionalProperties": false
        });
        let validator = jsonschema::validator_for(&schema)
            .unwrap_or_else(|e| panic!("error_schema is not a schema: {e}"));
        for kind in ErrorKind::ALL {
            for created in [Created::No, Created::Unknown] {
                let bare = ToolError::new(kind, created, "m");
                let mut full = bare.clone().with_status(599);
                full.code = Some("c".into());
                full.request_id = Some("r".into());
                full.fields = vec![FieldProblem::new("email", "is invalid")];
                full.retry_after_seconds = Some(0);
                for error in [bare, full, ToolError::misconfigured("m".into())] {
                    let value = error.to_json();
                    let problems: Vec<String> = validator
                        .iter_errors(&value)
                        .map(|e| e.to_string())
                        .collect();
                    assert!(problems.is_empty(), "{kind:?}: {problems:?} {value}");
                }
            }
        }
    }

    #[test]
    fn invalid_arguments_lists_at_most_the_cap_and_counts_the_rest() {
        let problems = |n: usize| {
            (0..n)
                .map(|i| FieldProblem::new(format!("f{i}"), "is wrong"))
                .collect::<Vec<_>>()
        };
        let exact = ToolError::invalid_arguments(problems(MAX_LISTED_PROBLEMS));
        assert_eq!(exact.fields.len(), MAX_LISTED_PROBLEMS);
        assert!(!exact.message.contains("more"), "{}", exact.message);
        assert!(
            exact.message.ends_with("f49: is wrong)."),
            "{}",
            exact.message
        );
        let over = ToolError::invalid_arguments(problems(MAX_LISTED_PROBLEMS + 1));
        assert_eq!(over.fields.len(), MAX_LISTED_PROBLEMS);
        assert_eq!(over.fields[49].field, "f49");
        assert!(
            over.message
                .ends_with("f49: is wrong; and 1 more not listed, 51 problems in all)."),
            "{}",
            over.message
        );
    }

    #[test]
    fn a_bad_response_that_created_nothing_says_so_and_names_the_base_url() {
        let no = ToolError::new(ErrorKind::BadResponse, Created::No, "404 page");
        assert!(
            no.hint().starts_with("Nothing was created"),
            "{}",
            no.hint()
        );
        assert!(no.hint().contains("HIENERGY_BASE_URL"), "{}", no.hint());
        let unknown = ToolError::new(ErrorKind::BadResponse, Created::Unknown, "not JSON");
        assert_eq!(unknown.hint(), ErrorKind::BadResponse.hint());
    }

    #[test]
    fn truncate_counts_characters() {
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("hé", 2), "hé");
    }

    #[test]
    fn success_text_names_the_contact() {
        let contact = json!({"id": 7, "email": "a@b.co", "advertiser_id": 42});
        let Value::Object(contact) = contact else {
            unreachable!()
        };
        let result = success_result(contact.clone(), Map::new());
        assert_eq!(result.is_error, Some(false));
        assert_eq!(result.structured_content, Some(json!({"contact": contact})));
        let text = result.content[0].as_text().map(|t| t.text.clone());
        assert_eq!(
            text.as_deref(),
            Some("Created HiEnergy contact 7 <a@b.co> for advertiser 42.")
        );
    }
}
