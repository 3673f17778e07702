//! The built binary driven by the official TypeScript SDK client
//! (`@modelcontextprotocol/sdk`, tests/ts_client), which Inspector, Gemini
//! CLI and opencode are built on. Unlike rmcp's client it validates every
//! `structuredContent` against the tool's outputSchema, error results
//! included, and throws when one does not match: each call here must come
//! back as a result, never as a thrown error.
//!
//! Needs Node.js and npm. `.ci/run` installs the SDK (`npm ci` in
//! tests/ts_client); run by hand, this test installs it itself on first use.
//! Set HIENERGY_SKIP_NODE_TESTS=1 to skip it on a machine without Node.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{BIN, TEST_KEY, mount_kept, mount_reads};
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ts_client")
}

/// Node with the SDK installed, or `None` when the test is skipped on
/// purpose. A missing Node is a failure unless skipping was asked for.
fn node_ready() -> Option<()> {
    if std::env::var_os("HIENERGY_SKIP_NODE_TESTS").is_some_and(|v| v == "1") {
        eprintln!("skipped: HIENERGY_SKIP_NODE_TESTS=1");
        return None;
    }
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "Node.js is needed for the TypeScript SDK test (or set HIENERGY_SKIP_NODE_TESTS=1)"
    );
    let dir = client_dir();
    if !dir.join("node_modules/@modelcontextprotocol/sdk").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .unwrap_or_else(|e| panic!("npm ci in {}: {e}", dir.display()));
        assert!(status.success(), "npm ci in {} failed", dir.display());
    }
    Some(())
}

fn email(tag: &str) -> String {
    format!("{tag}@example.com")
}

async fn answer_for(mock: &MockServer, tag: &str, response: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"contact": {"email": email(tag)}})))
        .respond_with(response)
        .mount(mock)
        .await;
}

fn envelope(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message, "request_id": "req-ts", "details": null}})
}

fn call(label: &str, arguments: Value) -> Value {
    json!({"label": label, "tool": "add_contact", "arguments": arguments})
}

/// A call of a read tool: `found:` labels expect a success, `read:<kind>`
/// an error of that kind.
fn read(label: &str, tool: &str, arguments: Value) -> Value {
    json!({"label": label, "tool": tool, "arguments": arguments})
}

fn contact(tag: &str) -> Value {
    json!({"advertiser_id": 42, "email": email(tag), "name": "Jane Doe"})
}

