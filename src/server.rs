//! The MCP side: the server's identity, its one tool, and how a tool call
//! walks through validation, the duplicate guard and the HTTP call.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, CustomRequest,
    CustomResult, ErrorCode, Implementation, ListToolsResult, PaginatedRequestParams,
    ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::contact::AddContactArgs;
use crate::dedupe::{DedupeGuard, Guarded};
use crate::hienergy::HiEnergy;
use crate::outcome::{Created, ErrorKind, ToolError, success_result};
use crate::schema;

pub const SERVER_NAME: &str = "hienergy-mcp";
pub const TOOL_NAME: &str = "add_contact";
/// The method stdin hands a request on under when its `params` is neither
/// an object nor null; the real method is in its params (see `stdio`).
pub const INVALID_PARAMS_METHOD: &str = "hienergy-mcp/invalid-params";
/// The method stdin hands a request on under when its line was too long to
/// read; params carry `limit_bytes` (see `stdio`).
pub const LINE_TOO_LONG_METHOD: &str = "hienergy-mcp/line-too-long";
pub const TOOL_TITLE: &str = "Add HiEnergy contact";

pub const TOOL_DESCRIPTION: &str = "\
Add a contact (a person who works for an advertiser) to HiEnergy, the affiliate-marketing CRM. \
Required: advertiser_id, the numeric id of an existing HiEnergy advertiser (not its name or domain), \
and the contact's email; every other field is optional. \
This writes to a live CRM: call it once per contact. \
An identical call that already succeeded is not sent again: it returns the first result with replayed: true (no new contact). \
Set dry_run: true to preview the exact request without sending it. \
On failure the result carries error.kind, error.hint (what to do next) and error.created: \
\"no\" means nothing was created, so fix and retry; \
\"unknown\" means the contact may exist, so check HiEnergy before retrying.";

/// The server, shared by every in-flight call.
#[derive(Clone)]
pub struct HiEnergyServer {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    api: HiEnergy,
    guard: DedupeGuard,
    tool: Tool,
    instructions: String,
    /// Cancelled when the server is stopping (stdin closed, SIGINT/SIGTERM):
    /// in-flight calls end at once instead of holding the exit.
    shutdown: CancellationToken,
}

impl HiEnergyServer {
    pub fn new(config: Config, shutdown: CancellationToken) -> Self {
        let api = HiEnergy::new(&config);
        let guard = DedupeGuard::new(config.dedupe_window);
        let instructions = instructions(&config);
        Self {
            inner: Arc::new(Inner {
                api,
                guard,
                tool: tool(),
                instructions,
                config,
                shutdown,
            }),
        }
    }

    pub fn tool(&self) -> &Tool {
        &self.inner.tool
    }

    /// One `add_contact` call, from raw arguments to the result the agent
    /// sees. Never fails: every problem is a structured error result.
    pub async fn add_contact(
        &self,
        arguments: Option<&Map<String, Value>>,
        cancelled: CancellationToken,
    ) -> CallToolResult {
        let inner = &self.inner;
        let args = match AddContactArgs::parse(arguments) {
            Ok(args) => args,
            Err(error) => return error.into_result(),
        };
        if args.dry_run {
            return dry_run_result(&inner.api, &args, inner.config.api_key().is_some());
        }
        let Some(api_key) = inner.config.api_key() else {
            return ToolError::not_configured().into_result();
        };
        let contact = &args.contact;
        let send = || async {
            // biased: a cancellation that races the answer is reported as
            // such, so the duplicate guard remembers the outcome as unknown.
            tokio::select! {
                biased;
                _ = cancelled.cancelled() => Err(cancelled_error("the client cancelled the call")),
                _ = inner.shutdown.cancelled() => Err(cancelled_error("the server is shutting down")),
                outcome = inner.api.add_contact(api_key, contact) => outcome,
            }
        };
        // A call waiting behind an identical one must still notice its own
        // cancellation; the guard future comes first so that a leader's
        // cancelled send is recorded before it is dropped.
        let guarded = tokio::select! {
            biased;
            guarded = inner.guard.run(contact, send) => guarded,
            _ = cancelled.cancelled() => {
                return cancelled_error("the client cancelled the call").into_result();
            }
            _ = inner.shutdown.cancelled() => {
                return cancelled_error("the server is shutting down").into_result();
            }
        };
        let (outcome, replayed, previous_unknown) = match guarded {
            Guarded::Sent {
                outcome,
                previous_unknown,
            } => (outcome, false, previous_unknown),
            Guarded::Replayed(outcome) => (outcome, true, false),
        };
        let mut extra = Map::new();
        if previous_unknown {
            extra.insert("previous_attempt".into(), json!("unknown"));
        }
        match outcome {
            Ok(created) => {
                extra.insert("replayed".into(), json!(replayed));
                success_result(&created, extra)
            }
            Err(error) => error.into_result_with(extra),
        }
    }
}

fn cancelled_error(why: &str) -> ToolError {
    ToolError::new(
        ErrorKind::Cancelled,
        Created::Unknown,
        format!("The call was stopped before HiEnergy answered: {why}."),
    )
}

