//! HiEnergy's answer, turned into the created contact or a [`ToolError`]:
//! the status, HiEnergy's error envelope (or a plain string, or an HTML
//! page), field details, and when to retry after a 429.

use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use serde_json::{Map, Value};

use crate::budget::retry_after;
use crate::config::DEFAULT_BASE_URL;
use crate::outcome::{Created, ErrorKind, FieldProblem, ToolError, truncate};

/// Upstream text passed on to the agent is cut to this many characters.
pub const MAX_UPSTREAM_TEXT: usize = 300;

/// Whether a status proves the contact was not created: HiEnergy answered
/// with a refusal. A 2xx, 3xx or 5xx leaves it open.
pub(crate) fn created_for_status(status: StatusCode) -> Created {
    if status.is_client_error() {
        Created::No
    } else {
        Created::Unknown
    }
}

/// Only this much of a body that is not JSON is read for its text: a
/// message keeps a page's title or its first few hundred characters, and
/// the bound keeps the work per answer small whatever the page holds.
const MAX_TEXT_SCAN: usize = 64 * 1024;

/// Turns HiEnergy's answer to a POST to `path` into the created contact or
/// a [`ToolError`].
pub fn classify(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    path: &str,
) -> Result<Map<String, Value>, ToolError> {
    if status.is_success() {
        return parse_success(status, headers, body);
    }
    let created = created_for_status(status);
    let upstream = UpstreamError::parse(headers, body);
    let code = status.as_u16();
    // Redirects and 404s from something other than the contacts endpoint
    // get a message of their own; every other status a lead, followed by
    // whatever HiEnergy said.
    let (kind, message) = match code {
        300..=399 => {
            let location = headers
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(|l| truncate(l, MAX_UPSTREAM_TEXT))
                .unwrap_or_else(|| "(no Location header)".into());
            (
                ErrorKind::BadResponse,
                format!(
                    "HiEnergy answered with a redirect ({code}) to {location}; redirects are not followed, so the API key is never sent elsewhere. Check HIENERGY_BASE_URL."
                ),
            )
        }
        404 if !upstream.names_advertiser() => {
            (ErrorKind::BadResponse, wrong_endpoint(path, &upstream))
        }
        _ => {
            let (kind, lead) = match code {
                401 => (
                    ErrorKind::Unauthorized,
                    "HiEnergy refused the API key (401)".to_owned(),
                ),
                403 => (
                    ErrorKind::Forbidden,
                    "HiEnergy refused the request (403): adding contacts needs an admin API key"
                        .to_owned(),
                ),
                404 => (
                    ErrorKind::AdvertiserNotFound,
                    "HiEnergy found no advertiser with this advertiser_id (404)".to_owned(),
                ),
                429 => (
                    ErrorKind::RateLimited,
                    "HiEnergy is rate limiting this key (429)".to_owned(),
                ),
                400..=499 => (
                    ErrorKind::Rejected,
                    format!("HiEnergy rejected the contact ({code})"),
                ),
                500..=599 => (
                    ErrorKind::UpstreamError,
                    format!("HiEnergy failed with a server error ({code})"),
                ),
                _ => (
                    ErrorKind::BadResponse,
                    format!("HiEnergy answered with an unexpected status ({code})"),
                ),
            };
            let said = upstream
                .message
                .as_ref()
                .map(|text| format!(": {text}"))
                .unwrap_or_default();
            (kind, format!("{lead}{said}."))
        }
    };
    let mut error = ToolError::new(kind, created, message).with_status(code);
    upstream.fill(&mut error);
    if kind == ErrorKind::RateLimited {
        error.retry_after_seconds = retry_after(headers);
    }
    Err(error)
}

/// A 404 that is not HiEnergy's refusal of the advertiser: the request
/// reached a router, a proxy or a web server rather than the contacts
/// endpoint, which is a wrong HIENERGY_BASE_URL (most often one that ends in
/// /api/v1, so the path says it twice). Nothing was created.
fn wrong_endpoint(path: &str, upstream: &UpstreamError) -> String {
    let what = if upstream.is_html {
        "a web page"
    } else {
        "an answer that does not name the advertiser"
    };
    let said = upstream
        .message
        .as_ref()
        .map(|text| format!(" ({text:?})"))
        .unwrap_or_default();
    format!(
        "HiEnergy answered 404 to POST {} with {what}{said}: the contacts endpoint is not at this base URL, so nothing was created. Check HIENERGY_BASE_URL: it should be the HiEnergy host alone, such as {DEFAULT_BASE_URL}.",
        truncate(path, MAX_UPSTREAM_TEXT)
    )
}

