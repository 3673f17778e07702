//! Harness for the fault, raw-protocol and canary suites: the binary with
//! all three pipes kept (every stdout line checked and recorded, stderr
//! collected), and a hand-written HTTP peer on 127.0.0.1 for the faults a
//! mock server cannot produce (hanging, trickling, resetting, not HTTP).
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::task::JoinHandle;

use crate::common::ANSWER_TIMEOUT;

/// The binary with stdin, stdout and stderr piped.
pub struct Proc {
    pub child: Child,
    stdin: Option<ChildStdin>,
    /// None once the test has closed its end of the server's stdout.
    stdout: Option<Lines<BufReader<ChildStdout>>>,
    /// Every line the server wrote to stdout, in order.
    pub transcript: Vec<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_task: Option<JoinHandle<()>>,
    next_id: u64,
}

impl Proc {
    pub fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let collected = Arc::new(Mutex::new(Vec::new()));
        // Drained continuously: with RUST_LOG=trace a full pipe would stall
        // the server and look like a hang.
        let sink = collected.clone();
        let stderr_task = tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = stderr.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Self {
            child,
            stdin,
            stdout: Some(BufReader::new(stdout).lines()),
            transcript: Vec::new(),
            stderr: collected,
            stderr_task: Some(stderr_task),
            next_id: 1,
        }
    }

    /// Spawns and completes the initialize handshake.
    pub async fn start(cmd: Command) -> Self {
        let mut proc = Self::spawn(cmd);
        let init = proc
            .request(
                "initialize",
                json!({
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "fault-kit", "version": "0"}
                }),
            )
            .await;
        assert!(init.get("result").is_some(), "initialize failed: {init}");
        proc.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        proc
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("the server has already exited")
    }

    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin already closed");
        stdin.write_all(bytes).await.expect("write stdin");
        stdin.flush().await.expect("flush stdin");
    }

    /// Like [`Proc::send_bytes`], but the server may have gone: whether
    /// the bytes were written.
    pub async fn try_send_bytes(&mut self, bytes: &[u8]) -> bool {
        let Some(stdin) = self.stdin.as_mut() else {
            return false;
        };
        stdin.write_all(bytes).await.is_ok() && stdin.flush().await.is_ok()
    }

    pub async fn send(&mut self, message: Value) {
        let mut line = message.to_string();
        line.push('\n');
        self.send_bytes(line.as_bytes()).await;
    }

    /// The next stdout line, which must be a JSON-RPC 2.0 message.
    pub async fn recv(&mut self) -> Value {
        self.recv_within(ANSWER_TIMEOUT)
            .await
            .unwrap_or_else(|| panic!("no message within {ANSWER_TIMEOUT:?}"))
    }

    /// The next stdout line, or None if none arrives within `limit`.
    pub async fn recv_within(&mut self, limit: Duration) -> Option<Value> {
        let stdout = self.stdout.as_mut().expect("stdout already closed");
        let line = tokio::time::timeout(limit, stdout.next_line())
            .await
            .ok()?
            .expect("read stdout")
            .unwrap_or_else(|| panic!("stdout closed; stderr:\n{}", self.stderr_text()));
        let value: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line:.300}"));
        assert_eq!(value["jsonrpc"], "2.0", "not JSON-RPC 2.0: {line:.300}");
        // An error about a line whose id could not be read carries no id
        // (the MCP schema makes it optional there).
        assert!(
            value.get("method").is_some()
                || value.get("id").is_some()
                || value.get("error").is_some(),
            "neither a request, a notification nor a response: {line:.300}"
        );
        self.transcript.push(line);
        Some(value)
    }

    /// Reads up to the response with this id. Whatever came before it
    /// (notifications, answers to malformed lines) is returned beside it.
    pub async fn recv_response(&mut self, id: &Value) -> (Value, Vec<Value>) {
        let mut before = Vec::new();
        loop {
            let message = self.recv().await;
            if message.get("id") == Some(id) && message.get("method").is_none() {
                return (message, before);
            }
            before.push(message);
        }
    }

    pub async fn request(&mut self, method: &str, params: Value) -> Value {
        let id = json!(self.next_id());
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        let (response, before) = self.recv_response(&id).await;
        for other in before {
            assert!(
                other.get("id").is_none(),
                "a response to something else arrived first: {other}"
            );
        }
        response
    }

    /// Sends a tools/call for add_contact without waiting; returns its id.
    pub async fn start_call(&mut self, arguments: Value) -> Value {
        self.start_tool("add_contact", json!({"arguments": arguments}))
            .await
    }

    /// Sends a tools/call of the named tool without waiting; `params` is
    /// everything beside the name (`arguments`, `_meta`). Returns its id.
    pub async fn start_tool(&mut self, name: &str, mut params: Value) -> Value {
        let id = json!(self.next_id());
        if let Some(arguments) = params.get_mut("arguments") {
            *arguments = crate::common::post_only(name, arguments.take());
        }
        params["name"] = json!(name);
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}))
            .await;
        id
    }

    /// One add_contact call; its `result` (a CallToolResult).
    pub async fn call(&mut self, arguments: Value) -> Value {
        self.call_tool("add_contact", arguments).await
    }

    /// One call of the named tool; its `result` (a CallToolResult).
    pub async fn call_tool(&mut self, name: &str, arguments: Value) -> Value {
        let response = self
            .request(
                "tools/call",
                json!({"name": name, "arguments": crate::common::post_only(name, arguments)}),
            )
            .await;
        result_of(&response)
    }

    /// Checks the session is still alive and answering.
    pub async fn ping(&mut self) {
        let response = self.request("ping", json!({})).await;
        assert!(response.get("result").is_some(), "ping failed: {response}");
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    pub fn close_stdin(&mut self) {
        drop(self.stdin.take());
    }

    /// Lets the call `id` get under way, closes stdin, and returns the
    /// response the server still writes for it before it exits.
    pub async fn response_after_stdin_closes(&mut self, id: &Value) -> Value {
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.close_stdin();
        let (response, _) = self.recv_response(id).await;
        self.wait_exit(Duration::from_secs(5)).await;
        response
    }

    /// Closes the test's end of the server's stdout, as a client that stops
    /// listening does.
    pub fn close_stdout(&mut self) {
        drop(self.stdout.take());
    }

    /// Waits for the process to exit, at most `limit`.
    pub async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let status = tokio::time::timeout(limit, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the server did not exit within {limit:?}"))
            .expect("wait");
        if let Some(task) = self.stderr_task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        status
    }

    /// Closes stdin, waits for the exit, and returns the full stderr.
    pub async fn finish(mut self) -> (ExitStatus, String) {
        self.close_stdin();
        let status = self.wait_exit(Duration::from_secs(5)).await;
        // Whatever was still buffered on stdout must be JSON-RPC too.
        while let Some(stdout) = self.stdout.as_mut()
            && let Ok(Ok(Some(line))) =
                tokio::time::timeout(Duration::from_secs(1), stdout.next_line()).await
        {
            let value: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line:.300}"));
            assert_eq!(value["jsonrpc"], "2.0");
            self.transcript.push(line);
        }
        (status, self.stderr_text())
    }

    /// `finish`, checking the server exited cleanly; returns stderr.
    pub async fn finish_ok(self) -> String {
        let (status, stderr) = self.finish().await;
        assert!(status.success(), "exit status {status}; stderr:\n{stderr}");
        stderr
    }

    /// Peak resident memory of the server so far, from /proc.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/<pid>/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmHWM in:\n{status}"))
    }
}

