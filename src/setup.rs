//! `hienergy-mcp setup <client>`: adds this server to an MCP client's
//! config, with the absolute path of this very binary, because GUI clients
//! do not see the shell's PATH and a hand-typed path is the usual mistake.
//!
//! [`clients`] knows where each client keeps its config and what entry it
//! wants; [`write`](mod@write) changes the file (one entry, backup, atomic rename).
//! This never runs while serving, so it may print to stdout.

pub mod clients;
pub mod write;

use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use jsonc_parser::cst::CstInputValue;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::config::API_KEY_VARS;
use clients::{Client, KEY_VAR};
use write::Document;

/// What the server prints on stderr when a person, not a client, started it.
pub const TERMINAL_NOTICE: &str = "hienergy-mcp is an MCP server: it is waiting for an MCP client \
     to speak JSON-RPC on stdin (press Ctrl-C to stop).\n\
     To add it to Claude Desktop, Cursor, VS Code or Claude Code, run: hienergy-mcp setup --help";

/// The default name of the entry.
pub const DEFAULT_NAME: &str = "hienergy";
/// Names are keys in JSON and words on a command line: keep them plain.
const MAX_NAME_CHARS: usize = 64;
/// Shown instead of the key in `--print` output: stdout may be a shared
/// terminal, a log or a pasted snippet.
const KEY_PLACEHOLDER: &str = "<your HiEnergy admin API key>";

/// Add this server to an MCP client's config: claude-desktop, cursor, vscode, claude-code.
///
/// The entry runs this binary by its absolute path. The API key comes from
/// HIENERGY_API_KEY, or is asked for (hidden) when run in a terminal; it is
/// never a command-line argument. The old config file is kept beside the new
/// one as <file>.<time>.bak.
#[derive(Debug, Clone, clap::Args)]
pub struct SetupArgs {
    /// The client to configure.
    #[arg(value_enum)]
    pub client: Client,

    /// Config file to change instead of the client's standard one
    /// (e.g. a project's .cursor/mcp.json or .vscode/mcp.json).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Name of the server entry.
    #[arg(long, default_value = DEFAULT_NAME)]
    pub name: String,

    /// Print the entry (or the command, for claude-code) instead of changing anything.
    #[arg(long)]
    pub print: bool,

    /// Replace an existing entry of the same name.
    #[arg(long)]
    pub force: bool,
}

/// Every failure names the file (or the command) it is about.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("--name {0:?}: use 1 to {MAX_NAME_CHARS} letters, digits, '-', '_' or '.'")]
    BadName(String),
    #[error(
        "cannot tell where {client} keeps its config: no home directory is known (is HOME set?); pass --config PATH"
    )]
    NoHome { client: &'static str },
    #[error("cannot tell where this program is ({0}), so no client could start it")]
    CurrentExe(io::Error),
    #[error("cannot read {}: {source}; it was left untouched", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{} is not valid JSON: {reason}; fix it (or move it away) and run setup again; it was left untouched", path.display())]
    NotJson { path: PathBuf, reason: String },
    #[error("{}: {what} is not a JSON object; it was left untouched", path.display())]
    NotAnObject { path: PathBuf, what: String },
    #[error(
        "{} already has a server named {name:?} (command: {command}); pass --force to replace it; it was left untouched", path.display()
    )]
    Exists {
        path: PathBuf,
        name: String,
        command: String,
    },
    #[error(
        "no API key, so {target} was left untouched: set HIENERGY_API_KEY, or run setup in a terminal to be asked for it"
    )]
    NoKey { target: String },
    #[error("cannot read the API key from the terminal: {0}")]
    Prompt(io::Error),
    #[error("cannot back up {} before changing it: {source}; it was left untouched", path.display())]
    Backup { path: PathBuf, source: io::Error },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error(
        "--config does not apply to claude-code: Claude Code keeps its own config and `claude mcp add` writes it"
    )]
    ConfigForClaudeCode,
    #[error("cannot run {}: {source}", path.display())]
    ClaudeSpawn { path: PathBuf, source: io::Error },
    #[error(
        "`claude mcp add` failed ({status}); if a server named {name:?} exists, pass --force to replace it"
    )]
    ClaudeFailed { name: String, status: String },
    #[error("cannot print: {0}")]
    Output(io::Error),
}