fn parse_success(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Map<String, Value>, ToolError> {
    let code = status.as_u16();
    // A 2xx means HiEnergy probably created the contact, so a malformed
    // answer leaves that open rather than saying it failed.
    let bad = |what: String| {
        ToolError::new(
            ErrorKind::BadResponse,
            Created::Unknown,
            format!("HiEnergy answered {code} but {what}; the contact was probably created."),
        )
        .with_status(code)
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad("with an empty body".into()));
    }
    let value: Value = serde_json::from_slice(body).map_err(|_| bad(not_json(headers, body)))?;
    match value {
        Value::Object(mut map) => match map.remove("data") {
            Some(Value::Object(contact)) => Ok(contact),
            Some(other) => Err(bad(format!(
                "its `data` is {} instead of an object",
                json_type(&other)
            ))),
            None => Err(bad("the body has no `data` member".into())),
        },
        other => Err(bad(format!(
            "the body is {} instead of an object",
            json_type(&other)
        ))),
    }
}

/// What a body that is not JSON is, for a message. A sign-in or error page
/// from a proxy in front of HiEnergy: its title says more than its first
/// bytes of markup.
fn not_json(headers: &HeaderMap, body: &[u8]) -> String {
    let text = text_prefix(body);
    // A sign-in or error page from a proxy in front of HiEnergy: its title
    // says more than its first bytes of markup.
    if looks_like_html(headers, &text) {
        let title = html_title(&text)
            .map(|title| format!(" ({:?})", truncate(&title, 80)))
            .unwrap_or_default();
        format!("the body is an HTML page{title}, not JSON")
    } else {
        format!(
            "the body is not JSON (it starts {:?})",
            truncate(&clean_text(&text), 80)
        )
    }
}

/// What could be read out of an error body, whatever its shape.
#[derive(Debug, Default, PartialEq)]
struct UpstreamError {
    code: Option<String>,
    message: Option<String>,
    request_id: Option<String>,
    fields: Vec<FieldProblem>,
    is_html: bool,
    /// The body had an `error` member (an object or a string): an API's
    /// own refusal rather than a router's or a web server's page.
    envelope: bool,
}

impl UpstreamError {
    fn parse(headers: &HeaderMap, body: &[u8]) -> Self {
        let header_request_id = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(|v| truncate(v, 100));
        let mut parsed = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Self::from_json(map),
            Ok(Value::String(s)) => Self {
                message: non_empty(clean_text(&s)),
                ..Self::default()
            },
            Ok(_) => Self::default(),
            Err(_) => {
                let text = text_prefix(body);
                let is_html = looks_like_html(headers, &text);
                let message = if is_html {
                    html_title(&text)
                } else {
                    non_empty(clean_text(&text))
                };
                Self {
                    message,
                    is_html,
                    ..Self::default()
                }
            }
        };
        if parsed.request_id.is_none() {
            parsed.request_id = header_request_id;
        }
        parsed.message = parsed.message.map(|m| truncate(&m, MAX_UPSTREAM_TEXT));
        parsed
    }

    fn from_json(mut map: Map<String, Value>) -> Self {
        match map.remove("error") {
            // HiEnergy's envelope: {"error": {"code","message","request_id","details"}}
            Some(Value::Object(mut error)) => Self {
                code: error.get("code").and_then(scalar_text),
                message: error
                    .get("message")
                    .and_then(scalar_text)
                    .and_then(|m| non_empty(clean_text(&m))),
                request_id: error.get("request_id").and_then(scalar_text),
                fields: error
                    .remove("details")
                    .map(|d| details_to_fields(&d))
                    .unwrap_or_default(),
                is_html: false,
                envelope: true,
            },
            // {"error": "Advertiser not found"}
            Some(Value::String(message)) => Self {
                message: non_empty(clean_text(&message)),
                fields: map
                    .remove("details")
                    .or_else(|| map.remove("errors"))
                    .map(|d| details_to_fields(&d))
                    .unwrap_or_default(),
                envelope: true,
                ..Self::default()
            },
            _ => Self {
                message: map
                    .get("message")
                    .and_then(scalar_text)
                    .and_then(|m| non_empty(clean_text(&m))),
                fields: map
                    .remove("errors")
                    .or_else(|| map.remove("details"))
                    .map(|d| details_to_fields(&d))
                    .unwrap_or_default(),
                ..Self::default()
            },
        }
    }

    /// Whether this is HiEnergy refusing the advertiser, the one 404 that
    /// means `advertiser_not_found`: an `error` member (HiEnergy's envelope
    /// `{"error": {"code", "message", ...}}` or a bare `{"error": "..."}`)
    /// whose code, message or a field names the advertiser. HiEnergy's
    /// own `{"error": {"code": "not_found", "message": "Advertiser not
    /// found"}}` is; a router's `{"error": "No route matches ..."}`, Rails'
    /// `{"status": 404, "error": "Not Found"}`, a `{"message": ...}` with no
    /// `error`, and an empty, plain-text or HTML body are not.
    fn names_advertiser(&self) -> bool {
        let names = |text: &String| text.to_ascii_lowercase().contains("advertiser");
        self.envelope
            && (self.code.iter().chain(&self.message).any(names)
                || self.fields.iter().any(|f| names(&f.field)))
    }

    fn fill(self, error: &mut ToolError) {
        error.code = self.code.map(|c| truncate(&c, 100));
        error.request_id = self.request_id.map(|r| truncate(&r, 100));
        error.fields = self.fields;
    }
}

