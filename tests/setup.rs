//! `hienergy-mcp setup`: the real binary, pointed at fixture files under a
//! temporary HOME, never at the user's own configs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::{BIN, TEST_KEY};
use serde_json::{Value, json};

/// A temporary HOME (tests/clients.rs runs the real clients in one too).
pub struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Where Claude Desktop keeps its config on this OS, under this HOME.
    fn claude_desktop_config(&self) -> PathBuf {
        let base = if cfg!(target_os = "macos") {
            self.path().join("Library").join("Application Support")
        } else if cfg!(windows) {
            self.path().join("AppData").join("Roaming")
        } else {
            self.path().join(".config")
        };
        base.join("Claude").join("claude_desktop_config.json")
    }

    /// `hienergy-mcp setup ARGS` with this HOME, stdin not a terminal, and
    /// the key in the environment when `key` is given.
    fn setup(&self, args: &[&str], key: Option<&str>) -> Output {
        self.setup_with_path(args, key, None)
    }

    fn setup_with_path(&self, args: &[&str], key: Option<&str>, path: Option<&Path>) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.arg("setup")
            .args(args)
            .env("HOME", self.path())
            .env("USERPROFILE", self.path())
            .env("APPDATA", self.path().join("AppData").join("Roaming"))
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("HIENERGY_API_KEY")
            .env_remove("HI_ENERGY_API_KEY")
            .stdin(Stdio::null());
        if let Some(key) = key {
            cmd.env("HIENERGY_API_KEY", key);
        }
        if let Some(path) = path {
            cmd.env("PATH", path);
        }
        cmd.output()
            .unwrap_or_else(|e| panic!("run {BIN} setup: {e}"))
    }
}

fn write(path: &Path, text: &str) {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    }
    fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json_of(path: &Path) -> Value {
    let text = read(path);
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}\n{text}", path.display()))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "setup failed: {}\n{}",
        stderr(out),
        stdout(out)
    );
}

fn assert_refused(out: &Output, path: &Path) {
    assert!(
        !out.status.success(),
        "setup should have refused: {}",
        stdout(out)
    );
    assert!(
        stderr(out).contains(&path.display().to_string()),
        "the error does not name {}: {}",
        path.display(),
        stderr(out)
    );
}

/// Files in the config's folder other than the config itself (and its
/// lock file, which stays).
fn others_beside(path: &Path) -> Vec<PathBuf> {
    let dir = path
        .parent()
        .unwrap_or_else(|| panic!("no parent: {}", path.display()));
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p != path && p.extension().is_none_or(|e| e != "lock"))
        .collect();
    found.sort();
    found
}

fn this_binary() -> String {
    fs::canonicalize(BIN)
        .unwrap_or_else(|e| panic!("{BIN}: {e}"))
        .to_string_lossy()
        .into_owned()
}

const DESKTOP_FIXTURE: &str = r#"{
  "globalShortcut": "Alt+Space",
  "mcpServers": {
    "filesystem": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-filesystem", "/Users/me/Desktop"],
      "env": {"OTHER_KEY": "keep-me ünïcødé"}
    },
    "weather": {"command": "/opt/weather", "args": []}
  },
  "preferences": {"nested": {"deep": [1, 2.5, null, true, {"x": "y"}]}}
}
"#;

#[test]
fn claude_desktop_entry_is_merged_and_everything_else_kept() {
    let home = Home::new();
    let config = home.claude_desktop_config();
    write(&config, DESKTOP_FIXTURE);
    let before = json_of(&config);

    let out = home.setup(&["claude-desktop"], Some(TEST_KEY));
    assert_ok(&out);

    let after = json_of(&config);
    assert_eq!(
        after["mcpServers"]["hienergy"],
        json!({"command": this_binary(), "env": {"HIENERGY_API_KEY": TEST_KEY}})
    );
    // Everything that was there is there, unchanged.
    let mut without_ours = after.clone();
    if let Some(servers) = without_ours["mcpServers"].as_object_mut() {
        servers.remove("hienergy");
    }
    assert_eq!(without_ours, before);
    // The old file is kept beside the new one, byte for byte.
    let backups = others_beside(&config);
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(read(&backups[0]), DESKTOP_FIXTURE);
    assert!(
        stdout(&out).contains(&backups[0].display().to_string()),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains(&config.display().to_string()),
        "{}",
        stdout(&out)
    );
    // The key is written to the file, never echoed.
    assert!(!stdout(&out).contains(TEST_KEY) && !stderr(&out).contains(TEST_KEY));
}

