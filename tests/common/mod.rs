//! Shared harness for the integration tests: the real binary, spawned as an
//! MCP client would spawn it, talking to a fake HiEnergy on 127.0.0.1.
#![allow(dead_code)]

use std::process::Stdio;
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, CallToolResult, JsonObject};
use rmcp::service::{ClientLifecycleMode, RunningService, serve_client_with_lifecycle};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient};
use serde_json::{Value, json};
use tokio::process::Command;

pub const BIN: &str = env!("CARGO_BIN_EXE_hienergy-mcp");
/// A recognisable key: tests assert it never shows up where it must not.
pub const TEST_KEY: &str = "hk_test_CANARY_5f1e9d2c7b";
pub use crate::kept_fake::{CONTACTS_LIST_PATH, CONTACTS_PATH};

/// How long any single answer may take before a test gives up on it.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

/// The binary, configured the way a client config would configure it.
/// `key: None` leaves every key variable unset.
pub fn command(base_url: &str, key: Option<&str>, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("HIENERGY_BASE_URL", base_url)
        .env_remove("HIENERGY_API_KEY")
        .env_remove("HI_ENERGY_API_KEY")
        .env_remove("HIENERGY_API_KEY_FILE")
        .env_remove("HIENERGY_LOG_LEVEL")
        // The fake HiEnergy is on loopback; a proxy from the environment
        // must not get in the way.
        .env("NO_PROXY", "*")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("all_proxy")
        .env("RUST_LOG", "hienergy_mcp=debug,warn")
        .kill_on_drop(true);
    if let Some(key) = key {
        cmd.env("HIENERGY_API_KEY", key);
    }
    cmd
}

pub type Client = RunningService<RoleClient, ()>;

/// rmcp's own client over the child's stdio. stderr is discarded (logs).
pub async fn sdk_client(cmd: Command) -> Client {
    sdk_client_with((), cmd).await
}

/// The same, with a handler of the test's own for what the server sends.
pub async fn sdk_client_with<H: ClientHandler>(
    handler: H,
    cmd: Command,
) -> RunningService<RoleClient, H> {
    sdk_client_in(handler, cmd, ClientLifecycleMode::Initialize).await
}

/// The same, starting the session as `lifecycle` says: `initialize`, or
/// 2026-07-28's `server/discover` with metadata on every request.
pub async fn sdk_client_in<H: ClientHandler>(
    handler: H,
    cmd: Command,
    lifecycle: ClientLifecycleMode,
) -> RunningService<RoleClient, H> {
    let (transport, _stderr) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {BIN}: {e}"));
    let started = serve_client_with_lifecycle(handler, transport, lifecycle);
    match tokio::time::timeout(ANSWER_TIMEOUT, started).await {
        Ok(Ok(client)) => client,
        Ok(Err(e)) => panic!("session start failed: {e}"),
        Err(_) => panic!("session start timed out"),
    }
}

/// The listed tool of this name; tests assume neither one tool nor an order.
pub fn tool_named<'a>(tools: &'a [rmcp::model::Tool], name: &str) -> &'a rmcp::model::Tool {
    tools
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no tool {name} in tools/list"))
}