/// The `result` of a JSON-RPC response, after checking it is not an error.
pub fn result_of(response: &Value) -> Value {
    assert!(
        response.get("error").is_none(),
        "protocol error: {response}"
    );
    response["result"].clone()
}

/// The `error` object of a failed add_contact result.
pub fn tool_error(result: &Value) -> Value {
    assert_eq!(result["isError"], true, "expected a failed call: {result}");
    let error = result["structuredContent"]["error"].clone();
    assert!(error.is_object(), "no structured error: {result}");
    error
}

/// The created contact of a successful add_contact result.
pub fn tool_contact(result: &Value) -> Value {
    assert_ne!(result["isError"], true, "expected success: {result}");
    result["structuredContent"]["contact"].clone()
}

/// The contact for a call, distinct per `tag` so that calls in one session
/// never meet the duplicate guard.
pub fn contact(tag: &str) -> Value {
    json!({"advertiser_id": 42, "email": format!("{tag}@example.com")})
}

/// The body a successful add answers with.
pub fn created_body(tag: &str) -> Value {
    json!({"data": {"id": 7, "advertiser_id": 42, "email": format!("{tag}@example.com")}})
}

/// A fake HiEnergy that creates every contact it is sent.
pub async fn created_fake() -> wiremock::MockServer {
    let mock = wiremock::MockServer::start().await;
    let created = wiremock::ResponseTemplate::new(201).set_body_json(created_body("any"));
    crate::common::mount_answer(&mock, created).await;
    mock
}

/// A loopback port with nothing listening on it: connections are refused.
pub async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    port
}

/// Kill on drop is not enough to check an exit status; this sends a signal.
pub fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// One accepted connection of a [`TcpFake`].
pub struct Conn {
    pub stream: TcpStream,
    /// 0 for the first connection the fake accepted.
    pub index: usize,
    requests: Arc<AtomicUsize>,
}

impl Conn {
    /// Reads one whole HTTP/1.1 request (head and Content-Length body).
    /// None if the peer closed before it was complete.
    pub async fn read_request(&mut self) -> Option<Vec<u8>> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            let n = self.stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            let n = self.stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        self.requests.fetch_add(1, Ordering::SeqCst);
        Some(buf)
    }

    /// Waits until the peer closes the connection (or resets it); how long
    /// that took, or None if it was still open after `limit`.
    pub async fn closed_within(&mut self, limit: Duration) -> Option<Duration> {
        let started = Instant::now();
        let mut chunk = [0u8; 1024];
        tokio::time::timeout(limit, async {
            loop {
                match self.stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await
        .ok()
        .map(|()| started.elapsed())
    }

    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A hand-written peer on 127.0.0.1 that runs `behaviour` on every
/// connection and counts connections and complete requests.
pub struct TcpFake {
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl TcpFake {
    pub async fn start<F, Fut>(behaviour: F) -> Self
    where
        F: Fn(Conn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local_addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (c, r) = (connections.clone(), requests.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let index = c.fetch_add(1, Ordering::SeqCst);
                let conn = Conn {
                    stream,
                    index,
                    requests: r.clone(),
                };
                tokio::spawn(behaviour(conn));
            }
        });
        Self {
            addr,
            connections,
            requests,
            task,
        }
    }

    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn https_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for TcpFake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An HTTP/1.1 201 with a JSON body, closing the connection after it.
pub fn http_201(body: &Value) -> Vec<u8> {
    let body = body.to_string();
    format!(
        "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
