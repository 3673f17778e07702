//! Failure semantics end to end: for every fault HiEnergy (or the network
//! in between) can produce, the call ends in a precise kind, says whether
//! the contact may exist, and the fake upstream counts exactly as many
//! requests as were safe to send. (That no fault puts the key in stdout
//! or stderr is `canary`'s to show.)
//!
//! Which kind each status and body maps to, and that an answered POST is
//! sent once, are shown below HTTP's wire in `answer` and `hienergy`; here
//! are rate limits, bodies too large, and faults below HTTP (hanging,
//! trickling, resets, refused ports, TLS garbage), with a hand-written peer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::{TEST_KEY, command};
use crate::fault_kit::{
    Conn, Proc, TcpFake, closed_port, contact, created_body, tool_contact, tool_error,
};
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const MIB: usize = 1 << 20;

async fn server(base: &str, args: &[&str]) -> Proc {
    Proc::start(command(base, Some(TEST_KEY), args)).await
}

fn kind_created(error: &Value) -> (&str, &str) {
    (
        error["kind"].as_str().unwrap_or("(no kind)"),
        error["created"].as_str().unwrap_or("(no created)"),
    )
}

fn email(tag: &str) -> String {
    format!("{tag}@example.com")
}

async fn requests_for(mock: &MockServer, tag: &str) -> usize {
    let needle = email(tag);
    mock.received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| String::from_utf8_lossy(&r.body).contains(&needle))
        .count()
}

/// Lines in the server's log announcing a re-send.
fn resends_logged(stderr: &str) -> usize {
    stderr
        .lines()
        .filter(|l| l.contains("sending it again"))
        .count()
}

// -------------------------------------------------------------- rate limits

#[tokio::test]
async fn rate_limit_with_short_retry_after_is_waited_out_then_succeeds() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(created_body("rl")))
        .with_priority(2)
        .mount(&mock)
        .await;
    let mut proc = server(&mock.uri(), &[]).await;
    let started = Instant::now();
    let result = proc.call(contact("rl")).await;
    let waited = started.elapsed();
    assert_eq!(tool_contact(&result)["id"], 7, "{result}");
    assert_eq!(requests_for(&mock, "rl").await, 2);
    // It honoured Retry-After rather than re-sending at once.
    assert!(waited >= Duration::from_secs(1), "re-sent after {waited:?}");
    proc.finish_ok().await;
}

/// A 429 whose wait is not taken (past `--max-retry-wait` or `--timeout`, or
/// too large to add up) is reported after one request, with when to retry.
#[tokio::test]
async fn a_rate_limit_not_waited_out_is_reported_after_one_request() {
    // Retry-After, flags, HIENERGY_MAX_RETRY_WAIT, the wait said, the hint.
    type Case = (
        &'static str,
        &'static [&'static str],
        Option<&'static str>,
        Value,
        &'static str,
    );
    let cases: [Case; 4] = [
        // Past the default --max-retry-wait.
        ("60", &[], None, json!(60), "60 seconds"),
        // Within --max-retry-wait but past --timeout.
        (
            "2",
            &["--max-retry-wait", "60", "--timeout", "1"],
            None,
            json!(2),
            "",
        ),
        // 17e18 s allowed by an 18e18 s --max-retry-wait: adding the jitter
        // overflowed and, with panic = "abort", killed the server.
        (
            "17000000000000000000",
            &[],
            Some("18000000000000000000"),
            json!(17_000_000_000_000_000_000u64),
            "",
        ),
        // Past u64: it used to fail to parse, count as absent, and be
        // re-sent after a backoff, max-retries times.
        ("99999999999999999999999", &[], None, json!(u64::MAX), ""),
    ];
    for (retry_after, flags, max_retry_wait, seconds, hint) in cases {
        let mock = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(429)
                    .insert_header("retry-after", retry_after)
                    .insert_header("x-ratelimit-limit", "100")
                    .insert_header("x-ratelimit-remaining", "0")
                    .set_body_json(
                        json!({"error": {"code": "rate_limited", "message": "Too many requests"}}),
                    ),
            )
            .mount(&mock)
            .await;
        let mut cmd = command(&mock.uri(), Some(TEST_KEY), flags);
        if let Some(wait) = max_retry_wait {
            cmd.env("HIENERGY_MAX_RETRY_WAIT", wait);
        }
        let mut proc = Proc::start(cmd).await;
        let error = tool_error(&proc.call(contact("rl")).await);
        assert_eq!(
            kind_created(&error),
            ("rate_limited", "no"),
            "{retry_after}: {error}"
        );
        assert_eq!(error["retryable"], true, "{retry_after}: {error}");
        assert_eq!(error["status"], 429, "{retry_after}: {error}");
        assert_eq!(error["retry_after_seconds"], seconds, "{retry_after}");
        let said = error["hint"].as_str().unwrap_or_default();
        assert!(said.contains(hint), "{retry_after}: {error}");
        assert_eq!(requests_for(&mock, "rl").await, 1, "{retry_after}");
        let stderr = proc.finish_ok().await;
        // The outcome is logged once, with its kind, for whoever reads stderr.
        let logged: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("add_contact failed"))
            .collect();
        assert_eq!(logged.len(), 1, "{retry_after}: {stderr}");
        assert!(logged[0].contains("rate_limited"), "{stderr}");
    }
}