#[test]
fn a_missing_config_is_created_without_backup() {
    let home = Home::new();
    let config = home.claude_desktop_config();
    let out = home.setup(&["claude-desktop"], Some(TEST_KEY));
    assert_ok(&out);
    assert_eq!(
        json_of(&config),
        json!({"mcpServers": {"hienergy": {"command": this_binary(), "env": {"HIENERGY_API_KEY": TEST_KEY}}}})
    );
    assert_eq!(others_beside(&config), Vec::<PathBuf>::new());
}

#[test]
fn a_malformed_config_is_refused_and_left_untouched() {
    let home = Home::new();
    let config = home.claude_desktop_config();
    for bad in [
        "{\"mcpServers\": {\"a\": {}},}",
        "{\"mcpServers\": {\n",
        "// comment\n{}",
        "{\"mcpServers\": [\"not\", \"an\", \"object\"]}",
        "[]",
    ] {
        write(&config, bad);
        let out = home.setup(&["claude-desktop"], Some(TEST_KEY));
        assert_refused(&out, &config);
        assert_eq!(read(&config), bad);
        assert_eq!(
            others_beside(&config),
            Vec::<PathBuf>::new(),
            "left files beside {bad:?}"
        );
    }
}

#[test]
fn an_existing_entry_is_replaced_only_with_force() {
    let home = Home::new();
    let config = home.path().join("custom.json");
    let fixture = r#"{"mcpServers": {"hienergy": {"command": "/old/hienergy-mcp"}, "other": {"command": "x"}}}"#;
    write(&config, fixture);
    let config_arg = config.to_string_lossy().into_owned();

    let out = home.setup(&["cursor", "--config", &config_arg], Some(TEST_KEY));
    assert_refused(&out, &config);
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("/old/hienergy-mcp"),
        "{}",
        stderr(&out)
    );
    assert_eq!(read(&config), fixture);
    assert_eq!(others_beside(&config), Vec::<PathBuf>::new());

    let out = home.setup(
        &["cursor", "--config", &config_arg, "--force"],
        Some(TEST_KEY),
    );
    assert_ok(&out);
    let after = json_of(&config);
    assert_eq!(after["mcpServers"]["hienergy"]["command"], this_binary());
    assert_eq!(after["mcpServers"]["other"], json!({"command": "x"}));
    assert!(stdout(&out).contains("Replaced"), "{}", stdout(&out));
    assert_eq!(others_beside(&config).len(), 1);
}

#[test]
fn running_setup_again_changes_nothing() {
    let home = Home::new();
    let config = home.claude_desktop_config();
    assert_ok(&home.setup(&["claude-desktop"], Some(TEST_KEY)));
    let first = read(&config);
    let out = home.setup(&["claude-desktop"], Some("another-key"));
    assert_ok(&out);
    assert!(stdout(&out).contains("nothing changed"), "{}", stdout(&out));
    assert_eq!(read(&config), first);
    assert_eq!(others_beside(&config), Vec::<PathBuf>::new());
}

#[test]
fn a_second_run_keeps_the_first_backup() {
    let home = Home::new();
    let config = home.path().join(".cursor").join("mcp.json");
    write(&config, "{}");
    assert_ok(&home.setup(&["cursor"], Some(TEST_KEY)));
    assert_ok(&home.setup(&["cursor", "--force", "--name", "second"], Some("other")));
    let backups = others_beside(&config);
    assert_eq!(backups.len(), 2, "{backups:?}");
    assert!(
        backups.iter().any(|b| read(b) == "{}"),
        "the original is gone"
    );
    let after = json_of(&config);
    assert_eq!(
        after["mcpServers"]["hienergy"]["env"]["HIENERGY_API_KEY"],
        TEST_KEY
    );
    assert_eq!(
        after["mcpServers"]["second"]["env"]["HIENERGY_API_KEY"],
        "other"
    );
}

