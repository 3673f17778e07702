//! Settings: the command line and environment, checked once at start.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

pub const DEFAULT_BASE_URL: &str = "https://app.hienergy.ai";
/// Environment variables that may hold the API key, in order of preference.
pub const API_KEY_VARS: [&str; 2] = ["HIENERGY_API_KEY", "HI_ENERGY_API_KEY"];

/// MCP server for HiEnergy: one tool, add_contact, over stdio.
///
/// The API key comes from HIENERGY_API_KEY (or HI_ENERGY_API_KEY), or from
/// --api-key-file; it is never a flag, since flags show in `ps`.
#[derive(Debug, Clone, Parser)]
#[command(name = "hienergy-mcp", version, about, long_about)]
pub struct Args {
    /// HiEnergy base URL. http:// is accepted only for loopback hosts.
    #[arg(long, env = "HIENERGY_BASE_URL", default_value = DEFAULT_BASE_URL)]
    pub base_url: String,

    /// Read the API key from this file (first line, trimmed) instead of the environment.
    #[arg(long, env = "HIENERGY_API_KEY_FILE", value_name = "PATH")]
    pub api_key_file: Option<PathBuf>,

    /// Total time for one HiEnergy request, e.g. 30, 30s, 1m.
    #[arg(long, env = "HIENERGY_TIMEOUT", default_value = "30", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Time to open a connection to HiEnergy, e.g. 5, 5s.
    #[arg(long, env = "HIENERGY_CONNECT_TIMEOUT", default_value = "5", value_parser = parse_duration)]
    pub connect_timeout: Duration,

    /// Re-sends allowed when HiEnergy certainly did not receive a request
    /// (connection refused, DNS or TLS failure, 429 with a short Retry-After).
    #[arg(long, env = "HIENERGY_MAX_RETRIES", default_value_t = 2)]
    pub max_retries: u32,

    /// Longest Retry-After the server waits out by itself before reporting rate_limited.
    #[arg(long, env = "HIENERGY_MAX_RETRY_WAIT", default_value = "5", value_parser = parse_duration)]
    pub max_retry_wait: Duration,

    /// How long an identical successful call is replayed instead of re-sent; 0 turns it off.
    #[arg(long, env = "HIENERGY_DEDUPE_WINDOW", default_value = "10m", value_parser = parse_duration)]
    pub dedupe_window: Duration,

    /// Log filter for stderr (overrides RUST_LOG), e.g. info, debug, hienergy_mcp=trace.
    #[arg(long, env = "HIENERGY_LOG_LEVEL")]
    pub log_level: Option<String>,
}

/// Plain numbers are seconds; anything else is a humantime duration (`10m`, `1.5s`).
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    if let Ok(seconds) = raw.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds)
            .map_err(|_| format!("{raw:?} is not a duration (a number of seconds ≥ 0)"));
    }
    humantime::parse_duration(raw).map_err(|e| format!("{raw:?} is not a duration: {e}"))
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("the base URL {url:?} (--base-url / HIENERGY_BASE_URL) is not usable: {reason}")]
    BadBaseUrl { url: String, reason: String },
    #[error(
        "the base URL {0:?} (--base-url / HIENERGY_BASE_URL) uses http://, which would send the API key in clear text; use https:// (http:// is allowed only for localhost/127.0.0.1/::1)"
    )]
    InsecureBaseUrl(String),
    #[error("cannot read the API key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("the API key file {0} is empty")]
    EmptyKeyFile(String),
    #[error("--timeout and --connect-timeout must be more than 0")]
    ZeroTimeout,
}

/// The checked settings the server runs with.
#[derive(Clone)]
pub struct Config {
    pub base_url: Url,
    pub api_key: Option<SecretString>,
    /// Where the key came from, for the start-up log line.
    pub api_key_source: Option<String>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub max_retries: u32,
    pub max_retry_wait: Duration,
    pub dedupe_window: Duration,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("base_url", &self.base_url.as_str())
            .field(
                "api_key",
                &self
                    .api_key
                    .as_ref()
                    .map(|_| "[redacted]")
                    .unwrap_or("(none)"),
            )
            .field("api_key_source", &self.api_key_source)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_retries", &self.max_retries)
            .field("max_retry_wait", &self.max_retry_wait)
            .field("dedupe_window", &self.dedupe_window)
            .finish()
    }
}

