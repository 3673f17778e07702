//! Where each MCP client keeps its servers, and the entry it wants for us.

use std::path::{Path, PathBuf};

use clap::ValueEnum;
use etcetera::BaseStrategy;
use jsonc_parser::cst::CstInputValue;

use super::write::Format;

/// The clients `setup` knows how to configure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Client {
    /// Claude Desktop's claude_desktop_config.json.
    ClaudeDesktop,
    /// Cursor's ~/.cursor/mcp.json (all projects).
    Cursor,
    /// VS Code's user mcp.json; the key is asked for by VS Code, never written.
    #[value(name = "vscode")]
    VsCode,
    /// Claude Code, through its own `claude mcp add`.
    ClaudeCode,
    /// Gemini CLI's ~/.gemini/settings.json.
    Gemini,
    /// Codex CLI's $CODEX_HOME/config.toml (~/.codex/config.toml).
    Codex,
    /// opencode's ~/.config/opencode/opencode.json.
    #[value(name = "opencode")]
    OpenCode,
}

/// What the environment variable holding the key is called in every entry.
pub const KEY_VAR: &str = "HIENERGY_API_KEY";

impl Client {
    pub fn display_name(self) -> &'static str {
        match self {
            Client::ClaudeDesktop => "Claude Desktop",
            Client::Cursor => "Cursor",
            Client::VsCode => "VS Code",
            Client::ClaudeCode => "Claude Code",
            Client::Gemini => "Gemini CLI",
            Client::Codex => "Codex",
            Client::OpenCode => "opencode",
        }
    }

    /// The object in the config file that maps server names to entries.
    pub fn servers_key(self) -> &'static str {
        match self {
            Client::VsCode => "servers",
            Client::Codex => "mcp_servers",
            Client::OpenCode => "mcp",
            _ => "mcpServers",
        }
    }

    /// How the client parses its file: a comment it does not strip would
    /// break it, so each gets only what it reads. VS Code and opencode read
    /// JSON with comments and trailing commas; Gemini strips comments
    /// (strip-json-comments) before `JSON.parse`; Claude Desktop and Cursor
    /// parse strict JSON.
    pub fn format(self) -> Format {
        let json = |comments, trailing_commas| Format::Json {
            comments,
            trailing_commas,
        };
        match self {
            Client::VsCode | Client::OpenCode => json(true, true),
            Client::Gemini => json(true, false),
            Client::Codex => Format::Toml,
            _ => json(false, false),
        }
    }

    /// Whether the entry carries the key itself (else VS Code prompts for it).
    pub fn needs_key_in_file(self) -> bool {
        self != Client::VsCode
    }

    /// The user-wide config file, or `None` for Claude Code (it keeps its
    /// own and is configured through its CLI) or when no home is known.
    /// `env` looks up environment variables (CODEX_HOME, XDG_CONFIG_HOME).
    pub fn default_config(self, env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
        let home = || etcetera::home_dir().ok();
        let set = |var: &str| env(var).filter(|v| !v.is_empty()).map(PathBuf::from);
        match self {
            Client::ClaudeDesktop => {
                Some(app_dir()?.join("Claude").join("claude_desktop_config.json"))
            }
            Client::VsCode => Some(app_dir()?.join("Code").join("User").join("mcp.json")),
            Client::Cursor => Some(home()?.join(".cursor").join("mcp.json")),
            Client::ClaudeCode => None,
            Client::Gemini => Some(home()?.join(".gemini").join("settings.json")),
            Client::Codex => {
                let codex_home = set("CODEX_HOME").or_else(|| Some(home()?.join(".codex")));
                Some(codex_home?.join("config.toml"))
            }
            // opencode follows XDG on every OS (xdg-basedir), macOS and
            // Windows included.
            Client::OpenCode => {
                let config = set("XDG_CONFIG_HOME").or_else(|| Some(home()?.join(".config")));
                Some(config?.join("opencode").join("opencode.json"))
            }
        }
    }

    /// The server entry, with `key` as the key's value (VS Code ignores it
    /// and refers to its prompt instead). Built as a list of pairs so the
    /// file shows them in this order.
    pub fn entry(self, command: &Path, key: &str, input_id: &str) -> CstInputValue {
        let command = string(&command.to_string_lossy());
        match self {
            Client::VsCode => object(vec![
                ("type", string("stdio")),
                ("command", command),
                (
                    "env",
                    object(vec![(KEY_VAR, string(&format!("${{input:{input_id}}}")))]),
                ),
            ]),
            // opencode: the program and its arguments in one list, the
            // variables under "environment".
            Client::OpenCode => object(vec![
                ("type", string("local")),
                ("command", CstInputValue::Array(vec![command])),
                ("environment", object(vec![(KEY_VAR, string(key))])),
            ]),
            _ => object(vec![
                ("command", command),
                ("env", object(vec![(KEY_VAR, string(key))])),
            ]),
        }
    }

    /// VS Code's prompt for the key: stored in its secret storage, shown as
    /// dots while typed.
    pub fn input(self, input_id: &str) -> Option<CstInputValue> {
        (self == Client::VsCode).then(|| {
            object(vec![
                ("type", string("promptString")),
                ("id", string(input_id)),
                ("description", string("HiEnergy admin API key")),
                ("password", CstInputValue::Bool(true)),
            ])
        })
    }
}