#[tokio::test]
async fn rate_limit_without_retry_after_is_resent_a_bounded_number_of_times() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429))
        .mount(&mock)
        .await;
    for (retries, expected) in [("2", 3), ("0", 1)] {
        let mut proc = server(&mock.uri(), &["--max-retries", retries]).await;
        let tag = format!("rlmax{retries}");
        let error = tool_error(&proc.call(contact(&tag)).await);
        assert_eq!(kind_created(&error), ("rate_limited", "no"), "{error}");
        assert_eq!(
            requests_for(&mock, &tag).await,
            expected,
            "--max-retries {retries}"
        );
        let stderr = proc.finish_ok().await;
        assert_eq!(resends_logged(&stderr), expected - 1, "{stderr}");
    }
}

/// A cancel lets the POST on its way end but sends no re-send after it: a
/// call the client gave up on must not keep knocking for seconds.
#[tokio::test]
async fn a_cancel_stops_the_re_sends_after_a_429() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429))
        .mount(&mock)
        .await;
    let mut proc = server(&mock.uri(), &["--max-retries", "10"]).await;
    let id = proc.start_call(contact("rlcancel")).await;
    while requests_for(&mock, "rlcancel").await == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    proc.send(
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                     "params": {"requestId": id, "reason": "x"}}),
    )
    .await;
    // Past the first re-sends' backoff (0.2, 0.4, 0.8 s).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(requests_for(&mock, "rlcancel").await, 1);
    proc.finish_ok().await;
}

// ------------------------------------------------------------------ bodies

#[tokio::test]
async fn body_of_50_mib_with_a_length_is_refused_unread() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(201).set_body_raw(vec![b' '; 50 * MIB], "application/json"),
        )
        .mount(&mock)
        .await;
    let mut proc = server(&mock.uri(), &[]).await;
    let error = tool_error(&proc.call(contact("big")).await);
    assert_eq!(kind_created(&error), ("bad_response", "unknown"), "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("larger than"),
        "{error}"
    );
    let peak = proc.peak_rss_kib();
    eprintln!("peak RSS of the server: {peak} KiB");
    assert!(peak < 40 * 1024, "the server's peak RSS reached {peak} KiB");
    assert_eq!(requests_for(&mock, "big").await, 1);
    proc.finish_ok().await;
}

#[tokio::test]
async fn streamed_body_of_50_mib_is_cut_off_at_the_cap() {
    // No Content-Length: the only defence is counting while reading.
    let written = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(tokio::sync::Notify::new());
    let (w, d) = (written.clone(), done.clone());
    let fake = TcpFake::start(move |mut conn: Conn| {
        let (written, done) = (w.clone(), d.clone());
        async move {
            if conn.read_request().await.is_some() {
                let head = "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"data\":\"";
                let mut ok = conn.write(head.as_bytes()).await.is_ok();
                let chunk = vec![b'x'; 64 * 1024];
                while ok && written.load(Ordering::SeqCst) < 50 * MIB {
                    ok = conn.write(&chunk).await.is_ok();
                    if ok {
                        written.fetch_add(chunk.len(), Ordering::SeqCst);
                    }
                }
            }
            done.notify_one();
        }
    })
    .await;
    let mut proc = server(&fake.http_url(), &["--timeout", "20"]).await;
    let error = tool_error(&proc.call(contact("stream")).await);
    assert_eq!(kind_created(&error), ("bad_response", "unknown"), "{error}");
    let peak = proc.peak_rss_kib();
    eprintln!("peak RSS of the server: {peak} KiB");
    assert!(peak < 40 * 1024, "the server's peak RSS reached {peak} KiB");
    tokio::time::timeout(Duration::from_secs(10), done.notified())
        .await
        .expect("the fake kept writing: the server did not hang up");
    let sent = written.load(Ordering::SeqCst);
    assert!(sent < 50 * MIB, "the server read all {sent} bytes");
    assert_eq!((fake.connections(), fake.requests()), (1, 1));
    proc.finish_ok().await;
}

