//! `hienergy-mcp setup`: the real binary, pointed at fixture files under a
//! temporary HOME, never at the user's own configs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::{BIN, TEST_KEY};
use serde_json::{Value, json};

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        Self { dir }
    }

    fn path(&self) -> &Path {
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

/// Files in the config's folder other than the config itself.
fn others_beside(path: &Path) -> Vec<PathBuf> {
    let dir = path
        .parent()
        .unwrap_or_else(|| panic!("no parent: {}", path.display()));
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p != path)
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
}

#[cfg(unix)]
#[test]
fn the_config_keeps_its_permissions_and_so_does_the_backup() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| {
        fs::metadata(p)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0)
    };
    // Private (it holds keys) and shared with a group: neither is
    // tempfile's own 0600 by accident.
    for wanted in [0o600, 0o640] {
        let home = Home::new();
        let config = home.claude_desktop_config();
        write(&config, "{}");
        fs::set_permissions(&config, fs::Permissions::from_mode(wanted))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_ok(&home.setup(&["claude-desktop"], Some(TEST_KEY)));
        assert_eq!(mode(&config), wanted);
        let backups = others_beside(&config);
        assert_eq!(backups.len(), 1);
        assert_eq!(mode(&backups[0]), wanted, "{}", backups[0].display());
    }
}

/// A `claude` on PATH that records its arguments, one per line.
#[cfg(unix)]
fn fake_claude(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let log = dir.join("claude-args");
    let script = dir.join("claude");
    write(
        &script,
        &format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done >> '{}'\necho ---- >> '{}'\n",
            log.display(),
            log.display()
        ),
    );
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));
    log
}

#[cfg(unix)]
#[test]
fn claude_code_runs_claude_mcp_add_with_the_absolute_path() {
    let home = Home::new();
    let bin = home.path().join("bin");
    let log = fake_claude(&bin);
    let out = home.setup_with_path(&["claude-code"], Some(TEST_KEY), Some(&bin));
    assert_ok(&out);
    let expected = format!(
        "mcp\nadd\n--scope\nuser\n--env\nHIENERGY_API_KEY={TEST_KEY}\nhienergy\n--\n{}\n----\n",
        this_binary()
    );
    assert_eq!(read(&log), expected);

    // --force removes the old entry first.
    fs::remove_file(&log).unwrap_or_else(|e| panic!("{e}"));
    assert_ok(&home.setup_with_path(&["claude-code", "--force"], Some(TEST_KEY), Some(&bin)));
    assert!(read(&log).starts_with("mcp\nremove\n--scope\nuser\nhienergy\n----\nmcp\nadd\n"));
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
        last.starts_with("claude mcp add --scope user --env "),
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
    for client in ["claude-desktop", "cursor", "vscode", "claude-code"] {
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
