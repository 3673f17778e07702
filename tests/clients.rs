//! `hienergy-mcp setup` checked by the real clients it configures, each
//! installed from npm (tests/clients/package.json) and run with HOME in a
//! temporary folder: after setup, each client itself starts our binary and
//! reports it connected (Codex: its app-server lists our tools).
//!
//! It needs `npm install --no-save --prefix tests/clients` (about 200 MB), so `cargo test`
//! skips it; `.ci/run` runs it with
//! `cargo test --test tests clients:: -- --ignored`.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::common::{BIN, TEST_KEY};
use crate::setup::Home;
use serde_json::{Value, json};

const CLIENTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/clients/node_modules/.bin"
);
/// A client that has not answered by then is stuck, not slow.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// The real clients, run in a [`Home`].
trait Clients {
    fn command(&self, program: &str, args: &[&str]) -> Command;
    fn configure(&self, args: &[&str]) -> Output;
    fn client(&self, name: &str, args: &[&str]) -> String;
}

impl Clients for Home {
    /// `program ARGS` with this HOME, the clients on PATH, nothing of the
    /// user's own config, HiEnergy at a loopback address nothing listens on
    /// (listing tools calls no API).
    fn command(&self, program: &str, args: &[&str]) -> Command {
        let path = std::env::join_paths([PathBuf::from(CLIENTS)].into_iter().chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ))
        .unwrap_or_else(|e| panic!("PATH: {e}"));
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env("HOME", self.path())
            .env("PATH", path)
            .env("HIENERGY_API_KEY", TEST_KEY)
            .env("HIENERGY_BASE_URL", "http://127.0.0.1:9")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("CODEX_HOME")
            .env_remove("CLAUDE_CONFIG_DIR")
            .current_dir(self.path())
            .stdin(Stdio::null());
        cmd
    }

    fn configure(&self, args: &[&str]) -> Output {
        let out = run(self.command(BIN, &[&["setup"], args].concat()));
        assert!(out.status.success(), "setup {args:?}: {}", text(&out));
        out
    }

    fn client(&self, name: &str, args: &[&str]) -> String {
        let out = run(self.command(&format!("{CLIENTS}/{name}"), args));
        let shown = text(&out);
        eprintln!("$ {name} {}\n{shown}", args.join(" "));
        assert!(out.status.success(), "{name} {args:?}: {shown}");
        shown
    }
}

/// Runs `cmd` to its end, or fails the test after [`CLIENT_TIMEOUT`].
fn run(mut cmd: Command) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{cmd:?}: {e} (run `npm install --no-save --prefix tests/clients`)")
        });
    let (done, wait) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match wait.recv_timeout(CLIENT_TIMEOUT) {
        Ok(out) => out.unwrap_or_else(|e| panic!("{cmd:?}: {e}")),
        Err(_) => panic!("{cmd:?} did not finish within {CLIENT_TIMEOUT:?}"),
    }
}

/// stdout then stderr: the clients print their lists on either.
fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn line_with<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find(|line| {
            line.split(|c: char| c.is_whitespace() || c == ':')
                .any(|word| word == name)
        })
        .unwrap_or_else(|| panic!("no line for {name}:\n{text}"))
}

#[test]
#[ignore = "needs the real clients: npm install --no-save --prefix tests/clients (run by .ci/run)"]
fn claude_code_connects_after_setup_and_after_force() {
    let home = Home::new();
    home.configure(&["claude-code"]);
    let listed = home.client("claude", &["mcp", "list"]);
    assert!(
        line_with(&listed, "hienergy").contains("Connected"),
        "{listed}"
    );

    // --force with a working entry: still one entry, still connected, and no
    // temporary entry left over.
    home.configure(&["claude-code", "--force"]);
    let listed = home.client("claude", &["mcp", "list"]);
    assert!(
        line_with(&listed, "hienergy").contains("Connected"),
        "{listed}"
    );
    assert!(!listed.contains("hienergy-setup-new"), "{listed}");

    // Claude Code refuses the new entry (its temporary name is taken):
    // setup fails and the old entry still works.
    home.client(
        "claude",
        &[
            "mcp",
            "add",
            "--scope",
            "user",
            "hienergy-setup-new",
            "--",
            "/bin/true",
        ],
    );
    let out = run(home.command(BIN, &["setup", "claude-code", "--force"]));
    assert!(!out.status.success(), "{}", text(&out));
    let listed = home.client("claude", &["mcp", "list"]);
    assert!(
        line_with(&listed, "hienergy").contains("Connected"),
        "{listed}"
    );
}

