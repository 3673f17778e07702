//! The key-leak canary: the binary runs with a recognisable key and
//! RUST_LOG=trace, every success and failure path is driven (including an
//! upstream that quotes the key back), and the key must appear nowhere in
//! stdout, stderr or any result.

use std::time::Duration;

use crate::common::{CONTACTS_PATH, TEST_KEY, command};
use crate::fault_kit::{
    Conn, Proc, TcpFake, closed_port, contact, created_body, http_201, tool_contact, tool_error,
};
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn traced(base: &str, args: &[&str]) -> tokio::process::Command {
    let mut cmd = command(base, Some(TEST_KEY), args);
    cmd.env("RUST_LOG", "trace");
    cmd
}

/// Ends a session and checks that nothing it printed carries the key.
async fn assert_clean(proc: Proc, what: &str) -> String {
    let transcript = proc.transcript.clone();
    let (status, stderr) = proc.finish().await;
    assert!(status.success(), "{what}: exit {status}");
    for line in &transcript {
        assert!(
            !line.contains(TEST_KEY),
            "{what}: the key is on stdout: {line}"
        );
    }
    assert!(
        !stderr.contains(TEST_KEY),
        "{what}: the key is in stderr:\n{}",
        context_of(&stderr, TEST_KEY)
    );
    // Otherwise the canary proves nothing.
    assert!(stderr.contains("TRACE"), "{what}: trace logging was not on");
    stderr
}

fn context_of(text: &str, needle: &str) -> String {
    text.lines()
        .filter(|l| l.contains(needle))
        .take(5)
        .collect::<Vec<_>>()
        .join("\n")
}

fn for_email(tag: &str) -> wiremock::matchers::BodyPartialJsonMatcher {
    body_partial_json(json!({"contact": {"email": format!("{tag}@example.com")}}))
}

fn assert_result_clean(tag: &str, result: &Value) {
    assert!(
        !result.to_string().contains(TEST_KEY),
        "{tag}: the key is in the result: {result}"
    );
}

#[tokio::test]
async fn key_never_leaks_on_any_http_answer() {
    let echo = format!("Invalid API key {TEST_KEY}");
    let cases: Vec<(&str, ResponseTemplate)> = vec![
        (
            "ok",
            ResponseTemplate::new(201).set_body_json(created_body("ok")),
        ),
        (
            "okecho",
            ResponseTemplate::new(201).set_body_json(json!({
                "data": {"id": 8, "email": "okecho@example.com", "created_by_key": TEST_KEY,
                         "meta": {"keys": [TEST_KEY], TEST_KEY: true}}
            })),
        ),
        (
            "unauth",
            ResponseTemplate::new(401).set_body_json(
                json!({"error": {"code": "unauthorized", "message": echo, "request_id": TEST_KEY}}),
            ),
        ),
        (
            "forbidden",
            ResponseTemplate::new(403)
                .set_body_json(json!({"error": {"message": "Admin API key required"}})),
        ),
        (
            "noadv",
            ResponseTemplate::new(404).set_body_json(json!({"error": "Advertiser not found"})),
        ),
        (
            "invalid",
            ResponseTemplate::new(422).set_body_json(json!({"error": {
                "code": TEST_KEY, "message": "Validation failed",
                "details": {"email": ["has already been taken"], TEST_KEY: [echo]}
            }})),
        ),
        (
            "ratelimited",
            ResponseTemplate::new(429).insert_header("retry-after", "60"),
        ),
        (
            "html500",
            ResponseTemplate::new(500).set_body_raw(
                format!("<html><head><title>Error for {TEST_KEY}</title></head></html>"),
                "text/html",
            ),
        ),
        (
            "text502",
            ResponseTemplate::new(502)
                .insert_header("x-request-id", TEST_KEY)
                .set_body_string(format!("bad gateway; X-Api-Key: {TEST_KEY}")),
        ),
        (
            "redirect",
            ResponseTemplate::new(302).insert_header(
                "location",
                format!("https://login.example/?api_key={TEST_KEY}").as_str(),
            ),
        ),
        (
            "notjson",
            ResponseTemplate::new(200).set_body_string(format!("OK {TEST_KEY}")),
        ),
        (
            "htmlok",
            ResponseTemplate::new(200).set_body_raw(
                format!("<html><title>{TEST_KEY}</title></html>"),
                "text/html",
            ),
        ),
        ("empty", ResponseTemplate::new(201)),
        (
            "dataarray",
            ResponseTemplate::new(201).set_body_json(json!({"data": [TEST_KEY]})),
        ),
        (
            "slow",
            ResponseTemplate::new(201)
                .set_body_json(created_body("slow"))
                .set_delay(Duration::from_secs(30)),
        ),
    ];
    let mock = MockServer::start().await;
    for (tag, template) in &cases {
        Mock::given(method("POST"))
            .and(path(CONTACTS_PATH))
            .and(for_email(tag))
            .respond_with(template.clone())
            .mount(&mock)
            .await;
    }
    let mut proc = Proc::start(traced(&mock.uri(), &[])).await;
    proc.request("tools/list", json!({})).await;
    for (tag, _) in &cases {
        if *tag == "slow" {
            continue;
        }
        let result = proc.call(contact(tag)).await;
        assert_result_clean(tag, &result);
        let ok = result["isError"] != true;
        assert_eq!(ok, tag.starts_with("ok"), "{tag}: {result}");
    }
    // A replay of the success, a dry run, invalid arguments, an unknown tool.
    let replay = proc.call(contact("ok")).await;
    assert_eq!(replay["structuredContent"]["replayed"], true, "{replay}");
    let mut dry = contact("dry");
    dry["dry_run"] = json!(true);
    let dry = proc.call(dry).await;
    assert_eq!(
        dry["structuredContent"]["request"]["headers"]["X-Api-Key"],
        "[redacted]"
    );
    let invalid = proc
        .call(json!({"advertiser_id": "x", "email": "not-an-email"}))
        .await;
    assert_eq!(tool_error(&invalid)["kind"], "invalid_arguments");
    let unknown = proc
        .request("tools/call", json!({"name": "nope", "arguments": {}}))
        .await;
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
    // A cancelled call.
    let id = proc.start_call(contact("slow")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    proc.send(
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                     "params": {"requestId": id, "reason": "canary"}}),
    )
    .await;
    proc.ping().await;

    // Sanity: the key did go where it belongs.
    let sent = mock.received_requests().await.unwrap_or_default();
    assert!(!sent.is_empty());
    assert!(
        sent.iter()
            .all(|r| r.headers.get("x-api-key").is_some_and(|v| v == TEST_KEY))
    );
    assert_clean(proc, "http answers").await;
}