impl Config {
    /// Checks the arguments; `env` looks up environment variables (the
    /// process environment in `main`, a map in tests).
    pub fn from_args(
        args: &Args,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let base_url = parse_base_url(&args.base_url)?;
        if args.timeout.is_zero() || args.connect_timeout.is_zero() {
            return Err(ConfigError::ZeroTimeout);
        }
        let (api_key, api_key_source) = match &args.api_key_file {
            Some(path) => {
                let shown = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError::KeyFile {
                    path: shown.clone(),
                    reason: e.to_string(),
                })?;
                let key = text.lines().next().unwrap_or_default().trim().to_owned();
                if key.is_empty() {
                    return Err(ConfigError::EmptyKeyFile(shown));
                }
                (Some(SecretString::from(key)), Some(shown))
            }
            None => API_KEY_VARS
                .iter()
                .find_map(|var| {
                    let key = env(var)?.trim().to_owned();
                    (!key.is_empty()).then(|| (SecretString::from(key), var.to_string()))
                })
                .map_or((None, None), |(key, var)| (Some(key), Some(var))),
        };
        Ok(Self {
            base_url,
            api_key,
            api_key_source,
            timeout: args.timeout,
            connect_timeout: args.connect_timeout,
            max_retries: args.max_retries,
            max_retry_wait: args.max_retry_wait,
            dedupe_window: args.dedupe_window,
        })
    }

    /// The key, for the one place that puts it in a header.
    pub fn api_key(&self) -> Option<&str> {
        self.api_key.as_ref().map(ExposeSecret::expose_secret)
    }
}

fn parse_base_url(raw: &str) -> Result<Url, ConfigError> {
    let bad = |reason: &str| ConfigError::BadBaseUrl {
        url: raw.to_owned(),
        reason: reason.to_owned(),
    };
    let mut url = Url::parse(raw.trim()).map_err(|e| bad(&e.to_string()))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it must not have a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("it must not carry credentials"));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => return Err(ConfigError::InsecureBaseUrl(raw.to_owned())),
        other => return Err(bad(&format!("scheme {other}: is not http(s)"))),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it has no host"));
    }
    // Joining a relative path onto `https://h/prefix` would drop `prefix`.
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec!["hienergy-mcp"];
        argv.extend_from_slice(extra);
        match Args::try_parse_from(argv) {
            Ok(args) => args,
            Err(e) => panic!("{e}"),
        }
    }

    fn config(extra: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_args(&args(extra), |k| env.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = config(&[], &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.base_url.as_str(), "https://app.hienergy.ai/");
        assert!(c.api_key.is_none());
        assert_eq!(c.timeout, Duration::from_secs(30));
        assert_eq!(c.connect_timeout, Duration::from_secs(5));
        assert_eq!(c.max_retries, 2);
        assert_eq!(c.max_retry_wait, Duration::from_secs(5));
        assert_eq!(c.dedupe_window, Duration::from_secs(600));
    }

    #[test]
    fn key_from_either_variable_preferring_the_first() {
        let c = config(&[], &[("HI_ENERGY_API_KEY", " alias ")]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.api_key(), Some("alias"));
        assert_eq!(c.api_key_source.as_deref(), Some("HI_ENERGY_API_KEY"));
        let c = config(
            &[],
            &[("HI_ENERGY_API_KEY", "b"), ("HIENERGY_API_KEY", "a")],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.api_key(), Some("a"));
        let c = config(&[], &[("HIENERGY_API_KEY", "  ")]).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.api_key.is_none());
    }

    #[test]
    fn key_from_file() {
        let dir = std::env::temp_dir().join(format!("hienergy-key-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("key");
        let _ = std::fs::write(&path, "filekey\nignored\n");
        let p = path.to_string_lossy().to_string();
        let c = config(&["--api-key-file", &p], &[("HIENERGY_API_KEY", "env")])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.api_key(), Some("filekey"));
        let _ = std::fs::write(&path, "\n");
        assert_eq!(
            config(&["--api-key-file", &p], &[]).err(),
            Some(ConfigError::EmptyKeyFile(p.clone()))
        );
        let missing = format!("{p}.missing");
        assert!(matches!(
            config(&["--api-key-file", &missing], &[]),
            Err(ConfigError::KeyFile { .. })
        ));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn debug_never_shows_the_key() {
        let c =
            config(&[], &[("HIENERGY_API_KEY", "sekret-canary")]).unwrap_or_else(|e| panic!("{e}"));
        let shown = format!("{c:?}");
        assert!(!shown.contains("sekret-canary"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn http_only_for_loopback() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:9",
            "http://127.1.2.3",
        ] {
            assert!(config(&["--base-url", ok], &[]).is_ok(), "{ok}");
        }
        for insecure in [
            "http://app.hienergy.ai",
            "http://10.0.0.1",
            "http://localhost.evil.com",
        ] {
            assert!(
                matches!(
                    config(&["--base-url", insecure], &[]),
                    Err(ConfigError::InsecureBaseUrl(_))
                ),
                "{insecure}"
            );
        }
        for bad in [
            "app.hienergy.ai",
            "ftp://x",
            "https://u:p@h",
            "https://h/?a=1",
            "",
        ] {
            assert!(
                matches!(
                    config(&["--base-url", bad], &[]),
                    Err(ConfigError::BadBaseUrl { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn base_url_path_prefix_is_kept() {
        let c = config(&["--base-url", "https://proxy.example/hienergy"], &[])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.base_url.as_str(), "https://proxy.example/hienergy/");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("0.25"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
        assert_eq!(
            config(&["--timeout", "0"], &[]).err(),
            Some(ConfigError::ZeroTimeout)
        );
    }
}
