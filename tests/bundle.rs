//! The Claude Desktop bundle: built by scripts/build-mcpb, unpacked, and
//! started the way Claude Desktop starts an extension (manifest.json read,
//! `${__dirname}` and `${user_config.*}` substituted, `mcp_config.command`
//! spawned with its `args` and `env`), then spoken to over MCP.
//!
//! It needs a release build and npx (to pack), minutes rather than seconds,
//! so `cargo test` skips it; `.ci/run` runs it with
//! `cargo test --test tests bundle:: -- --ignored`.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::*;
use serde_json::{Map, Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/build-mcpb");

/// The platform names mcpb uses (Node's `process.platform`).
fn platform() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        "windows" => "win32",
        other => other,
    }
}

fn exe_suffix() -> &'static str {
    std::env::consts::EXE_SUFFIX
}

/// Runs scripts/build-mcpb and returns the path it printed last.
fn build_bundle() -> PathBuf {
    let out = Command::new("bash")
        .arg(SCRIPT)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {SCRIPT}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{SCRIPT} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    PathBuf::from(last)
}

/// Every file in the bundle: its unix mode and its bytes.
type Contents = BTreeMap<String, (u32, Vec<u8>)>;

fn contents(bundle: &Path) -> Contents {
    let file = fs::File::open(bundle).unwrap_or_else(|e| panic!("{}: {e}", bundle.display()));
    let mut archive = zip::ZipArchive::new(file)
        .unwrap_or_else(|e| panic!("{} is not a zip: {e}", bundle.display()));
    let mut found = Contents::new();
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .unwrap_or_else(|e| panic!("entry {index}: {e}"));
        if entry.is_dir() {
            continue;
        }
        let name = entry
            .name()
            .unwrap_or_else(|e| panic!("entry {index} has no usable name: {e}"))
            .into_owned();
        let mode = entry.unix_mode().unwrap_or(0);
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        found.insert(name, (mode, bytes));
    }
    found
}

/// Writes the files out as Claude Desktop's installer does, modes included.
fn unpack(contents: &Contents, dir: &Path) {
    for (name, (mode, bytes)) in contents {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(mode & 0o777))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        #[cfg(not(unix))]
        let _ = mode;
    }
}

/// mcpb's `getMcpConfigForManifest`: the platform override, then the
/// manifest's defaults overlaid with the user's values, substituted into
/// command, args and env. An `args` item that is exactly one
/// `${user_config.X}` with no (or an empty) value stays as written, as there.
fn claude_desktop_command(
    dir: &Path,
    manifest: &Value,
    user: &[(&str, &str)],
) -> tokio::process::Command {
    let base = &manifest["server"]["mcp_config"];
    let over = &base["platform_overrides"][platform()];
    let pick = |key: &str| match over.get(key) {
        Some(value) if !value.is_null() => value.clone(),
        _ => base[key].clone(),
    };
    let (command, args, env) = (pick("command"), pick("args"), pick("env"));

    let mut vars: Vec<(String, String)> = vec![
        ("__dirname".into(), dir.to_string_lossy().into_owned()),
        (
            "pathSeparator".into(),
            std::path::MAIN_SEPARATOR.to_string(),
        ),
        ("/".into(), std::path::MAIN_SEPARATOR.to_string()),
    ];
    let mut merged: BTreeMap<String, String> = BTreeMap::new();
    for (key, option) in manifest["user_config"]
        .as_object()
        .cloned()
        .unwrap_or_default()
    {
        if let Some(default) = option.get("default") {
            merged.insert(
                key,
                default
                    .as_str()
                    .map_or_else(|| default.to_string(), str::to_owned),
            );
        }
    }
    for (key, value) in user {
        merged.insert((*key).to_owned(), (*value).to_owned());
    }
    vars.extend(
        merged
            .into_iter()
            .map(|(k, v)| (format!("user_config.{k}"), v)),
    );
    let substitute = |text: &str| {
        vars.iter().fold(text.to_owned(), |text, (name, value)| {
            text.replace(&format!("${{{name}}}"), value)
        })
    };

    let command = substitute(
        command
            .as_str()
            .unwrap_or_else(|| panic!("no command: {base}")),
    );
    let mut cmd = tokio::process::Command::new(command);
    for arg in args.as_array().cloned().unwrap_or_default() {
        let arg = arg.as_str().unwrap_or_default().to_owned();
        let whole_var = arg
            .strip_prefix("${")
            .and_then(|rest| rest.strip_suffix('}'))
            .filter(|name| name.starts_with("user_config."));
        let keep =
            whole_var.is_some_and(|name| vars.iter().all(|(n, v)| n != name || v.is_empty()));
        cmd.arg(if keep { arg } else { substitute(&arg) });
    }
    // Only the manifest's environment: the bundle must not lean on the
    // developer's shell.
    cmd.env_clear();
    for (name, value) in env.as_object().cloned().unwrap_or_default() {
        cmd.env(name, substitute(value.as_str().unwrap_or_default()));
    }
    cmd.kill_on_drop(true);
    cmd
}

