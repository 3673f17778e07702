//! Serving over stdin/stdout until the client goes away or a signal asks.
//!
//! The client goes away in two ways: it closes stdin (EOF), or it closes its
//! end of stdout. After the second, no answer can reach it, so the session
//! ends at once: no more calls are read, and calls in flight are cancelled
//! rather than left to create contacts whose results would be lost.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::transport::{StdioReader, stdio_pipes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::server::{HiEnergyServer, INVALID_PARAMS_METHOD};

/// Lines longer than this are passed on unexamined: a request with
/// malformed params is small, and a long line is left to rmcp's own cap.
const MAX_CHECKED_LINE: usize = 64 * 1024;

/// How long calls in flight may still finish after stdin closes.
pub const EOF_GRACE: Duration = Duration::from_millis(700);

/// Runs the server on stdio. Returns when stdin closes, when stdout can no
/// longer be written, or on SIGINT/SIGTERM.
pub async fn serve(config: Config) -> Result<(), rmcp::RmcpError> {
    let shutdown = CancellationToken::new();
    let server = HiEnergyServer::new(config, shutdown.clone());
    let (reader, writer) = stdio_pipes();
    let eof = CancellationToken::new();
    let stdout_gone = CancellationToken::new();
    let reader = UntilStdoutGone::new(
        ParamsCheck::new(EofSignal {
            inner: reader,
            eof: eof.clone(),
        }),
        stdout_gone.clone(),
    );
    let writer = WriteErrors {
        inner: writer,
        failed: stdout_gone.clone(),
    };
    // After EOF nobody may be left to read answers, but a script that pipes
    // in a few requests and closes stdin still wants them: calls in flight
    // get a short grace, then are stopped so the process exits promptly.
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            eof.cancelled().await;
            tokio::time::sleep(EOF_GRACE).await;
            shutdown.cancel();
        }
    });
    let running = tokio::select! {
        running = server.serve((reader, writer)) => match running {
            Ok(running) => running,
            // The client went away before initialize: nothing to serve.
            Err(e) => {
                tracing::info!("session ended before it began: {e}");
                return Ok(());
            }
        },
        _ = stop_signal() => return Ok(()),
        _ = stdout_gone.cancelled() => {
            stdout_closed();
            return Ok(());
        }
    };
    tokio::select! {
        biased;
        _ = stdout_gone.cancelled() => {
            stdout_closed();
            shutdown.cancel();
        }
        quit = running.waiting() => {
            tracing::info!(?quit, "session ended");
        }
        _ = stop_signal() => {
            tracing::info!("stopping on signal");
            shutdown.cancel();
        }
    }
    Ok(())
}

fn stdout_closed() {
    tracing::warn!(
        "stdout is closed, so no answer can reach the client: stopping, and cancelling calls in flight"
    );
}

