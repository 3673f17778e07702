//! What the read tools (`search_advertisers`, `search_contacts`) share:
//! their arguments' checks, their output schema's error member, one GET
//! stopped by cancellation, and errors worded for a read.

use std::future::Future;
use std::sync::Arc;

use rmcp::model::{CallToolResult, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::{Backend, CallContext};
use crate::contact::{CLIENT_INJECTED, describe};
use crate::outcome::{self, Created, ErrorKind, FieldProblem, ToolError, truncate};
use crate::schema;

pub use crate::contact::{MAX_QUERY_CHARS, parse_text};

/// The portable schema of a read tool's result, which may instead be an
/// error result: every member optional, and `error` described.
fn output_schema<T: JsonSchema>() -> Map<String, Value> {
    let mut schema = schema::portable_schema_for::<T>();
    schema.remove("required");
    if let Some(Value::Object(properties)) = schema.get_mut("properties") {
        properties.insert(
            "error".into(),
            Value::Object(
                schema::output_schema::<outcome::ErrorBody>()
                    .as_ref()
                    .clone(),
            ),
        );
    }
    schema
}

/// A read tool as `tools/list` shows it: its input schema from `A`, its
/// output schema from `R`, annotated read-only and idempotent.
pub fn tool<A: JsonSchema, R: JsonSchema>(
    name: &'static str,
    title: &'static str,
    description: &'static str,
) -> Tool {
    Tool::new(name, description, schema::portable_schema_for::<A>())
        .with_title(title)
        .with_raw_output_schema(Arc::new(output_schema::<R>()))
        .with_annotations(
            ToolAnnotations::with_title(title)
                .read_only(true)
                .destructive(false)
                .idempotent(true)
                .open_world(true),
        )
}

/// A read tool's call: its arguments read, the key, the search (stopped
/// by cancellation), and its result or error for the agent.
pub async fn run<A, R: Serialize>(
    backend: &Backend,
    context: &CallContext,
    tool: &str,
    args: Result<A, ToolError>,
    search: impl AsyncFnOnce(&A, &str) -> Result<R, ToolError>,
    sentence: impl FnOnce(&A, &R) -> String,
) -> CallToolResult {
    let args = match args {
        Ok(args) => args,
        Err(error) => return error_result(tool, error),
    };
    let api_key = match api_key(backend, tool) {
        Ok(key) => key,
        Err(result) => return result,
    };
    match stoppable(backend, &context.cancelled, search(&args, api_key)).await {
        Ok(result) => {
            let text = sentence(&args, &result);
            success_result(tool, &result, text)
        }
        Err(error) => error_result(tool, error),
    }
}

/// What a result says of its rows: the rows shown (at most `limit`),
/// the total (HiEnergy's, else the number shown), and how many rows could
/// not be read, if any.
pub struct Listing<T> {
    pub rows: Vec<T>,
    pub total: u64,
    pub unreadable_rows: Option<u64>,
}

impl<T> Listing<T> {
    pub fn new(mut rows: Vec<T>, total: Option<u64>, unreadable: usize, limit: usize) -> Self {
        rows.truncate(limit);
        let shown = rows.len() as u64;
        Self {
            total: total.unwrap_or(shown).max(shown),
            rows,
            unreadable_rows: (unreadable > 0).then_some(unreadable as u64),
        }
    }
}

/// The API key, or the error result that says why a read cannot be made.
fn api_key<'a>(backend: &'a Backend, tool: &str) -> Result<&'a str, CallToolResult> {
    if let Some(error) = super::unusable(&backend.config) {
        return Err(error_result(tool, error));
    }
    backend
        .config
        .api_key()
        .ok_or_else(|| error_result(tool, ToolError::not_configured()))
}