/// Field problems from the shapes APIs use for details:
/// `{"email": ["is invalid"]}`, `{"email": "is invalid"}`,
/// `[{"field": "email", "message": "is invalid"}]`, or `["Email is invalid"]`.
fn details_to_fields(details: &Value) -> Vec<FieldProblem> {
    const MAX_FIELDS: usize = 50;
    let problem_text = |v: &Value| -> Option<String> {
        match v {
            Value::Array(items) => {
                let parts: Vec<String> = items.iter().filter_map(scalar_text).collect();
                non_empty(parts.join("; "))
            }
            Value::Object(o) => ["message", "problem", "error", "detail"]
                .iter()
                .find_map(|k| o.get(*k).and_then(scalar_text)),
            other => scalar_text(other),
        }
    };
    let mut fields = Vec::new();
    match details {
        Value::Object(map) => {
            for (field, v) in map {
                if let Some(problem) = problem_text(v) {
                    fields.push(FieldProblem::new(
                        truncate(field, 100),
                        truncate(&problem, MAX_UPSTREAM_TEXT),
                    ));
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                let (field, problem) = match item {
                    Value::Object(o) => (
                        ["field", "attribute", "param", "name", "path"]
                            .iter()
                            .find_map(|k| o.get(*k).and_then(scalar_text)),
                        problem_text(item),
                    ),
                    other => (None, scalar_text(other)),
                };
                if let Some(problem) = problem {
                    let field = field.unwrap_or_else(|| "contact".into());
                    fields.push(FieldProblem::new(
                        truncate(&field, 100),
                        truncate(&problem, MAX_UPSTREAM_TEXT),
                    ));
                }
            }
        }
        Value::String(s) => {
            if let Some(s) = non_empty(clean_text(s)) {
                fields.push(FieldProblem::new(
                    "contact",
                    truncate(&s, MAX_UPSTREAM_TEXT),
                ));
            }
        }
        _ => {}
    }
    fields.truncate(MAX_FIELDS);
    fields
}

fn looks_like_html(headers: &HeaderMap, text: &str) -> bool {
    let content_type_html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("html"));
    let start = text
        .trim_start()
        .get(..15)
        .unwrap_or_default()
        .to_ascii_lowercase();
    content_type_html || start.starts_with("<!doctype") || start.starts_with("<html")
}

/// An error page's `<title>`, if it has a non-empty one: all of an HTML
/// page worth passing on beside the status. Looked for in the first
/// [`MAX_TEXT_SCAN`] bytes only.
fn html_title(html: &str) -> Option<String> {
    let html = char_prefix(html, MAX_TEXT_SCAN);
    // ASCII lowercasing keeps every byte where it was, so an offset found in
    // `lower` is the same place in `html`.
    let lower = html.to_ascii_lowercase();
    let open = find_from(&lower, 0, "<title")?;
    // `<title>` or `<title lang=..>`, not `<titles>`.
    let after_name = lower.as_bytes().get(open + 6)?;
    if !(*after_name == b'>' || after_name.is_ascii_whitespace()) {
        return None;
    }
    let start = find_from(&lower, open, ">")? + 1;
    let end = find_from(&lower, start, "</title")?;
    non_empty(clean_text(&decode_entities(html.get(start..end)?)))
}

/// Where `needle` first occurs in `haystack` at or after `from`.
fn find_from(haystack: &str, from: usize, needle: &str) -> Option<usize> {
    haystack.get(from..)?.find(needle).map(|found| from + found)
}