/// Runs `setup` for the process: its environment, its stdout, an exit status.
pub fn main(args: &SetupArgs) -> ExitCode {
    let mut stdout = io::stdout().lock();
    match run(args, |name| std::env::var(name).ok(), &mut stdout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hienergy-mcp setup: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `env` looks up environment variables; messages go to `out`.
pub fn run(
    args: &SetupArgs,
    env: impl Fn(&str) -> Option<String>,
    out: &mut dyn io::Write,
) -> Result<(), SetupError> {
    check_name(&args.name)?;
    let program = this_program()?;
    match args.client {
        Client::ClaudeCode => claude_code(args, &program, &env, out),
        client => config_file(client, args, &program, &env, out),
    }
}

fn check_name(name: &str) -> Result<(), SetupError> {
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || !name.chars().all(plain) {
        return Err(SetupError::BadName(name.to_owned()));
    }
    Ok(())
}

/// The absolute path of the running binary: what the client must start.
fn this_program() -> Result<PathBuf, SetupError> {
    let exe = std::env::current_exe().map_err(SetupError::CurrentExe)?;
    let exe = std::path::absolute(exe).map_err(SetupError::CurrentExe)?;
    // `npx hienergy-mcp` runs a copy in npm's cache, which npm may clean.
    if exe.components().any(|c| c.as_os_str() == "_npx") {
        eprintln!(
            "warning: {} is in npm's cache, which npm may clean; install hienergy-mcp \
             (see the README) and run setup from the installed binary",
            exe.display()
        );
    }
    Ok(exe)
}

fn config_file(
    client: Client,
    args: &SetupArgs,
    program: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut dyn io::Write,
) -> Result<(), SetupError> {
    let path = match &args.config {
        Some(path) => path.clone(),
        None => client.default_config().ok_or(SetupError::NoHome {
            client: client.display_name(),
        })?,
    };
    let servers_key = client.servers_key();
    let input_id = clients::input_id(&args.name);
    if args.print {
        let entry = client.entry(program, KEY_PLACEHOLDER, &input_id);
        let servers = CstInputValue::Object(vec![(args.name.clone(), entry)]);
        let mut snippet = Vec::new();
        if let Some(input) = client.input(&input_id) {
            snippet.push(("inputs".to_owned(), CstInputValue::Array(vec![input])));
        }
        snippet.push((servers_key.to_owned(), servers));
        write!(out, "{}", write::render(CstInputValue::Object(snippet)))
            .map_err(SetupError::Output)?;
        eprintln!(
            "Merge this into {} under \"{servers_key}\" (nothing was changed).",
            path.display()
        );
        return Ok(());
    }

    // Everything that can refuse the file is checked before asking for a key.
    let doc = Document::load(&path, client.allows_comments())?;
    let existing = doc.server(servers_key, &args.name)?;
    if let (Some(existing), false) = (&existing, args.force) {
        let command = existing
            .get("command")
            .map_or_else(|| "none".to_owned(), command_text);
        if Path::new(&command) == program {
            writeln!(
                out,
                "{} already starts this program as {:?}; nothing changed \
                 (pass --force to write the entry again, e.g. with a new key).",
                path.display(),
                args.name
            )
            .map_err(SetupError::Output)?;
            return Ok(());
        }
        return Err(SetupError::Exists {
            path,
            name: args.name.clone(),
            command,
        });
    }
    let key = match client.needs_key_in_file() {
        true => api_key(env, &path.display().to_string())?,
        false => SecretString::from(String::new()),
    };
    doc.set_server(
        servers_key,
        &args.name,
        client.entry(program, key.expose_secret(), &input_id),
    )?;
    if let Some(input) = client.input(&input_id) {
        doc.set_input(&input_id, input)?;
    }
    let backup = doc.save()?;

    let mut done = || -> io::Result<()> {
        let verb = if existing.is_some() {
            "Replaced"
        } else {
            "Added"
        };
        let to = if existing.is_some() { "in" } else { "to" };
        writeln!(out, "{verb} {:?} {to} {}", args.name, path.display())?;
        writeln!(out, "  command: {}", program.display())?;
        match &backup {
            Some(backup) => writeln!(out, "  backup:  {}", backup.display())?,
            None => writeln!(out, "  (new file)")?,
        }
        if client == Client::VsCode {
            writeln!(
                out,
                "VS Code asks for the key the first time it starts the server and keeps it in its secret storage."
            )?;
        }
        writeln!(
            out,
            "Restart {} (or reload its MCP servers) to use it.",
            client.display_name()
        )
    };
    done().map_err(SetupError::Output)
}

fn command_text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}

/// The key from the environment, else asked for without echo when a person
/// is at the terminal.
fn api_key(env: &dyn Fn(&str) -> Option<String>, target: &str) -> Result<SecretString, SetupError> {
    let from_env = API_KEY_VARS.iter().find_map(|var| {
        let key = env(var)?.trim().to_owned();
        (!key.is_empty()).then_some(key)
    });
    if let Some(key) = from_env {
        return Ok(SecretString::from(key));
    }
    let no_key = || SetupError::NoKey {
        target: target.to_owned(),
    };
    if !io::stdin().is_terminal() {
        return Err(no_key());
    }
    let key = rpassword::prompt_password("HiEnergy admin API key (typing is hidden): ")
        .map_err(SetupError::Prompt)?;
    let key = key.trim();
    if key.is_empty() {
        return Err(no_key());
    }
    Ok(SecretString::from(key.to_owned()))
}

/// Claude Code keeps its config itself: `claude mcp add` is the supported
/// way in. The key goes in `--env`, which `claude` stores in its config;
/// it is on that child's command line only for the moment it runs.
fn claude_code(
    args: &SetupArgs,
    program: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut dyn io::Write,
) -> Result<(), SetupError> {
    if args.config.is_some() {
        return Err(SetupError::ConfigForClaudeCode);
    }
    let claude = match args.print {
        true => None,
        false => which::which("claude").ok(),
    };
    let Some(claude) = claude else {
        let mut output = || -> io::Result<()> {
            if !args.print {
                writeln!(
                    out,
                    "`claude` is not on your PATH; run this where it is (with HIENERGY_API_KEY set, or your key in its place):"
                )?;
            }
            writeln!(out, "{}", claude_command(&args.name, program))
        };
        return output().map_err(SetupError::Output);
    };
    let key = api_key(env, "Claude Code's config")?;
    if args.force {
        // A missing entry makes `remove` fail, which is fine.
        let _ = Command::new(&claude)
            .args(["mcp", "remove", "--scope", "user", &args.name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let status = Command::new(&claude)
        .args(["mcp", "add", "--scope", "user", "--env"])
        .arg(format!("{KEY_VAR}={}", key.expose_secret()))
        .arg(&args.name)
        .arg("--")
        .arg(program)
        .stdin(Stdio::null())
        .status()
        .map_err(|source| SetupError::ClaudeSpawn {
            path: claude.clone(),
            source,
        })?;
    if !status.success() {
        return Err(SetupError::ClaudeFailed {
            name: args.name.clone(),
            status: status.to_string(),
        });
    }
    writeln!(
        out,
        "Added {:?} to Claude Code (user scope) with command {}",
        args.name,
        program.display()
    )
    .map_err(SetupError::Output)
}

/// The `claude mcp add` line for this platform's usual shell, taking the key
/// from the environment so that the printed line holds no secret.
fn claude_command(name: &str, program: &Path) -> String {
    let program = program.to_string_lossy();
    if cfg!(windows) {
        // PowerShell: '' escapes ' inside single quotes.
        format!(
            "claude mcp add --scope user --env \"{KEY_VAR}=$env:{KEY_VAR}\" {name} -- '{}'",
            program.replace('\'', "''")
        )
    } else {
        format!(
            "claude mcp add --scope user --env \"{KEY_VAR}=${KEY_VAR}\" {name} -- '{}'",
            program.replace('\'', r"'\''")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_words() {
        for good in ["hienergy", "hi-energy_2.0"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "a\"b", "ключ", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_printed_claude_command_quotes_the_path_and_holds_no_key() {
        let line = claude_command("hienergy", Path::new("/opt/it's here/hienergy-mcp"));
        if !cfg!(windows) {
            assert_eq!(
                line,
                r#"claude mcp add --scope user --env "HIENERGY_API_KEY=$HIENERGY_API_KEY" hienergy -- '/opt/it'\''s here/hienergy-mcp'"#
            );
        }
    }

    #[test]
    fn the_key_comes_from_either_variable() {
        let env = |name: &str| (name == "HI_ENERGY_API_KEY").then(|| " k ".to_owned());
        let key = api_key(&env, "x").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(key.expose_secret(), "k");
    }
}