pub fn object(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

pub async fn call(client: &Client, arguments: Value) -> CallToolResult {
    call_tool(client, "add_contact", arguments).await
}

/// The add tools look for the contact before each POST unless told
/// `if_exists: "add"`. The tests of the POST path (its faults, retries,
/// request counts) say so, here, so that every request they count is the
/// POST's; the look itself is tested in `existing`, whose calls say
/// `"if_exists": "skip"`.
pub fn post_only(name: &str, mut arguments: Value) -> Value {
    if matches!(name, "add_contact" | "add_contacts")
        && let Value::Object(map) = &mut arguments
        && !map.contains_key("if_exists")
    {
        map.insert("if_exists".into(), json!("add"));
    }
    arguments
}

pub async fn call_tool<H: ClientHandler>(
    client: &RunningService<RoleClient, H>,
    name: &'static str,
    arguments: Value,
) -> CallToolResult {
    let params =
        CallToolRequestParams::new(name).with_arguments(object(post_only(name, arguments)));
    tokio::time::timeout(ANSWER_TIMEOUT, client.call_tool(params))
        .await
        .unwrap_or_else(|_| panic!("tools/call timed out"))
        .unwrap_or_else(|e| panic!("tools/call failed at the protocol level: {e}"))
}

/// The `error` object of a failed call, after checking it is flagged.
pub fn error_of(result: &CallToolResult) -> Value {
    assert_eq!(result.is_error, Some(true), "expected an error: {result:?}");
    let structured = result
        .structured_content
        .clone()
        .unwrap_or_else(|| panic!("no structuredContent: {result:?}"));
    structured["error"].clone()
}

pub fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Mounts one answer for every POST to the contacts endpoint.
pub async fn mount_answer(server: &wiremock::MockServer, response: wiremock::ResponseTemplate) {
    use wiremock::matchers::{method, path};
    wiremock::Mock::given(method("POST"))
        .and(path(CONTACTS_PATH))
        .respond_with(response)
        .mount(server)
        .await;
}

/// How many POSTs the fake HiEnergy has received (the look for an existing
/// contact before each is a GET, counted apart by [`requests_to`]).
pub async fn posts(server: &wiremock::MockServer) -> usize {
    server.received_requests().await.map_or(0, |r| {
        r.iter().filter(|r| r.method.as_str() == "POST").count()
    })
}

pub fn minimal_contact() -> Value {
    json!({"advertiser_id": 42, "email": "jane.doe@example.com"})
}

/// HiEnergy's read endpoints, as the fake serves them.
pub const SEARCH_PATH: &str = "/api/v1/search";
pub const ADVERTISERS_PATH: &str = "/api/v1/advertisers";

/// A fake HiEnergy's reads, in every documented shape:
/// - `GET /advertisers?domain=aloyoga.com`: one brand with two records
///   (42 on Awin, 43 on CJ), JSON:API rows with string ids;
///   `domain=lolewomen.com`: one record (7, Lole, on Awin), flat;
///   `domain=nothing.com`: no rows.
/// - universal search: `q=Alo Yoga` flat rows with integer ids and `title`;
///   `q=nothing.com` no match; `q=down` the index down
///   (`searchkick_available: false`); `q=boom` and contacts `q=boom` a 503.
/// - contacts: `email=jane.doe@aloyoga.com` in the `{"contacts": {"data"}}`
///   wrapper with string ids; `email=hidden@aloyoga.com` a contact rated
///   below 1, so not listed; `advertiser_id=43` flat rows with integer ids.
pub async fn mount_reads(server: &wiremock::MockServer) {
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, ResponseTemplate};
    let ok = |body: Value| ResponseTemplate::new(200).set_body_json(body);
    let record = |id: &str, network: &str| {
        json!({"id": id, "type": "advertiser", "attributes": {
            "name": "Alo Yoga", "domain": "aloyoga.com", "network_name": network,
            "publisher_name": "HiEnergy", "status": "approved"}})
    };
    let meta = json!({"current_page": 1, "next_page": null, "per_page": 10});
    let answers = [
        (
            ADVERTISERS_PATH,
            ("domain", "aloyoga.com"),
            ok(json!({"data": [record("42", "Awin"), record("43", "CJ")], "meta": meta})),
        ),
        (
            ADVERTISERS_PATH,
            ("domain", "lolewomen.com"),
            ok(json!({"data": [{"id": 7, "name": "Lole", "domain": "lolewomen.com", "network_name": "Awin"}], "meta": meta})),
        ),
        (
            ADVERTISERS_PATH,
            ("domain", "nothing.com"),
            ok(json!({"data": [], "meta": meta})),
        ),
        (
            SEARCH_PATH,
            ("q", "Alo Yoga"),
            ok(json!({"query": "Alo Yoga", "results": {"advertisers": {"data": [
                {"id": 42, "type": "advertiser", "title": "Alo Yoga", "subtitle": "Awin · HiEnergy", "slug": "alo-yoga", "domain": "aloyoga.com", "status": "approved"},
                {"id": 43, "type": "advertiser", "title": "Alo Yoga", "subtitle": "CJ · HiEnergy", "slug": "alo-yoga-cj", "domain": "aloyoga.com", "status": "approved"}
            ], "total": 2}}, "meta": {"per_type_limit": 10, "types": ["advertisers"], "searchkick_available": true}})),
        ),
        (
            SEARCH_PATH,
            ("q", "nothing.com"),
            ok(json!({"query": "nothing.com", "results": {"advertisers": {"data": [], "total": 0}}, "meta": {"searchkick_available": true}})),
        ),
        (
            SEARCH_PATH,
            ("q", "down"),
            ok(json!({"query": "down", "results": {"advertisers": {"data": [], "total": 0}, "contacts": {"data": [], "total": 0}}, "meta": {"searchkick_available": false}})),
        ),
        (
            SEARCH_PATH,
            ("q", "boom"),
            ResponseTemplate::new(503).set_body_json(json!({"error": {"code": "unavailable", "message": "Search timed out", "request_id": "req-r"}})),
        ),
        (
            CONTACTS_LIST_PATH,
            ("email", "jane.doe@aloyoga.com"),
            ok(json!({"contacts": {"data": [{"id": "7", "type": "contact", "attributes": {
                "email": "Jane.Doe@AloYoga.com", "name": "Jane Doe", "job_title": "Affiliate Manager",
                "advertiser_id": "42", "advertiser_name": "Alo Yoga"}}]}})),
        ),
        (
            CONTACTS_LIST_PATH,
            ("email", "hidden@aloyoga.com"),
            ok(json!({"data": [], "meta": meta})),
        ),
        (
            CONTACTS_LIST_PATH,
            ("advertiser_id", "43"),
            ok(json!({"data": [
                {"id": 8, "email": "sam@aloyoga.com", "name": "Sam Lee", "advertiser_id": 43, "phone": "+1 415 555 0100"},
                {"id": 9, "email": "kim@aloyoga.com", "name": "Kim Park", "advertiser_id": "alo-yoga-cj"}
            ], "meta": meta})),
        ),
    ];
    for (at, (name, value), response) in answers {
        Mock::given(method("GET"))
            .and(path(at))
            .and(query_param(name, value))
            .respond_with(response)
            .mount(server)
            .await;
    }
}

/// The requests the fake HiEnergy received at `at` (a path), any method.
pub async fn requests_to(server: &wiremock::MockServer, at: &str) -> Vec<wiremock::Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == at)
        .collect()
}

pub use crate::kept_fake::mount_kept;
