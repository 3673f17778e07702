//! Serving over stdin/stdout until the client goes away or a signal asks.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::transport::{StdioReader, stdio_pipes};
use tokio::io::{AsyncRead, ReadBuf};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::server::HiEnergyServer;

/// How long calls in flight may still finish after stdin closes.
pub const EOF_GRACE: Duration = Duration::from_millis(700);

/// Runs the server on stdio. Returns when stdin closes or on SIGINT/SIGTERM.
pub async fn serve(config: Config) -> Result<(), rmcp::RmcpError> {
    let shutdown = CancellationToken::new();
    let server = HiEnergyServer::new(config, shutdown.clone());
    let (reader, writer) = stdio_pipes();
    let eof = CancellationToken::new();
    let reader = EofSignal {
        inner: reader,
        eof: eof.clone(),
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
    };
    tokio::select! {
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
