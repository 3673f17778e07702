//! The MCP side: the server's identity, its instructions, and the protocol
//! methods; the tools themselves are in [`crate::tools`].

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CustomRequest, CustomResult, ErrorCode,
    Implementation, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig,
    Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::tools::{self, Backend};

pub const SERVER_NAME: &str = "hienergy-mcp";

/// The server, shared by every in-flight call.
#[derive(Clone)]
pub struct HiEnergyServer {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    tools: Vec<Tool>,
    instructions: String,
}

impl HiEnergyServer {
    pub fn new(config: Config, shutdown: CancellationToken) -> Self {
        let instructions = instructions(&config);
        Self {
            inner: Arc::new(Inner {
                backend: Backend::new(config, shutdown),
                tools: tools::all(),
                instructions,
            }),
        }
    }

    /// Gets ready for the first real call while the client is still busy
    /// with the handshake and tools/list: builds the HTTP client (for
    /// https://, loading the system's trust roots) in the background. Only
    /// when a call could be sent at all: with a key and usable settings.
    pub fn prepare(&self) {
        let backend = &self.inner.backend;
        if backend.config.api_key().is_some() && tools::unusable(&backend.config).is_none() {
            backend.api.prepare();
        }
    }

    /// Every tool, as `tools/list` shows them.
    pub fn tools(&self) -> &[Tool] {
        &self.inner.tools
    }
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

/// Codex shows the model only the first line of the instructions until it
/// searches its tools, so that line alone must say what the server does
/// and how to call it.
pub const FIRST_LINE: &str = "hienergy-mcp adds contacts (people who work for an advertiser, i.e. a brand) to HiEnergy, the affiliate-marketing CRM at app.hienergy.ai: when the user asks to add, create or save a contact, call add_contact with the contact's email and the advertiser: its numeric advertiser_id (found with search_advertisers) or its name, domain or URL as advertiser; for two or more contacts, call add_contacts once with the whole list.";

pub fn instructions(config: &Config) -> String {
    let dedupe = if config.dedupe_window.is_zero() {
        "Identical calls are not deduplicated by this server (--dedupe-window 0): every call creates a contact.".to_owned()
    } else {
        format!(
            "An identical call within {} of a successful one is not sent again: it returns the first result with replayed: true, which is not a new contact.",
            in_words(config.dedupe_window)
        )
    };
    let rerun = if config.dedupe_window.is_zero() {
        "After a partial failure, send again only the items that failed or were not_sent."
    } else {
        "After a partial failure, fix the failed items and call add_contacts again with the same list: items already created come back replayed, not created twice."
    };
    format!(
        "{FIRST_LINE}\n\
- Four tools, used in this order: 1. search_advertisers (read-only) turns a brand's name, domain or URL into advertiser records; one brand often has several (one per network), so with more than one, show them to the user and let them choose; never guess an id. 2. search_contacts (read-only) shows who HiEnergy already lists, by email, advertiser_id or text; it hides contacts rated below 1, so absence is not proof. 3. add_contact for one contact, or add_contacts for a list.\n\
- Before each POST the add tools look the email up on its advertiser themselves (if_exists: \"skip\", the default): a contact already there is not added again and comes back existing: true (status existing in a list) with its id; a success, not an error. if_exists: \"add\" sends without looking. A look that cannot be made never blocks the add: the result says why in existing_check. After a timeout or 5xx the server looks again: found, the result is the contact with confirmed_by_lookup: true.\n\
- Give advertiser_id (the numeric id of an existing HiEnergy advertiser) or advertiser (the brand's name, domain or URL), never both. By name, the server uses a record only when exactly one matches exactly, and names it in the result; otherwise it asks the user to choose (when the client supports elicitation) or returns advertiser_ambiguous with error.candidates: then show them to the user and call again with the advertiser_id they choose. Never pick one yourself. not_chosen means the user chose nothing: do not retry on your own.\n\
- email is required; name, given_name, family_name, phone, job_title, source, status and linkedin_profile_url are optional.\n\
- The server needs an admin API key (HIENERGY_API_KEY). Without one, calls fail with kind not_configured, but dry_run: true still previews the request; with one, a dry run also looks each contact up and says whether a real call would add it or skip it as existing.\n\
- {dedupe}\n\
- add_contacts takes 1 to {max} contacts with add_contact's fields (a top-level advertiser_id or advertiser applies to every item without one) and sends them a few at a time, pacing itself by HiEnergy's rate limit. Invalid items are named by index (contacts[3].email) while the valid ones are still sent; each item of the result has status created, replayed, existing, failed or not_sent. {rerun}\n\
- Errors carry kind, hint and created. created \"no\": nothing was created; follow the hint. \
created \"unknown\": the contact may exist; check HiEnergy before retrying. \
A retry after \"unknown\" is sent, and its result carries previous_attempt: \"unknown\" so you can check for a duplicate.",
        max = tools::add_contacts::MAX_CONTACTS,
    )
}

impl ServerHandler for HiEnergyServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new(SERVER_NAME, env!("CARGO_PKG_VERSION"))
                    .with_title("HiEnergy")
                    .with_description("Finds advertisers and contacts in HiEnergy and adds contacts, from any MCP client.")
                    .with_website_url("https://app.hienergy.ai"),
            )
            .with_instructions(self.inner.instructions.clone())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.inner.tools.clone()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let call = tools::CallContext {
            progress: context
                .meta
                .get_progress_token()
                .map(|token| tools::Progress::new(token, context.peer.clone())),
            asker: crate::elicit::Asker::for_call(
                &context,
                request.input_responses,
                self.inner.backend.config.elicitation_timeout,
                context.ct.clone(),
            ),
            cancelled: context.ct,
        };
        let Some(result) = tools::call(
            &self.inner.backend,
            &request.name,
            request.arguments.as_ref(),
            &call,
        )
        .await
        else {
            return Err(McpError::invalid_params(
                format!(
                    "unknown tool {:?}: this server's tools are {}",
                    crate::outcome::truncate(&request.name, 100),
                    tools::names().join(", ")
                ),
                None,
            ));
        };
        // 2026-07-28: a question put means nothing was sent; the client
        // asks its user and calls again with the answer.
        if let Some(input) = call
            .asker
            .as_ref()
            .and_then(crate::elicit::Asker::input_required)
        {
            return Ok(input.into());
        }
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
        let method = request.method.as_str();
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
    fn the_first_line_of_the_instructions_stands_alone() {
        let config = match crate::config::Config::from_args(&Default::default(), |_| None) {
            Ok(config) => config,
            Err(e) => panic!("{e}"),
        };
        let text = instructions(&config);
        let first = text.lines().next().unwrap_or_default();
        assert_eq!(first, FIRST_LINE);
        for needed in [
            "HiEnergy",
            "search_advertisers",
            "add_contact",
            "add_contacts",
            "advertiser_id",
            "email",
        ] {
            assert!(first.contains(needed), "{needed} not in {first}");
        }
        assert!(text.lines().count() > 1);
    }

    #[test]
    fn windows_read_as_words() {
        assert_eq!(in_words(Duration::from_secs(600)), "10 minutes");
        assert_eq!(in_words(Duration::from_secs(60)), "1 minute");
        assert_eq!(in_words(Duration::from_secs(7200)), "2 hours");
        assert_eq!(in_words(Duration::from_secs(90)), "90 seconds");
        assert_eq!(in_words(Duration::from_millis(300)), "1 second");
    }
}
