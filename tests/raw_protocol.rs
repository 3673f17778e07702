//! The protocol spoken by hand, with no SDK in between: every line the
//! server writes must be JSON-RPC, malformed input must never end the
//! session, calls run side by side, a cancel stops no POST under way,
//! and the process leaves promptly and cleanly when asked.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::{TEST_KEY, command};
use crate::fault_kit::{
    Conn, Proc, TcpFake, contact, created_body, created_fake, http_201, result_of, tool_contact,
    tool_error,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use wiremock::matchers::{body_partial_json, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// "Within a second", with room for a loaded machine.
const PROMPT: Duration = Duration::from_millis(1500);

async fn server(base: &str) -> Proc {
    Proc::start(command(base, Some(TEST_KEY), &[])).await
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

/// A client that writes many lines at once (a script, or a client that
/// batches its writes): calls and other messages in one write. Each request
/// is answered by its id, with its own arguments.
#[tokio::test]
async fn many_lines_in_one_write_are_each_answered() {
    let mut proc = server("http://127.0.0.1:9").await;
    let dry = |id: &str, email: &str| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
               "params": {"name": "add_contact", "_meta": {"progressToken": id},
                          "arguments": {"advertiser_id": 3, "email": email, "dry_run": true}}})
    };
    let lines = [
        dry("a", "one@example.com"),
        json!({"jsonrpc": "2.0", "id": "b", "method": "ping"}),
        dry("c", "two@example.com"),
        // Cancels a call never sent: ignored.
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
               "params": {"requestId": "never-sent"}}),
        json!({"jsonrpc": "2.0", "id": "d", "method": "tools/list"}),
        dry("e", "three@example.com"),
    ];
    let mut bytes = Vec::new();
    for line in &lines {
        bytes.extend_from_slice(line.to_string().as_bytes());
        bytes.push(b'\n');
    }
    proc.send_bytes(&bytes).await;
    let mut answers = std::collections::BTreeMap::new();
    while answers.len() < 5 {
        // Fails here, with what did come, if an answer is missing.
        let message = proc.recv().await;
        if let Some(id) = message["id"].as_str() {
            answers.insert(id.to_owned(), message);
        }
    }
    for (id, email) in [
        ("a", "one@example.com"),
        ("c", "two@example.com"),
        ("e", "three@example.com"),
    ] {
        let result = result_of(&answers[id]);
        let body = &result["structuredContent"]["request"]["body"]["contact"];
        assert_eq!(body["email"], email, "{id}: {result}");
        assert_eq!(body["advertiser_id"], 3, "{id}: {result}");
    }
    assert!(answers["b"]["result"].is_object(), "{}", answers["b"]);
    assert_eq!(
        answers["d"]["result"]["tools"].as_array().map(Vec::len),
        Some(hienergy_mcp::tools::names().len()),
        "{}",
        answers["d"]
    );
    proc.finish_ok().await;
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
    proc.finish_ok().await;
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
    // What each line must get: nothing for bytes that are not JSON (no id
    // can be read, and answering garbage invites an error storm, as the
    // other MCP SDKs also reason) and for a response nobody asked for;
    // exactly one -32600 naming no request for JSON that is no message.
    let invalid_request =
        || vec![json!({"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid request"}})];
    let lines: Vec<(&[u8], Vec<Value>)> = vec![
        (b"{\"jsonrpc\":\"2.0\",\"id\":1,\n", vec![]),
        (b"not json at all\n", vec![]),
        (b"\xff\xfe\xfd{\"jsonrpc\":\"2.0\"}\n", vec![]),
        (
            b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\",\"x\":\"\xc3\x28\"}\n",
            vec![],
        ),
        (b"\n", vec![]),
        (b"   \r\n", vec![]),
        (b"[]\n", invalid_request()),
        (
            b"[{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\"}]\n",
            invalid_request(),
        ),
        (b"42\n", invalid_request()),
        (b"\"a string\"\n", invalid_request()),
        (b"null\n", invalid_request()),
        (b"{}\n", invalid_request()),
        (
            b"{\"jsonrpc\":\"1.0\",\"id\":4,\"method\":\"ping\"}\n",
            invalid_request(),
        ),
        (
            b"{\"jsonrpc\":\"2.0\",\"id\":{\"an\":\"object\"},\"method\":\"ping\"}\n",
            invalid_request(),
        ),
        (
            b"{\"jsonrpc\":\"2.0\",\"id\":99999,\"result\":{}}\n",
            vec![],
        ),
        // Calls rmcp refuses: a stray member its shape check rejects, the
        // wrong version, params that are no object (answered without the
        // id, which rmcp cannot read from a request it cannot parse). Never
        // run as calls.
        (
            b"{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\",\"params\":{\"name\":\"add_contact\",\"arguments\":{\"advertiser_id\":1,\"email\":\"a@b.co\",\"dry_run\":true}},\"result\":{}}\n",
            invalid_request(),
        ),
        (
            b"{\"jsonrpc\":\"1.0\",\"id\":6,\"method\":\"tools/call\",\"params\":{\"name\":\"add_contact\",\"arguments\":{\"advertiser_id\":1,\"email\":\"a@b.co\",\"dry_run\":true}}}\n",
            invalid_request(),
        ),
        (
            b"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":\"add_contact\"}\n",
            invalid_request(),
        ),
        (
            b"{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"tools/list\",\"params\":[1]}\n",
            invalid_request(),
        ),
    ];
    for (line, expected) in lines {
        let said = then_ping(&mut proc, line).await;
        assert_eq!(
            said,
            expected,
            "after {:.80?}",
            String::from_utf8_lossy(line)
        );
    }
    proc.finish_ok().await;
}