/// The start of `s`, at most `max` bytes, cut at a character boundary.
fn char_prefix(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The start of a body as text, at most [`MAX_TEXT_SCAN`] bytes of it.
fn text_prefix(body: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(body.get(..MAX_TEXT_SCAN).unwrap_or(body))
}

fn decode_entities(s: &str) -> String {
    s.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Collapses whitespace and drops control characters, in the first
/// [`MAX_TEXT_SCAN`] bytes: what is kept is cut far shorter anyway.
fn clean_text(s: &str) -> String {
    char_prefix(s, MAX_TEXT_SCAN)
        .split_whitespace()
        .map(|w| w.chars().filter(|c| !c.is_control()).collect::<String>())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn non_empty(s: String) -> Option<String> {
    (!s.trim().is_empty()).then_some(s)
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => non_empty(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Turns HiEnergy's answer to a read (a GET of `path`) into its JSON, or a
/// [`ToolError`] that says created "no": a read creates nothing. Statuses
/// are read as for the POST, with the wording of a read where the POST's
/// speaks of adding a contact.
pub fn classify_read(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    path: &str,
) -> Result<Value, ToolError> {
    let code = status.as_u16();
    let path = truncate(path, MAX_UPSTREAM_TEXT);
    if status.is_success() {
        let bad = |what: String| {
            ToolError::new(
                ErrorKind::BadResponse,
                Created::No,
                format!("HiEnergy answered {code} to GET {path} but {what}."),
            )
            .with_status(code)
        };
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(bad("with an empty body".into()));
        }
        return serde_json::from_slice(body).map_err(|_| bad(not_json(headers, body)));
    }
    let mut error = match classify(status, headers, body, &path) {
        Err(error) => error,
        Ok(_) => ToolError::new(ErrorKind::BadResponse, Created::No, "unreachable"),
    };
    error.created = Created::No;
    let said = UpstreamError::parse(headers, body)
        .message
        .map(|text| format!(": {text}"))
        .unwrap_or_default();
    let reworded = match (code, error.kind) {
        (403, _) => Some(format!(
            "HiEnergy refused to let this key read {path} (403){said}."
        )),
        (404, ErrorKind::BadResponse) => Some(format!(
            "HiEnergy answered 404 to GET {path}{said}: this read endpoint is not at this base URL. Check HIENERGY_BASE_URL: it should be the HiEnergy host alone, such as {DEFAULT_BASE_URL}."
        )),
        (_, ErrorKind::Rejected) => Some(format!("HiEnergy refused the read ({code}){said}.")),
        _ => None,
    };
    if let Some(message) = reworded {
        error.message = message;
    }
    Err(error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;
    use serde_json::json;

    pub(crate) fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            if let Ok(v) = HeaderValue::from_str(v) {
                map.insert(*k, v);
            }
        }
        map
    }

    const PATH: &str = "/api/v1/contacts/add";

    fn err(status: u16, h: &[(&'static str, &str)], body: &str) -> ToolError {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT);
        match classify(status, &headers(h), body.as_bytes(), PATH) {
            Ok(c) => panic!("expected an error, got {c:?}"),
            Err(e) => e,
        }
    }

    const ENVELOPE: &str = r#"{"error":{"code":"forbidden","message":"Admin API key required","request_id":"req-9","details":null}}"#;
    #[test]
    fn success_returns_data() {
        let body = br#"{"data":{"id":5,"email":"a@b.co"}}"#;
        let got = classify(StatusCode::CREATED, &HeaderMap::new(), body, PATH);
        assert_eq!(
            got.ok().map(Value::Object),
            Some(json!({"id":5,"email":"a@b.co"}))
        );
    }

    /// Status and body → kind, whether the contact may exist, and what the
    /// message says: the one table of the mapping. That it reaches the agent
    /// through the binary is `agent::every_error_kind_carries_its_hint_created_and_retryable`;
    /// that none of these answers is sent again, `hienergy`'s
    /// `an_answered_post_is_sent_once_and_never_redirected`.
    #[test]
    fn every_status_and_body_maps_to_its_kind() {
        use Created::{No, Unknown};
        use ErrorKind::{BadResponse, RateLimited, Rejected, UpstreamError};
        let html = [("content-type", "text/html")];
        let json = [("content-type", "application/json")];
        let html_500 = "<!DOCTYPE html><html><head><title>500 Internal Server Error</title></head><body><h1>We're sorry</h1></body></html>";
        let html_200 = "<!DOCTYPE html><html><head><title>Sign in</title></head><body>Please sign in</body></html>";
        let json_502 =
            r#"{"error":{"code":"bad_gateway","message":"upstream down","request_id":"r-502"}}"#;
        let envelope = ENVELOPE.as_bytes();
        // Status, headers, body → kind, created, and what the message says.
        type Case<'a> = (
            u16,
            &'a [(&'static str, &'a str)],
            &'a [u8],
            ErrorKind,
            Created,
            &'a str,
        );
        let cases: [Case; 33] = [
            (400, &[], envelope, Rejected, No, ""),
            (401, &[], envelope, ErrorKind::Unauthorized, No, ""),
            (403, &[], envelope, ErrorKind::Forbidden, No, ""),
            // The envelope is about the key, not the advertiser.
            (404, &[], envelope, BadResponse, No, ""),
            (405, &[], envelope, Rejected, No, ""),
            (409, &[], envelope, Rejected, No, ""),
            (422, &[], envelope, Rejected, No, ""),
            (429, &[], envelope, RateLimited, No, ""),
            (500, &[], envelope, UpstreamError, Unknown, ""),
            (502, &[], envelope, UpstreamError, Unknown, ""),
            (503, &[], envelope, UpstreamError, Unknown, ""),
            (301, &[], envelope, BadResponse, Unknown, ""),
            (302, &[], b"", BadResponse, Unknown, ""),
            (303, &[], b"", BadResponse, Unknown, ""),
            (307, &[], envelope, BadResponse, Unknown, ""),
            (308, &[], b"", BadResponse, Unknown, ""),
            (
                500,
                &html,
                html_500.as_bytes(),
                UpstreamError,
                Unknown,
                "500 Internal Server Error",
            ),
            (
                502,
                &json,
                json_502.as_bytes(),
                UpstreamError,
                Unknown,
                "upstream down",
            ),
            (503, &[], b"", UpstreamError, Unknown, "(503)"),
            (200, &[], b"OK", BadResponse, Unknown, "not JSON"),
            (
                200,
                &[],
                b"<html>hi</html>",
                BadResponse,
                Unknown,
                "not JSON",
            ),
            (
                200,
                &html,
                html_200.as_bytes(),
                BadResponse,
                Unknown,
                "not JSON",
            ),
            (
                200,
                &[],
                b"\xff\xfe\x00\x80",
                BadResponse,
                Unknown,
                "not JSON",
            ),
            (
                201,
                &json,
                br#"{"data":{"id":7"#,
                BadResponse,
                Unknown,
                "not JSON",
            ),
            (201, &[], b"", BadResponse, Unknown, "empty body"),
            (201, &json, b" \r\n ", BadResponse, Unknown, "empty body"),
            (
                200,
                &[],
                b"[1]",
                BadResponse,
                Unknown,
                "an array instead of an object",
            ),
            (
                201,
                &json,
                br#"[{"id":7}]"#,
                BadResponse,
                Unknown,
                "an array instead of an object",
            ),
            (
                200,
                &[],
                br#"{"data":[1]}"#,
                BadResponse,
                Unknown,
                "`data` is an array",
            ),
            (
                201,
                &json,
                br#"{"data":"created"}"#,
                BadResponse,
                Unknown,
                "`data` is a string",
            ),
            (
                200,
                &[],
                br#"{"data":null}"#,
                BadResponse,
                Unknown,
                "`data` is null",
            ),
            (
                200,
                &[],
                br#"{"contact":{}}"#,
                BadResponse,
                Unknown,
                "no `data`",
            ),
            (
                201,
                &json,
                br#"{"contact":{"id":7}}"#,
                BadResponse,
                Unknown,
                "no `data`",
            ),
        ];
        for (status, h, body, kind, created, says) in cases {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT);
            let e = classify(code, &headers(h), body, PATH).err();
            let e = e.unwrap_or_else(|| panic!("{status} {body:?} should fail"));
            let case = format!("{status} {}", String::from_utf8_lossy(body));
            assert_eq!(
                (e.kind, e.created, e.status),
                (kind, created, Some(status)),
                "{case}"
            );
            assert!(e.message.contains(says), "{case}: {}", e.message);
            assert!(
                !e.message.contains('<'),
                "{case}: markup passed on: {}",
                e.message
            );
        }
    }

    #[test]
    fn envelope_members_are_carried() {
        let e = err(403, &[], ENVELOPE);
        assert_eq!(e.code.as_deref(), Some("forbidden"));
        assert_eq!(e.request_id.as_deref(), Some("req-9"));
        assert!(
            e.message.contains("Admin API key required"),
            "{}",
            e.message
        );
        assert!(e.fields.is_empty());
    }

    #[test]
    fn details_become_fields_in_every_shape() {
        let body = r#"{"error":{"code":"validation_failed","message":"Validation failed","request_id":"r","details":{"email":["has already been taken","is reserved"],"phone":"is invalid"}}}"#;
        let e = err(422, &[], body);
        assert_eq!(
            e.fields,
            vec![
                FieldProblem::new("email", "has already been taken; is reserved"),
                FieldProblem::new("phone", "is invalid"),
            ]
        );
        let body = r#"{"error":{"message":"bad","details":[{"field":"email","message":"is invalid"},{"attribute":"name","error":"too long"},"general"]}}"#;
        let e = err(400, &[], body);
        assert_eq!(
            e.fields,
            vec![
                FieldProblem::new("email", "is invalid"),
                FieldProblem::new("name", "too long"),
                FieldProblem::new("contact", "general"),
            ]
        );
        let e = err(422, &[], r#"{"errors":{"email":["is invalid"]}}"#);
        assert_eq!(e.fields, vec![FieldProblem::new("email", "is invalid")]);
    }

    #[test]
    fn plain_string_error_is_the_message() {
        let e = err(404, &[], r#"{"error":"Advertiser not found"}"#);
        assert_eq!(e.kind, ErrorKind::AdvertiserNotFound);
        assert!(
            e.message.ends_with(": Advertiser not found."),
            "{}",
            e.message
        );
    }

    #[test]
    fn an_html_error_page_is_its_title_and_the_status() {
        let page = format!(
            "<!DOCTYPE html><html><head><title>502 Bad Gateway</title><style>body{{}}</style></head><body><h1>Bad</h1>{}</body></html>",
            "x".repeat(5000)
        );
        let e = err(502, &[("content-type", "text/html")], &page);
        assert_eq!(e.kind, ErrorKind::UpstreamError);
        assert!(e.message.contains("(502)"), "{}", e.message);
        assert!(e.message.ends_with(": 502 Bad Gateway."), "{}", e.message);

        // Without a title, the status alone: none of the page's markup.
        let page = "<html><body><script>var a = '<b>';</script><p>Down &amp; out</p></body></html>";
        let e = err(500, &[], page);
        assert_eq!(e.message, "HiEnergy failed with a server error (500).");
        // A megabyte of markup with no title: still the status alone.
        let page = "<script></script>".repeat(61_000);
        let e = err(500, &[("content-type", "text/html")], &page);
        assert_eq!(e.kind, ErrorKind::UpstreamError);
        assert_eq!(e.message, "HiEnergy failed with a server error (500).");
    }

    #[test]
    fn html_404_is_a_wrong_base_url_not_a_missing_advertiser() {
        let e = err(
            404,
            &[("content-type", "text/html")],
            "<html><title>Not Found</title></html>",
        );
        assert_eq!(e.kind, ErrorKind::BadResponse);
        assert_eq!(e.created, Created::No);
        assert!(e.message.contains("HIENERGY_BASE_URL"));
    }

    #[test]
    fn redirect_names_the_location() {
        let e = err(302, &[("location", "https://login.example/")], "");
        assert!(
            e.message.contains("https://login.example/"),
            "{}",
            e.message
        );
    }

    /// How each header is read is `budget`'s test; here, that the wait
    /// reaches the error, and its absence the hint.
    #[test]
    fn a_429_carries_its_wait() {
        let e = err(429, &[("retry-after", "7")], ENVELOPE);
        assert_eq!(e.retry_after_seconds, Some(7));
        let e = err(429, &[("x-ratelimit-reset", "12")], "");
        assert_eq!(e.retry_after_seconds, Some(12));
        let e = err(429, &[], "");
        assert_eq!(e.retry_after_seconds, None);
        assert!(e.hint().contains("retry"));
    }

    #[test]
    fn request_id_falls_back_to_the_header() {
        let e = err(500, &[("x-request-id", "hdr-1")], "oops");
        assert_eq!(e.request_id.as_deref(), Some("hdr-1"));
    }

    #[test]
    fn html_success_page_is_named_by_its_title() {
        let got = classify(
            StatusCode::OK,
            &headers(&[("content-type", "text/html; charset=utf-8")]),
            b"<!doctype html><html><head><title>Sign in</title></head><body><form></form></body></html>",
            PATH,
        );
        let e = got.err().unwrap_or_else(|| panic!("should fail"));
        assert_eq!(
            (e.kind, e.created),
            (ErrorKind::BadResponse, Created::Unknown)
        );
        assert!(
            e.message.contains("HTML page (\"Sign in\"), not JSON"),
            "{}",
            e.message
        );
        assert!(!e.message.contains('<'), "{}", e.message);
    }

    #[test]
    fn a_404_is_advertiser_not_found_only_when_hienergy_names_the_advertiser() {
        for body in [
            r#"{"error":{"code":"not_found","message":"Advertiser not found","request_id":"r"}}"#,
            r#"{"error":{"code":"advertiser_not_found","message":"Not found"}}"#,
            r#"{"error":{"code":"not_found","message":"Not found","details":{"advertiser_id":["does not exist"]}}}"#,
            r#"{"error":"Advertiser not found"}"#,
            r#"{"error":"ADVERTISER 42 NOT FOUND"}"#,
        ] {
            let e = err(404, &[("content-type", "application/json")], body);
            assert_eq!(
                (e.kind, e.created),
                (ErrorKind::AdvertiserNotFound, Created::No),
                "{body}"
            );
            assert!(!e.message.contains("HIENERGY_BASE_URL"), "{}", e.message);
        }
        let wrong = "/api/v1/api/v1/contacts/add";
        for (content_type, body) in [
            ("application/json", r#"{"status":404,"error":"Not Found"}"#),
            (
                "application/json",
                r#"{"error":"No route matches [POST] \"/api/v1/api/v1/contacts/add\""}"#,
            ),
            (
                "application/json",
                r#"{"error":{"code":"not_found","message":"Not found"}}"#,
            ),
            ("application/json", r#"{"message":"Advertiser not found"}"#),
            ("application/json", r#""Advertiser not found""#),
            ("application/json", "{}"),
            ("application/json", "null"),
            ("text/plain", ""),
            ("text/plain", "Not Found"),
            ("text/plain", "advertiser not found"),
            ("text/html", "<html><title>Not Found</title></html>"),
        ] {
            let status = StatusCode::NOT_FOUND;
            let got = classify(
                status,
                &headers(&[("content-type", content_type)]),
                body.as_bytes(),
                wrong,
            );
            let e = got.err().unwrap_or_else(|| panic!("{body} should fail"));
            assert_eq!(
                (e.kind, e.created, e.status),
                (ErrorKind::BadResponse, Created::No, Some(404)),
                "{body}"
            );
            assert!(e.message.contains("HIENERGY_BASE_URL"), "{}", e.message);
            assert!(e.message.contains(wrong), "{}", e.message);
            assert!(e.message.contains("nothing was created"), "{}", e.message);
            assert!(!e.message.contains('<'), "{}", e.message);
        }
        // What the router said is passed on: it shows the doubled path.
        let e = err(404, &[], r#"{"error":"No route matches [POST] \"/x/y\""}"#);
        assert!(
            e.message.contains(r#"No route matches [POST] \"/x/y\""#),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_404_page_is_known_by_either_of_its_signals() {
        // Recognised by its content type alone: named by its title.
        let e = err(
            404,
            &[("content-type", "text/html")],
            "<title>Gone</title><p>away</p>",
        );
        assert!(e.message.contains("a web page (\"Gone\")"), "{}", e.message);
        // By its leading doctype alone, whatever the content type says.
        for start in ["<!DOCTYPE html>", "  <html>"] {
            let page = format!("{start}<head><title>Gone</title></head><body>x</body>");
            let e = err(404, &[("content-type", "text/plain")], &page);
            assert!(e.message.contains("a web page (\"Gone\")"), "{}", e.message);
            let e = err(500, &[], &page);
            assert!(e.message.ends_with("(500): Gone."), "{}", e.message);
        }
        // Neither: plain text, kept as it is.
        let e = err(404, &[("content-type", "text/plain")], "a <b> c");
        assert!(
            e.message
                .contains("an answer that does not name the advertiser (\"a <b> c\")"),
            "{}",
            e.message
        );
        let got = classify(
            StatusCode::OK,
            &headers(&[("content-type", "text/html")]),
            b"<p>Hi</p>",
            PATH,
        );
        let e = got.err().unwrap_or_else(|| panic!("should fail"));
        assert!(
            e.message.contains("an HTML page, not JSON"),
            "{}",
            e.message
        );
    }

    #[test]
    fn the_title_is_looked_for_in_a_bounded_prefix() {
        let page = format!("{}<title>Down</title>", "<i></i>".repeat(2_000));
        let e = err(503, &[("content-type", "text/html")], &page);
        assert!(e.message.ends_with(": Down."), "{}", e.message);
        let page = format!("{}<title>late</title>", "<b>".repeat(MAX_TEXT_SCAN));
        let e = err(500, &[("content-type", "text/html")], &page);
        assert_eq!(e.message, "HiEnergy failed with a server error (500).");
    }

    #[test]
    fn html_title_takes_only_a_real_non_empty_title() {
        for (page, title) in [
            ("<title>T</title>", Some("T")),
            ("<TITLE lang=en>T &amp; C</Title>x", Some("T & C")),
            ("<title>  a \n b </title>", Some("a b")),
            ("<title> </title><p>body</p>", None),
            ("<titles>no</titles>yes", None),
            ("<title>never closed", None),
            ("<p>no title</p>", None),
        ] {
            assert_eq!(html_title(page).as_deref(), title, "{page}");
        }
    }

    #[test]
    fn prefixes_are_cut_at_a_character_boundary() {
        assert_eq!(char_prefix("héllo", 2), "h");
        assert_eq!(char_prefix("héllo", 3), "hé");
        assert_eq!(char_prefix("é", 1), "");
        assert_eq!(char_prefix("abc", 10), "abc");
        let body = "é".repeat(MAX_TEXT_SCAN);
        assert_eq!(
            text_prefix(body.as_bytes()).chars().count(),
            MAX_TEXT_SCAN / 2
        );
    }

    #[test]
    fn hienergy_s_explanation_is_carried_for_every_body_shape() {
        let e = err(
            400,
            &[],
            r#"{"message":"Email looks wrong","errors":["email is invalid"]}"#,
        );
        assert!(e.message.ends_with(": Email looks wrong."), "{}", e.message);
        assert_eq!(
            e.fields,
            vec![FieldProblem::new("contact", "email is invalid")]
        );
        let e = err(
            400,
            &[],
            r#"{"message":"Bad","details":{"phone":"is invalid"}}"#,
        );
        assert_eq!(e.fields, vec![FieldProblem::new("phone", "is invalid")]);

        let e = err(422, &[], r#""Email is invalid""#);
        assert!(e.message.ends_with(": Email is invalid."), "{}", e.message);

        let e = err(
            422,
            &[],
            r#"{"error":"Validation failed","details":{"email":["is invalid"]}}"#,
        );
        assert!(e.message.ends_with(": Validation failed."), "{}", e.message);
        assert_eq!(e.fields, vec![FieldProblem::new("email", "is invalid")]);
        let e = err(
            422,
            &[],
            r#"{"error":"Validation failed","errors":{"email":"is taken"}}"#,
        );
        assert_eq!(e.fields, vec![FieldProblem::new("email", "is taken")]);

        let e = err(
            422,
            &[],
            r#"{"error":{"message":"Invalid","details":"  email   is invalid "}}"#,
        );
        assert_eq!(
            e.fields,
            vec![FieldProblem::new("contact", "email is invalid")]
        );
        let e = err(
            422,
            &[],
            r#"{"error":{"message":"Invalid","details":"  "}}"#,
        );
        assert!(e.fields.is_empty());

        let e = err(
            409,
            &[("x-request-id", "hdr")],
            r#"{"error":{"code":409,"message":"Conflict","request_id":12345}}"#,
        );
        assert_eq!(e.code.as_deref(), Some("409"));
        assert_eq!(e.request_id.as_deref(), Some("12345"));
        let e = err(
            409,
            &[],
            r#"{"error":{"code":true,"message":false,"request_id":false}}"#,
        );
        assert_eq!(e.code.as_deref(), Some("true"));
        assert_eq!(e.request_id.as_deref(), Some("false"));
        assert!(e.message.ends_with(": false."), "{}", e.message);
        // Nothing usable: the lead alone, and the header's request id.
        let e = err(
            409,
            &[("x-request-id", "hdr")],
            r#"{"error":{"code":null,"message":[],"request_id":{}}}"#,
        );
        assert_eq!((e.code, e.request_id.as_deref()), (None, Some("hdr")));
        assert_eq!(e.message, "HiEnergy rejected the contact (409).");
        let e = err(409, &[], r#"{"error":{"message":"   "}}"#);
        assert_eq!(e.message, "HiEnergy rejected the contact (409).");
    }

    #[test]
    fn upstream_text_is_cleaned_and_bounded() {
        let e = err(500, &[], "  line one\r\n\tline\u{7}two  ");
        assert!(e.message.ends_with(": line one linetwo."), "{}", e.message);
        let long = format!("{{\"error\":{{\"message\":\"{}\"}}}}", "m".repeat(10_000));
        let e = err(500, &[], &long);
        assert!(
            e.message.chars().count() < MAX_UPSTREAM_TEXT + 60,
            "{}",
            e.message
        );
        assert!(e.message.ends_with("m…."), "{}", e.message);
        let e = err(500, &[], &"z ".repeat(1 << 19));
        assert!(
            e.message.chars().count() < MAX_UPSTREAM_TEXT + 60,
            "{}",
            e.message
        );
    }
}
