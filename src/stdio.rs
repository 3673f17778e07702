//! Serving over stdin/stdout until the client goes away or a signal asks.
//!
//! The client goes away in two ways: it closes stdin (EOF), or it closes its
//! end of stdout. After the second, no answer can reach it, so the session
//! ends at once: no more calls are read, and calls in flight are cancelled
//! rather than left to create contacts whose results would be lost.

// Replaced by rmcp's own transport in issue 18; until then its slicing is
// bounds-checked by hand.
#![allow(clippy::indexing_slicing)]

use std::collections::VecDeque;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::transport::{StdioReader, stdio_pipes};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::server::{HiEnergyServer, INVALID_PARAMS_METHOD, LINE_TOO_LONG_METHOD};
use crate::transport::{CallLane, Decoded, Message, decode_call};

/// The longest request line read, in bytes. A real call is a few kilobytes
/// (eleven fields of at most 1,000 characters each). A longer line is not
/// kept: its bytes are skipped as they arrive, and it is answered with a
/// JSON-RPC error, by its id when the line has one.
pub const MAX_LINE_BYTES: usize = 4 << 20;

/// Line buffers grown past this for one long line are given back after it,
/// so a single large request does not stay resident for the session.
const KEPT_BUFFER_BYTES: usize = 64 << 10;