/// Runs one read, ended early by the client's cancellation or the server's
/// shutdown: a read leaves nothing behind, so it is simply dropped.
async fn stoppable<T>(
    backend: &Backend,
    cancelled: &CancellationToken,
    read: impl Future<Output = Result<T, ToolError>>,
) -> Result<T, ToolError> {
    let stopped = |why: &str| {
        ToolError::new(
            ErrorKind::Cancelled,
            Created::No,
            format!("The search was stopped before HiEnergy answered: {why}."),
        )
    };
    tokio::select! {
        biased;
        _ = cancelled.cancelled() => Err(stopped("the client cancelled the call")),
        _ = backend.shutdown.cancelled() => Err(stopped("the server is shutting down")),
        result = read => result,
    }
}

/// The error result of a read tool. The structured error is the one every
/// tool gives; where a kind's hint speaks of a contact that may have been
/// created, a read's hint replaces it, and the text says nothing was
/// written.
pub fn error_result(tool: &str, error: ToolError) -> CallToolResult {
    let hint = match error.kind {
        ErrorKind::Rejected => {
            "HiEnergy refused this search: change the arguments as `message` says. Nothing was written to HiEnergy.".to_owned()
        }
        ErrorKind::UpstreamError | ErrorKind::Timeout | ErrorKind::Network | ErrorKind::Cancelled => {
            "The search failed and nothing was written to HiEnergy: the same call can be made again in a moment. If it keeps failing, tell the user HiEnergy is not answering; never take this as \"not found\".".to_owned()
        }
        ErrorKind::NotConfigured if error.special_hint.is_none() => {
            "Ask the user to set HIENERGY_API_KEY (their HiEnergy API key) in the \"env\" block of this server's entry in their MCP client config, then restart the client; nothing was sent.".to_owned()
        }
        ErrorKind::BadResponse => {
            "HiEnergy's answer could not be read and nothing was written: try once more, and if it repeats ask the user to check HIENERGY_BASE_URL. Never take this as \"not found\".".to_owned()
        }
        _ => error.hint(),
    };
    let mut structured = error.to_json();
    if let Some(Value::Object(member)) = structured.get_mut("error") {
        member.insert("hint".into(), Value::String(hint.clone()));
    }
    let text = format!(
        "{tool} failed ({}): {} {hint}",
        error.kind.as_str(),
        error.message
    );
    outcome::tool_result(structured, text, true)
}

/// A read tool's success: `result` as structured content, `text` for
/// clients that show only text.
fn success_result<T: Serialize>(tool: &str, result: &T, text: String) -> CallToolResult {
    match serde_json::to_value(result) {
        Ok(structured) => outcome::tool_result(structured, text, false),
        // Strings, numbers and booleans always serialise; kept a value all
        // the same.
        Err(e) => error_result(
            tool,
            ToolError::new(
                ErrorKind::BadResponse,
                Created::No,
                format!("The result could not be written as JSON: {e}."),
            ),
        ),
    }
}

