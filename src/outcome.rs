//! What a call ends in: the created contact, a preview, or a [`ToolError`].
//!
//! This file is the one place that owns the error taxonomy. Every failure
//! anywhere in the server becomes a [`ToolError`] with an [`ErrorKind`], and
//! every kind has its hint, its retry advice and its wire name here.

use rmcp::model::{CallToolResult, ContentBlock};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

/// Where HIENERGY_API_KEY goes, for every way the server is started; the
/// not_configured hint and the warning at start say it.
#[macro_export]
macro_rules! where_the_key_goes {
    () => {
        "the environment of this server's entry in the client's config (\"env\" in most clients, \"environment\" in opencode, the env table in Codex), or the \"HiEnergy API key\" setting of the Claude Desktop extension; `hienergy-mcp setup <client>` writes it"
    };
}

/// The error kinds an agent can branch on. The wire name is the snake_case
/// form (`advertiser_not_found`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
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
    /// `advertiser` (a name or domain) matched several records, or none
    /// exactly, and the user could not be asked; see `candidates`.
    AdvertiserAmbiguous,
    /// HiEnergy's advertiser search was down or failed, so `advertiser`
    /// could not be resolved; nothing was sent.
    SearchUnavailable,
    /// The user was asked which advertiser they meant and declined or
    /// cancelled; nothing was sent.
    NotChosen,
    /// The user was asked which advertiser they meant and did not answer
    /// within `--elicitation-timeout`; nothing was sent.
    ChoiceTimeout,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 16] = [
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
        ErrorKind::AdvertiserAmbiguous,
        ErrorKind::SearchUnavailable,
        ErrorKind::NotChosen,
        ErrorKind::ChoiceTimeout,
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
            ErrorKind::AdvertiserAmbiguous => "advertiser_ambiguous",
            ErrorKind::SearchUnavailable => "search_unavailable",
            ErrorKind::NotChosen => "not_chosen",
            ErrorKind::ChoiceTimeout => "choice_timeout",
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
                | ErrorKind::SearchUnavailable
        )
    }

    /// One sentence telling an agent what to do next.
    pub fn hint(self) -> &'static str {
        match self {
            ErrorKind::InvalidArguments => {
                "Fix the fields listed in `fields` and call again; nothing was sent to HiEnergy."
            }
            ErrorKind::NotConfigured => concat!(
                "Ask the user to set HIENERGY_API_KEY (an admin API key from HiEnergy) where their MCP client starts this server: ",
                where_the_key_goes!(),
                "; then restart the client. Meanwhile dry_run previews the request."
            ),
            ErrorKind::Unauthorized => {
                "The API key is missing, wrong or revoked: ask the user to check HIENERGY_API_KEY in their MCP client config; retrying with the same key will not help."
            }
            ErrorKind::Forbidden => {
                "This endpoint needs an admin API key: ask the user for a HiEnergy admin key and to put it in HIENERGY_API_KEY; retrying with the same key will not help."
            }
            ErrorKind::AdvertiserNotFound => {
                "The advertiser_id does not resolve to a HiEnergy advertiser: look the advertiser up with search_advertisers (by the brand's name or domain), let the user choose when it lists several records, and retry with its id."
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
            ErrorKind::AdvertiserAmbiguous => {
                "Nothing was sent: ask the user which advertiser they mean, then call again with advertiser_id (the candidates are in error.candidates); do not pick one yourself."
            }
            ErrorKind::SearchUnavailable => {
                "Nothing was sent: HiEnergy's advertiser search could not be used, so the advertiser was not looked up (and no guess was made). Try again in a moment, or call again with advertiser_id (ask the user for it)."
            }
            ErrorKind::NotChosen => {
                "Nothing was sent: the user chose not to pick an advertiser. Do not call again on your own; ask the user what they want to do."
            }
            ErrorKind::ChoiceTimeout => {
                "Nothing was sent: the user did not answer which advertiser they mean in time. Ask the user in the conversation, then call again with advertiser_id."
            }
        }
    }
}

/// Whether HiEnergy may have created the contact despite the failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Created {
    /// HiEnergy certainly did not create it: the request never left, or
    /// HiEnergy answered that it refused it.
    No,
    /// The request may have reached HiEnergy and been processed.
    Unknown,
}

