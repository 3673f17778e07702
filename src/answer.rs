//! HiEnergy's answer, turned into the created contact or a [`ToolError`]:
//! the status, HiEnergy's error envelope (or a plain string, or an HTML
//! page), field details, and when to retry after a 429.

use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use serde_json::{Map, Value};

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

/// Turns HiEnergy's answer into the created contact or a [`ToolError`].
pub fn classify(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Map<String, Value>, ToolError> {
    if status.is_success() {
        return parse_success(status, headers, body);
    }
    let created = created_for_status(status);
    let upstream = UpstreamError::parse(headers, body);
    let code = status.as_u16();
    // Redirects and web pages get a message of their own; every other
    // status a lead, followed by whatever HiEnergy said.
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
        404 if upstream.is_html => (
            ErrorKind::BadResponse,
            "HiEnergy answered 404 with a web page, not an API error: the contacts endpoint (/api/v1/contacts/add) is not at this base URL; check HIENERGY_BASE_URL.".to_owned(),
        ),
        _ => {
            let (kind, lead) = match code {
                401 => (ErrorKind::Unauthorized, "HiEnergy refused the API key (401)".to_owned()),
                403 => (
                    ErrorKind::Forbidden,
                    "HiEnergy refused the request (403): adding contacts needs an admin API key".to_owned(),
                ),
                404 => (
                    ErrorKind::AdvertiserNotFound,
                    "HiEnergy found no advertiser with this advertiser_id (404)".to_owned(),
                ),
                429 => (ErrorKind::RateLimited, "HiEnergy is rate limiting this key (429)".to_owned()),
                400..=499 => (ErrorKind::Rejected, format!("HiEnergy rejected the contact ({code})")),
                500..=599 => (ErrorKind::UpstreamError, format!("HiEnergy failed with a server error ({code})")),
                _ => (ErrorKind::BadResponse, format!("HiEnergy answered with an unexpected status ({code})")),
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
    let value: Value = serde_json::from_slice(body).map_err(|_| {
        let text = String::from_utf8_lossy(body);
        // A sign-in or error page from a proxy in front of HiEnergy: its
        // title says more than its first bytes of markup.
        if looks_like_html(headers, &text) {
            bad(format!(
                "the body is an HTML page ({:?}), not JSON",
                truncate(&html_to_text(&text), 80)
            ))
        } else {
            bad(format!(
                "the body is not JSON (it starts {:?})",
                truncate(&clean_text(&text), 80)
            ))
        }
    })?;
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

/// What could be read out of an error body, whatever its shape.
#[derive(Debug, Default, PartialEq)]
struct UpstreamError {
    code: Option<String>,
    message: Option<String>,
    request_id: Option<String>,
    fields: Vec<FieldProblem>,
    is_html: bool,
}

impl UpstreamError {
    fn parse(headers: &HeaderMap, body: &[u8]) -> Self {
        let text = String::from_utf8_lossy(body);
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
                let is_html = looks_like_html(headers, &text);
                let message = if is_html {
                    html_to_text(&text)
                } else {
                    clean_text(&text)
                };
                Self {
                    message: non_empty(message),
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
            },
            // {"error": "Advertiser not found"}
            Some(Value::String(message)) => Self {
                message: non_empty(clean_text(&message)),
                fields: map
                    .remove("details")
                    .or_else(|| map.remove("errors"))
                    .map(|d| details_to_fields(&d))
                    .unwrap_or_default(),
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

/// Seconds to wait, from `Retry-After` (seconds or an HTTP date) or else
/// `X-RateLimit-Reset` (an epoch time or seconds from now).
pub fn retry_after(headers: &HeaderMap) -> Option<u64> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let now = std::time::SystemTime::now();
    if let Some(value) = text("retry-after") {
        if let Ok(seconds) = value.parse::<u64>() {
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

/// The readable text of an HTML page: its title if it has one, else its
/// text with tags, scripts and styles removed.
fn html_to_text(html: &str) -> String {
    let lower = html.to_ascii_lowercase();
    if let (Some(start), Some(end)) = (lower.find("<title>"), lower.find("</title>"))
        && start + 7 <= end
    {
        let title = clean_text(&decode_entities(&html[start + 7..end]));
        if !title.is_empty() {
            return title;
        }
    }
    let mut out = String::with_capacity(html.len().min(4096));
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        out.push(' ');
        let tail = &rest[open..];
        let tail_lower = tail.get(..7).unwrap_or(tail).to_ascii_lowercase();
        let skip_to = if tail_lower.starts_with("<script") {
            find_ci(tail, "</script>")
        } else if tail_lower.starts_with("<style") {
            find_ci(tail, "</style>")
        } else {
            tail.find('>').map(|i| i + 1)
        };
        match skip_to {
            Some(n) => rest = &tail[n..],
            None => {
                rest = "";
                break;
            }
        }
        if out.len() > 4 * MAX_UPSTREAM_TEXT {
            break;
        }
    }
    out.push_str(rest);
    clean_text(&decode_entities(&out))
}

fn find_ci(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .to_ascii_lowercase()
        .find(needle)
        .map(|i| i + needle.len())
}

fn decode_entities(s: &str) -> String {
    s.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Collapses whitespace and drops control characters.
fn clean_text(s: &str) -> String {
    s.split_whitespace()
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

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;
    use serde_json::json;
    use std::time::Duration;

    pub(crate) fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            if let Ok(v) = HeaderValue::from_str(v) {
                map.insert(*k, v);
            }
        }
        map
    }

    fn err(status: u16, h: &[(&'static str, &str)], body: &str) -> ToolError {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT);
        match classify(status, &headers(h), body.as_bytes()) {
            Ok(c) => panic!("expected an error, got {c:?}"),
            Err(e) => e,
        }
    }

    const ENVELOPE: &str = r#"{"error":{"code":"forbidden","message":"Admin API key required","request_id":"req-9","details":null}}"#;
    #[test]
    fn success_returns_data() {
        let body = br#"{"data":{"id":5,"email":"a@b.co"}}"#;
        let got = classify(StatusCode::CREATED, &HeaderMap::new(), body);
        assert_eq!(
            got.ok().map(Value::Object),
            Some(json!({"id":5,"email":"a@b.co"}))
        );
    }

    #[test]
    fn malformed_successes_are_bad_responses_that_may_have_created() {
        for (status, body, says) in [
            (201, "", "empty body"),
            (200, "OK", "not JSON"),
            (200, "<html>hi</html>", "not JSON"),
            (200, "[1]", "an array instead of an object"),
            (200, r#"{"data":[1]}"#, "`data` is an array"),
            (200, r#"{"data":null}"#, "`data` is null"),
            (200, r#"{"contact":{}}"#, "no `data`"),
        ] {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let e = classify(status, &HeaderMap::new(), body.as_bytes()).err();
            let e = e.unwrap_or_else(|| panic!("{body} should fail"));
            assert_eq!(e.kind, ErrorKind::BadResponse, "{body}");
            assert_eq!(e.created, Created::Unknown, "{body}");
            assert!(e.message.contains(says), "{body}: {}", e.message);
        }
    }

    #[test]
    fn statuses_map_to_kinds() {
        for (status, kind, created) in [
            (400, ErrorKind::Rejected, Created::No),
            (401, ErrorKind::Unauthorized, Created::No),
            (403, ErrorKind::Forbidden, Created::No),
            (404, ErrorKind::AdvertiserNotFound, Created::No),
            (405, ErrorKind::Rejected, Created::No),
            (409, ErrorKind::Rejected, Created::No),
            (422, ErrorKind::Rejected, Created::No),
            (429, ErrorKind::RateLimited, Created::No),
            (500, ErrorKind::UpstreamError, Created::Unknown),
            (502, ErrorKind::UpstreamError, Created::Unknown),
            (503, ErrorKind::UpstreamError, Created::Unknown),
            (301, ErrorKind::BadResponse, Created::Unknown),
            (307, ErrorKind::BadResponse, Created::Unknown),
        ] {
            let e = err(status, &[], ENVELOPE);
            assert_eq!(
                (e.kind, e.created, e.status),
                (kind, created, Some(status)),
                "{status}"
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
        let e = err(404, &[], "");
        assert_eq!(e.kind, ErrorKind::AdvertiserNotFound);
    }

    #[test]
    fn html_pages_are_stripped_and_truncated() {
        let page = format!(
            "<!DOCTYPE html><html><head><title>502 Bad Gateway</title><style>body{{}}</style></head><body><h1>Bad</h1>{}</body></html>",
            "x".repeat(5000)
        );
        let e = err(502, &[("content-type", "text/html")], &page);
        assert_eq!(e.kind, ErrorKind::UpstreamError);
        assert!(e.message.contains("502 Bad Gateway"), "{}", e.message);
        assert!(!e.message.contains('<'), "{}", e.message);

        let page = format!(
            "<html><body><script>var a = '<b>';</script><p>Down &amp; out</p>{}</body></html>",
            "y ".repeat(3000)
        );
        let e = err(500, &[], &page);
        assert!(e.message.contains("Down & out"), "{}", e.message);
        assert!(!e.message.contains("var a"), "{}", e.message);
        assert!(
            e.message.chars().count() < MAX_UPSTREAM_TEXT + 80,
            "{}",
            e.message
        );
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

    #[test]
    fn retry_after_sources() {
        let e = err(429, &[("retry-after", "7")], ENVELOPE);
        assert_eq!(e.retry_after_seconds, Some(7));
        let e = err(429, &[("x-ratelimit-reset", "12")], "");
        assert_eq!(e.retry_after_seconds, Some(12));
        let soon = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() + 30)
            .unwrap_or(0);
        let e = err(429, &[("x-ratelimit-reset", &soon.to_string())], "");
        assert!(
            e.retry_after_seconds
                .is_some_and(|s| (28..=31).contains(&s)),
            "{:?}",
            e.retry_after_seconds
        );
        let date = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(60));
        let e = err(429, &[("retry-after", &date)], "");
        assert!(
            e.retry_after_seconds
                .is_some_and(|s| (58..=61).contains(&s))
        );
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
}