/// One row as a line of text: "id 42: Alo Yoga (domain aloyoga.com, ...)",
/// every member it has, so that a client that shows only text loses
/// nothing.
pub fn describe_row<T: Serialize>(text: &mut String, row: &T) {
    let Ok(Value::Object(mut members)) = serde_json::to_value(row) else {
        return;
    };
    let id = members.remove("id").unwrap_or_default();
    let name = members.remove("name");
    text.push_str("id ");
    text.push_str(&scalar(&id));
    text.push_str(": ");
    text.push_str(name.as_ref().map_or("(no name)".into(), scalar).as_str());
    for (i, (member, value)) in members.iter().enumerate() {
        text.push_str(if i == 0 { " (" } else { ", " });
        text.push_str(member);
        text.push(' ');
        text.push_str(&scalar(value));
    }
    if !members.is_empty() {
        text.push(')');
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Problems with argument names this tool does not take.
pub fn unknown_arguments(
    tool: &str,
    args: &Map<String, Value>,
    allowed: &[&str],
    problems: &mut Vec<FieldProblem>,
) {
    let mut unknown: Vec<&str> = args
        .keys()
        .map(String::as_str)
        .filter(|k| !allowed.contains(k) && !CLIENT_INJECTED.contains(k))
        .collect();
    unknown.sort_unstable();
    for field in unknown {
        problems.push(FieldProblem::new(
            truncate(field, 100),
            format!(
                "is not an argument of {tool}; allowed: {}",
                allowed.join(", ")
            ),
        ));
    }
}

/// `limit`: a whole number from 1 to `max` (as a number or a string of
/// digits), `default` when absent.
pub fn parse_limit(
    value: Option<&Value>,
    max: usize,
    default: usize,
    problems: &mut Vec<FieldProblem>,
) -> usize {
    let limit = match value {
        None | Some(Value::Null) => return default,
        Some(Value::Number(n)) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        }),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(_) => None,
    };
    match limit.and_then(|l| usize::try_from(l).ok()) {
        Some(limit) if (1..=max).contains(&limit) => limit,
        _ => {
            problems.push(FieldProblem::new(
                "limit",
                format!(
                    "must be a whole number from 1 to {max}, got {}",
                    describe(value)
                ),
            ));
            default
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn search_text_is_trimmed_and_bounded() {
        let mut problems = Vec::new();
        assert_eq!(
            parse_text("query", Some(&json!("  Alo Yoga ")), &mut problems),
            Some("Alo Yoga".into())
        );
        assert_eq!(parse_text("query", None, &mut problems), None);
        assert!(problems.is_empty());
        let long = "x".repeat(MAX_QUERY_CHARS + 1);
        for bad in [
            json!(""),
            json!("   "),
            json!(long),
            json!("a\nb"),
            json!(42),
            json!(["a"]),
        ] {
            let mut problems = Vec::new();
            assert_eq!(
                parse_text("query", Some(&bad), &mut problems),
                None,
                "{bad}"
            );
            assert_eq!(problems.len(), 1, "{bad}");
            assert_eq!(problems[0].field, "query");
        }
        let at_cap = "é".repeat(MAX_QUERY_CHARS);
        assert!(parse_text("query", Some(&json!(at_cap)), &mut problems).is_some());
    }

    #[test]
    fn limit_is_a_whole_number_in_range_with_a_default() {
        let mut problems = Vec::new();
        assert_eq!(parse_limit(None, 25, 10, &mut problems), 10);
        assert_eq!(parse_limit(Some(&json!(1)), 25, 10, &mut problems), 1);
        assert_eq!(parse_limit(Some(&json!(25)), 25, 10, &mut problems), 25);
        assert_eq!(parse_limit(Some(&json!("7")), 25, 10, &mut problems), 7);
        assert_eq!(parse_limit(Some(&json!(5.0)), 25, 10, &mut problems), 5);
        assert!(problems.is_empty());
        for bad in [
            json!(0),
            json!(26),
            json!(-1),
            json!(2.5),
            json!("ten"),
            json!(true),
            json!(1e30),
        ] {
            let mut problems = Vec::new();
            parse_limit(Some(&bad), 25, 10, &mut problems);
            assert_eq!(problems.len(), 1, "{bad}");
            assert_eq!(problems[0].field, "limit");
        }
    }

    #[test]
    fn a_read_error_says_nothing_was_written_and_never_that_a_contact_may_exist() {
        for kind in ErrorKind::ALL {
            let result = error_result("search_x", ToolError::new(kind, Created::No, "m."));
            let structured = result.structured_content.clone().unwrap_or_default();
            let hint = structured["error"]["hint"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            assert!(!hint.contains("may or may not"), "{kind:?}: {hint}");
            // The read tools have no dry_run to point to.
            assert!(!hint.contains("dry_run"), "{kind:?}: {hint}");
            let text = result.content[0]
                .as_text()
                .map(|t| t.text.clone())
                .unwrap_or_default();
            assert!(text.starts_with("search_x failed ("), "{text}");
            assert!(text.ends_with(&hint), "{text}");
        }
    }
}