#[tokio::test]
async fn wrong_params_are_invalid_params_or_invalid_arguments() {
    let mut proc = server("http://127.0.0.1:9").await;
    // Params of a known method that are an object of the wrong shape:
    // -32602. (Params that are no object at all: malformed_lines_...)
    for (method, params) in [
        ("tools/call", json!({"name": 5})),
        ("tools/call", json!({"arguments": {}})),
        ("tools/call", json!({"name": ["add_contact"]})),
    ] {
        let response = proc.request(method, params.clone()).await;
        assert_eq!(
            response["error"]["code"], -32602,
            "{method} {params}: {response}"
        );
        proc.ping().await;
    }
    // An unknown method stays unknown, whatever its params.
    let response = proc.request("contacts/add", json!({"name": 5})).await;
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
    proc.finish_ok().await;
}

/// Huge input (a 1 MiB value, a 1 MiB name, 10,000 unknown names) gets a
/// short answer naming the problem, never an echo of the input.
#[tokio::test]
async fn huge_arguments_are_refused_without_being_echoed() {
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
    // Ten thousand unknown names: fifty named, the rest counted.
    let mut args = contact("many-names");
    for i in 0..10_000 {
        args[format!("unknown_{i:05}")] = json!(1);
    }
    let error = tool_error(&proc.call(args).await);
    assert_eq!(error["kind"], "invalid_arguments");
    assert_eq!(error["fields"].as_array().map(Vec::len), Some(50));
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains("and 9950 more"), "{message:.200}");
    let longest = proc.transcript.iter().map(String::len).max().unwrap_or(0);
    assert!(
        longest < 64 * 1024,
        "an answer of {longest} bytes echoed the input"
    );
    proc.finish_ok().await;
}

/// A cancel stops nothing already on its way: the POST ends within
/// `--timeout`, and an identical call made meanwhile takes its outcome
/// rather than sending the contact a second time.
#[tokio::test]
async fn cancellation_lets_the_post_end_and_an_identical_call_takes_its_outcome() {
    let mut upstream = hanging_then_created().await;
    let mut proc = Proc::start(command(
        &upstream.fake.http_url(),
        Some(TEST_KEY),
        &["--timeout", "1"],
    ))
    .await;
    let id = proc.start_call(contact("cancelme")).await;
    upstream.wait_for_request().await;
    proc.send(
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                     "params": {"requestId": id, "reason": "x"}}),
    )
    .await;
    let again = proc.call(contact("cancelme")).await;
    assert_eq!(tool_error(&again)["kind"], "timeout", "{again}");
    assert_eq!(tool_error(&again)["created"], "unknown", "{again}");
    upstream.wait_for_hang_up().await;
    assert_eq!(upstream.fake.requests(), 1, "the contact was sent twice");

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
    proc.finish_ok().await;
}

