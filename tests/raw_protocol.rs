//! The protocol spoken by hand, with no SDK in between: every line the
//! server writes must be JSON-RPC, malformed input must never end the
//! session, calls run side by side, cancellation reaches the HTTP request,
//! and the process leaves promptly and cleanly when asked.

mod common;
mod fault_kit;

use std::time::{Duration, Instant};

use common::{CONTACTS_PATH, TEST_KEY, command};
use fault_kit::{Conn, Proc, TcpFake, contact, created_body, http_201, tool_contact, tool_error};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// "Within a second", with room for a loaded machine.
const PROMPT: Duration = Duration::from_millis(1500);

async fn created_for_any(mock: &MockServer) {
    Mock::given(method("POST"))
        .and(path(CONTACTS_PATH))
        .respond_with(ResponseTemplate::new(201).set_body_json(created_body("any")))
        .mount(mock)
        .await;
}

async fn server(base: &str) -> Proc {
    Proc::start(command(base, Some(TEST_KEY), &[])).await
}

async fn finish(proc: Proc) {
    let (status, stderr) = proc.finish().await;
    assert!(status.success(), "exit {status}; stderr:\n{stderr}");
}

/// A fake whose first connection hangs after reading the request (telling
/// the test when it has the request and when the server hung up) and whose
/// later connections answer 201.
struct Hanging {
    fake: TcpFake,
    got_request: mpsc::UnboundedReceiver<()>,
    hung_up: mpsc::UnboundedReceiver<Instant>,
}

async fn hanging_then_created() -> Hanging {
    let (req_tx, got_request) = mpsc::unbounded_channel();
    let (close_tx, hung_up) = mpsc::unbounded_channel();
    let fake = TcpFake::start(move |mut conn: Conn| {
        let (req_tx, close_tx) = (req_tx.clone(), close_tx.clone());
        async move {
            if conn.read_request().await.is_none() {
                return;
            }
            if conn.index == 0 {
                let _ = req_tx.send(());
                if conn.closed_within(Duration::from_secs(60)).await.is_some() {
                    let _ = close_tx.send(Instant::now());
                }
            } else {
                let _ = conn.write(&http_201(&created_body("after"))).await;
            }
        }
    })
    .await;
    Hanging {
        fake,
        got_request,
        hung_up,
    }
}

impl Hanging {
    async fn wait_for_request(&mut self) {
        tokio::time::timeout(Duration::from_secs(10), self.got_request.recv())
            .await
            .expect("the upstream never got the request");
    }

    async fn wait_for_hang_up(&mut self) -> Instant {
        tokio::time::timeout(Duration::from_secs(10), self.hung_up.recv())
            .await
            .expect("the server never closed the upstream connection")
            .expect("fake gone")
    }
}

#[tokio::test]
async fn initialize_list_and_call_over_raw_lines() {
    let mock = MockServer::start().await;
    created_for_any(&mock).await;
    let mut proc = Proc::spawn(command(&mock.uri(), Some(TEST_KEY), &[]));
    let init = proc
        .request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "raw", "version": "0"}}),
        )
        .await;
    assert_eq!(
        init["result"]["serverInfo"]["name"], "hienergy-mcp",
        "{init}"
    );
    assert!(
        init["result"]["capabilities"]["tools"].is_object(),
        "{init}"
    );
    proc.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await;
    let list = proc.request("tools/list", json!({})).await;
    let tools = list["result"]["tools"].as_array().expect("tools");
    let mut names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["add_contact", "add_contacts"]);
    let result = proc.call(contact("raw")).await;
    assert_eq!(tool_contact(&result)["id"], 7, "{result}");
    finish(proc).await;
}

#[tokio::test]
async fn unknown_methods_are_method_not_found_and_unknown_notifications_ignored() {
    let mut proc = server("http://127.0.0.1:9").await;
    let response = proc.request("contacts/add", json!({})).await;
    assert_eq!(response["error"]["code"], -32601, "{response}");
    proc.send(json!({"jsonrpc": "2.0", "method": "notifications/whatever", "params": {}}))
        .await;
    proc.send(json!({"jsonrpc": "2.0", "method": "$/lsp/thing"}))
        .await;
    let (pong, before) = {
        let id = json!("after-notifications");
        proc.send(json!({"jsonrpc": "2.0", "id": id, "method": "ping"}))
            .await;
        proc.recv_response(&id).await
    };
    assert!(pong.get("result").is_some(), "{pong}");
    assert!(before.is_empty(), "notifications were answered: {before:?}");
    finish(proc).await;
}