// ---------------------------------------------------------------- timeouts

/// Calls once against `fake` with `--timeout timeout_s`; the call must end
/// as timeout/unknown within that limit plus a margin, after exactly one
/// connection and one request (a timeout is never re-sent).
async fn expect_timeout_unknown(fake: &TcpFake, timeout_s: u64, tag: &str) {
    let limit = timeout_s.to_string();
    let mut proc = server(&fake.http_url(), &["--timeout", &limit]).await;
    let started = Instant::now();
    let error = tool_error(&proc.call(contact(tag)).await);
    let took = started.elapsed();
    assert_eq!(kind_created(&error), ("timeout", "unknown"), "{error}");
    assert!(
        took < Duration::from_secs(timeout_s + 2),
        "took {took:?} with --timeout {timeout_s}"
    );
    assert_eq!(
        (fake.connections(), fake.requests()),
        (1, 1),
        "re-sent after a timeout"
    );
    proc.finish_ok().await;
}

#[tokio::test]
async fn upstream_that_accepts_and_never_answers_times_out_as_unknown() {
    let fake = TcpFake::start(|mut conn: Conn| async move {
        let _ = conn.read_request().await;
        let _ = conn.closed_within(Duration::from_secs(60)).await;
    })
    .await;
    expect_timeout_unknown(&fake, 1, "hang").await;
}