#[test]
fn vscode_gets_a_password_prompt_and_never_the_key() {
    let home = Home::new();
    let config = home.path().join("project").join(".vscode").join("mcp.json");
    let fixture = "{\n  // my servers\n  \"servers\": {\n    \"github\": {\"type\": \"http\", \"url\": \"https://api.githubcopilot.com/mcp/\"},\n  },\n  \"inputs\": [{\"type\": \"promptString\", \"id\": \"gh\", \"password\": true}],\n}\n";
    write(&config, fixture);
    let out = home.setup(
        &["vscode", "--config", &config.to_string_lossy()],
        Some(TEST_KEY),
    );
    assert_ok(&out);
    let text = read(&config);
    assert!(!text.contains(TEST_KEY), "the key is in the file:\n{text}");
    assert!(
        text.contains("// my servers"),
        "the comment is gone:\n{text}"
    );
    // Written in the order VS Code's docs show: type first.
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("no {needle} in:\n{text}"))
    };
    assert!(at("\"type\": \"stdio\"") < at("\"command\""), "{text}");
    let parsed = jsonc_value(&text);
    assert_eq!(
        parsed["servers"]["hienergy"],
        json!({"type": "stdio", "command": this_binary(), "env": {"HIENERGY_API_KEY": "${input:hienergy-api-key}"}})
    );
    assert_eq!(
        parsed["servers"]["github"]["url"],
        "https://api.githubcopilot.com/mcp/"
    );
    let inputs = parsed["inputs"].as_array().cloned().unwrap_or_default();
    assert_eq!(inputs.len(), 2, "{inputs:?}");
    assert!(inputs.contains(&json!({"type": "promptString", "id": "gh", "password": true})));
    assert!(inputs.contains(&json!({
        "type": "promptString", "id": "hienergy-api-key",
        "description": "HiEnergy admin API key", "password": true
    })));
}

#[test]
fn vscode_user_config_needs_no_key_at_all() {
    let home = Home::new();
    let out = home.setup(&["vscode"], None);
    assert_ok(&out);
    let base = if cfg!(target_os = "macos") {
        home.path().join("Library").join("Application Support")
    } else if cfg!(windows) {
        home.path().join("AppData").join("Roaming")
    } else {
        home.path().join(".config")
    };
    let config = base.join("Code").join("User").join("mcp.json");
    assert_eq!(
        json_of(&config)["servers"]["hienergy"]["command"],
        this_binary()
    );
}

/// VS Code's own dialect: comments and trailing commas.
fn jsonc_value(text: &str) -> Value {
    let options = jsonc_parser::ParseOptions::default();
    jsonc_parser::cst::CstRootNode::parse(text, &options)
        .unwrap_or_else(|e| panic!("not JSONC: {e}\n{text}"))
        .value()
        .and_then(|value| value.to_serde_value())
        .unwrap_or_else(|| panic!("empty:\n{text}"))
}

#[test]
fn without_a_key_nothing_is_written() {
    let home = Home::new();
    let config = home.claude_desktop_config();
    write(&config, DESKTOP_FIXTURE);
    let out = home.setup(&["claude-desktop"], None);
    assert_refused(&out, &config);
    assert!(
        stderr(&out).contains("HIENERGY_API_KEY"),
        "{}",
        stderr(&out)
    );
    assert_eq!(read(&config), DESKTOP_FIXTURE);
    assert_eq!(others_beside(&config), Vec::<PathBuf>::new());
}