/// Sends `bytes`, then a ping; returns whatever the server said about
/// `bytes` before answering the ping (the session must still be alive).
async fn then_ping(proc: &mut Proc, bytes: &[u8]) -> Vec<Value> {
    proc.send_bytes(bytes).await;
    let id = json!(format!("ping-{}", proc.next_id()));
    proc.send(json!({"jsonrpc": "2.0", "id": id, "method": "ping"}))
        .await;
    let (pong, before) = proc.recv_response(&id).await;
    assert!(
        pong.get("result").is_some(),
        "ping after {:.80?}: {pong}",
        String::from_utf8_lossy(bytes)
    );
    before
}

#[tokio::test]
async fn malformed_lines_never_end_the_session() {
    let mut proc = server("http://127.0.0.1:9").await;
    let lines: Vec<&[u8]> = vec![
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\n",
        b"not json at all\n",
        b"\xff\xfe\xfd{\"jsonrpc\":\"2.0\"}\n",
        b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\",\"x\":\"\xc3\x28\"}\n",
        b"\n",
        b"   \r\n",
        b"[]\n",
        b"[{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\"}]\n",
        b"42\n",
        b"\"a string\"\n",
        b"null\n",
        b"{}\n",
        b"{\"jsonrpc\":\"1.0\",\"id\":4,\"method\":\"ping\"}\n",
        b"{\"jsonrpc\":\"2.0\",\"id\":{\"an\":\"object\"},\"method\":\"ping\"}\n",
        b"{\"jsonrpc\":\"2.0\",\"id\":99999,\"result\":{}}\n",
    ];
    for line in lines {
        let said = then_ping(&mut proc, line).await;
        // Anything said about garbage is an error that cannot name a
        // request it could not read.
        for message in said {
            assert!(message.get("error").is_some(), "{message}");
        }
    }
    finish(proc).await;
}

#[tokio::test]
async fn wrong_params_are_invalid_params_or_invalid_arguments() {
    let mut proc = server("http://127.0.0.1:9").await;
    // Wrong-typed params of a known method: -32602.
    for (method, params) in [
        ("tools/call", json!("add_contact")),
        ("tools/call", json!(["add_contact"])),
        ("tools/call", json!({"name": 5})),
        ("tools/call", json!({"arguments": {}})),
        ("tools/call", json!(5)),
        ("tools/list", json!("x")),
        ("tools/list", json!([1])),
        ("ping", json!(true)),
    ] {
        let response = proc.request(method, params.clone()).await;
        assert_eq!(
            response["error"]["code"], -32602,
            "{method} {params}: {response}"
        );
        proc.ping().await;
    }
    // An unknown method stays unknown, whatever its params.
    let response = proc.request("contacts/add", json!("x")).await;
    assert_eq!(response["error"]["code"], -32601, "{response}");
    // `arguments` of the wrong type: -32602 or a structured invalid_arguments
    // result, never a crash.
    for arguments in [
        json!(null),
        json!("advertiser_id=42"),
        json!([42, "a@b.co"]),
        json!(42),
    ] {
        let response = proc
            .request(
                "tools/call",
                json!({"name": "add_contact", "arguments": arguments}),
            )
            .await;
        match response.get("error") {
            Some(error) => assert_eq!(error["code"], -32602, "{arguments}: {response}"),
            None => {
                let error = tool_error(&response["result"]);
                assert_eq!(
                    error["kind"], "invalid_arguments",
                    "{arguments}: {response}"
                );
                assert!(error["fields"].as_array().is_some_and(|f| !f.is_empty()));
            }
        }
        proc.ping().await;
    }
    finish(proc).await;
}

#[tokio::test]
async fn a_one_mib_string_in_a_field_is_refused_without_being_echoed() {
    let mut proc = server("http://127.0.0.1:9").await;
    let huge = "é".repeat(1 << 19);
    for field in [
        "name",
        "email",
        "advertiser_id",
        "linkedin_profile_url",
        "dry_run",
    ] {
        let mut args = contact("huge");
        args[field] = json!(huge);
        let result = proc.call(args).await;
        let error = tool_error(&result);
        assert_eq!(error["kind"], "invalid_arguments", "{field}");
        assert_eq!(error["fields"][0]["field"], field, "{error}");
        proc.ping().await;
    }
    // A huge unknown argument name is named, not echoed in full.
    let mut args = contact("hugekey");
    args[&huge] = json!(1);
    let error = tool_error(&proc.call(args).await);
    assert_eq!(error["kind"], "invalid_arguments");
    let longest = proc.transcript.iter().map(String::len).max().unwrap_or(0);
    assert!(
        longest < 64 * 1024,
        "an answer of {longest} bytes echoed the input"
    );
    finish(proc).await;
}

