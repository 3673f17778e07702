//! The floor under the server's cold start, for `cargo bench --bench stdio`
//! (which builds it with `cargo build --release --example stdin_floor`): a
//! bare tokio current-thread program, started as the server starts, that
//! reads one line from stdin and writes one line back. Nothing an MCP
//! server over tokio stdio does before its `initialize` answer can cost
//! less; the difference between the two is what the server adds.
//!
//! It answers like an initialize (so the bench drives it as it drives the
//! server) and then, like the server, exits when stdin closes.

// Test and bench code: a failed unwrap is a failed test (clippy.toml allows
// this inside #[test] functions; here it covers the harness too).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

fn main() -> std::io::Result<()> {
    // Built as the server builds its runtime.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut stdin = BufReader::new(tokio::io::stdin());
        let mut line = String::new();
        stdin.read_line(&mut line).await?;
        let mut stdout = tokio::io::stdout();
        stdout
            .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":0,\"result\":{\"serverInfo\":{\"name\":\"floor\",\"version\":\"0\"}}}\n")
            .await?;
        stdout.flush().await?;
        loop {
            line.clear();
            if stdin.read_line(&mut line).await? == 0 {
                return Ok(());
            }
        }
    })
}
