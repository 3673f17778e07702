use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use hienergy_mcp::config::{Args, Config};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.log_level.as_deref());

    let config = match Config::from_args(&args, |name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(2);
        }
    };
    for notice in &config.notices {
        tracing::warn!("{notice}");
    }
    for problem in &config.problems {
        tracing::error!("{problem}; every call will answer not_configured until it is fixed");
    }
    // Claude Code shows every stderr line as an error: a normal start
    // says nothing above debug.
    match &config.api_key_source {
        Some(source) => tracing::debug!(base_url = %config.base_url, "API key from {source}"),
        None => tracing::warn!(
            "no API key: set HIENERGY_API_KEY in this server's \"env\" in your MCP client config; \
             calls will answer not_configured until then (dry_run still works)"
        ),
    }

    // One thread is plenty for an I/O-bound server with a single tool, and
    // starts faster and smaller than a pool.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(hienergy_mcp::stdio::serve(config));
    // A blocking stdin read (when stdin is not a pipe) cannot be cancelled;
    // do not let it hold the exit.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr: stdout carries JSON-RPC and nothing else.
///
/// The filter is `Targets` (`info`, `hienergy_mcp=debug,warn`) rather than
/// `EnvFilter`: the same directives people write in practice, without the
/// regex engine, which costs a fifth of the binary and its resident pages.
/// The default is `warn`: some clients show every stderr line as an error.
fn init_logging(level: Option<&str>) {
    const DEFAULT: &str = "warn";
    let from_env = |var: &str| std::env::var(var).ok().filter(|v| !v.trim().is_empty());
    let requested = level
        .map(str::to_owned)
        .or_else(|| from_env("HIENERGY_LOG_LEVEL"))
        .or_else(|| from_env("RUST_LOG"));
    let parsed = requested.as_deref().map(str::parse::<Targets>);
    let filter = match &parsed {
        Some(Ok(filter)) => filter.clone(),
        _ => DEFAULT.parse().unwrap_or_else(|_| Targets::new()),
    };
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .with_target(false),
        )
        .with(filter)
        .init();
    if let (Some(text), Some(Err(e))) = (requested, parsed) {
        tracing::warn!("ignoring log filter {text:?} ({e}); using {DEFAULT}");
    }
}