#[test]
#[ignore = "needs the real clients: npm install --no-save --prefix tests/clients (run by .ci/run)"]
fn gemini_connects_in_a_trusted_folder_only() {
    let home = Home::new();
    home.configure(&["gemini"]);
    let untrusted = home.client("gemini", &["mcp", "list"]);
    assert!(
        line_with(&untrusted, "hienergy").contains("Disabled"),
        "{untrusted}"
    );
    // What the user does when Gemini asks: trust the folder.
    let trusted = json!({ home.path().to_string_lossy(): "TRUST_FOLDER" });
    std::fs::write(
        home.path().join(".gemini").join("trustedFolders.json"),
        trusted.to_string(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let listed = home.client("gemini", &["mcp", "list"]);
    assert!(
        line_with(&listed, "hienergy").contains("Connected"),
        "{listed}"
    );
}

#[test]
#[ignore = "needs the real clients: npm install --no-save --prefix tests/clients (run by .ci/run)"]
fn opencode_connects_after_setup() {
    let home = Home::new();
    home.configure(&["opencode"]);
    let listed = home.client("opencode", &["mcp", "list"]);
    assert!(line_with(&listed, "hienergy").contains('✓'), "{listed}");
    assert!(listed.contains("connected"), "{listed}");
}

/// `codex mcp list` only reads the config; the app-server (what the IDE
/// extensions speak to) starts the server and lists its tools.
#[test]
#[ignore = "needs the real clients: npm install --no-save --prefix tests/clients (run by .ci/run)"]
fn codex_app_server_lists_our_tools() {
    let home = Home::new();
    home.configure(&["codex"]);
    let listed = home.client("codex", &["mcp", "list"]);
    assert!(
        line_with(&listed, "hienergy").contains("enabled"),
        "{listed}"
    );

    let mut child = home
        .command(&format!("{CLIENTS}/codex"), &["app-server"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("codex app-server: {e}"));
    let mut stdin = child.stdin.take().unwrap_or_else(|| panic!("no stdin"));
    for message in [
        json!({"id": 1, "method": "initialize", "params": {"clientInfo": {"name": "hienergy-test", "version": "1"}}}),
        json!({"method": "initialized"}),
        json!({"id": 2, "method": "mcpServerStatus/list", "params": {"detail": "toolsAndAuthOnly"}}),
    ] {
        writeln!(stdin, "{message}").unwrap_or_else(|e| panic!("{e}"));
    }
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let (found, wait) = mpsc::channel();
    std::thread::spawn(move || {
        let answer = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter_map(|line| serde_json::from_str::<Value>(&line).ok())
            .find(|message| message["id"] == 2);
        let _ = found.send(answer);
    });
    let answer = wait.recv_timeout(CLIENT_TIMEOUT);
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    let answer = answer
        .unwrap_or_else(|_| panic!("codex app-server did not answer within {CLIENT_TIMEOUT:?}"))
        .unwrap_or_else(|| panic!("codex app-server ended without answering"));
    let servers = answer["result"]["data"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ours = servers
        .iter()
        .find(|s| s["name"] == "hienergy")
        .unwrap_or_else(|| panic!("hienergy not listed: {answer}"));
    let tools: Vec<&String> = ours["tools"]
        .as_object()
        .map(|t| t.keys().collect())
        .unwrap_or_default();
    eprintln!(
        "codex app-server mcpServerStatus/list: hienergy {} tools {tools:?}",
        ours["serverInfo"]["name"]
    );
    assert_eq!(ours["serverInfo"]["name"], "hienergy-mcp", "{answer}");
    for tool in ["add_contact", "add_contacts"] {
        assert!(
            ours["tools"].get(tool).is_some(),
            "{tool} missing: {answer}"
        );
    }
}