#[tokio::test]
async fn cancellation_aborts_the_http_request_and_the_next_call_works() {
    let mut upstream = hanging_then_created().await;
    let mut proc = server(&upstream.fake.http_url()).await;
    let id = proc.start_call(contact("cancelme")).await;
    upstream.wait_for_request().await;
    let cancelled_at = Instant::now();
    proc.send(
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                     "params": {"requestId": id, "reason": "x"}}),
    )
    .await;
    let hung_up = upstream.wait_for_hang_up().await;
    let after = hung_up.saturating_duration_since(cancelled_at);
    assert!(
        after < PROMPT,
        "the upstream connection stayed open {after:?}"
    );

    let result = proc.call(contact("next")).await;
    assert_eq!(tool_contact(&result)["id"], 7, "{result}");
    // The cancelled request gets no response at all.
    assert!(
        proc.recv_within(Duration::from_millis(300)).await.is_none(),
        "something arrived after the call"
    );
    assert!(
        proc.transcript
            .iter()
            .all(|l| serde_json::from_str::<Value>(l).map_or(true, |m| m.get("id") != Some(&id))),
        "the cancelled call was answered"
    );
    assert_eq!(upstream.fake.connections(), 2);
    assert_eq!(upstream.fake.requests(), 2);
    finish(proc).await;
}

#[tokio::test]
async fn calls_run_concurrently_and_a_fast_one_answers_first() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_partial_json(
            json!({"contact": {"email": "slow@example.com"}}),
        ))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(created_body("slow"))
                .set_delay(Duration::from_secs(2)),
        )
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(
            json!({"contact": {"email": "fast@example.com"}}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(created_body("fast")))
        .mount(&mock)
        .await;
    let mut proc = server(&mock.uri()).await;
    let slow = proc.start_call(contact("slow")).await;
    // Let the slow call reach the upstream first.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fast = proc.start_call(contact("fast")).await;
    let first = proc.recv().await;
    assert_eq!(first["id"], fast, "the fast call waited: {first}");
    assert_eq!(tool_contact(&first["result"])["email"], "fast@example.com");
    let second = proc.recv().await;
    assert_eq!(second["id"], slow, "{second}");
    assert_eq!(tool_contact(&second["result"])["email"], "slow@example.com");
    finish(proc).await;
}

#[tokio::test]
async fn stdin_eof_exits_zero_within_a_second_even_with_a_call_in_flight() {
    let mut upstream = hanging_then_created().await;
    let mut proc = server(&upstream.fake.http_url()).await;
    proc.start_call(contact("inflight")).await;
    upstream.wait_for_request().await;
    let closed = Instant::now();
    proc.close_stdin();
    let status = proc.wait_exit(Duration::from_secs(5)).await;
    let took = closed.elapsed();
    assert!(status.success(), "exit {status}");
    assert_eq!(status.code(), Some(0));
    assert!(took < PROMPT, "exited {took:?} after stdin closed");
    upstream.wait_for_hang_up().await;
    finish(proc).await;

    // And with nothing in flight.
    let mut proc = server("http://127.0.0.1:9").await;
    let closed = Instant::now();
    proc.close_stdin();
    let status = proc.wait_exit(Duration::from_secs(5)).await;
    assert_eq!(status.code(), Some(0));
    assert!(closed.elapsed() < PROMPT, "{:?}", closed.elapsed());
}

#[tokio::test]
async fn sigterm_and_sigint_exit_zero_within_a_second() {
    for signal in ["TERM", "INT"] {
        for in_flight in [false, true] {
            let mut upstream = hanging_then_created().await;
            let mut proc = server(&upstream.fake.http_url()).await;
            if in_flight {
                proc.start_call(contact("sig")).await;
                upstream.wait_for_request().await;
            }
            let sent = Instant::now();
            fault_kit::signal(proc.pid(), signal);
            let status = proc.wait_exit(Duration::from_secs(5)).await;
            let took = sent.elapsed();
            assert_eq!(
                status.code(),
                Some(0),
                "SIG{signal} (call in flight: {in_flight}): {status}"
            );
            assert!(took < PROMPT, "SIG{signal}: exited after {took:?}");
            if in_flight {
                upstream.wait_for_hang_up().await;
            }
            finish(proc).await;
        }
    }
}

/// On the command line a plain-http public host stops the program; from
/// the environment it is answered not_configured (tests/settings.rs).
#[tokio::test]
async fn plain_http_to_a_public_host_is_refused_at_start() {
    for flags in [
        vec!["--base-url", "http://example.com"],
        vec!["--base-url", "http://example.com/api/v1"],
    ] {
        let output = command("https://app.hienergy.ai", Some(TEST_KEY), &flags)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .expect("run");
        assert!(!output.status.success(), "{flags:?} was accepted");
        assert!(output.stdout.is_empty(), "something on stdout");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("http://example.com"), "{stderr}");
        assert!(stderr.contains("https://"), "{stderr}");
        assert!(stderr.contains("clear text"), "{stderr}");
    }
}