fn dry_run_result(api: &HiEnergy, args: &AddContactArgs, has_key: bool) -> CallToolResult {
    let request = api.preview(&args.contact, has_key);
    let body = request["body"].to_string();
    let key_note = if has_key {
        "the API key is configured (redacted here)"
    } else {
        "no API key is configured yet, so a real call would fail with not_configured"
    };
    let text = format!(
        "Dry run: nothing was sent. A real call would POST {} with body {body}; {key_note}.",
        api.endpoint()
    );
    let mut result = CallToolResult::structured(json!({"dry_run": true, "request": request}));
    result.content = vec![ContentBlock::text(text)];
    result
}

pub fn tool() -> Tool {
    Tool::new(TOOL_NAME, TOOL_DESCRIPTION, schema::input_schema())
        .with_title(TOOL_TITLE)
        .with_raw_output_schema(Arc::new(schema::output_schema()))
        .with_annotations(
            ToolAnnotations::with_title(TOOL_TITLE)
                .read_only(false)
                .destructive(false)
                .idempotent(false)
                .open_world(true),
        )
}

/// "10 minutes" rather than humantime's "10m": the reader is a model.
fn in_words(window: std::time::Duration) -> String {
    let seconds = window.as_secs();
    let (n, unit) = match seconds {
        s if s >= 3600 && s % 3600 == 0 => (s / 3600, "hour"),
        s if s >= 60 && s % 60 == 0 => (s / 60, "minute"),
        s => (s.max(1), "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

pub fn instructions(config: &Config) -> String {
    let dedupe = if config.dedupe_window.is_zero() {
        "Identical calls are not deduplicated by this server (--dedupe-window 0): every call creates a contact.".to_owned()
    } else {
        format!(
            "An identical call within {} of a successful one is not sent again: it returns the first result with replayed: true, which is not a new contact.",
            in_words(config.dedupe_window)
        )
    };
    format!(
        "hienergy-mcp adds contacts to HiEnergy (app.hienergy.ai) with one tool, add_contact. \
Use it when the user asks to add, create or save a contact (a person) for an advertiser (a brand) in HiEnergy.\n\
- advertiser_id must be the numeric id of an existing HiEnergy advertiser. If you only have a name or a domain, ask the user for the id or look it up with another HiEnergy tool; never guess one.\n\
- email is required; name, given_name, family_name, phone, job_title, source, status and linkedin_profile_url are optional.\n\
- The server needs an admin API key (HIENERGY_API_KEY). Without one, calls fail with kind not_configured, but dry_run: true still previews the request.\n\
- {dedupe}\n\
- Errors carry kind, hint and created. created \"no\": nothing was created; follow the hint. \
created \"unknown\": the contact may exist; check HiEnergy before retrying. \
A retry after \"unknown\" is sent, and its result carries previous_attempt: \"unknown\" so you can check for a duplicate."
    )
}

impl ServerHandler for HiEnergyServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new(SERVER_NAME, env!("CARGO_PKG_VERSION"))
                    .with_title("HiEnergy")
                    .with_description("Adds contacts to HiEnergy from any MCP client.")
                    .with_website_url("https://app.hienergy.ai"),
            )
            .with_instructions(self.inner.instructions.clone())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(vec![
            self.inner.tool.clone(),
        ]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        if request.name != TOOL_NAME {
            return Err(McpError::invalid_params(
                format!(
                    "unknown tool {:?}: this server has one tool, {TOOL_NAME}",
                    request.name
                ),
                None,
            ));
        }
        let result = self
            .add_contact(request.arguments.as_ref(), context.ct)
            .await;
        Ok(result.into())
    }

    /// rmcp routes a known method whose params do not deserialise (a
    /// `tools/call` whose `arguments` is an array, say) here as a custom
    /// request, and would answer "method not found". The method exists; its
    /// params are wrong, so answer -32602 and say what is expected.
    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, McpError> {
        if request.method == LINE_TOO_LONG_METHOD {
            let limit = request
                .params
                .as_ref()
                .and_then(|p| p.get("limit_bytes"))
                .and_then(Value::as_u64)
                .unwrap_or_default();
            return Err(McpError::invalid_request(
                format!(
                    "request too long: its line is over {limit} bytes, the most this server reads; it was not processed"
                ),
                None,
            ));
        }
        // A request whose params is not an object at all reaches here under
        // this marker, with the real method inside (see stdio::LineCheck).
        let method = match request.method.as_str() {
            INVALID_PARAMS_METHOD => request
                .params
                .as_ref()
                .and_then(|p| p.get("method"))
                .and_then(Value::as_str)
                .unwrap_or_default(),
            method => method,
        };
        let expected = match method {
            "tools/call" => {
                "params must be an object with `name` (a string) and optional `arguments` (an object)"
            }
            "tools/list" => "params must be an object or absent",
            "initialize" => {
                "params must be an object with protocolVersion, capabilities and clientInfo"
            }
            "ping" => "params must be an object or absent",
            method => {
                return Err(McpError::new(
                    ErrorCode::METHOD_NOT_FOUND,
                    format!(
                        "method not found: {}",
                        crate::outcome::truncate(method, 100)
                    ),
                    None,
                ));
            }
        };
        Err(McpError::invalid_params(
            format!("invalid params for {method}: {expected}"),
            None,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn windows_read_as_words() {
        assert_eq!(in_words(Duration::from_secs(600)), "10 minutes");
        assert_eq!(in_words(Duration::from_secs(60)), "1 minute");
        assert_eq!(in_words(Duration::from_secs(7200)), "2 hours");
        assert_eq!(in_words(Duration::from_secs(90)), "90 seconds");
        assert_eq!(in_words(Duration::from_millis(300)), "1 second");
    }
}