#[test]
fn print_writes_nothing_and_shows_no_key() {
    let home = Home::new();
    let out = home.setup(&["claude-desktop", "--print"], Some(TEST_KEY));
    assert_ok(&out);
    let printed: Value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("--print is not JSON: {e}\n{}", stdout(&out)));
    assert_eq!(printed["mcpServers"]["hienergy"]["command"], this_binary());
    assert!(!stdout(&out).contains(TEST_KEY));
    assert!(!home.claude_desktop_config().exists());
    assert!(stderr(&out).contains(&home.claude_desktop_config().display().to_string()));
    // The placeholder is not a key: say so, or a pasted snippet gets 401.
    assert!(stdout(&out).contains("<your HiEnergy admin API key>"));
    assert!(
        stderr(&out).contains("Replace <your HiEnergy admin API key>")
            && stderr(&out).contains("401"),
        "{}",
        stderr(&out)
    );
    // VS Code's snippet holds no placeholder, so nothing to replace.
    let out = home.setup(&["vscode", "--print"], None);
    assert_ok(&out);
    assert!(!stderr(&out).contains("401"), "{}", stderr(&out));
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap_or_else(|e| panic!("{e}"));
}

/// A file holding the key, and its backup, lose group and other access
/// (a 0644 config would otherwise become world-readable with the key in it).
#[cfg(unix)]
#[test]
fn a_config_holding_the_key_and_its_backup_are_private() {
    for (before, after) in [
        (0o600, 0o600),
        (0o640, 0o600),
        (0o644, 0o600),
        (0o666, 0o600),
        (0o700, 0o700),
    ] {
        let home = Home::new();
        let config = home.claude_desktop_config();
        write(&config, "{}");
        set_mode(&config, before);
        assert_ok(&home.setup(&["claude-desktop"], Some(TEST_KEY)));
        assert_eq!(mode(&config), after, "{before:o}");
        let backups = others_beside(&config);
        assert_eq!(backups.len(), 1);
        assert_eq!(
            mode(&backups[0]),
            after,
            "{before:o}: {}",
            backups[0].display()
        );
    }
    // A new file too.
    let home = Home::new();
    assert_ok(&home.setup(&["gemini"], Some(TEST_KEY)));
    assert_eq!(
        mode(&home.path().join(".gemini").join("settings.json")),
        0o600
    );
}

/// VS Code's file holds no key: shared stays shared.
#[cfg(unix)]
#[test]
fn a_config_without_the_key_keeps_its_permissions() {
    let home = Home::new();
    let config = home.path().join("mcp.json");
    write(&config, "{}");
    set_mode(&config, 0o644);
    assert_ok(&home.setup(&["vscode", "--config", &config.to_string_lossy()], None));
    assert_eq!(mode(&config), 0o644);
}

/// A `claude` on PATH that records its arguments, one per line, and fails
/// `claude mcp add` for the names in `refuse`.
#[cfg(unix)]
fn fake_claude(dir: &Path, refuse: &[&str]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let log = dir.join("claude-args");
    let script = dir.join("claude");
    let refuse: String = refuse
        .iter()
        .map(|name| format!("[ \"$1 $2 $5\" = 'mcp add {name}' ] && exit 1\n"))
        .collect();
    write(
        &script,
        &format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done >> '{log}'\necho ---- >> '{log}'\n{refuse}exit 0\n",
            log = log.display(),
        ),
    );
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));
    log
}

/// The calls the fake `claude` received, each as its words joined by spaces.
#[cfg(unix)]
fn claude_calls(log: &Path) -> Vec<String> {
    read(log)
        .split("----\n")
        .filter(|call| !call.is_empty())
        .map(|call| call.lines().collect::<Vec<_>>().join(" "))
        .collect()
}