fn dry_run_url(result: &rmcp::model::CallToolResult) -> String {
    let structured = result.structured_content.clone().unwrap_or_default();
    structured["request"]["url"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn dry_run_contact() -> Value {
    json!({"advertiser_id": 42, "email": "jane.doe@example.com", "dry_run": true})
}

#[tokio::test]
#[ignore = "builds a release binary and packs with npx: cargo test --test tests bundle:: -- --ignored"]
async fn bundle_starts_and_works_as_claude_desktop_starts_it() {
    let bundle = build_bundle();
    let expected_name = format!(
        "hienergy-mcp-{}-{}-{}.mcpb",
        env!("CARGO_PKG_VERSION"),
        match platform() {
            "win32" => "windows",
            other => other,
        },
        std::env::consts::ARCH
    );
    assert_eq!(
        bundle.file_name().and_then(|n| n.to_str()),
        Some(expected_name.as_str())
    );
    assert!(
        bundle.parent().is_some_and(|dir| dir.ends_with("mcpb")),
        "{}",
        bundle.display()
    );

    let files = contents(&bundle);
    let binary = format!("server/hienergy-mcp{}", exe_suffix());
    assert_eq!(
        files.keys().cloned().collect::<Vec<_>>(),
        vec!["manifest.json".to_owned(), binary.clone()]
    );
    if cfg!(unix) {
        let (mode, _) = &files[&binary];
        assert_eq!(
            mode & 0o111,
            0o111,
            "the binary lost its execute bits: {mode:o}"
        );
    }

    let manifest: Value = serde_json::from_slice(&files["manifest.json"].1)
        .unwrap_or_else(|e| panic!("manifest.json: {e}"));
    assert_eq!(manifest["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(manifest["compatibility"]["platforms"], json!([platform()]));
    assert_eq!(manifest["server"]["entry_point"], binary.as_str());
    assert_eq!(
        manifest["server"]["mcp_config"]["command"],
        format!("${{__dirname}}/{binary}")
    );
    let schema = manifest["$schema"].as_str().unwrap_or_default();
    assert!(
        schema.is_empty() || schema.ends_with("/schemas/mcpb-manifest-v0.3.schema.json"),
        "{schema}"
    );

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    unpack(&files, dir.path());

    // The user filled in the key and pointed the URL at the fake: a real call.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(CONTACTS_PATH))
        .and(header("x-api-key", TEST_KEY))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"data": {
            "id": 9001, "advertiser_id": 42, "email": "jane.doe@example.com"
        }})))
        .expect(1)
        .mount(&server)
        .await;
    let cmd = claude_desktop_command(
        dir.path(),
        &manifest,
        &[("api_key", TEST_KEY), ("base_url", &server.uri())],
    );
    let client = sdk_client(cmd).await;
    let tools = client
        .list_all_tools()
        .await
        .unwrap_or_else(|e| panic!("tools/list: {e}"));
    assert!(tools.iter().any(|t| t.name == "add_contact"), "{tools:?}");
    let dry = call(&client, dry_run_contact()).await;
    assert_eq!(dry.is_error, Some(false), "{dry:?}");
    assert_eq!(
        dry_run_url(&dry),
        format!("{}/api/v1/contacts/add", server.uri())
    );
    let real = call(&client, minimal_contact()).await;
    assert_eq!(real.is_error, Some(false), "{real:?}");
    assert_eq!(posts(&server).await, 1);
    let _ = client.cancel().await;
    server.verify().await;

    // The key set, the URL left at its default or cleared to empty, as most
    // users leave it: the server starts and aims at HiEnergy itself. No real
    // call here: it would leave this machine.
    for user in [
        vec![("api_key", TEST_KEY)],
        vec![("api_key", TEST_KEY), ("base_url", "")],
    ] {
        // Printed with the failure, if any: which user settings broke it.
        eprintln!("user_config: {user:?}");
        let client = sdk_client(claude_desktop_command(dir.path(), &manifest, &user)).await;
        let tools = client
            .list_all_tools()
            .await
            .unwrap_or_else(|e| panic!("tools/list {user:?}: {e}"));
        assert!(tools.iter().any(|t| t.name == "add_contact"));
        let dry = call(&client, dry_run_contact()).await;
        assert_eq!(dry.is_error, Some(false), "{user:?}: {dry:?}");
        assert_eq!(
            dry_run_url(&dry),
            "https://app.hienergy.ai/api/v1/contacts/add",
            "{user:?}"
        );
        let _ = client.cancel().await;
    }

    // A second build packs the same files, byte for byte, with the same modes.
    let again = contents(&build_bundle());
    assert!(
        again == files,
        "a second build-mcpb gave different contents"
    );
}

/// The substitution above is mcpb's, not a convenient approximation.
#[test]
fn substitution_follows_mcpb() {
    let manifest = json!({
        "server": {"mcp_config": {
            "command": "${__dirname}/server/x",
            "args": ["--a=${user_config.a}", "${user_config.b}", "${user_config.c}"],
            "env": {"B": "${user_config.b}", "D": "${user_config.d}"},
            "platform_overrides": {"plan9": {"command": "never"}}
        }},
        "user_config": {"a": {"default": "A"}, "b": {"default": "B"}, "d": {}}
    });
    let cmd = claude_desktop_command(Path::new("/x"), &manifest, &[("b", "")]);
    let std = cmd.as_std();
    assert_eq!(std.get_program(), "/x/server/x");
    let args: Vec<_> = std
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    assert_eq!(args, ["--a=A", "${user_config.b}", "${user_config.c}"]);
    let env: Map<String, Value> = std
        .get_envs()
        .filter_map(|(k, v)| {
            Some((
                k.to_string_lossy().into_owned(),
                json!(v?.to_string_lossy()),
            ))
        })
        .collect();
    assert_eq!(
        Value::Object(env),
        json!({"B": "", "D": "${user_config.d}"})
    );
}