impl Created {
    pub fn as_str(self) -> &'static str {
        match self {
            Created::No => "no",
            Created::Unknown => "unknown",
        }
    }
}

/// Problems an error lists at most; the message counts the rest. Ten
/// thousand unknown argument names once made a 5 MB reply.
pub const MAX_LISTED_PROBLEMS: usize = 50;

/// One problem with one field, from local validation or HiEnergy's details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
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
    /// created "unknown", and a lookup afterwards did not find the contact.
    NotFoundByLookup,
    /// advertiser_not_found for an `advertiser` name no record matched.
    NoAdvertiserNamed,
}

impl SpecialHint {
    fn text(self) -> &'static str {
        match self {
            SpecialHint::NotFoundByLookup => {
                "HiEnergy gave no answer on whether it created the contact, and a lookup afterwards did not find it; but HiEnergy does not list contacts rated below 1, so it may still exist: ask the user to check for it in HiEnergy (search_contacts may not show it) before it is sent again."
            }
            SpecialHint::FixSettings => {
                "Ask the user to fix the settings named in `message` where their MCP client starts this server (the environment of its entry in the client's config, or the Claude Desktop extension's settings), then restart the client; nothing is sent until then."
            }
            SpecialHint::NotStarted => {
                "This contact was never sent, so it was not created: send it again when the user still wants it."
            }
            SpecialHint::NoAdvertiserNamed => {
                "Nothing was sent: no HiEnergy advertiser matched. Try the brand's domain (e.g. aloyoga.com) as advertiser, or find the record with search_advertisers and call again with its advertiser_id; never guess an id."
            }
            SpecialHint::UntrustedCertificate => {
                "Nothing was sent: the certificate HiEnergy's address presented is not trusted on this machine. Retrying will not help. If the user's network inspects HTTPS (a corporate proxy or firewall), ask them to set SSL_CERT_FILE (or SSL_CERT_DIR) to that CA's certificates in the environment their MCP client starts this server with, then restart the client; otherwise check HIENERGY_BASE_URL."
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

    /// The `error` member of the result, as the agent reads it.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            kind: self.kind,
            message: self.message.clone(),
            hint: self.hint(),
            retryable: self.retryable(),
            created: self.created,
            status: self.status,
            code: self.code.clone(),
            request_id: self.request_id.clone(),
            fields: self.fields.clone(),
            retry_after_seconds: self.retry_after_seconds,
            candidates: Vec::new(),
        }
    }

    /// `{"error": …}`, as a refused call's structured content.
    pub fn to_json(&self) -> Value {
        serde_json::json!({ "error": self.body() })
    }

    /// The result of a call refused as a whole: only `error`, which every
    /// tool's output type carries (see [`Reply`]).
    pub fn into_result(self) -> CallToolResult {
        self.body().into_result()
    }
}

/// A tool's result as a type. Its derived schema, made portable by
/// [`crate::schema::output_schema`], is the tool's outputSchema, so the two
/// cannot drift; [`Reply::text`] renders the same value for clients that
/// show the model only text (Claude Code for errors, opencode always).
///
/// A new tool: a `#[derive(Serialize, JsonSchema)]` struct whose members
/// are all optional (`skip_serializing_if`), one of them `error:
/// Option<ErrorBody>` so that [`ToolError::into_result`] conforms too;
/// `outputSchema` from `schema::output_schema::<ThatType>()`; and `text`
/// saying every fact an agent acts on.
pub trait Reply: Serialize + JsonSchema {
    /// Every fact in the value that an agent needs to act on.
    fn text(&self) -> String;

    /// Whether the client should see the call as failed (`isError`).
    fn is_error(&self) -> bool;

    fn into_result(self) -> CallToolResult
    where
        Self: Sized,
    {
        // Strings, numbers and maps with string keys: cannot fail.
        let structured = serde_json::to_value(&self).unwrap_or_default();
        tool_result(structured, self.text(), self.is_error())
    }
}