/// The real CLI's happy path is in tests/clients.rs; this checks what only
/// a fake can: the exact words, and what --force does when an add fails.
#[cfg(unix)]
#[test]
fn claude_code_names_the_entry_before_env_and_force_replaces_only_an_accepted_entry() {
    let home = Home::new();
    let bin = home.path().join("bin");
    let log = fake_claude(&bin, &[]);
    let out = home.setup_with_path(&["claude-code"], Some(TEST_KEY), Some(&bin));
    assert_ok(&out);
    let program = this_binary();
    let add = |name: &str| {
        format!("mcp add --scope user {name} --env=HIENERGY_API_KEY={TEST_KEY} -- {program}")
    };
    assert_eq!(claude_calls(&log), [add("hienergy")]);

    // --force: the new entry under a temporary name first, then the swap.
    fs::remove_file(&log).unwrap_or_else(|e| panic!("{e}"));
    assert_ok(&home.setup_with_path(&["claude-code", "--force"], Some(TEST_KEY), Some(&bin)));
    assert_eq!(
        claude_calls(&log),
        [
            add("hienergy-setup-new"),
            "mcp remove --scope user hienergy".to_owned(),
            add("hienergy"),
            "mcp remove --scope user hienergy-setup-new".to_owned(),
        ]
    );

    // Claude Code refuses the new entry: the old one is never removed.
    let refusing = Home::new();
    let bin = refusing.path().join("bin");
    let log = fake_claude(&bin, &["hienergy-setup-new"]);
    let out = refusing.setup_with_path(&["claude-code", "--force"], Some(TEST_KEY), Some(&bin));
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("was left as it was"),
        "{}",
        stderr(&out)
    );
    assert_eq!(claude_calls(&log), [add("hienergy-setup-new")]);

    // The last add fails after the old entry went: the accepted one stays,
    // and the message says where.
    let failing = Home::new();
    let bin = failing.path().join("bin");
    let log = fake_claude(&bin, &["hienergy"]);
    let out = failing.setup_with_path(&["claude-code", "--force"], Some(TEST_KEY), Some(&bin));
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("\"hienergy-setup-new\""),
        "{}",
        stderr(&out)
    );
    let calls = claude_calls(&log);
    assert!(
        !calls.contains(&"mcp remove --scope user hienergy-setup-new".to_owned()),
        "{calls:?}"
    );
}

#[test]
fn claude_code_without_claude_prints_the_command() {
    let home = Home::new();
    let empty = home.path().join("empty-path");
    fs::create_dir_all(&empty).unwrap_or_else(|e| panic!("{e}"));
    let out = home.setup_with_path(&["claude-code"], Some(TEST_KEY), Some(&empty));
    assert_ok(&out);
    let text = stdout(&out);
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("claude mcp add --scope user hienergy --env "),
        "{text}"
    );
    assert!(last.contains(&this_binary()), "{text}");
    assert!(!text.contains(TEST_KEY), "{text}");
}

#[test]
fn setup_flags_are_checked() {
    let home = Home::new();
    let out = home.setup(&["cursor", "--name", "has space"], Some(TEST_KEY));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--name"), "{}", stderr(&out));
    let out = home.setup(&["claude-code", "--config", "x.json"], Some(TEST_KEY));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--config"), "{}", stderr(&out));
    // A server flag before `setup` is refused, not silently ignored.
    let out = Command::new(BIN)
        .args(["--timeout", "5", "setup", "cursor", "--print"])
        .env("HOME", home.path())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.status.success(), "{}", stdout(&out));
}

#[test]
fn help_names_the_key_and_points_a_person_to_setup() {
    let help = |flag: &str| {
        let out = Command::new(BIN)
            .arg(flag)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(out.status.success(), "{flag}: {}", stderr(&out));
        stdout(&out)
    };
    let short = help("-h");
    assert!(short.contains("HIENERGY_API_KEY"), "{short}");
    assert!(short.contains("setup"), "{short}");
    let long = help("--help");
    assert!(
        long.contains("meant to be launched by an MCP client"),
        "{long}"
    );
    assert!(long.contains("hienergy-mcp setup"), "{long}");
    let setup = help_of(&["setup", "--help"]);
    for client in [
        "claude-desktop",
        "cursor",
        "vscode",
        "claude-code",
        "gemini",
        "codex",
        "opencode",
    ] {
        assert!(setup.contains(client), "{client} missing from:\n{setup}");
    }
}