async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            _ => std::future::pending::<()>().await,
        }
    }
    #[cfg(not(unix))]
    {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// stdout as rmcp writes it, noting the first error. rmcp logs a failed
/// write and carries on reading requests, whose answers can then never be
/// delivered.
struct WriteErrors<W> {
    inner: W,
    failed: CancellationToken,
}

impl<W> WriteErrors<W> {
    fn note<T>(&self, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if let Poll::Ready(Err(e)) = &poll {
            if !self.failed.is_cancelled() {
                tracing::debug!("writing to stdout failed: {e}");
            }
            self.failed.cancel();
        }
        poll
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for WriteErrors<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note(poll)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.note(poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.note(poll)
    }
}

/// stdin that reads as ended once stdout is gone: after a failed write, or,
/// where the platform reports it, as soon as the client closes its end of
/// stdout, before any answer is attempted. That keeps a call sent after the
/// close from reaching HiEnergy at all.
struct UntilStdoutGone<R> {
    inner: R,
    gone: CancellationToken,
    #[cfg(unix)]
    watch: Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>,
}

impl<R> UntilStdoutGone<R> {
    fn new(inner: R, gone: CancellationToken) -> Self {
        Self {
            inner,
            gone,
            #[cfg(unix)]
            watch: stdout_watch(),
        }
    }

    /// Whether the other end of stdout is known to be closed. Registers
    /// for a wake-up when that happens, so an idle session ends too.
    #[cfg(unix)]
    fn poll_closed(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(watch) = &self.watch else {
            return false;
        };
        loop {
            match watch.poll_write_ready(cx) {
                Poll::Ready(Ok(mut ready)) => {
                    if ready.ready().is_write_closed() {
                        return true;
                    }
                    // Writable is the usual state of stdout and says
                    // nothing: wait for the next change instead.
                    ready.clear_ready();
                }
                Poll::Ready(Err(e)) => {
                    tracing::debug!("cannot watch stdout: {e}");
                    self.watch = None;
                    return false;
                }
                Poll::Pending => return false,
            }
        }
    }

    #[cfg(not(unix))]
    fn poll_closed(&mut self, _cx: &mut Context<'_>) -> bool {
        false
    }
}

/// A second descriptor for stdout, registered only to learn when its reader
/// closes (a pipe reports an error condition then). Nothing is written
/// through it. None where stdout cannot be polled (a regular file).
#[cfg(unix)]
fn stdout_watch() -> Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> {
    use std::os::fd::AsFd;
    let fd = io::stdout().as_fd().try_clone_to_owned().ok()?;
    // SAFETY: the AsyncFd owns `fd`, an OwnedFd: it stays open, and is the
    // same descriptor, until the AsyncFd drops it.
    unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::WRITABLE).ok()
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for UntilStdoutGone<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.gone.is_cancelled() {
            return Poll::Ready(Ok(()));
        }
        if this.poll_closed(cx) {
            this.gone.cancel();
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

/// stdin that cancels a token when it reaches end of file, so that calls in
/// flight can be stopped: rmcp alone would wait up to five seconds for them.
struct EofSignal {
    inner: StdioReader,
    eof: CancellationToken,
}

impl AsyncRead for EofSignal {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &poll
            && buf.filled().len() == before
            && buf.remaining() > 0
        {
            self.eof.cancel();
        }
        poll
    }
}

/// stdin with one repair. rmcp cannot parse a request whose `params` is a
/// string, an array or a number, so it answers "Invalid request" without an
/// id, and the client waits for its answer forever. Such a line is handed
/// on under [`INVALID_PARAMS_METHOD`], which the server answers -32602 (or
/// -32601 for an unknown method) by the request's own id. Every other byte
/// passes through unchanged.
struct ParamsCheck<R> {
    inner: R,
    /// The line being collected, while it is short enough to check.
    line: Vec<u8>,
    /// Bytes ready for the reader, from `out_pos` on.
    out: Vec<u8>,
    out_pos: usize,
    /// The current line grew past [`MAX_CHECKED_LINE`]: the rest of it
    /// goes straight out.
    passing: bool,
    eof: bool,
}

impl<R> ParamsCheck<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            line: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            passing: false,
            eof: false,
        }
    }

    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let Some(newline) = data.iter().position(|b| *b == b'\n') else {
                if self.passing {
                    self.out.extend_from_slice(data);
                } else {
                    self.line.extend_from_slice(data);
                    if self.line.len() > MAX_CHECKED_LINE {
                        self.out.append(&mut self.line);
                        self.passing = true;
                    }
                }
                return;
            };
            let (end, rest) = data.split_at(newline + 1);
            if self.passing {
                self.out.extend_from_slice(end);
                self.passing = false;
            } else {
                self.line.extend_from_slice(end);
                match repair(&self.line) {
                    Some(fixed) => self.out.extend_from_slice(&fixed),
                    None => self.out.extend_from_slice(&self.line),
                }
                self.line.clear();
            }
            data = rest;
        }
    }
}

/// Whether some `"params"` member in the line holds something other than an
/// object or null. A top-level one that does is always found; a nested one
/// only costs the full parse that follows, which decides.
fn has_params_of_other_kind(line: &[u8]) -> bool {
    const KEY: &[u8] = b"\"params\"";
    let mut rest = line;
    while let Some(at) = rest.windows(KEY.len()).position(|w| w == KEY) {
        rest = &rest[at + KEY.len()..];
        let mut value = rest.iter().copied().skip_while(u8::is_ascii_whitespace);
        if value.next() != Some(b':') {
            continue;
        }
        match value.find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') | Some(b'n') => continue,
            _ => return true,
        }
    }
    false
}

/// The line rewritten under [`INVALID_PARAMS_METHOD`], if it is a request
/// with an answerable id whose params is not an object or null.
fn repair(line: &[u8]) -> Option<Vec<u8>> {
    use serde_json::{Value, json};
    // Nearly every request has params that are an object; parsing each
    // line a second time just to see that would sit on every call's path.
    if !has_params_of_other_kind(line) {
        return None;
    }
    let Ok(Value::Object(mut message)) = serde_json::from_slice::<Value>(line) else {
        return None;
    };
    let answerable = match message.get("id") {
        Some(Value::String(_)) => true,
        Some(Value::Number(n)) => n.is_i64() || n.is_u64(),
        _ => false,
    };
    let method = message.get("method").and_then(Value::as_str)?.to_owned();
    let params_ok = matches!(
        message.get("params"),
        None | Some(Value::Null) | Some(Value::Object(_))
    );
    if !answerable || params_ok {
        return None;
    }
    message.insert("method".into(), json!(INVALID_PARAMS_METHOD));
    message.insert("params".into(), json!({ "method": method }));
    let mut fixed = serde_json::to_vec(&message).ok()?;
    fixed.push(b'\n');
    Some(fixed)
}

