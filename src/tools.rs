//! The tools this server offers: one file each, one list, dispatch by name.
//!
//! Every tool answers with a [`CallToolResult`] whatever happens: failures
//! are structured error results (see [`crate::outcome`]), so the agent
//! always gets a kind, a hint and whether anything was created.

pub mod add_contact;
pub mod add_contacts;
pub mod read;
pub mod search_advertisers;
pub mod search_contacts;
pub mod send;

use rmcp::model::{CallToolResult, ProgressNotificationParam, ProgressToken, Tool};
use rmcp::{Peer, RoleServer};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::dedupe::DedupeGuard;
use crate::hienergy::HiEnergy;
use crate::outcome::ToolError;

/// What every tool call shares: the settings, the HTTP client, the
/// duplicate guard, and the server's own stop signal.
pub struct Backend {
    pub config: Config,
    pub api: HiEnergy,
    pub guard: DedupeGuard,
    /// Cancelled when the server is stopping (stdin closed, SIGINT/SIGTERM):
    /// in-flight calls end at once instead of holding the exit.
    pub shutdown: CancellationToken,
}

impl Backend {
    pub fn new(config: Config, shutdown: CancellationToken) -> Self {
        Self {
            api: HiEnergy::new(&config),
            guard: DedupeGuard::new(config.dedupe_window),
            config,
            shutdown,
        }
    }
}

/// Why no call can be made with these settings, if a variable was not
/// usable: the error names each one and what is wrong with it.
pub fn unusable(config: &Config) -> Option<ToolError> {
    if config.problems.is_empty() {
        return None;
    }
    let list = config
        .problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    Some(ToolError::misconfigured(format!(
        "The server's settings are not usable, so nothing was sent: {list}."
    )))
}

/// Every tool, in the order `tools/list` shows them.
pub fn all() -> Vec<Tool> {
    vec![
        search_advertisers::tool(),
        search_contacts::tool(),
        add_contact::tool(),
        add_contacts::tool(),
    ]
}

/// The names of every tool, for messages about an unknown one.
pub fn names() -> Vec<&'static str> {
    vec![
        search_advertisers::NAME,
        search_contacts::NAME,
        add_contact::NAME,
        add_contacts::NAME,
    ]
}

/// What a call brings besides its arguments.
pub struct CallContext {
    /// Cancelled when the client cancels this call.
    pub cancelled: CancellationToken,
    /// Set when the client asked for progress (it sent a progressToken).
    pub progress: Option<Progress>,
    /// Set when the client can ask its user (it declared elicitation).
    pub asker: Option<crate::elicit::Asker>,
}

/// Where progress notifications for one call go.
pub struct Progress {
    token: ProgressToken,
    peer: Peer<RoleServer>,
}

impl Progress {
    pub fn new(token: ProgressToken, peer: Peer<RoleServer>) -> Self {
        Self { token, peer }
    }

    /// Sends `notifications/progress` and returns once it is written, so
    /// that a caller that awaits every report before answering never has
    /// one follow its result. A client gone away is no error of the call.
    pub async fn report(&self, done: usize, total: usize, message: String) {
        let params = ProgressNotificationParam::new(self.token.clone(), done as f64)
            .with_total(total as f64)
            .with_message(message);
        if let Err(e) = self.peer.notify_progress(params).await {
            tracing::debug!("progress notification not sent: {e}");
        }
    }
}

/// Runs the named tool; `None` when there is no such tool.
pub async fn call(
    backend: &Backend,
    name: &str,
    arguments: Option<&Map<String, Value>>,
    context: &CallContext,
) -> Option<CallToolResult> {
    match name {
        add_contact::NAME => Some(add_contact::call(backend, arguments, context).await),
        add_contacts::NAME => Some(add_contacts::call(backend, arguments, context).await),
        search_advertisers::NAME => {
            Some(search_advertisers::call(backend, arguments, context).await)
        }
        search_contacts::NAME => Some(search_contacts::call(backend, arguments, context).await),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::tests::walk;

    /// What a client sees of this server before its first call, as one
    /// reviewed file: `initialize` (instructions included) and
    /// `tools/list` (every description and schema), read by rmcp's client
    /// over an in-process pipe. The version is redacted.
    #[tokio::test]
    async fn initialize_and_tools_list_snapshot() {
        use rmcp::ServiceExt;
        let config = crate::config::Config::from_args(&Default::default(), |_| None)
            .unwrap_or_else(|e| panic!("{e}"));
        let server = crate::server::HiEnergyServer::new(config, CancellationToken::new());
        let (client_end, server_end) = tokio::io::duplex(1 << 16);
        let serving = tokio::spawn(async move {
            if let Ok(running) = server.serve(server_end).await {
                let _ = running.waiting().await;
            }
        });
        let client = ().serve(client_end).await.unwrap_or_else(|e| panic!("{e}"));
        let mut initialize =
            serde_json::to_value(client.peer_info()).unwrap_or_else(|e| panic!("{e}"));
        initialize["serverInfo"]["version"] = "[version]".into();
        let tools = client
            .list_tools(None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let tools = serde_json::to_value(tools).unwrap_or_else(|e| panic!("{e}"));
        insta::assert_json_snapshot!(serde_json::json!({
            "initialize": initialize,
            "tools/list": tools,
        }));
        let _ = client.cancel().await;
        let _ = serving.await;
    }

    #[test]
    fn every_tool_has_portable_schemas_and_points_to_the_others() {
        let tools = all();
        assert_eq!(
            tools.iter().map(|t| t.name.as_ref()).collect::<Vec<_>>(),
            names()
        );
        for tool in &tools {
            let input = Value::Object(tool.input_schema.as_ref().clone());
            let output = tool
                .output_schema
                .as_ref()
                .map(|s| Value::Object(s.as_ref().clone()))
                .unwrap_or_else(|| panic!("{} has no outputSchema", tool.name));
            for (which, schema) in [("input", &input), ("output", &output)] {
                assert_eq!(schema["type"], "object", "{} {which}", tool.name);
                let mut members = Vec::new();
                walk(schema, &mut members);
                for (key, value) in members {
                    let at = format!("{} {which} schema, {key}: {value}", tool.name);
                    assert!(!key.starts_with('$'), "{at}");
                    assert!(!matches!(key, "allOf" | "anyOf" | "oneOf"), "{at}");
                    if key == "type" {
                        assert!(value.is_string(), "{at}");
                    }
                    if value.get("type").and_then(Value::as_str) == Some("integer") {
                        assert!(value.get("minimum").is_some(), "{at}");
                    }
                    if which == "input"
                        && value.get("type").and_then(Value::as_str) == Some("array")
                    {
                        assert!(value.get("maxItems").is_some(), "{at}");
                    }
                }
            }
            // A call refused as a whole answers `{"error": …}` whatever the
            // tool (ToolError::into_result): every output type carries it.
            let error = Value::Object(
                crate::schema::output_schema::<crate::outcome::ErrorBody>()
                    .as_ref()
                    .clone(),
            );
            let mut listed = output["properties"]["error"].clone();
            if let Some(listed) = listed.as_object_mut() {
                listed.remove("description");
            }
            assert_eq!(listed, error, "{} has no shared error member", tool.name);
            let description = tool.description.as_deref().unwrap_or_default();
            for other in names().into_iter().filter(|n| *n != tool.name) {
                assert!(
                    description.contains(other),
                    "{} does not say when to use {other}",
                    tool.name
                );
            }
        }
    }
}