/// The `error` member every tool's error result carries.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ErrorBody {
    /// What failed, for branching on.
    pub kind: ErrorKind,
    /// What happened, including what HiEnergy said.
    pub message: String,
    /// What to do next.
    pub hint: String,
    /// Whether the same call, unchanged, can succeed later.
    pub retryable: bool,
    /// "no": nothing was created. "unknown": the contact may exist; check HiEnergy before retrying.
    pub created: Created,
    /// The HTTP status HiEnergy answered with, where it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 100, max = 599))]
    pub status: Option<u16>,
    /// HiEnergy's own error code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// HiEnergy's request id, for support.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The fields at fault and what is wrong with each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldProblem>,
    /// With rate_limited: seconds to wait before retrying.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
    /// With advertiser_ambiguous: the advertiser records the user may mean (at most 10); show them to the user and call again with the advertiser_id they choose.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_CANDIDATES))]
    pub candidates: Vec<AdvertiserRecord>,
}

/// Candidates an error lists, and choices a user is shown, at most.
pub const MAX_CANDIDATES: usize = 10;

/// One HiEnergy advertiser record, as a result names it: the record a
/// contact was added to, or one the user may mean.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct AdvertiserRecord {
    /// The record's advertiser_id.
    #[schemars(range(min = 1))]
    pub id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// The affiliate network of this record, e.g. "Awin".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
}

impl AdvertiserRecord {
    /// "Alo Yoga (aloyoga.com) on Awin, #42": how a user tells records of
    /// one brand apart. Absent parts are left out.
    pub fn label(&self) -> String {
        let mut label = self.name.clone().unwrap_or_else(|| "(no name)".to_owned());
        if let Some(domain) = &self.domain {
            label.push_str(&format!(" ({domain})"));
        }
        if let Some(network) = &self.network {
            label.push_str(&format!(" on {network}"));
        }
        label.push_str(&format!(", #{}", self.id));
        label
    }
}

impl ErrorBody {
    /// Everything but the hint, on one line: kind, created, retryable,
    /// status, retry timing, message and the field problems the message
    /// does not already name. A list states each distinct hint once.
    pub fn line(&self) -> String {
        use std::fmt::Write;
        let mut text = format!(
            "{} (created: {}, retryable: {}",
            self.kind.as_str(),
            self.created.as_str(),
            self.retryable
        );
        if let Some(status) = self.status {
            let _ = write!(text, ", HTTP {status}");
        }
        if let Some(seconds) = self.retry_after_seconds {
            let _ = write!(text, ", retry_after_seconds: {seconds}");
        }
        let _ = write!(text, "): {}", self.message);
        let unsaid: Vec<String> = self
            .fields
            .iter()
            .map(|f| format!("{}: {}", f.field, f.problem))
            .filter(|said| !self.message.contains(said.as_str()))
            .collect();
        if !unsaid.is_empty() {
            let _ = write!(text, " Fields: {}.", unsaid.join("; "));
        }
        if !self.candidates.is_empty() {
            let labels: Vec<String> = self
                .candidates
                .iter()
                .map(AdvertiserRecord::label)
                .collect();
            let _ = write!(text, " Candidates: {}.", labels.join("; "));
        }
        text
    }

    /// The result of a call refused as a whole with this error.
    pub fn into_result(self) -> CallToolResult {
        Refused { error: self }.into_result()
    }

    /// The whole error as text: its line, then the hint.
    pub fn text(&self) -> String {
        format!("Failed: {} Hint: {}", self.line(), self.hint)
    }
}

/// A call refused as a whole: nothing but the error.
#[derive(Serialize, JsonSchema)]
struct Refused {
    error: ErrorBody,
}

impl Reply for Refused {
    fn text(&self) -> String {
        self.error.text()
    }

    fn is_error(&self) -> bool {
        true
    }
}

/// Set when an identical earlier call ended with created "unknown" and
/// this one was sent anyway: there may be a duplicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PreviousAttempt {
    Unknown,
}

impl PreviousAttempt {
    /// What the text says when it is set.
    pub const TEXT: &str = "previous_attempt: unknown (an identical earlier call may have created this contact: check HiEnergy for a duplicate)";

    pub fn from_flag(previous_unknown: bool) -> Option<Self> {
        previous_unknown.then_some(PreviousAttempt::Unknown)
    }
}

