//! Settings as clients pass them: empty values from bundles, bad values in
//! a config file the user cannot see the log of, a pasted API path, and a
//! quiet start.

use crate::common::{CONTACTS_PATH, TEST_KEY, command, posts};
use crate::fault_kit::{Proc, contact, created_fake, tool_contact, tool_error};
use serde_json::json;

/// Every setting variable, as an MCPB bundle passes an optional field the
/// user left empty.
const SETTING_VARS: [&str; 7] = [
    "HIENERGY_API_KEY_FILE",
    "HIENERGY_TIMEOUT",
    "HIENERGY_CONNECT_TIMEOUT",
    "HIENERGY_MAX_RETRIES",
    "HIENERGY_MAX_RETRY_WAIT",
    "HIENERGY_DEDUPE_WINDOW",
    "HIENERGY_LOG_LEVEL",
];

#[tokio::test]
async fn empty_settings_mean_unset() {
    let fake = created_fake().await;
    let mut cmd = command(&fake.uri(), Some(TEST_KEY), &[]);
    for var in SETTING_VARS {
        cmd.env(var, "");
    }
    let mut proc = Proc::start(cmd).await;
    let created = proc.call(contact("empty-settings")).await;
    tool_contact(&created);
    assert_eq!(posts(&fake).await, 1);
    proc.finish_ok().await;

    // An empty base URL (the bundle's optional field left empty) is the
    // default host, not an error.
    let mut cmd = command("", Some(TEST_KEY), &[]);
    cmd.env("HIENERGY_BASE_URL", "  ");
    let mut proc = Proc::start(cmd).await;
    let mut args = contact("empty-base");
    args["dry_run"] = json!(true);
    let preview = proc.call(args).await;
    assert_eq!(
        preview["structuredContent"]["request"]["url"],
        "https://app.hienergy.ai/api/v1/contacts/add",
        "{preview}"
    );
    proc.finish_ok().await;
}

/// A bad variable starts the server anyway; every call, dry runs
/// included, answers not_configured naming the variable, and nothing is
/// sent.
async fn expect_misconfigured(base_url: &str, env: &[(&str, &str)], names: &[&str]) -> String {
    let mut cmd = command(base_url, Some(TEST_KEY), &[]);
    for (var, value) in env {
        cmd.env(var, value);
    }
    let mut proc = Proc::start(cmd).await;
    for dry_run in [false, true] {
        let mut args = contact("misconfigured");
        args["dry_run"] = json!(dry_run);
        let result = proc.call(args).await;
        let error = tool_error(&result);
        assert_eq!(error["kind"], "not_configured", "{result}");
        assert_eq!(error["created"], "no", "{result}");
        let message = error["message"].as_str().unwrap_or_default();
        for name in names {
            assert!(message.contains(name), "{name} not in {message}");
        }
        assert!(
            error["hint"]
                .as_str()
                .is_some_and(|h| h.contains("settings")),
            "{error}"
        );
    }
    proc.ping().await;
    let stderr = proc.finish_ok().await;
    for name in names {
        assert!(stderr.contains(name), "{name} not logged: {stderr}");
    }
    stderr
}

#[tokio::test]
async fn a_bad_variable_is_answered_not_configured_instead_of_an_exit() {
    let fake = created_fake().await;
    expect_misconfigured(
        &fake.uri(),
        &[("HIENERGY_TIMEOUT", "soon"), ("HIENERGY_MAX_RETRIES", "-1")],
        &["HIENERGY_TIMEOUT", "HIENERGY_MAX_RETRIES"],
    )
    .await;
    expect_misconfigured(
        &fake.uri(),
        &[("HIENERGY_API_KEY_FILE", "/nonexistent/hienergy.key")],
        &["/nonexistent/hienergy.key"],
    )
    .await;
    // Plain http to a public host is still never used.
    expect_misconfigured(
        "http://example.com",
        &[],
        &["HIENERGY_BASE_URL", "clear text"],
    )
    .await;
    assert_eq!(posts(&fake).await, 0);
}

