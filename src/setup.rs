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
use std::process::{Command, ExitCode, ExitStatus, Stdio};

use secrecy::{ExposeSecret, SecretString};

use crate::config::API_KEY_VARS;
use clients::{Client, KEY_VAR};
use write::{Document, Saved};

/// What the server prints on stderr when a person, not a client, started it.
pub const TERMINAL_NOTICE: &str = "hienergy-mcp is an MCP server: it is waiting for an MCP client \
     to speak JSON-RPC on stdin (press Ctrl-C to stop).\n\
     To add it to Claude Desktop, Cursor, VS Code, Claude Code, Gemini CLI, Codex or opencode, \
     run: hienergy-mcp setup --help";

/// The default name of the entry.
pub const DEFAULT_NAME: &str = "hienergy";
/// Names are keys in JSON and words on a command line: keep them plain.
const MAX_NAME_CHARS: usize = 64;
/// Shown instead of the key in `--print` output: stdout may be a shared
/// terminal, a log or a pasted snippet.
const KEY_PLACEHOLDER: &str = "<your HiEnergy admin API key>";

/// Add this server to an MCP client's config: claude-desktop, cursor, vscode, claude-code,
/// gemini, codex, opencode.
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
    #[error("{} is not valid {format}: {reason}; fix it (or move it away) and run setup again; it was left untouched", path.display())]
    Unparsable {
        path: PathBuf,
        format: &'static str,
        reason: String,
    },
    #[error("{} is {what}, not a config file; only a regular file (or a symlink to one) is edited; it was left untouched", path.display())]
    NotAFile { path: PathBuf, what: String },
    #[error(
        "{} has the member {member:?} twice: clients read the last copy, so setup cannot tell which one to change; remove one and run setup again; it was left untouched", path.display()
    )]
    Duplicate { path: PathBuf, member: String },
    #[error("cannot lock {}.lock before changing it: {source}; it was left untouched", path.display())]
    Lock { path: PathBuf, source: io::Error },
    #[error("{} kept changing while setup tried to change it; run setup again; it was left untouched", path.display())]
    KeptChanging { path: PathBuf },
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
    #[error(
        "`claude mcp add {temporary}` failed ({status}), so {name:?} was left as it was (remove a stale {temporary:?} with `claude mcp remove --scope user {temporary}`)"
    )]
    ClaudeNotAccepted {
        name: String,
        temporary: String,
        status: String,
    },
    #[error(
        "the new entry works as {temporary:?}, but `claude mcp add {name}` failed ({status}) after the old {name:?} was removed; to rename it, run `claude mcp remove --scope user {temporary}` and `hienergy-mcp setup claude-code --name {name}`"
    )]
    ClaudeReplaceFailed {
        name: String,
        temporary: String,
        status: String,
    },
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
        None => client.default_config(env).ok_or(SetupError::NoHome {
            client: client.display_name(),
        })?,
    };
    let servers_key = client.servers_key();
    let input_id = clients::input_id(&args.name);
    let set_entry = |doc: &mut Document, key: &str| {
        doc.set_server(
            servers_key,
            &args.name,
            client.entry(program, key, &input_id),
        )?;
        match client.input(&input_id) {
            Some(input) => doc.set_input(&input_id, input),
            None => Ok(()),
        }
    };
    if args.print {
        let snippet = write::render(client.format(), |doc| set_entry(doc, KEY_PLACEHOLDER))?;
        write!(out, "{snippet}").map_err(SetupError::Output)?;
        eprintln!(
            "Merge this into {} under \"{servers_key}\" (nothing was changed).",
            path.display()
        );
        if client.needs_key_in_file() {
            eprintln!(
                "Replace {KEY_PLACEHOLDER} with your HiEnergy admin API key: pasted as it is, \
                 every call fails with 401 (unauthorized)."
            );
        }
        return Ok(());
    }

    // Everything that can refuse the file is checked before asking for a
    // key; the change itself reads the file again, under its lock, once the
    // key is known, so nothing written meanwhile is lost.
    let unchanged = |existing: &Option<String>| -> Result<bool, SetupError> {
        match (existing, args.force) {
            (Some(command), false) if Path::new(command) == program => Ok(true),
            (Some(command), false) => Err(SetupError::Exists {
                path: path.clone(),
                name: args.name.clone(),
                command: command.clone(),
            }),
            _ => Ok(false),
        }
    };
    let existing = write::load(&path, client.format())?.existing(servers_key, &args.name)?;
    let key = match (unchanged(&existing)?, client.needs_key_in_file()) {
        (false, true) => api_key(env, &path.display().to_string())?,
        _ => SecretString::from(String::new()),
    };
    let mut replaced = false;
    let saved = write::update(&path, client.format(), client.needs_key_in_file(), |doc| {
        let existing = doc.existing(servers_key, &args.name)?;
        if unchanged(&existing)? {
            return Ok(false);
        }
        replaced = existing.is_some();
        set_entry(doc, key.expose_secret())?;
        Ok(true)
    })?;

    let done = || -> io::Result<()> {
        let backup = match saved {
            Saved::Unchanged => {
                return writeln!(
                    out,
                    "{} already starts this program as {:?}; nothing changed \
                     (pass --force to write the entry again, e.g. with a new key).",
                    path.display(),
                    args.name
                );
            }
            Saved::Written { backup } => backup,
        };
        let (verb, to) = match replaced {
            true => ("Replaced", "in"),
            false => ("Added", "to"),
        };
        writeln!(out, "{verb} {:?} {to} {}", args.name, path.display())?;
        writeln!(out, "  command: {}", program.display())?;
        match &backup {
            Some(backup) => writeln!(out, "  backup:  {}", backup.display())?,
            None => writeln!(out, "  (new file)")?,
        }
        match client {
            Client::VsCode => writeln!(
                out,
                "VS Code asks for the key the first time it starts the server and keeps it in its secret storage."
            )?,
            Client::Gemini => writeln!(
                out,
                "Gemini CLI starts no MCP server (this one included) in a folder it does not trust: \
                 trust the folder when Gemini asks, or with /permissions."
            )?,
            _ => {}
        }
        writeln!(
            out,
            "Restart {} (or reload its MCP servers) to use it.",
            client.display_name()
        )
    };
    done().map_err(SetupError::Output)
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
    let claude_run = |words: &[&str]| -> Result<ExitStatus, SetupError> {
        Command::new(&claude)
            .args(words)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .map_err(|source| SetupError::ClaudeSpawn {
                path: claude.clone(),
                source,
            })
    };
    // The name goes before `--env`: `--env` takes several values and would
    // swallow a name after it.
    let env_arg = format!("--env={KEY_VAR}={}", key.expose_secret());
    let program_arg = program.to_string_lossy();
    let add = |name: &str| {
        let words = ["mcp", "add", "--scope", "user", name, &env_arg, "--"];
        claude_run(&[&words[..], &[&*program_arg]].concat())
    };
    let remove = |name: &str| claude_run(&["mcp", "remove", "--scope", "user", name]);
    if !args.force {
        let status = add(&args.name)?;
        if !status.success() {
            return Err(SetupError::ClaudeFailed {
                name: args.name.clone(),
                status: status.to_string(),
            });
        }
    } else {
        // The old entry goes only once Claude Code has accepted the new one
        // (under a temporary name), so a failure never leaves fewer working
        // entries than before.
        let temporary = format!("{}-setup-new", args.name);
        let status = add(&temporary)?;
        if !status.success() {
            return Err(SetupError::ClaudeNotAccepted {
                name: args.name.clone(),
                temporary,
                status: status.to_string(),
            });
        }
        // A missing entry makes `remove` fail, which is fine.
        remove(&args.name)?;
        let status = add(&args.name)?;
        if !status.success() {
            return Err(SetupError::ClaudeReplaceFailed {
                name: args.name.clone(),
                temporary,
                status: status.to_string(),
            });
        }
        if !remove(&temporary)?.success() {
            eprintln!(
                "warning: could not remove the temporary entry {temporary:?}; \
                 run `claude mcp remove --scope user {temporary}`"
            );
        }
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
            "claude mcp add --scope user {name} --env \"{KEY_VAR}=$env:{KEY_VAR}\" -- '{}'",
            program.replace('\'', "''")
        )
    } else {
        format!(
            "claude mcp add --scope user {name} --env \"{KEY_VAR}=${KEY_VAR}\" -- '{}'",
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
                r#"claude mcp add --scope user hienergy --env "HIENERGY_API_KEY=$HIENERGY_API_KEY" -- '/opt/it'\''s here/hienergy-mcp'"#
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