#[tokio::test]
async fn the_typescript_sdk_accepts_every_result() {
    let Some(()) = node_ready() else { return };
    let mock = MockServer::start().await;
    answer_for(
        &mock,
        "s401",
        ResponseTemplate::new(401).set_body_json(envelope("invalid_api_key", "Invalid API key")),
    )
    .await;
    answer_for(
        &mock,
        "s403",
        ResponseTemplate::new(403).set_body_json(envelope("forbidden", "Admin API key required")),
    )
    .await;
    answer_for(
        &mock,
        "s404",
        ResponseTemplate::new(404).set_body_json(envelope("not_found", "Advertiser not found")),
    )
    .await;
    answer_for(
        &mock,
        "s500",
        ResponseTemplate::new(500).set_body_string("<html><title>Oops</title></html>"),
    )
    .await;
    for tag in ["ok", "gemini", "chosen", "list1", "list2"] {
        answer_for(
            &mock,
            tag,
            ResponseTemplate::new(201).set_body_json(
                json!({"data": {"id": 7, "advertiser_id": 42, "email": email(tag)}}),
            ),
        )
        .await;
    }
    mount_reads(&mock).await;
    let base_env =
        json!({"HIENERGY_BASE_URL": mock.uri(), "HIENERGY_API_KEY": TEST_KEY, "NO_PROXY": "*"});
    let mut gemini = contact("gemini");
    gemini["wait_for_previous"] = json!(true);
    let mut dry = contact("dry");
    dry["dry_run"] = json!(true);
    // The look for an existing contact: one already listed, and POSTs that
    // time out, kept (found by the lookup) or not.
    let jane = json!({"advertiser_id": 42, "email": "jane.doe@aloyoga.com"});
    let mut jane_dry = jane.clone();
    jane_dry["dry_run"] = json!(true);
    let jane_list = json!({"label": "ok:list_existing", "tool": "add_contacts", "arguments": {"advertiser_id": 42, "contacts": [{"email": "jane.doe@aloyoga.com"}, {"email": "hidden@aloyoga.com"}], "dry_run": true}});
    let jane_list_real = json!({"label": "ok:list_existing_real", "tool": "add_contacts", "arguments": {"advertiser_id": 42, "contacts": [{"email": "jane.doe@aloyoga.com"}]}});
    let kept = MockServer::start().await;
    mount_kept(&kept, std::time::Duration::from_secs(5), true).await;
    let lost = MockServer::start().await;
    mount_kept(&lost, std::time::Duration::from_secs(5), false).await;
    let slow_env = |server: &MockServer| {
        json!({"HIENERGY_BASE_URL": server.uri(), "HIENERGY_API_KEY": TEST_KEY, "NO_PROXY": "*",
               "HIENERGY_TIMEOUT": "1", "HIENERGY_MAX_RETRIES": "0"})
    };
    let mut as_string = contact("ok");
    as_string["advertiser_id"] = json!("42");
    let spec = json!({
        "command": BIN,
        "sessions": [
            {"env": base_env, "calls": [
                call("unauthorized", contact("s401")),
                call("forbidden", contact("s403")),
                call("advertiser_not_found", contact("s404")),
                call("upstream_error", contact("s500")),
                call("invalid_arguments", json!({"advertiser_id": 0, "email": "nope", "phone_number": "1"})),
                call("created", contact("ok")),
                call("replayed", as_string),
                call("dry_run", dry),
                call("gemini_wait_for_previous", gemini),
                call("advertiser_ambiguous", json!({"advertiser": "Alo Yoga", "email": email("x")})),
                read("found:two_records", "search_advertisers", json!({"query": "https://www.aloyoga.com"})),
                read("found:by_name", "search_advertisers", json!({"query": "Alo Yoga", "limit": 25})),
                read("found:no_match", "search_advertisers", json!({"query": "nothing.com"})),
                read("found:search_down", "search_advertisers", json!({"query": "down"})),
                read("read:upstream_error", "search_advertisers", json!({"query": "boom"})),
                read("read:invalid_arguments", "search_advertisers", json!({"query": " ", "limit": 99})),
                read("found:contact", "search_contacts", json!({"email": "jane.doe@aloyoga.com", "advertiser_id": 42})),
                read("found:hidden", "search_contacts", json!({"email": "hidden@aloyoga.com"})),
                read("found:by_advertiser", "search_contacts", json!({"advertiser_id": 43})),
                read("read:invalid_arguments", "search_contacts", json!({})),
            ]},
            {"env": base_env, "calls": [
                call("existing", jane),
                call("ok:dry_existing", jane_dry),
                jane_list,
                jane_list_real,
            ]},
            {"env": slow_env(&kept), "calls": [
                call("ok:confirmed_by_lookup", contact("kept")),
                json!({"label": "ok:list_confirmed_by_lookup", "tool": "add_contacts", "arguments": {"contacts": [contact("kept2")]}}),
            ]},
            {"env": slow_env(&lost), "calls": [
                call("timeout", contact("lost")),
            ]},
            {"env": {"HIENERGY_BASE_URL": mock.uri(), "HIENERGY_TIMEOUT": ""}, "calls": [
                call("not_configured", contact("ok")),
            ]},
            {"env": {"HIENERGY_BASE_URL": "http://example.com", "HIENERGY_API_KEY": TEST_KEY}, "calls": [
                call("bad_setting", contact("ok")),
            ]},
            // The SDK validates the elicitation request's schema, then
            // the user picks the second record.
            {"env": base_env, "elicit": {"pick": 1}, "calls": [
                call("chosen", json!({"advertiser": "Alo Yoga", "email": email("chosen")})),
                read("chosen_list", "add_contacts", json!({"advertiser": "Alo Yoga", "contacts": [{"email": email("list1")}, {"email": email("list2")}]})),
            ]},
        ]
    });
    let spec_path =
        std::env::temp_dir().join(format!("hienergy-ts-spec-{}.json", std::process::id()));
    std::fs::write(&spec_path, spec.to_string()).unwrap_or_else(|e| panic!("write spec: {e}"));
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(client_dir().join("client.mjs"))
            .arg(&spec_path)
            .output()
    })
    .await
    .unwrap_or_else(|e| panic!("join: {e}"))
    .unwrap_or_else(|e| panic!("node: {e}"));
    assert!(
        output.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "report is not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    let sessions = report["sessions"].as_array().cloned().unwrap_or_default();
    assert_eq!(sessions.len(), 7, "{report}");
    let mut calls = Vec::new();
    for session in &sessions {
        assert!(session.get("failed").is_none(), "session failed: {session}");
        let tools = session["tools"].as_array().cloned().unwrap_or_default();
        for name in hienergy_mcp::tools::names() {
            assert!(
                tools
                    .iter()
                    .any(|t| t["name"] == name && t["hasOutputSchema"] == true),
                "{name}: {session}"
            );
        }
        calls.extend(session["calls"].as_array().cloned().unwrap_or_default());
    }
    assert_eq!(calls.len(), 31, "{report}");
    for call in &calls {
        let label = call["label"].as_str().unwrap_or_default();
        assert!(
            call.get("thrown").is_none(),
            "{label}: the SDK threw instead of returning the result: {}",
            call["thrown"]
        );
        let structured = &call["structuredContent"];
        let expected_kind = match label {
            "created"
            | "replayed"
            | "dry_run"
            | "gemini_wait_for_previous"
            | "existing"
            | "chosen"
            | "chosen_list" => None,
            found if found.starts_with("found:") || found.starts_with("ok:") => None,
            "bad_setting" => Some("not_configured"),
            kind => Some(kind.trim_start_matches("read:")),
        };
        match expected_kind {
            Some(kind) => {
                assert_eq!(call["isError"], true, "{label}: {call}");
                assert_eq!(structured["error"]["kind"], kind, "{label}: {call}");
                assert!(structured["error"]["hint"].is_string(), "{label}: {call}");
            }
            None => assert_eq!(call["isError"], false, "{label}: {call}"),
        }
    }
    let by_label = |label: &str| {
        calls
            .iter()
            .find(|c| c["label"] == label)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(by_label("replayed")["structuredContent"]["replayed"], true);
    assert_eq!(by_label("existing")["structuredContent"]["existing"], true);
    assert_eq!(
        by_label("ok:dry_existing")["structuredContent"]["existing"],
        true
    );
    assert_eq!(
        by_label("ok:list_existing")["structuredContent"]["results"][1]["existing"],
        false
    );
    assert_eq!(
        by_label("ok:list_existing_real")["structuredContent"]["summary"]["existing"],
        1
    );
    assert!(by_label("created")["structuredContent"]["existing_check"].is_string());
    assert_eq!(
        by_label("ok:confirmed_by_lookup")["structuredContent"]["confirmed_by_lookup"],
        true
    );
    assert_eq!(
        by_label("ok:list_confirmed_by_lookup")["structuredContent"]["results"][0]["confirmed_by_lookup"],
        true
    );
    assert_eq!(
        by_label("timeout")["structuredContent"]["error"]["created"],
        "unknown"
    );
    assert_eq!(by_label("dry_run")["structuredContent"]["dry_run"], true);
    let records = &by_label("found:two_records")["structuredContent"]["advertisers"];
    assert_eq!(
        (records[0]["id"].clone(), records[1]["id"].clone()),
        (json!(42), json!(43))
    );
    assert_eq!(
        by_label("found:search_down")["structuredContent"]["search_available"],
        false
    );
    assert_eq!(
        by_label("found:contact")["structuredContent"]["contacts"][0]["id"],
        7
    );
    assert_eq!(
        by_label("gemini_wait_for_previous")["structuredContent"]["contact"]["id"],
        7
    );
    assert_eq!(
        by_label("chosen")["structuredContent"]["advertiser"]["id"],
        43
    );
    let elicited = sessions[6]["elicited"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    // One question per call: the list's name is asked about once.
    assert_eq!(elicited.len(), 2, "{report}");
    assert_eq!(
        elicited[0]["requestedSchema"]["properties"]["advertiser"]["enum"][1],
        "Alo Yoga (aloyoga.com) on CJ, #43"
    );
}
