//! The tools this server offers: one file each, one list, dispatch by name.
//!
//! Every tool answers with a [`CallToolResult`] whatever happens: failures
//! are structured error results (see [`crate::outcome`]), so the agent
//! always gets a kind, a hint and whether anything was created.

pub mod add_contact;

use rmcp::model::{CallToolResult, Tool};
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
    vec![add_contact::tool()]
}

/// The names of every tool, for messages about an unknown one.
pub fn names() -> Vec<&'static str> {
    vec![add_contact::NAME]
}

/// Runs the named tool; `None` when there is no such tool.
pub async fn call(
    backend: &Backend,
    name: &str,
    arguments: Option<&Map<String, Value>>,
    cancelled: CancellationToken,
) -> Option<CallToolResult> {
    match name {
        add_contact::NAME => Some(add_contact::call(backend, arguments, cancelled).await),
        _ => None,
    }
}