/// The duplicate guard remembers 1,024 calls; one in flight must outlive
/// any number of others, or its twin makes a second POST.
#[tokio::test]
async fn a_call_in_flight_is_not_forgotten_behind_1100_others() {
    let (release, released) = tokio::sync::watch::channel(false);
    let slow_posts = Arc::new(AtomicUsize::new(0));
    let fake = TcpFake::start({
        let slow_posts = slow_posts.clone();
        move |mut conn: Conn| {
            let (slow_posts, mut released) = (slow_posts.clone(), released.clone());
            async move {
                let Some(request) = conn.read_request().await else {
                    return;
                };
                if String::from_utf8_lossy(&request).contains("slow@") {
                    slow_posts.fetch_add(1, Ordering::SeqCst);
                    let _ = released.wait_for(|r| *r).await;
                }
                let _ = conn.write(&http_201(&created_body("any"))).await;
            }
        }
    })
    .await;
    let mut proc = server(&fake.http_url()).await;
    let first = proc.start_call(contact("slow")).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while slow_posts.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the first call never reached the fake"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for batch in 0..11 {
        for i in 0..100 {
            proc.start_call(contact(&format!("other{batch}x{i}"))).await;
        }
        for _ in 0..100 {
            let response = proc.recv().await;
            assert_ne!(response["id"], first, "{response}");
            tool_contact(&result_of(&response));
        }
    }
    let again = proc.start_call(contact("slow")).await;
    // Give a second POST, if one is coming, time to reach the fake first.
    proc.ping().await;
    release.send_replace(true);
    let mut answers = Vec::new();
    for _ in 0..2 {
        let response = proc.recv().await;
        answers.push((response["id"].clone(), response));
    }
    answers.sort_by_key(|(id, _)| id.as_u64());
    assert_eq!(answers[0].0, first);
    assert_eq!(answers[1].0, again);
    let replayed = |r: &Value| result_of(r)["structuredContent"]["replayed"].clone();
    assert_eq!(replayed(&answers[0].1), false);
    assert_eq!(replayed(&answers[1].1), true, "{}", answers[1].1);
    assert_eq!(slow_posts.load(Ordering::SeqCst), 1);
    assert_eq!(fake.requests(), 1101);
    proc.finish_ok().await;
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
    proc.finish_ok().await;
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
    proc.finish_ok().await;

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
            crate::fault_kit::signal(proc.pid(), signal);
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
            proc.finish_ok().await;
        }
    }
}