#[tokio::test]
async fn body_trickled_a_byte_a_second_times_out_as_unknown() {
    let fake = TcpFake::start(|mut conn: Conn| async move {
        if conn.read_request().await.is_none() {
            return;
        }
        let head =
            "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n";
        if conn.write(head.as_bytes()).await.is_err() {
            return;
        }
        for byte in b"{\"data\":{\"id\":7,".iter().cycle().take(100) {
            if conn.write(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
    .await;
    expect_timeout_unknown(&fake, 2, "trickle").await;
}

#[tokio::test]
async fn status_line_trickled_a_byte_a_second_times_out_as_unknown() {
    let fake = TcpFake::start(|mut conn: Conn| async move {
        if conn.read_request().await.is_none() {
            return;
        }
        for byte in b"HTTP/1.1 201 Created\r\n".iter().cycle().take(100) {
            if conn.write(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
    .await;
    expect_timeout_unknown(&fake, 2, "trickle-head").await;
}

// ------------------------------------------------------- broken connections

#[tokio::test]
async fn reset_after_the_request_is_network_unknown_and_not_resent() {
    let fake = TcpFake::start(|mut conn: Conn| async move {
        if conn.read_request().await.is_some() {
            // SO_LINGER 0: closing sends RST instead of FIN.
            let _ = conn.stream.set_zero_linger();
        }
    })
    .await;
    let mut proc = server(&fake.http_url(), &[]).await;
    let error = tool_error(&proc.call(contact("reset")).await);
    assert_eq!(kind_created(&error), ("network", "unknown"), "{error}");
    assert_eq!(
        (fake.connections(), fake.requests()),
        (1, 1),
        "re-sent after a reset"
    );
    proc.finish_ok().await;
}

#[tokio::test]
async fn close_after_the_request_is_network_unknown_and_not_resent() {
    let fake = TcpFake::start(|mut conn: Conn| async move {
        let _ = conn.read_request().await;
    })
    .await;
    let mut proc = server(&fake.http_url(), &[]).await;
    let error = tool_error(&proc.call(contact("close")).await);
    assert_eq!(kind_created(&error), ("network", "unknown"), "{error}");
    assert_eq!(
        (fake.connections(), fake.requests()),
        (1, 1),
        "re-sent after a close"
    );
    proc.finish_ok().await;
}

#[tokio::test]
async fn close_right_after_accept_is_network_unknown_and_not_resent() {
    // The connection was made, so the request may have been written before
    // the close was noticed: not provably unsent.
    let fake = TcpFake::start(|conn: Conn| async move {
        drop(conn);
    })
    .await;
    let mut proc = server(&fake.http_url(), &[]).await;
    let error = tool_error(&proc.call(contact("slam")).await);
    assert_eq!(kind_created(&error), ("network", "unknown"), "{error}");
    assert_eq!(
        fake.connections(),
        1,
        "re-sent after the connection was made"
    );
    proc.finish_ok().await;
}

// ------------------------------------------------------- failed connections

#[tokio::test]
async fn refused_connection_is_network_no_and_resent_with_backoff() {
    let base = format!("http://127.0.0.1:{}", closed_port().await);

    let mut proc = server(&base, &["--max-retries", "2"]).await;
    let started = Instant::now();
    let error = tool_error(&proc.call(contact("refused")).await);
    let took = started.elapsed();
    assert_eq!(kind_created(&error), ("network", "no"), "{error}");
    // Two pauses of at least 200 ms and 400 ms (exponential backoff).
    assert!(took >= Duration::from_millis(600), "no backoff: {took:?}");
    let stderr = proc.finish_ok().await;
    assert_eq!(resends_logged(&stderr), 2, "{stderr}");

    let mut proc = server(&base, &["--max-retries", "0"]).await;
    let error = tool_error(&proc.call(contact("refused0")).await);
    assert_eq!(kind_created(&error), ("network", "no"), "{error}");
    let stderr = proc.finish_ok().await;
    assert_eq!(resends_logged(&stderr), 0, "{stderr}");
}

#[tokio::test]
async fn unresolvable_host_is_network_no() {
    // A name that cannot be looked up, failing before any packet leaves:
    // a 70-character label is no DNS name (labels are at most 63 bytes),
    // so the connector refuses it before resolving (traced: no socket is
    // opened). A real resolver failure would need a query to the sandbox's
    // non-loopback nameserver; it surfaces the same way, as a connect error.
    // `.invalid` (RFC 6761) is there in case something does try.
    let host = format!("{}.invalid", "a".repeat(70));
    let base = format!("https://{host}");
    let mut proc = server(&base, &["--max-retries", "1", "--connect-timeout", "2"]).await;
    let error = tool_error(&proc.call(contact("dns")).await);
    assert_eq!(kind_created(&error), ("network", "no"), "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("connect"),
        "{error}"
    );
    let stderr = proc.finish_ok().await;
    assert_eq!(resends_logged(&stderr), 1, "{stderr}");
}

#[tokio::test]
async fn tls_handshake_failure_is_network_no_and_resent() {
    // A plain-HTTP server behind an https:// URL: it answers the ClientHello
    // with text, which is no TLS record.
    let fake = TcpFake::start(|mut conn: Conn| async move {
        let mut hello = [0u8; 512];
        let _ = tokio::io::AsyncReadExt::read(&mut conn.stream, &mut hello).await;
        let _ = conn
            .write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await;
    })
    .await;
    let mut proc = server(&fake.https_url(), &["--max-retries", "2"]).await;
    let error = tool_error(&proc.call(contact("tls")).await);
    assert_eq!(kind_created(&error), ("network", "no"), "{error}");
    // The handshake never completed, so no request was ever sent, and each
    // of the three connections was safe.
    assert_eq!(fake.connections(), 3);
    assert_eq!(fake.requests(), 0);
    let stderr = proc.finish_ok().await;
    assert_eq!(resends_logged(&stderr), 2, "{stderr}");
}

#[tokio::test]
async fn connect_timeout_is_timeout_no_and_resent() {
    // A listener whose accept queue is full and never drained: further
    // connection attempts get no answer, which is what a black-holed host
    // looks like.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let listener = socket.listen(1).expect("listen");
    let addr = listener.local_addr().expect("addr");
    let mut fillers = Vec::new();
    for _ in 0..8 {
        if let Ok(Ok(s)) = tokio::time::timeout(
            Duration::from_millis(300),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            fillers.push(s);
        }
    }
    let probe = tokio::time::timeout(
        Duration::from_millis(500),
        tokio::net::TcpStream::connect(addr),
    )
    .await;
    // Without a connection that hangs there is nothing to test; a silent
    // pass here would claim a timeout was checked when it was not.
    assert!(
        !probe.is_ok_and(|r| r.is_ok()),
        "cannot simulate a black-holed host: this kernel completes connections \
         beyond a full accept queue, so the connect timeout is untested here"
    );
    let base = format!("http://{addr}");
    let mut proc = server(&base, &["--connect-timeout", "1", "--max-retries", "1"]).await;
    let started = Instant::now();
    let error = tool_error(&proc.call(contact("blackhole")).await);
    let took = started.elapsed();
    assert_eq!(kind_created(&error), ("timeout", "no"), "{error}");
    // Two attempts of one second each, and a pause between them.
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let stderr = proc.finish_ok().await;
    assert_eq!(resends_logged(&stderr), 1, "{stderr}");
    drop((listener, fillers));
}