fn help_of(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

/// A person who runs the binary in a terminal is told what it waits for; a
/// client, whose stdin is a pipe, sees nothing new.
#[cfg(target_os = "linux")]
#[test]
fn a_terminal_gets_one_notice_and_a_pipe_none() {
    use std::io::Write;
    use std::time::{Duration, Instant};
    const NOTICE: &str = "waiting for an MCP client";

    let home = Home::new();
    let err = home.path().join("stderr");
    // util-linux `script` gives the server a terminal as stdin; Ctrl-D at
    // the start of a line is then end of input, and the server exits.
    let mut child = Command::new("script")
        .args([
            "-qec",
            &format!("'{BIN}' 2>'{}'", err.display()),
            "/dev/null",
        ])
        .env_remove("HIENERGY_API_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("script (util-linux): {e}"));
    let mut stdin = child.stdin.take().unwrap_or_else(|| panic!("no stdin"));
    stdin.write_all(b"\x04").unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    while child.try_wait().ok().flatten().is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("the server did not stop at end of input on a terminal");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(stdin);
    let text = read(&err);
    assert_eq!(text.matches(NOTICE).count(), 1, "{text}");
    assert!(
        text.contains("Ctrl-C") && text.contains("hienergy-mcp setup --help"),
        "{text}"
    );

    let out = Command::new(BIN)
        .env_remove("HIENERGY_API_KEY")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!stderr(&out).contains(NOTICE), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
}

#[test]
fn gemini_entry_is_merged_with_comments_kept_and_the_trust_note() {
    let home = Home::new();
    let config = home.path().join(".gemini").join("settings.json");
    let fixture = "{\n  // mine\n  \"theme\": \"Default\",\n  \"mcpServers\": {\"other\": {\"command\": \"x\"}}\n}\n";
    write(&config, fixture);
    let out = home.setup(&["gemini"], Some(TEST_KEY));
    assert_ok(&out);
    let text = read(&config);
    assert!(text.contains("// mine"), "{text}");
    let value = jsonc_value(&text);
    assert_eq!(
        value["mcpServers"]["hienergy"],
        json!({"command": this_binary(), "env": {"HIENERGY_API_KEY": TEST_KEY}})
    );
    assert_eq!(value["mcpServers"]["other"], json!({"command": "x"}));
    assert_eq!(value["theme"], "Default");
    assert!(stdout(&out).contains("does not trust"), "{}", stdout(&out));
}

#[test]
fn opencode_entry_is_local_with_a_command_list_and_an_environment() {
    let home = Home::new();
    let config = home
        .path()
        .join(".config")
        .join("opencode")
        .join("opencode.json");
    write(
        &config,
        "{\"$schema\": \"https://opencode.ai/config.json\", \"mcp\": {}}",
    );
    assert_ok(&home.setup(&["opencode"], Some(TEST_KEY)));
    let value = jsonc_value(&read(&config));
    assert_eq!(
        value["mcp"]["hienergy"],
        json!({"type": "local", "command": [this_binary()], "environment": {"HIENERGY_API_KEY": TEST_KEY}})
    );
    assert_eq!(value["$schema"], "https://opencode.ai/config.json");
}

#[test]
fn codex_entry_is_a_toml_table_in_codex_home_with_comments_kept() {
    let home = Home::new();
    let codex_home = home.path().join("codex-home");
    let config = codex_home.join("config.toml");
    let fixture =
        "# my settings\nmodel = \"o3\"  # the model\n\n[mcp_servers.other]\ncommand = \"x\"\n";
    write(&config, fixture);
    let out = Command::new(BIN)
        .args(["setup", "codex"])
        .env("HOME", home.path())
        .env("CODEX_HOME", &codex_home)
        .env("HIENERGY_API_KEY", TEST_KEY)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_ok(&out);
    let text = read(&config);
    assert!(text.starts_with(fixture), "{text}");
    let value: toml_edit::DocumentMut = text.parse().unwrap_or_else(|e| panic!("{e}\n{text}"));
    let ours = &value["mcp_servers"]["hienergy"];
    assert_eq!(
        ours["command"].as_str(),
        Some(this_binary().as_str()),
        "{text}"
    );
    assert_eq!(
        ours["env"]["HIENERGY_API_KEY"].as_str(),
        Some(TEST_KEY),
        "{text}"
    );
    assert!(text.contains("[mcp_servers.hienergy.env]"), "{text}");
    // Again: nothing to do. With --force on a broken file: refused.
    let again = home.setup(
        &["codex", "--config", &config.to_string_lossy()],
        Some(TEST_KEY),
    );
    assert!(
        stdout(&again).contains("nothing changed"),
        "{}",
        stdout(&again)
    );
    write(&config, "[mcp_servers\n");
    let out = home.setup(
        &["codex", "--config", &config.to_string_lossy(), "--force"],
        Some(TEST_KEY),
    );
    assert_refused(&out, &config);
    assert!(stderr(&out).contains("TOML"), "{}", stderr(&out));
}

#[test]
fn a_duplicate_member_is_refused_by_name() {
    let home = Home::new();
    let config = home.claude_desktop_config();
    let fixture =
        r#"{"mcpServers": {"hienergy": {"command": "/a"}, "hienergy": {"command": "/b"}}}"#;
    write(&config, fixture);
    let out = home.setup(&["claude-desktop", "--force"], Some(TEST_KEY));
    assert_refused(&out, &config);
    assert!(
        stderr(&out).contains("\"mcpServers.hienergy\""),
        "{}",
        stderr(&out)
    );
    assert_eq!(read(&config), fixture);
}

/// A FIFO would hang the read forever; a device or a dangling symlink would
/// be replaced by a plain file holding the key.
#[cfg(unix)]
#[test]
fn only_a_regular_file_or_a_symlink_to_one_is_edited() {
    let home = Home::new();
    let fifo = home.path().join("fifo.json");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap_or_else(|e| panic!("mkfifo: {e}"));
    assert!(made.success());
    let dangling = home.path().join("dangling.json");
    std::os::unix::fs::symlink(home.path().join("nowhere.json"), &dangling)
        .unwrap_or_else(|e| panic!("{e}"));
    for (path, what) in [
        (fifo.as_path(), "FIFO"),
        (dangling.as_path(), "symlink to nothing"),
        (Path::new("/dev/null"), "device"),
        (home.path(), "folder"),
    ] {
        // `timeout` ends a hang as a failure with its own status.
        let out = Command::new("timeout")
            .args(["20", BIN, "setup", "cursor", "--config"])
            .arg(path)
            .env("HIENERGY_API_KEY", TEST_KEY)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(out.status.code(), Some(124), "hung on {}", path.display());
        assert_refused(&out, path);
        assert!(stderr(&out).contains(what), "{}", stderr(&out));
    }
    assert!(fs::symlink_metadata(&dangling).is_ok_and(|m| m.file_type().is_symlink()));
    assert!(!home.path().join("nowhere.json").exists());

    // A symlink to a file is written through; the link stays a link.
    let real = home.path().join("real.json");
    write(&real, "{}");
    let link = home.path().join("link.json");
    std::os::unix::fs::symlink(&real, &link).unwrap_or_else(|e| panic!("{e}"));
    assert_ok(&home.setup(
        &["cursor", "--config", &link.to_string_lossy()],
        Some(TEST_KEY),
    ));
    assert!(fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink()));
    assert_eq!(
        json_of(&real)["mcpServers"]["hienergy"]["command"],
        this_binary()
    );
}

/// Four runs on one file at once: each takes its turn under the lock, so
/// every entry that reported "Added" is in the file.
#[test]
fn concurrent_setups_on_one_file_keep_every_entry() {
    for round in 0..5 {
        let home = Home::new();
        let config = home.path().join("mcp.json");
        write(&config, "{\"mcpServers\": {}}");
        let names = ["one", "two", "three", "four"];
        let children: Vec<_> = names
            .iter()
            .map(|name| {
                Command::new(BIN)
                    .args(["setup", "cursor", "--name", name, "--config"])
                    .arg(&config)
                    .env("HIENERGY_API_KEY", TEST_KEY)
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect();
        for child in children {
            assert_ok(&child.wait_with_output().unwrap_or_else(|e| panic!("{e}")));
        }
        let servers = json_of(&config)["mcpServers"].clone();
        for name in names {
            assert!(
                servers.get(name).is_some(),
                "round {round}: {name} lost: {servers}"
            );
        }
    }
}