fn string(text: &str) -> CstInputValue {
    CstInputValue::String(text.to_owned())
}

fn object(pairs: Vec<(&str, CstInputValue)>) -> CstInputValue {
    CstInputValue::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// Where Electron apps (Claude Desktop, VS Code) keep per-user data:
/// `~/Library/Application Support` on macOS, `%APPDATA%` on Windows,
/// `$XDG_CONFIG_HOME` (or `~/.config`) elsewhere — Electron's `appData`.
fn app_dir() -> Option<PathBuf> {
    let strategy = etcetera::base_strategy::choose_native_strategy().ok()?;
    if cfg!(target_os = "macos") {
        Some(strategy.data_dir())
    } else {
        Some(strategy.config_dir())
    }
}

/// The id of VS Code's prompt for this entry's key.
pub fn input_id(name: &str) -> String {
    format!("{name}-api-key")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn value(input: CstInputValue) -> Value {
        let text = super::super::write::render(Client::Cursor.format(), |doc| {
            doc.set_server("x", "y", input)
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let parsed: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        parsed["x"]["y"].clone()
    }

    #[test]
    fn vscode_entry_refers_to_the_prompt_and_holds_no_key() {
        let entry = value(Client::VsCode.entry(Path::new("/bin/h"), "secret", "h-api-key"));
        assert_eq!(entry["env"][KEY_VAR], "${input:h-api-key}");
        assert!(!entry.to_string().contains("secret"));
        let input = Client::VsCode.input("h-api-key").map(value);
        assert_eq!(input.map(|i| i["password"].clone()), Some(json!(true)));
    }

    #[test]
    fn other_entries_carry_the_key_and_the_command() {
        for client in [
            Client::ClaudeDesktop,
            Client::Cursor,
            Client::Gemini,
            Client::Codex,
        ] {
            let entry = value(client.entry(Path::new("/bin/h"), "secret", "unused"));
            assert_eq!(
                entry,
                json!({"command": "/bin/h", "env": {KEY_VAR: "secret"}})
            );
            assert!(client.input("unused").is_none());
        }
    }

    #[test]
    fn opencode_gets_a_command_list_and_an_environment() {
        let entry = value(Client::OpenCode.entry(Path::new("/bin/h"), "secret", "unused"));
        assert_eq!(
            entry,
            json!({"type": "local", "command": ["/bin/h"], "environment": {KEY_VAR: "secret"}})
        );
    }

    #[test]
    fn codex_home_and_xdg_config_home_are_followed() {
        let env = |var: &str| match var {
            "CODEX_HOME" => Some("/c".to_owned()),
            "XDG_CONFIG_HOME" => Some("/x".to_owned()),
            _ => None,
        };
        assert_eq!(
            Client::Codex.default_config(&env),
            Some(PathBuf::from("/c/config.toml"))
        );
        assert_eq!(
            Client::OpenCode.default_config(&env),
            Some(PathBuf::from("/x/opencode/opencode.json"))
        );
    }

    #[test]
    fn config_files_are_named_as_each_client_names_them() {
        let name = |c: Client| {
            c.default_config(&|_| None)
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        };
        if etcetera::home_dir().is_ok() {
            assert_eq!(
                name(Client::ClaudeDesktop).as_deref(),
                Some("claude_desktop_config.json")
            );
            assert_eq!(name(Client::Cursor).as_deref(), Some("mcp.json"));
            assert_eq!(name(Client::VsCode).as_deref(), Some("mcp.json"));
            assert_eq!(name(Client::Gemini).as_deref(), Some("settings.json"));
            assert_eq!(name(Client::Codex).as_deref(), Some("config.toml"));
            assert_eq!(name(Client::OpenCode).as_deref(), Some("opencode.json"));
        }
        assert_eq!(Client::ClaudeCode.default_config(&|_| None), None);
    }
}
