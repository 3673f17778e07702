//! Serving over stdin/stdout until the client goes away or a signal asks.
//!
//! The transport is rmcp's own ([`AsyncRwTransport`] on [`stdio_pipes`],
//! with [`MAX_LINE_BYTES`] as its line limit: a longer line is dropped as it
//! arrives, never held whole, and the session goes on). Around it, only what
//! rmcp 3.11 lacks and a user would notice:
//!
//! - A closed stdout ends the session. rmcp logs a failed write and keeps
//!   reading, so calls sent after the client stopped listening would still
//!   create contacts whose results nobody sees. [`Stdin`] reads as ended
//!   once a write has failed, or once the other end of stdout is known to be
//!   closed, which also stops calls still queued in the pipe.
//!   Upstream: `AsyncRwTransport::receive` could return `None` after a
//!   failed `send` (or the service could quit on a transport write error).
//! - A prompt exit after stdin ends. rmcp waits up to 5 s for calls in
//!   flight; here they get [`EOF_GRACE`] and are then cancelled.
//!   Upstream: a configurable drain timeout for `QuitReason::Closed` in
//!   `serve_inner` (today a fixed `Duration::from_secs(5)`).
//! - A last request without its newline is answered. rmcp drops the bytes
//!   left at EOF, so [`Stdin`] ends such a line itself.
//!   Upstream: `AsyncRwTransport::read_line` could treat a non-empty
//!   `line_buf` at EOF as a last line, as `BufRead::lines` does.
//! - SIGINT and SIGTERM end the session, cancel calls in flight and exit 0.
//!   Upstream: nothing to change; which signals stop a server is the
//!   application's choice, as in rmcp's own examples.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::transport::async_rw::AsyncRwTransport;
use rmcp::transport::stdio_pipes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::server::HiEnergyServer;

/// The longest request line read, in bytes, its newline included. A real
/// call is a few kilobytes (eleven fields of at most 1,000 characters
/// each); the longest `add_contacts` list about a megabyte. rmcp drops a
/// longer line unanswered and keeps serving.
pub const MAX_LINE_BYTES: usize = 4 << 20;

/// How long calls in flight may still finish after stdin closes.
pub const EOF_GRACE: Duration = Duration::from_millis(700);

/// Runs the server on stdio. Returns when stdin closes, when stdout can no
/// longer be written, or on SIGINT/SIGTERM.
pub async fn serve(config: Config) -> Result<(), rmcp::RmcpError> {
    let shutdown = CancellationToken::new();
    let server = HiEnergyServer::new(config, shutdown.clone());
    let (stdin, stdout) = stdio_pipes();
    let eof = CancellationToken::new();
    let stdout_gone = CancellationToken::new();
    let transport = AsyncRwTransport::new_server(
        Stdin::new(stdin, eof.clone(), stdout_gone.clone()),
        WriteErrors {
            inner: stdout,
            failed: stdout_gone.clone(),
        },
    )
    .with_max_line_length(MAX_LINE_BYTES);
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
        running = server.serve(transport) => match running {
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

/// stdout as rmcp writes it, noting the first error.
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

/// stdin as rmcp reads it: it reads as ended once stdout is gone (after a
/// failed write, or, where the platform reports it, as soon as the client
/// closes its end of stdout, before any answer is attempted), it cancels
/// `eof` when it ends, and a last line without its newline gets one.
struct Stdin<R> {
    inner: R,
    eof: CancellationToken,
    stdout_gone: CancellationToken,
    /// Whether the last byte read ended a line (or nothing was read yet).
    at_line_start: bool,
    #[cfg(unix)]
    watch: Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>,
}

impl<R> Stdin<R> {
    fn new(inner: R, eof: CancellationToken, stdout_gone: CancellationToken) -> Self {
        Self {
            inner,
            eof,
            stdout_gone,
            at_line_start: true,
            #[cfg(unix)]
            watch: stdout_watch(),
        }
    }

    /// Whether the other end of stdout is known to be closed. Registers
    /// for a wake-up when that happens, so an idle session ends too.
    #[cfg(unix)]
    fn poll_stdout_closed(&mut self, cx: &mut Context<'_>) -> bool {
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
    fn poll_stdout_closed(&mut self, _cx: &mut Context<'_>) -> bool {
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

impl<R: AsyncRead + Unpin> AsyncRead for Stdin<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.stdout_gone.is_cancelled() {
            return Poll::Ready(Ok(()));
        }
        if this.poll_stdout_closed(cx) {
            this.stdout_gone.cancel();
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &poll
            && buf.remaining() > 0
        {
            match buf.filled().get(before..).and_then(<[u8]>::last) {
                Some(&last) => this.at_line_start = last == b'\n',
                None => {
                    this.eof.cancel();
                    if !this.at_line_start {
                        buf.put_slice(b"\n");
                        this.at_line_start = true;
                    }
                }
            }
        }
        poll
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// Everything read from `input` through [`Stdin`], and whether it
    /// signalled the end of input.
    async fn read_all(input: &'static [u8], stdout_gone: bool) -> (Vec<u8>, bool) {
        let (eof, gone) = (CancellationToken::new(), CancellationToken::new());
        if stdout_gone {
            gone.cancel();
        }
        let mut stdin = Stdin::new(input, eof.clone(), gone);
        let mut out = Vec::new();
        if let Err(e) = stdin.read_to_end(&mut out).await {
            panic!("{e}");
        }
        (out, eof.is_cancelled())
    }

    #[tokio::test]
    async fn a_last_line_without_its_newline_is_ended_and_nothing_else_changes() {
        assert_eq!(read_all(b"a\nb", false).await, (b"a\nb\n".to_vec(), true));
        assert_eq!(
            read_all(b"a\r\nb\n", false).await,
            (b"a\r\nb\n".to_vec(), true)
        );
        assert_eq!(read_all(b"", false).await, (Vec::new(), true));
    }

    #[tokio::test]
    async fn nothing_more_is_read_once_stdout_is_gone() {
        let ping = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n";
        assert_eq!(read_all(ping, true).await, (Vec::new(), false));
    }
}