impl<R: AsyncRead + Unpin> AsyncRead for ParamsCheck<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.out_pos < this.out.len() {
                let n = buf.remaining().min(this.out.len() - this.out_pos);
                buf.put_slice(&this.out[this.out_pos..this.out_pos + n]);
                this.out_pos += n;
                if this.out_pos == this.out.len() {
                    this.out.clear();
                    this.out_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 8192];
            let mut chunk_buf = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut chunk_buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {}
            }
            let data = chunk_buf.filled();
            if data.is_empty() {
                // An unterminated last line goes on as it came.
                this.eof = true;
                this.out.append(&mut this.line);
            } else {
                this.feed(data);
            }
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn only_lines_with_non_object_params_are_parsed_again() {
        for (line, expected) in [
            (r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, false),
            (
                r#"{"id":1,"method":"tools/call","params": {"name":"x"}}"#,
                false,
            ),
            (r#"{"id":1,"method":"tools/list","params" : null}"#, false),
            (r#"{"id":1,"method":"tools/call","params":"x"}"#, true),
            (r#"{"id":1,"method":"tools/call","params" :[1]}"#, true),
            (r#"{"id":1,"method":"tools/call","params":7}"#, true),
            // A nested object first does not hide a bad top-level one.
            (
                r#"{"id":1,"method":"m","x":{"params":{}},"params":"bad"}"#,
                true,
            ),
            // A value that merely says "params" is not a member.
            (r#"{"id":1,"method":"ping","note":"params"}"#, false),
        ] {
            assert_eq!(
                has_params_of_other_kind(line.as_bytes()),
                expected,
                "{line}"
            );
        }
    }
    use super::*;
    use serde_json::{Value, json};
    use tokio::io::AsyncReadExt;

    /// Feeds `input` in pieces of `step` bytes and reads everything back.
    async fn through(input: &[u8], step: usize) -> Vec<u8> {
        let mut source = pieces(input, step);
        let mut check = ParamsCheck::new(&mut source);
        let mut out = Vec::new();
        match check.read_to_end(&mut out).await {
            Ok(_) => out,
            Err(e) => panic!("{e}"),
        }
    }

    fn pieces(input: &[u8], step: usize) -> impl AsyncRead + Unpin {
        let pieces: Vec<Vec<u8>> = input.chunks(step.max(1)).map(<[u8]>::to_vec).collect();
        Pieces { pieces, next: 0 }
    }

    /// A reader that returns its input a piece per read, like a pipe.
    struct Pieces {
        pieces: Vec<Vec<u8>>,
        next: usize,
    }

    impl AsyncRead for Pieces {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = &mut *self;
            if let Some(piece) = this.pieces.get_mut(this.next) {
                let n = piece.len().min(buf.remaining());
                buf.put_slice(&piece[..n]);
                piece.drain(..n);
                if piece.is_empty() {
                    this.next += 1;
                }
            }
            Poll::Ready(Ok(()))
        }
    }

    fn lines(out: &[u8]) -> Vec<Value> {
        out.split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap_or(Value::Null))
            .collect()
    }

    #[tokio::test]
    async fn good_and_garbage_lines_pass_through_byte_for_byte() {
        let mut input = Vec::new();
        input.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"x\"}}\n");
        input.extend_from_slice(b"not json \"params\"\n\n\xff\xfe\r\n[1,2]\n");
        input.extend_from_slice(
            b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\",\"params\":\"s\"}\n",
        );
        input.extend_from_slice(
            b"{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"ping\",\"params\":\"s\"}\n",
        );
        input.extend_from_slice(
            b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\",\"params\":null}\n",
        );
        input.extend_from_slice(b"no newline at the end");
        for step in [1, 3, 7, 64, 100_000] {
            assert_eq!(through(&input, step).await, input, "step {step}");
        }
    }

    #[tokio::test]
    async fn non_object_params_are_handed_on_under_the_marker() {
        for params in [json!("add_contact"), json!([1, 2]), json!(5), json!(true)] {
            let line = format!(
                "{}\r\n",
                json!({"jsonrpc": "2.0", "id": "a", "method": "tools/call", "params": params})
            );
            for step in [1, 5, 4096] {
                let got = lines(&through(line.as_bytes(), step).await);
                assert_eq!(
                    got,
                    [
                        json!({"jsonrpc": "2.0", "id": "a", "method": INVALID_PARAMS_METHOD,
                            "params": {"method": "tools/call"}})
                    ],
                    "{params} step {step}"
                );
            }
        }
    }

    #[tokio::test]
    async fn long_lines_pass_through_unexamined() {
        let huge = "x".repeat(3 * MAX_CHECKED_LINE);
        let line = format!(
            "{}\n{}\n",
            json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": huge}),
            json!({"jsonrpc": "2.0", "id": 2, "method": "ping", "params": "x"}),
        );
        let out = through(line.as_bytes(), 8192).await;
        let got = lines(&out);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0]["method"], "ping");
        // The line after a long one is checked again.
        assert_eq!(got[1]["method"], INVALID_PARAMS_METHOD);
    }
}