/// A tool result: `structured` for clients that read structuredContent,
/// `text` for those that show only text. Built directly rather than with
/// rmcp's `CallToolResult::structured`, which serialises the whole value
/// into a text block that would only be replaced (a sixth of a dry run's
/// instructions).
pub(crate) fn tool_result(structured: Value, text: String, is_error: bool) -> CallToolResult {
    let mut result = if is_error {
        CallToolResult::error(vec![ContentBlock::text(text)])
    } else {
        CallToolResult::success(vec![ContentBlock::text(text)])
    };
    result.structured_content = Some(structured);
    result
}

/// "Created HiEnergy contact 7 <a@b.co> for advertiser 42.", or, replayed,
/// that it already existed.
pub fn success_sentence(contact: &Map<String, Value>, replayed: bool) -> String {
    use std::fmt::Write;
    // One string written in place: this runs on every created contact.
    let mut text = String::with_capacity(160);
    text.push_str(if replayed {
        "Contact"
    } else {
        "Created HiEnergy contact"
    });
    text.push_str(&contact_label(contact));
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

/// What was said of a send beside its outcome: a contact already in
/// HiEnergy, a check that could not be made, a created contact found by a
/// lookup. `dry` for what a real call would do.
pub fn check_sentence(
    contact: Option<&Map<String, Value>>,
    existing: Option<bool>,
    existing_check: Option<&str>,
    confirmed_by_lookup: bool,
    dry: bool,
) -> String {
    let mut text = String::new();
    match (existing, contact) {
        (Some(true), Some(contact)) if dry => text.push_str(&format!(
            "A real call would skip: already exists as id{} in HiEnergy (existing: true); nothing would be added.",
            contact_label(contact)
        )),
        (Some(true), Some(contact)) => text.push_str(&format!(
            "Already in HiEnergy: contact{} was there before this call, so nothing was added (existing: true).",
            contact_label(contact)
        )),
        (Some(false), _) => text.push_str(
            "A real call would add it: HiEnergy lists no contact with this email on this advertiser (existing: false).",
        ),
        _ => {}
    }
    if let Some(why) = existing_check {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&format!(
            "Whether it was already in HiEnergy could not be checked (existing_check: {why}), so it {} anyway.",
            if dry { "would be sent" } else { "was sent" }
        ));
    }
    if confirmed_by_lookup {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str("HiEnergy did not answer the POST, but a lookup afterwards found the contact: it was created (confirmed_by_lookup: true).");
    }
    text
}

/// " 7 <a@b.co>": a contact's id and email, as the text names it.
pub fn contact_label(contact: &Map<String, Value>) -> String {
    use std::fmt::Write;
    let mut text = String::new();
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
    use serde_json::json;

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
            assert!(error.body().text().ends_with(&hint), "{special:?}");
        }
    }

    /// The key goes in a JSON "env" block for most clients, opencode's
    /// "environment", Codex's env table, or the Claude Desktop
    /// extension's setting: the hint must not name only one.
    #[test]
    fn the_not_configured_hint_fits_every_way_of_starting_the_server() {
        let hint = ErrorKind::NotConfigured.hint();
        for way in [
            "\"env\"",
            "\"environment\" in opencode",
            "Codex",
            "Claude Desktop extension",
            "setup",
        ] {
            assert!(hint.contains(way), "{way} not in {hint}");
        }
    }

    #[test]
    fn advertiser_not_found_points_to_search_advertisers() {
        assert!(
            ErrorKind::AdvertiserNotFound
                .hint()
                .contains("search_advertisers")
        );
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
            // The user must answer, or the agent must ask them.
            ErrorKind::AdvertiserAmbiguous => false,
            ErrorKind::SearchUnavailable => true,
            ErrorKind::NotChosen => false,
            ErrorKind::ChoiceTimeout => false,
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
        assert!(text.contains("created: no"), "{text}");
    }

    /// Every kind, with every optional member set, passes the derived
    /// schema once made portable: the rewrite keeps what the type writes.
    #[test]
    fn every_error_matches_the_error_schema() {
        let schema = Value::Object(crate::schema::output_schema::<Refused>().as_ref().clone());
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
        let Value::Object(contact) = json!({"id": 7, "email": "a@b.co", "advertiser_id": 42})
        else {
            unreachable!()
        };
        assert_eq!(
            success_sentence(&contact, false),
            "Created HiEnergy contact 7 <a@b.co> for advertiser 42."
        );
        assert!(success_sentence(&contact, true).contains("(replayed)"));
    }
}
