//! Settings at their extremes: a proxy in the environment and a base URL
//! that misses the endpoint. The real binary over stdio, against fakes on
//! 127.0.0.1; every case ends with the server still answering. (Waits too
//! large to add up are in `faults`; a title-less page in `answer`; a key
//! short enough to look like ordinary text in `hienergy` and `canary`.)

use crate::common::{TEST_KEY, command};
use crate::fault_kit::{
    Conn, Proc, TcpFake, contact, created_body, http_201, tool_contact, tool_error,
};
use serde_json::{Value, json};
use tokio::process::Command;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const PROXY_VARS: [&str; 6] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// `command`, then every proxy variable pointing at `proxy` and nothing
/// exempted from it (`command` clears them; set after it).
fn behind_proxy(base: &str, proxy: &str, args: &[&str]) -> Command {
    let mut cmd = command(base, Some(TEST_KEY), args);
    cmd.env_remove("NO_PROXY").env_remove("no_proxy");
    for var in PROXY_VARS {
        cmd.env(var, proxy);
    }
    cmd
}

/// A proxy that refuses whatever it is asked (502), counting connections.
async fn refusing_proxy() -> TcpFake {
    TcpFake::start(|mut conn: Conn| async move {
        if conn.read_request().await.is_some() {
            let _ = conn
                .write(
                    b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
        }
    })
    .await
}

async fn finish(mut proc: Proc) -> String {
    proc.ping().await;
    for line in &proc.transcript {
        assert!(!line.contains(TEST_KEY), "the key is on stdout: {line}");
    }
    let stderr = proc.finish_ok().await;
    assert!(!stderr.contains(TEST_KEY), "the key is in stderr");
    stderr
}

fn message(error: &Value) -> &str {
    error["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_loopback_base_url_never_goes_through_a_proxy() {
    let proxy = refusing_proxy().await;
    let upstream = TcpFake::start(|mut conn: Conn| async move {
        if conn.read_request().await.is_some() {
            let _ = conn.write(&http_201(&created_body("direct"))).await;
        }
    })
    .await;
    let port = upstream.addr.port();
    for base in [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
    ] {
        let cmd = behind_proxy(&base, &proxy.http_url(), &["--max-retries", "0"]);
        let mut proc = Proc::start(cmd).await;
        let result = proc.call(contact("direct")).await;
        assert_eq!(tool_contact(&result)["id"], 7, "{base}: {result}");
        let stderr = finish(proc).await;
        assert!(stderr.contains("HiEnergy created the contact"), "{stderr}");
        // The proxy would have seen the plain-text request, key and all.
        assert_eq!(proxy.connections(), 0, "{base} went through the proxy");
    }
    assert_eq!(upstream.requests(), 2);
}

#[tokio::test]
async fn a_remote_https_base_url_still_honours_the_proxy() {
    // A host the connector refuses before any lookup (a 70-character label):
    // if the proxy were bypassed no packet would leave, and the proxy would
    // count nothing.
    let proxy = refusing_proxy().await;
    let base = format!("https://{}.invalid", "a".repeat(70));
    let cmd = behind_proxy(&base, &proxy.http_url(), &["--max-retries", "0"]);
    let mut proc = Proc::start(cmd).await;
    let error = tool_error(&proc.call(contact("tunnel")).await);
    assert_eq!(error["kind"], "network", "{error}");
    assert_eq!(error["created"], "no", "{error}");
    finish(proc).await;
    // One CONNECT, refused: the key never left the TLS tunnel it never got.
    assert_eq!((proxy.connections(), proxy.requests()), (1, 1));
}

#[tokio::test]
async fn a_404_from_a_wrong_base_url_blames_the_base_url_not_the_advertiser() {
    // A base URL with a prefix the API does not have: the router answers
    // every path with its own JSON 404.
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(404).set_body_json(
                json!({"error": "No route matches [POST] \"/v9/api/v1/contacts/add\""}),
            ),
        )
        .mount(&mock)
        .await;
    let base = format!("{}/v9/", mock.uri());
    let mut proc = Proc::start(command(&base, Some(TEST_KEY), &[])).await;
    let error = tool_error(&proc.call(contact("route")).await);
    assert_eq!(error["kind"], "bad_response", "{error}");
    assert_eq!(error["created"], "no", "{error}");
    assert_eq!(error["status"], 404, "{error}");
    assert_eq!(error["retryable"], false, "{error}");
    let said = message(&error);
    assert!(said.contains("HIENERGY_BASE_URL"), "{said}");
    assert!(said.contains("POST /v9/api/v1/contacts/add"), "{said}");
    assert!(!said.contains("advertiser_id"), "{said}");
    assert_eq!(mock.received_requests().await.map_or(0, |r| r.len()), 1);
    finish(proc).await;
}