/// On the command line a plain-http public host stops the program; from
/// the environment it is answered not_configured (tests/settings.rs).
#[tokio::test]
async fn a_closed_stdout_ends_the_session_and_no_call_after_it_is_sent() {
    let mut upstream = hanging_then_created().await;
    let mut proc = server(&upstream.fake.http_url()).await;
    proc.start_call(contact("before-close")).await;
    upstream.wait_for_request().await;
    let closed = Instant::now();
    proc.close_stdout();
    // A client that stopped listening but still writes.
    for i in 0..10 {
        let call = json!({
            "jsonrpc": "2.0", "id": 100 + i, "method": "tools/call",
            "params": {"name": "add_contact", "arguments": contact(&format!("after-close{i}"))}
        });
        if !proc.try_send_bytes(format!("{call}\n").as_bytes()).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = proc.wait_exit(Duration::from_secs(5)).await;
    let took = closed.elapsed();
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(took < PROMPT, "exited {took:?} after stdout closed");
    // The call in flight was cancelled: its connection was dropped.
    let hung_up = upstream.wait_for_hang_up().await;
    assert!(hung_up.saturating_duration_since(closed) < PROMPT);
    assert_eq!(
        upstream.fake.requests(),
        1,
        "a call after the close was sent"
    );
    assert!(
        proc.stderr_text().contains("stdout is closed"),
        "{}",
        proc.stderr_text()
    );

    // Idle, with stdin left open: the close alone ends it.
    let mut proc = server("http://127.0.0.1:9").await;
    let closed = Instant::now();
    proc.close_stdout();
    let status = proc.wait_exit(Duration::from_secs(5)).await;
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(closed.elapsed() < PROMPT, "{:?}", closed.elapsed());
}

/// A client that dies with calls still queued in the server's stdin: they
/// are never read, so none reaches HiEnergy. The server is stopped while
/// the client writes and dies, so that it cannot read them first.
#[tokio::test]
async fn calls_queued_when_the_client_dies_are_not_sent() {
    let mock = created_fake().await;
    let mut proc = server(&mock.uri()).await;
    crate::fault_kit::signal(proc.pid(), "STOP");
    for i in 0..5 {
        proc.start_call(contact(&format!("queued{i}"))).await;
    }
    proc.close_stdout();
    proc.close_stdin();
    crate::fault_kit::signal(proc.pid(), "CONT");
    let status = proc.wait_exit(Duration::from_secs(5)).await;
    assert_eq!(status.code(), Some(0), "{status}");
    let posts = mock.received_requests().await.unwrap_or_default().len();
    assert_eq!(posts, 0, "{posts} queued calls were sent");
}

#[tokio::test]
async fn a_last_request_without_its_newline_is_answered() {
    let mut proc = Proc::spawn(command("http://127.0.0.1:9", Some(TEST_KEY), &[]));
    let mut dry = contact("last-line");
    dry["dry_run"] = json!(true);
    let input = format!(
        "{}\n{}\n{}",
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
               "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                          "clientInfo": {"name": "raw", "version": "0"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
               "params": {"name": "add_contact", "arguments": dry}}),
    );
    proc.send_bytes(input.as_bytes()).await;
    proc.close_stdin();
    let (response, _) = proc.recv_response(&json!(2)).await;
    assert_eq!(
        result_of(&response)["structuredContent"]["dry_run"],
        true,
        "{response}"
    );
    proc.finish_ok().await;
}

/// A line of `len` bytes and its newline: a tools/call whose params are padded, with the id
/// last, as the TypeScript SDK writes it.
fn padded_call(len: usize, id: u64) -> Vec<u8> {
    let tail = format!(r#""}}}},"jsonrpc":"2.0","id":{id}}}"#);
    let mut line =
        br#"{"method":"tools/call","params":{"name":"add_contact","arguments":{"pad":""#.to_vec();
    line.resize(len - tail.len(), b'p');
    line.extend_from_slice(tail.as_bytes());
    line.push(b'\n');
    line
}

/// A line over the limit is dropped as it arrives (rmcp's transport with
/// our limit): never held whole, never answered, and the session goes on.
#[tokio::test]
async fn a_request_line_over_the_limit_is_dropped_in_bounded_memory() {
    let mut proc = server("http://127.0.0.1:9").await;
    // 64 MiB: held whole, it alone would be more than the bound below.
    let said = then_ping(&mut proc, &padded_call(64 << 20, 77)).await;
    assert!(said.is_empty(), "{said:?}");
    let peak = proc.peak_rss_kib();
    assert!(peak < 40 * 1024, "peak RSS {peak} KiB after a 64 MiB line");

    // At the limit (4 MiB with its newline) it is read and handled as usual.
    let response = {
        proc.send_bytes(&padded_call((4 << 20) - 1, 78)).await;
        proc.recv_response(&json!(78)).await.0
    };
    let error = tool_error(&result_of(&response));
    assert_eq!(error["kind"], "invalid_arguments", "{error}");
    proc.finish_ok().await;
}

/// A protocol error, naming the tools there are, and nothing sent.
#[tokio::test]
async fn an_unknown_tool_is_invalid_params() {
    let mock = created_fake().await;
    let mut proc = server(&mock.uri()).await;
    for name in [json!("delete_everything"), json!("ADD_CONTACT"), json!("")] {
        let response = proc
            .request(
                "tools/call",
                json!({"name": name, "arguments": contact("x")}),
            )
            .await;
        assert_eq!(response["error"]["code"], -32602, "{name}: {response}");
        let message = response["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("unknown tool"), "{message}");
        assert!(message.contains("add_contacts"), "{message}");
    }
    assert_eq!(mock.received_requests().await.map_or(0, |r| r.len()), 0);
    proc.finish_ok().await;
}