#[tokio::test]
async fn key_never_leaks_on_any_transport_failure() {
    // One fake, whose behaviour depends on which contact it was sent.
    let fake = TcpFake::start(|mut conn: Conn| async move {
        let Some(request) = conn.read_request().await else {
            return;
        };
        let request = String::from_utf8_lossy(&request).into_owned();
        if request.contains("hang@") {
            let _ = conn.closed_within(Duration::from_secs(30)).await;
        } else if request.contains("reset@") {
            let _ = conn.stream.set_zero_linger();
        } else if request.contains("trickle@") {
            let _ = conn
                .write(b"HTTP/1.1 201 Created\r\nContent-Length: 50\r\n\r\n{")
                .await;
            let _ = conn.closed_within(Duration::from_secs(30)).await;
        } else if request.contains("ok@") {
            let _ = conn.write(&http_201(&created_body("ok"))).await;
        }
        // Anything else: closed without an answer.
    })
    .await;
    // The key from a file this time, the other way to configure it.
    let dir = std::env::temp_dir().join(format!("hienergy-canary-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let key_file = dir.join("key");
    std::fs::write(&key_file, format!("{TEST_KEY}\n")).expect("write key");
    let key_path = key_file.to_string_lossy().into_owned();
    let mut cmd = traced(
        &fake.http_url(),
        &["--timeout", "1", "--api-key-file", &key_path],
    );
    cmd.env_remove("HIENERGY_API_KEY");
    let mut proc = Proc::start(cmd).await;
    for tag in ["ok", "hang", "reset", "trickle", "close"] {
        let result = proc.call(contact(tag)).await;
        assert_result_clean(tag, &result);
        if tag == "ok" {
            tool_contact(&result);
        } else {
            tool_error(&result);
        }
    }
    assert_clean(proc, "broken connections").await;
    let _ = std::fs::remove_dir_all(dir);

    // Refused.
    let mut proc = Proc::start(traced(
        &format!("http://127.0.0.1:{}", closed_port().await),
        &["--max-retries", "1"],
    ))
    .await;
    let result = proc.call(contact("refused")).await;
    assert_result_clean("refused", &result);
    assert_eq!(tool_error(&result)["kind"], "network");
    assert_clean(proc, "refused").await;

    // TLS garbage.
    let tls = TcpFake::start(|mut conn: Conn| async move {
        let mut hello = [0u8; 512];
        let _ = tokio::io::AsyncReadExt::read(&mut conn.stream, &mut hello).await;
        let _ = conn.write(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
    })
    .await;
    let mut proc = Proc::start(traced(&tls.https_url(), &["--max-retries", "0"])).await;
    let result = proc.call(contact("tls")).await;
    assert_result_clean("tls", &result);
    assert_eq!(tool_error(&result)["kind"], "network");
    assert_clean(proc, "tls").await;

    // DNS failure, local by construction (see faults.rs).
    let base = format!("https://{}.invalid", "a".repeat(70));
    let mut proc = Proc::start(traced(&base, &["--max-retries", "0"])).await;
    let result = proc.call(contact("dns")).await;
    assert_result_clean("dns", &result);
    assert_eq!(tool_error(&result)["kind"], "network");
    assert_clean(proc, "dns").await;
}

#[tokio::test]
async fn key_never_leaks_on_signals_or_start_up_errors() {
    // Stopped by a signal mid-call.
    let fake = TcpFake::start(|mut conn: Conn| async move {
        let _ = conn.read_request().await;
        let _ = conn.closed_within(Duration::from_secs(30)).await;
    })
    .await;
    let mut proc = Proc::start(traced(&fake.http_url(), &[])).await;
    proc.start_call(contact("sig")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    crate::fault_kit::signal(proc.pid(), "TERM");
    let status = proc.wait_exit(Duration::from_secs(5)).await;
    assert!(status.success(), "{status}");
    assert_clean(proc, "sigterm").await;

    // Refused at start: the message names the URL but not the key.
    let output = traced(
        "https://app.hienergy.ai",
        &["--base-url", "http://example.com"],
    )
    .stdin(std::process::Stdio::null())
    .output()
    .await
    .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains(TEST_KEY), "{stderr}");
    assert!(output.stdout.is_empty());
}