#[tokio::test]
async fn a_password_in_the_base_url_is_never_shown() {
    let base = "http://user:S3cret@127.0.0.1:1";
    let stderr = expect_misconfigured(base, &[], &["HIENERGY_BASE_URL"]).await;
    assert!(!stderr.contains("S3cret"), "{stderr}");
    // On the command line it stops the program, still without the password.
    let output = command("", Some(TEST_KEY), &["--base-url", base])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("credentials"), "{stderr}");
    assert!(!stderr.contains("S3cret"), "{stderr}");
}

#[tokio::test]
async fn a_pasted_api_path_in_the_base_url_is_stripped() {
    let fake = created_fake().await;
    let mut proc = Proc::start(command(
        &format!("{}/api/v1/", fake.uri()),
        Some(TEST_KEY),
        &[],
    ))
    .await;
    tool_contact(&proc.call(contact("pasted-path")).await);
    let received = fake.received_requests().await.unwrap_or_default();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].url.path(), CONTACTS_PATH);
    let stderr = proc.finish_ok().await;
    assert!(stderr.contains("/api/v1"), "{stderr}");
}

/// Claude Code shows every stderr line as an error: a normal session with
/// a key says nothing; a missing key still warns.
#[tokio::test]
async fn a_normal_start_is_quiet_and_a_missing_key_still_warns() {
    let fake = created_fake().await;
    for (key, quiet) in [(Some(TEST_KEY), true), (None, false)] {
        let mut cmd = command(&fake.uri(), key, &[]);
        cmd.env_remove("RUST_LOG");
        let mut proc = Proc::start(cmd).await;
        let tools = proc.request("tools/list", json!({})).await;
        assert!(tools["result"]["tools"].is_array(), "{tools}");
        let mut args = contact("quiet");
        args["dry_run"] = json!(true);
        let _ = proc.call(args).await;
        if key.is_some() {
            tool_contact(&proc.call(contact("quiet")).await);
        }
        let stderr = proc.finish_ok().await;
        if quiet {
            assert_eq!(stderr, "", "a normal start printed to stderr");
        } else {
            assert!(stderr.contains("HIENERGY_API_KEY"), "{stderr}");
        }
    }
}

/// Unlike a bad variable, a bad flag is the user's own typing and stops
/// the program: plain HTTP to a public host, said on stderr, never stdout.
#[tokio::test]
async fn a_bad_flag_still_stops_the_program() {
    for flags in [
        ["--base-url", "http://example.com"],
        ["--base-url", "http://example.com/api/v1"],
    ] {
        let output = command("https://app.hienergy.ai", Some(TEST_KEY), &flags)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .expect("run");
        assert_eq!(output.status.code(), Some(2), "{flags:?}");
        assert!(output.stdout.is_empty(), "something on stdout");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("http://example.com"), "{stderr}");
        assert!(stderr.contains("https://"), "{stderr}");
        assert!(stderr.contains("clear text"), "{stderr}");
    }
}

/// The HTTP client for an https:// base URL (trust roots and all, about
/// ten milliseconds) is built in the background once the session is up,
/// before any call; without a key no call can be sent, so nothing is built.
#[tokio::test]
async fn the_https_client_is_built_before_the_first_call_when_a_key_is_set() {
    const BUILT: &str = "HTTP client built";
    // Nothing listens there, and nothing is sent: no call is made.
    let base = "https://127.0.0.1:9";
    let proc = Proc::start(command(base, Some(TEST_KEY), &[])).await;
    let waited = std::time::Instant::now();
    while !proc.stderr_text().contains(BUILT) && waited.elapsed() < crate::common::ANSWER_TIMEOUT {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let stderr = proc.finish_ok().await;
    assert!(stderr.contains(BUILT), "not built without a call: {stderr}");
    assert!(stderr.contains("https=true"), "{stderr}");

    let mut proc = Proc::start(command(base, None, &[])).await;
    let tools = proc.request("tools/list", json!({})).await;
    assert!(tools["result"]["tools"].is_array(), "{tools}");
    let mut args = contact("no-key");
    args["dry_run"] = json!(true);
    let _ = proc.call(args).await;
    let stderr = proc.finish_ok().await;
    assert!(!stderr.contains(BUILT), "built without a key: {stderr}");
}