/// The longest id an over-long line may have for it to be answered by that
/// id; JSON-RPC ids are short numbers or strings.
const MAX_ID_BYTES: usize = 256;

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
    let decoded = Decoded::default();
    let reader = UntilStdoutGone::new(
        LineCheck::new(
            EofSignal {
                inner: reader,
                eof: eof.clone(),
            },
            Some(decoded.clone()),
        ),
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
    let session = server.clone();
    let running = tokio::select! {
        running = server.serve(CallLane::new(reader, writer, decoded)) => match running {
            Ok(running) => {
                // After the initialize answer is written (or, on 2026-07-28,
                // with the first request queued), so start-up does not pay.
                session.prepare();
                running
            }
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

/// stdin, line by line, with three repairs; every other byte passes
/// through unchanged.
///
/// - rmcp cannot parse a request whose `params` is a string, an array or a
///   number, so it answers "Invalid request" without an id, and the client
///   waits for its answer forever. Such a line is handed on under
///   [`INVALID_PARAMS_METHOD`], which the server answers -32602 (or -32601
///   for an unknown method) by the request's own id.
/// - A line longer than [`MAX_LINE_BYTES`] is skipped as it arrives, never
///   held whole, and handed on as a request for [`LINE_TOO_LONG_METHOD`]
///   under its id, which the server answers -32600. Without an id it becomes
///   a line rmcp answers "Invalid request" with no id.
/// - A last line without its newline is ended, so rmcp does not drop it.
struct LineCheck<R> {
    inner: R,
    /// The line being collected, at most [`MAX_LINE_BYTES`].
    line: Vec<u8>,
    /// Set while the rest of an over-long line is skipped.
    skipping: Option<IdScan>,
    /// What is ready for the reader, in order; the bytes at the front
    /// from `out_pos` on.
    out: VecDeque<Out>,
    out_pos: usize,
    /// Where a decoded `tools/call` is handed over; None reads every line
    /// as bytes.
    lane: Option<Decoded>,
    eof: bool,
    /// Where stdin is read into. Kept, and never zeroed: a fresh zeroed
    /// array on every poll cost more instructions than the rest of the
    /// read (about 8 K per poll, several polls per call).
    chunk: Vec<MaybeUninit<u8>>,
}

/// One thing ready for rmcp's reader.
enum Out {
    /// A line (or what is left of it), with its newline.
    Bytes(Vec<u8>),
    /// A `tools/call` already decoded (see [`crate::transport`]).
    Call(Box<Message>),
}

/// How much of stdin one poll reads: a typical call's line, whole.
const READ_CHUNK_BYTES: usize = 8192;

impl<R> LineCheck<R> {
    fn new(inner: R, lane: Option<Decoded>) -> Self {
        Self {
            inner,
            line: Vec::new(),
            skipping: None,
            out: VecDeque::new(),
            out_pos: 0,
            lane,
            eof: false,
            chunk: vec![MaybeUninit::uninit(); READ_CHUNK_BYTES],
        }
    }

    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let (piece, rest, ends) = match data.iter().position(|b| *b == b'\n') {
                Some(newline) => (&data[..=newline], &data[newline + 1..], true),
                None => (data, &[][..], false),
            };
            data = rest;
            if let Some(scan) = &mut self.skipping {
                scan.feed(piece);
                if ends {
                    self.too_long();
                }
                continue;
            }
            let content = self.line.len() + piece.len() - usize::from(ends);
            if content > MAX_LINE_BYTES {
                let mut scan = IdScan::default();
                scan.feed(&self.line);
                scan.feed(piece);
                self.line = Vec::new();
                self.skipping = Some(scan);
                if ends {
                    self.too_long();
                }
                continue;
            }
            self.line.extend_from_slice(piece);
            if ends {
                self.end_line();
            }
        }
    }

    /// Hands on the collected line: a call decoded, or the bytes, repaired
    /// if need be.
    fn end_line(&mut self) {
        let call = match self.lane {
            Some(_) => decode_call(&self.line),
            None => None,
        };
        match call {
            // The usual case: the line buffer is kept for the next line.
            Some(call) => self.out.push_back(Out::Call(Box::new(call))),
            None => match repair(&self.line) {
                Some(fixed) => self.push_bytes(fixed),
                None => {
                    let line = std::mem::take(&mut self.line);
                    self.push_bytes(line);
                }
            },
        }
        self.line.clear();
        if self.line.capacity() > KEPT_BUFFER_BYTES {
            self.line = Vec::new();
        }
    }

    /// The over-long line being skipped has ended: hand on what answers it.
    fn too_long(&mut self) {
        let id = self.skipping.take().and_then(|scan| scan.id());
        let named = id
            .as_ref()
            .map_or_else(|| "none found".to_owned(), |id| id.to_string());
        tracing::warn!(
            "a request line over {MAX_LINE_BYTES} bytes (id: {named}) was skipped and is answered with an error"
        );
        let line = match id {
            Some(id) => json!({
                "jsonrpc": "2.0",
                "id": id,
                "method": LINE_TOO_LONG_METHOD,
                "params": {"limit_bytes": MAX_LINE_BYTES},
            }),
            // Valid JSON that is no JSON-RPC message: rmcp answers it
            // "Invalid request" without an id, as MCP asks for a request
            // whose id cannot be read.
            None => json!({"jsonrpc": "2.0", "error": "request line too long"}),
        };
        let mut bytes = line.to_string().into_bytes();
        bytes.push(b'\n');
        self.push_bytes(bytes);
    }

    /// Queues lines for rmcp, after any still queued: one buffer for a run
    /// of them, so that a chunk of short lines (8 KiB of bare newlines is
    /// 8,192 lines) costs one allocation, not one per line.
    fn push_bytes(&mut self, bytes: Vec<u8>) {
        match self.out.back_mut() {
            Some(Out::Bytes(queued)) => queued.extend_from_slice(&bytes),
            _ => self.out.push_back(Out::Bytes(bytes)),
        }
    }

    /// stdin has ended: a last line without its newline is still a line.
    fn end_of_input(&mut self) {
        self.eof = true;
        if self.skipping.is_some() {
            self.too_long();
        } else if !self.line.is_empty() {
            self.line.push(b'\n');
            self.end_line();
        }
    }
}

/// The stdin framing without I/O, for the fuzz target (`fuzz/`): `pieces`
/// fed as they would arrive, then the end of input; returns what rmcp
/// would read.
#[doc(hidden)]
pub fn frame_for_fuzzing(pieces: &[&[u8]]) -> Vec<u8> {
    let mut check = LineCheck::new((), None);
    for piece in pieces {
        check.feed(piece);
    }
    check.end_of_input();
    let mut out = Vec::new();
    for piece in check.out {
        if let Out::Bytes(bytes) = piece {
            out.extend_from_slice(&bytes);
        }
    }
    out
}

/// Finds the id of a JSON-RPC message read in pieces, keeping nothing of it
/// but the id's own text: for a line too long to keep. Only a member of the
/// top-level object counts (an `"id"` inside params is not the request's).
#[derive(Default)]
struct IdScan {
    /// Nesting of objects and arrays; 1 inside the top-level object.
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// At depth 1, the next string is a member name.
    want_name: bool,
    /// Reading a member name at depth 1; its first bytes, enough to tell
    /// "id" from anything else.
    name: Option<Vec<u8>>,
    /// The last member name at depth 1 was "id".
    name_is_id: bool,
    /// The text of the id's value while it is read.
    value: Option<Vec<u8>>,
    /// The id's text, once read whole and short enough.
    found: Option<Vec<u8>>,
}

impl IdScan {
    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.step(b);
        }
    }

    fn step(&mut self, b: u8) {
        if let Some(value) = &mut self.value {
            value.push(b);
            // Room for the `,` or `}` that ends it.
            if value.len() > MAX_ID_BYTES + 1 {
                self.value = None;
            }
        }
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_string = false;
                if let Some(name) = self.name.take() {
                    self.name_is_id = name == b"id";
                }
                return;
            }
            if let Some(name) = &mut self.name
                && name.len() < 3
            {
                name.push(b);
            }
            return;
        }
        match b {
            b'"' => {
                self.in_string = true;
                if self.depth == 1 && self.want_name {
                    self.want_name = false;
                    self.name = Some(Vec::new());
                }
            }
            b'{' | b'[' => {
                self.depth += 1;
                if self.depth == 1 {
                    self.want_name = b == b'{';
                }
            }
            b'}' | b']' => {
                if self.depth == 1 {
                    self.end_value();
                }
                self.depth = self.depth.saturating_sub(1);
            }
            b':' if self.depth == 1 && self.name_is_id => {
                self.name_is_id = false;
                self.value = Some(Vec::new());
            }
            b',' if self.depth == 1 => {
                self.end_value();
                self.want_name = true;
            }
            _ => {}
        }
    }

    fn end_value(&mut self) {
        if let Some(mut value) = self.value.take() {
            // The `,` or `}` that ended it.
            value.pop();
            self.found = Some(value);
        }
    }

    /// The id, if the top-level object had one that can be answered: a
    /// string or an integer.
    fn id(&self) -> Option<Value> {
        let id = serde_json::from_slice::<Value>(self.found.as_deref()?).ok()?;
        match &id {
            Value::String(_) => Some(id),
            Value::Number(n) if n.is_i64() || n.is_u64() => Some(id),
            _ => None,
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

impl<R: AsyncRead + Unpin> AsyncRead for LineCheck<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            match this.out.pop_front() {
                Some(Out::Bytes(bytes)) => {
                    let n = buf.remaining().min(bytes.len() - this.out_pos);
                    buf.put_slice(&bytes[this.out_pos..this.out_pos + n]);
                    this.out_pos += n;
                    if this.out_pos < bytes.len() {
                        this.out.push_front(Out::Bytes(bytes));
                    } else {
                        this.out_pos = 0;
                    }
                    return Poll::Ready(Ok(()));
                }
                // Every line before this call has been read and dealt with
                // (rmcp reads again only after that), so the call is next:
                // it is handed over and this read reports nothing. CallLane
                // takes it the moment this returns, so no wake-up is due.
                Some(Out::Call(call)) => {
                    let offered = match &this.lane {
                        Some(lane) => lane.offer(call),
                        None => Err(call),
                    };
                    if let Err(call) = offered {
                        // The last call not taken yet (CallLane always
                        // takes it first, so this is defensive): try again.
                        this.out.push_front(Out::Call(call));
                        cx.waker().wake_by_ref();
                    }
                    return Poll::Pending;
                }
                None => {}
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            // Taken out for the read so that `feed` can borrow the rest of
            // self; put back before anything returns.
            let mut chunk = std::mem::take(&mut this.chunk);
            let mut chunk_buf = ReadBuf::uninit(&mut chunk[..]);
            let polled = Pin::new(&mut this.inner).poll_read(cx, &mut chunk_buf);
            match polled {
                Poll::Ready(Ok(())) if chunk_buf.filled().is_empty() => this.end_of_input(),
                Poll::Ready(Ok(())) => this.feed(chunk_buf.filled()),
                other => {
                    this.chunk = chunk;
                    return other;
                }
            }
            this.chunk = chunk;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

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

    /// Feeds `input` in pieces of `step` bytes and reads everything back.
    async fn through(input: &[u8], step: usize) -> Vec<u8> {
        let mut source = pieces(input, step);
        let mut check = LineCheck::new(&mut source, None);
        let mut out = Vec::new();
        match check.read_to_end(&mut out).await {
            Ok(_) => out,
            Err(e) => panic!("{e}"),
        }
    }

    fn pieces(input: &[u8], step: usize) -> Pieces {
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

    /// Lines a client might send at once, read through the reader and the
    /// transport as the server reads them: calls decoded on the reader's
    /// side come out among rmcp's own messages in the order sent, and rmcp
    /// still answers what it refuses.
    #[tokio::test]
    async fn decoded_calls_keep_their_place_among_other_messages() {
        use rmcp::transport::Transport;
        use tokio::io::AsyncReadExt;

        let call = |id: u32| {
            format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"add_contact","arguments":{{"advertiser_id":1}}}}}}"#
            )
        };
        let sent = [
            call(1),
            r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#.to_owned(),
            call(3),
            call(4),
            "not json".to_owned(),
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":4}}"#
                .to_owned(),
            // Refused by rmcp's shape check: answered, not read.
            r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"x"},"result":{}}"#
                .to_owned(),
            r#"{"jsonrpc":"2.0","id":6,"method":"tools/list","params":{}}"#.to_owned(),
            // The last line, without its newline.
            call(7),
        ];
        let input = sent.join("\n");
        for step in [1, 13, 100_000] {
            let decoded = Decoded::default();
            let check = LineCheck::new(pieces(input.as_bytes(), step), Some(decoded.clone()));
            let (answers, mut answers_read) = tokio::io::duplex(1 << 16);
            let mut lane = CallLane::new(check, answers, decoded);
            let mut got = Vec::new();
            let read_all = async {
                while let Some(message) = lane.receive().await {
                    let message = serde_json::to_value(&message).unwrap_or(Value::Null);
                    got.push(format!("{} {}", message["method"], message["id"]));
                }
            };
            if tokio::time::timeout(Duration::from_secs(10), read_all)
                .await
                .is_err()
            {
                panic!("reading stalled after {got:?}, {step} bytes at a time");
            }
            assert_eq!(
                got,
                [
                    r#""tools/call" 1"#,
                    r#""ping" 2"#,
                    r#""tools/call" 3"#,
                    r#""tools/call" 4"#,
                    r#""notifications/cancelled" null"#,
                    r#""tools/list" 6"#,
                    r#""tools/call" 7"#,
                ],
                "read {step} bytes at a time"
            );
            drop(lane);
            let mut written = String::new();
            if let Err(e) = answers_read.read_to_string(&mut written).await {
                panic!("{e}");
            }
            assert!(
                written.contains("Invalid request") && written.lines().count() == 1,
                "{written}"
            );
        }
    }

    #[test]
    fn a_plain_call_is_decoded_by_the_reader_and_anything_else_is_passed_on() {
        let mut check = LineCheck::new((), Some(Decoded::default()));
        check.feed(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"x\"}}\n");
        check.feed(b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}\n");
        assert!(matches!(
            check.out.iter().collect::<Vec<_>>()[..],
            [Out::Call(_), Out::Bytes(_)]
        ));
        // Lines for rmcp that follow one another share one buffer.
        check.feed(&[b'\n'; 8192]);
        check.feed(b"not json\n");
        let queued: Vec<String> = check
            .out
            .iter()
            .map(|out| match out {
                Out::Call(_) => "call".to_owned(),
                Out::Bytes(bytes) => format!("{} bytes", bytes.len()),
            })
            .collect();
        assert_eq!(
            queued,
            ["call".to_owned(), format!("{} bytes", 41 + 8192 + 9)]
        );
        // Without a lane (the fuzz target's framing) every line is bytes.
        let mut check = LineCheck::new((), None);
        check.feed(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"x\"}}\n");
        assert!(matches!(
            check.out.iter().collect::<Vec<_>>()[..],
            [Out::Bytes(_)]
        ));
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
        for step in [1, 3, 7, 64, 100_000] {
            assert_eq!(through(&input, step).await, input, "step {step}");
        }
    }

    #[tokio::test]
    async fn a_last_line_without_its_newline_is_ended() {
        let ping = br#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#;
        let mut input = b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}\n".to_vec();
        input.extend_from_slice(ping);
        for step in [1, 5, 4096] {
            let out = through(&input, step).await;
            assert!(out.ends_with(b"}\n"), "step {step}");
            assert_eq!(out.len(), input.len() + 1, "step {step}");
        }
        // The repair applies to it too.
        let bad = br#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":"x"}"#;
        let got = lines(&through(bad, 7).await);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["method"], INVALID_PARAMS_METHOD);
        // Nothing is made up when the input ends on a newline, or is empty.
        assert_eq!(through(b"x\n", 1).await, b"x\n");
        assert_eq!(through(b"", 1).await, b"");
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
    async fn long_lines_up_to_the_limit_are_checked_like_short_ones() {
        let huge = "x".repeat(3 << 20);
        let line = format!(
            "{}\n{}\n",
            json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": huge}),
            json!({"jsonrpc": "2.0", "id": 2, "method": "ping", "params": {"x": huge}}),
        );
        let got = lines(&through(line.as_bytes(), 8192).await);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0]["method"], INVALID_PARAMS_METHOD);
        assert_eq!(got[1]["method"], "ping");
        assert_eq!(got[1]["params"]["x"].as_str().map(str::len), Some(3 << 20));
    }

    /// A line of exactly `len` bytes (newline not counted) with `id` first
    /// or last, padded inside params.
    fn line_of(len: usize, id: &str, id_last: bool) -> Vec<u8> {
        let (head, tail) = if id_last {
            (
                r#"{"method":"tools/call","params":{"pad":""#.to_owned(),
                format!(r#""}},"jsonrpc":"2.0","id":{id}}}"#),
            )
        } else {
            (
                format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"pad":""#),
                r#""}}"#.to_owned(),
            )
        };
        let mut line = head.into_bytes();
        line.resize(len - tail.len(), b'p');
        line.extend_from_slice(tail.as_bytes());
        line
    }

    #[tokio::test]
    async fn a_line_at_the_limit_passes_and_one_byte_more_is_answered_by_its_id() {
        for id_last in [false, true] {
            let mut input = line_of(MAX_LINE_BYTES, "7", id_last);
            input.push(b'\n');
            let got = lines(&through(&input, 65536).await);
            assert_eq!(got.len(), 1);
            assert_eq!(got[0]["method"], "tools/call", "id last: {id_last}");

            let mut input = line_of(MAX_LINE_BYTES + 1, "7", id_last);
            input.extend_from_slice(b"\n{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"ping\"}\n");
            let got = lines(&through(&input, 65536).await);
            assert_eq!(
                got,
                [
                    json!({"jsonrpc": "2.0", "id": 7, "method": LINE_TOO_LONG_METHOD,
                        "params": {"limit_bytes": MAX_LINE_BYTES}}),
                    json!({"jsonrpc": "2.0", "id": 8, "method": "ping"}),
                ],
                "id last: {id_last}"
            );
        }
    }

    #[tokio::test]
    async fn an_over_long_line_without_an_id_gets_an_id_less_invalid_request() {
        for id in [None, Some("null"), Some("1.5"), Some("{}")] {
            let mut line = match id {
                Some(id) => line_of(MAX_LINE_BYTES + 10, id, true),
                None => vec![b' '; MAX_LINE_BYTES + 10],
            };
            // Ended by the end of input rather than a newline.
            let got = lines(&through(&line, 65536).await);
            assert_eq!(got.len(), 1, "{id:?}");
            assert!(got[0].get("id").is_none(), "{id:?}: {}", got[0]);
            assert!(got[0].get("method").is_none(), "{id:?}: {}", got[0]);
            line.push(b'\n');
            assert_eq!(lines(&through(&line, 65536).await), got);
        }
    }

    #[tokio::test]
    async fn an_over_long_line_is_never_held_whole() {
        let mut input = line_of(20 << 20, r#""big""#, true);
        input.push(b'\n');
        let mut source = pieces(&input, 65536);
        let mut check = LineCheck::new(&mut source, None);
        let mut out = Vec::new();
        let mut chunk = [0u8; 8192];
        let mut largest = 0;
        loop {
            match check.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("{e}"),
            }
            largest = largest.max(check.line.capacity() + check.out.capacity());
        }
        assert!(largest <= 2 * MAX_LINE_BYTES, "{largest}");
        assert!(check.line.capacity() <= KEPT_BUFFER_BYTES);
        assert!(check.out.capacity() <= KEPT_BUFFER_BYTES);
        let got = lines(&out);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["id"], "big");
    }

    fn scan(text: &str) -> Option<Value> {
        let mut scan = IdScan::default();
        // In two pieces, split mid-token.
        let (a, b) = text.split_at(text.len() / 2);
        scan.feed(a.as_bytes());
        scan.feed(b.as_bytes());
        scan.id()
    }

    #[test]
    fn the_id_scan_finds_only_the_top_level_id() {
        assert_eq!(
            scan(r#"{"jsonrpc":"2.0","id":12,"method":"x"}"#),
            Some(json!(12))
        );
        assert_eq!(
            scan(r#"{"method":"x","id" : "a\"}b" }"#),
            Some(json!("a\"}b"))
        );
        assert_eq!(
            scan(r#"{"params":{"id":1,"x":["id",{"id":2}]},"note":"\"id\":3","id":4}"#),
            Some(json!(4))
        );
        assert_eq!(scan(r#"{"params":{"id":1}}"#), None);
        assert_eq!(scan(r#"{"ids":1,"i":2,"d":3}"#), None);
        assert_eq!(scan(r#"[{"id":1}]"#), None);
        assert_eq!(scan(r#"{"id":null}"#), None);
        assert_eq!(scan(r#"{"id":1.5}"#), None);
        assert_eq!(scan(r#"{"id":{"a":1}}"#), None);
        assert_eq!(scan(r#"{"id":-3}"#), Some(json!(-3)));
        let long = "i".repeat(MAX_ID_BYTES);
        assert_eq!(scan(&format!(r#"{{"id":"{long}"}}"#)), None);
        let fits = "i".repeat(MAX_ID_BYTES - 2);
        assert_eq!(scan(&format!(r#"{{"id":"{fits}"}}"#)), Some(json!(fits)));
        // Cut off inside the id: nothing to answer by.
        assert_eq!(scan(r#"{"id":"abc"#), None);
    }
}
