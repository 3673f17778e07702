//! Settings: the command line and environment, checked once at start.

use std::fmt;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

pub const DEFAULT_BASE_URL: &str = "https://app.hienergy.ai";
/// Environment variables that may hold the API key, in order of preference.
pub const API_KEY_VARS: [&str; 2] = ["HIENERGY_API_KEY", "HI_ENERGY_API_KEY"];

/// Longest key file read: a key is a line of a few dozen characters, and a
/// path such as /dev/zero must not fill memory.
pub const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// Contacts `add_contacts` has in flight at once, by default and at most:
/// more would mostly meet HiEnergy's rate limit sooner.
pub const DEFAULT_BATCH_CONCURRENCY: u16 = 4;
pub const MAX_BATCH_CONCURRENCY: u16 = 16;

/// MCP server for HiEnergy: adds contacts from any MCP client, over stdio.
///
/// The API key comes from HIENERGY_API_KEY (or HI_ENERGY_API_KEY), or from
/// --api-key-file; it is never a flag, since flags show in `ps`. Every flag
/// below also reads the environment variable named beside it; the flag wins.
#[derive(Debug, Clone, Default, Parser)]
#[command(name = "hienergy-mcp", version, about, long_about)]
pub struct Args {
    /// HiEnergy base URL [env: HIENERGY_BASE_URL] [default: https://app.hienergy.ai].
    /// http:// is accepted only for loopback hosts.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,

    /// Read the API key from this file (first line, trimmed) instead of the
    /// environment [env: HIENERGY_API_KEY_FILE].
    #[arg(long, value_name = "PATH")]
    pub api_key_file: Option<PathBuf>,

    /// Total time for one HiEnergy request, e.g. 30, 30s, 1m [env: HIENERGY_TIMEOUT] [default: 30].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// Time to open a connection to HiEnergy, e.g. 5, 5s [env: HIENERGY_CONNECT_TIMEOUT] [default: 5].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub connect_timeout: Option<Duration>,

    /// Re-sends allowed when HiEnergy certainly did not receive a request
    /// (connection refused, DNS or TLS failure, 429 with a short Retry-After)
    /// [env: HIENERGY_MAX_RETRIES] [default: 2].
    #[arg(long, value_name = "N")]
    pub max_retries: Option<u32>,

    /// Longest Retry-After the server waits out by itself before reporting
    /// rate_limited [env: HIENERGY_MAX_RETRY_WAIT] [default: 5].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_retry_wait: Option<Duration>,

    /// How long to wait for the user to choose an advertiser when a name
    /// matches several (a person reads and chooses, so not --timeout)
    /// [env: HIENERGY_ELICITATION_TIMEOUT] [default: 300].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub elicitation_timeout: Option<Duration>,

    /// How long an identical successful call is replayed instead of re-sent;
    /// 0 turns it off [env: HIENERGY_DEDUPE_WINDOW] [default: 10m].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub dedupe_window: Option<Duration>,

    /// Contacts one add_contacts call sends at once, 1 to 16
    /// [env: HIENERGY_BATCH_CONCURRENCY] [default: 4].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=i64::from(MAX_BATCH_CONCURRENCY)))]
    pub batch_concurrency: Option<u16>,

    /// Log filter for stderr (overrides RUST_LOG), e.g. info, debug,
    /// hienergy_mcp=trace [env: HIENERGY_LOG_LEVEL] [default: warn].
    #[arg(long, value_name = "FILTER")]
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

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("the base URL {url:?} (--base-url / HIENERGY_BASE_URL) is not usable: {reason}")]
    BadBaseUrl { url: String, reason: String },
    #[error(
        "the base URL {0:?} (--base-url / HIENERGY_BASE_URL) uses http://, which would send the API key in clear text; use https:// (http:// is allowed only for localhost/127.0.0.1/::1)"
    )]
    InsecureBaseUrl(String),
    #[error(
        "cannot read the API key file {path} (--api-key-file / HIENERGY_API_KEY_FILE): {reason}"
    )]
    KeyFile { path: String, reason: String },
    #[error("{flag} / {var} must be more than 0")]
    ZeroTimeout {
        flag: &'static str,
        var: &'static str,
    },
    #[error("{var} is not usable: {reason}")]
    BadVariable { var: &'static str, reason: String },
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
    /// How long the user has to choose an advertiser when asked.
    pub elicitation_timeout: Duration,
    pub batch_concurrency: usize,
    /// Settings from the environment that could not be used. The server
    /// still starts, since in a GUI client an exit looks like a crash with
    /// no reason given; every call answers `not_configured` naming them.
    pub problems: Vec<ConfigError>,
    /// Things worth a log line at start: a base URL that was corrected, an
    /// empty key file.
    pub notices: Vec<String>,
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
            .field("elicitation_timeout", &self.elicitation_timeout)
            .field("dedupe_window", &self.dedupe_window)
            .field("batch_concurrency", &self.batch_concurrency)
            .field("problems", &self.problems)
            .finish()
    }
}

/// Where a setting's value came from. A bad flag is a typo the person
/// running the command sees at once, so it stops the program; a bad
/// variable usually sits in a client's config file, where an exit shows
/// only as "server disconnected".
enum Source<T> {
    Flag(T),
    Env(&'static str, String),
    Unset,
}

/// A flag if given, else the variable if set to something other than
/// blank: an empty value means "not set", as MCPB bundles pass an
/// optional field the user left empty as "".
fn source<T>(
    flag: Option<T>,
    var: &'static str,
    env: &impl Fn(&str) -> Option<String>,
) -> Source<T> {
    match flag {
        Some(value) => Source::Flag(value),
        None => match env(var) {
            Some(raw) if !raw.trim().is_empty() => Source::Env(var, raw),
            _ => Source::Unset,
        },
    }
}

/// Collects problems with variables while the settings are read.
struct Reader<E> {
    env: E,
    problems: Vec<ConfigError>,
}

impl<E: Fn(&str) -> Option<String>> Reader<E> {
    /// A duration setting, which must be more than zero when `positive`.
    fn duration(
        &mut self,
        flag: Option<Duration>,
        (flag_name, var): (&'static str, &'static str),
        default: Duration,
        positive: bool,
    ) -> Result<Duration, ConfigError> {
        let zero = ConfigError::ZeroTimeout {
            flag: flag_name,
            var,
        };
        match source(flag, var, &self.env) {
            Source::Flag(d) if positive && d.is_zero() => Err(zero),
            Source::Flag(d) => Ok(d),
            Source::Env(var, raw) => match parse_duration(&raw) {
                Ok(d) if positive && d.is_zero() => {
                    self.problems.push(zero);
                    Ok(default)
                }
                Ok(d) => Ok(d),
                Err(reason) => {
                    self.problems.push(ConfigError::BadVariable { var, reason });
                    Ok(default)
                }
            },
            Source::Unset => Ok(default),
        }
    }
}

impl<E: Fn(&str) -> Option<String>> Reader<E> {
    /// `--batch-concurrency`; clap has already held the flag to its range.
    fn batch_concurrency(&mut self, flag: Option<u16>) -> usize {
        let n = match source(flag, "HIENERGY_BATCH_CONCURRENCY", &self.env) {
            Source::Flag(n) => n,
            Source::Env(var, raw) => match raw.trim().parse::<u16>() {
                Ok(n) if (1..=MAX_BATCH_CONCURRENCY).contains(&n) => n,
                _ => {
                    self.problems.push(ConfigError::BadVariable {
                        var,
                        reason: format!(
                            "{:?} is not a whole number from 1 to {MAX_BATCH_CONCURRENCY}",
                            crate::outcome::truncate(raw.trim(), 40)
                        ),
                    });
                    DEFAULT_BATCH_CONCURRENCY
                }
            },
            Source::Unset => DEFAULT_BATCH_CONCURRENCY,
        };
        usize::from(n)
    }
}

impl Config {
    /// Checks the arguments; `env` looks up environment variables (the
    /// process environment in `main`, a map in tests). An error is a bad
    /// flag; bad variables end up in [`Config::problems`].
    pub fn from_args(
        args: &Args,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut reader = Reader {
            env,
            problems: Vec::new(),
        };
        let mut notices = Vec::new();
        let default_url = || parse_base_url(DEFAULT_BASE_URL).map(|(url, _)| url);
        let base_url = match source(args.base_url.clone(), "HIENERGY_BASE_URL", &reader.env) {
            Source::Flag(raw) => {
                let (url, notice) = parse_base_url(&raw)?;
                notices.extend(notice);
                url
            }
            Source::Env(_, raw) => match parse_base_url(&raw) {
                Ok((url, notice)) => {
                    notices.extend(notice);
                    url
                }
                Err(e) => {
                    reader.problems.push(e);
                    default_url()?
                }
            },
            Source::Unset => default_url()?,
        };
        let timeout = reader.duration(
            args.timeout,
            ("--timeout", "HIENERGY_TIMEOUT"),
            Duration::from_secs(30),
            true,
        )?;
        let connect_timeout = reader.duration(
            args.connect_timeout,
            ("--connect-timeout", "HIENERGY_CONNECT_TIMEOUT"),
            Duration::from_secs(5),
            true,
        )?;
        let max_retry_wait = reader.duration(
            args.max_retry_wait,
            ("--max-retry-wait", "HIENERGY_MAX_RETRY_WAIT"),
            Duration::from_secs(5),
            false,
        )?;
        let elicitation_timeout = reader.duration(
            args.elicitation_timeout,
            ("--elicitation-timeout", "HIENERGY_ELICITATION_TIMEOUT"),
            Duration::from_secs(300),
            true,
        )?;
        let dedupe_window = reader.duration(
            args.dedupe_window,
            ("--dedupe-window", "HIENERGY_DEDUPE_WINDOW"),
            Duration::from_secs(600),
            false,
        )?;
        let max_retries = match source(args.max_retries, "HIENERGY_MAX_RETRIES", &reader.env) {
            Source::Flag(n) => n,
            Source::Env(var, raw) => raw.trim().parse::<u32>().unwrap_or_else(|e| {
                reader.problems.push(ConfigError::BadVariable {
                    var,
                    reason: format!("{:?} is not a whole number ≥ 0 ({e})", raw.trim()),
                });
                2
            }),
            Source::Unset => 2,
        };
        let batch_concurrency = reader.batch_concurrency(args.batch_concurrency);
        let key_file = match source(
            args.api_key_file.clone(),
            "HIENERGY_API_KEY_FILE",
            &reader.env,
        ) {
            Source::Flag(path) => Some((path, true)),
            Source::Env(_, raw) => Some((PathBuf::from(raw.trim()), false)),
            Source::Unset => None,
        };
        let (api_key, api_key_source) = match key_file {
            Some((path, from_flag)) => match read_key_file(&path) {
                Ok(Some(key)) => (Some(key), Some(path.display().to_string())),
                Ok(None) => {
                    notices.push(format!(
                        "the API key file {} is empty, so no key is configured",
                        path.display()
                    ));
                    (None, None)
                }
                Err(e) if from_flag => return Err(e),
                Err(e) => {
                    reader.problems.push(e);
                    (None, None)
                }
            },
            None => API_KEY_VARS
                .iter()
                .find_map(|var| {
                    let key = clean_key(&(reader.env)(var)?);
                    (!key.is_empty()).then(|| (SecretString::from(key), var.to_string()))
                })
                .map_or((None, None), |(key, var)| (Some(key), Some(var))),
        };
        Ok(Self {
            base_url,
            api_key,
            api_key_source,
            timeout,
            connect_timeout,
            max_retries,
            max_retry_wait,
            dedupe_window,
            elicitation_timeout,
            batch_concurrency,
            problems: reader.problems,
            notices,
        })
    }

    /// The key, for the one place that puts it in a header.
    pub fn api_key(&self) -> Option<&str> {
        self.api_key.as_ref().map(ExposeSecret::expose_secret)
    }
}

/// The key as written, less what editors and shells add around it: a
/// UTF-8 byte-order mark and surrounding white space.
fn clean_key(raw: &str) -> String {
    raw.trim_start_matches('\u{feff}').trim().to_owned()
}

/// The first line of the key file, bounded; `None` when it is blank.
fn read_key_file(path: &Path) -> Result<Option<SecretString>, ConfigError> {
    let fail = |reason: String| ConfigError::KeyFile {
        path: path.display().to_string(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(e.to_string()))?;
    if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(fail(format!(
            "it is larger than {MAX_KEY_FILE_BYTES} bytes, which no key file is"
        )));
    }
    let text = String::from_utf8(bytes).map_err(|_| fail("it is not UTF-8 text".to_owned()))?;
    let key = clean_key(text.lines().next().unwrap_or_default());
    Ok((!key.is_empty()).then(|| SecretString::from(key)))
}

/// The API path users paste along with the host; the server adds it itself.
const API_PREFIX: &str = "api/v1";

/// The base URL, and a notice when it had to be corrected.
fn parse_base_url(raw: &str) -> Result<(Url, Option<String>), ConfigError> {
    let shown = redact_url(raw.trim());
    let bad = |reason: &str| ConfigError::BadBaseUrl {
        url: shown.clone(),
        reason: reason.to_owned(),
    };
    let mut url = Url::parse(raw.trim()).map_err(|e| bad(&e.to_string()))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "it must not carry credentials (the key goes in HIENERGY_API_KEY)",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it must not have a query or fragment"));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => return Err(ConfigError::InsecureBaseUrl(shown)),
        other => return Err(bad(&format!("scheme {other}: is not http(s)"))),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it has no host"));
    }
    let mut notice = None;
    let trimmed = url.path().trim_end_matches('/');
    if let Some(prefix) = trimmed.strip_suffix(API_PREFIX)
        && (prefix.is_empty() || prefix.ends_with('/'))
    {
        let prefix = prefix.to_owned();
        url.set_path(&prefix);
        notice = Some(format!(
            "the base URL {shown} ends in /{API_PREFIX}, which the server adds itself; using {url}"
        ));
    }
    // Joining a relative path onto `https://h/prefix` would drop `prefix`.
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok((url, notice))
}

/// A URL as it may be shown: any user name or password replaced, whether
/// or not the rest of it parses.
pub fn redact_url(raw: &str) -> String {
    let Some(scheme_end) = raw.find("://").map(|i| i + 3) else {
        return raw.to_owned();
    };
    let rest = &raw[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}[redacted]@{}", &raw[..scheme_end], &rest[at + 1..]),
        None => raw.to_owned(),
    }
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
        assert_eq!(c.elicitation_timeout, Duration::from_secs(300));
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

    fn temp_file(name: &str, contents: &[u8]) -> String {
        let dir = std::env::temp_dir().join(format!("hienergy-key-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(name);
        let _ = std::fs::write(&path, contents);
        path.to_string_lossy().to_string()
    }

    #[test]
    fn key_from_file() {
        let p = temp_file("key", b"filekey\nignored\n");
        let c = config(&["--api-key-file", &p], &[("HIENERGY_API_KEY", "env")])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.api_key(), Some("filekey"));
        let missing = format!("{p}.missing");
        assert!(matches!(
            config(&["--api-key-file", &missing], &[]),
            Err(ConfigError::KeyFile { .. })
        ));
    }

    #[test]
    fn an_empty_key_file_is_no_key_not_an_exit() {
        let p = temp_file("empty", b"\n  \n");
        let c = config(&["--api-key-file", &p], &[]).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.api_key.is_none());
        assert!(c.problems.is_empty());
        assert!(
            c.notices.iter().any(|n| n.contains("is empty")),
            "{:?}",
            c.notices
        );
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_key() {
        let p = temp_file("bom", "\u{feff}hk_live_bom\r\n".as_bytes());
        let c = config(&["--api-key-file", &p], &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.api_key(), Some("hk_live_bom"));
        let c = config(&[], &[("HIENERGY_API_KEY", "\u{feff}hk_env")])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.api_key(), Some("hk_env"));
    }

    #[test]
    fn the_key_file_is_read_with_a_bound() {
        let big = vec![b'k'; MAX_KEY_FILE_BYTES as usize + 1];
        let p = temp_file("big", &big);
        match config(&["--api-key-file", &p], &[]) {
            Err(ConfigError::KeyFile { reason, .. }) => {
                assert!(reason.contains("larger"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        // An endless file ends the same way instead of filling memory.
        if Path::new("/dev/zero").exists() {
            assert!(matches!(
                config(&["--api-key-file", "/dev/zero"], &[]),
                Err(ConfigError::KeyFile { .. })
            ));
        }
    }

    #[test]
    fn good_variables_are_used() {
        let c = config(
            &[],
            &[
                ("HIENERGY_TIMEOUT", "10"),
                ("HIENERGY_CONNECT_TIMEOUT", "2s"),
                ("HIENERGY_MAX_RETRY_WAIT", "0"),
                ("HIENERGY_DEDUPE_WINDOW", "0"),
                ("HIENERGY_MAX_RETRIES", "7"),
                ("HIENERGY_ELICITATION_TIMEOUT", "2m"),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        assert_eq!(c.timeout, Duration::from_secs(10));
        assert_eq!(c.connect_timeout, Duration::from_secs(2));
        // Zero is allowed where it means "off", only there.
        assert_eq!(c.max_retry_wait, Duration::ZERO);
        assert_eq!(c.dedupe_window, Duration::ZERO);
        assert_eq!(c.max_retries, 7);
        assert_eq!(c.elicitation_timeout, Duration::from_secs(120));
        let c = config(&["--elicitation-timeout", "45s"], &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.elicitation_timeout, Duration::from_secs(45));
    }

    #[test]
    fn a_key_file_up_to_64_kib_is_read() {
        // A key on its first line, then notes: as long as the bound allows.
        let mut text = b"hk_live_long\n".to_vec();
        text.resize(64 * 1024, b'#');
        let p = temp_file("at-limit", &text);
        let c = config(&["--api-key-file", &p], &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.api_key(), Some("hk_live_long"));
    }

    #[test]
    fn blank_variables_are_unset() {
        let blank: Vec<(&str, &str)> = [
            "HIENERGY_BASE_URL",
            "HIENERGY_API_KEY_FILE",
            "HIENERGY_TIMEOUT",
            "HIENERGY_CONNECT_TIMEOUT",
            "HIENERGY_MAX_RETRIES",
            "HIENERGY_MAX_RETRY_WAIT",
            "HIENERGY_DEDUPE_WINDOW",
            "HIENERGY_ELICITATION_TIMEOUT",
            "HIENERGY_API_KEY",
        ]
        .iter()
        .flat_map(|var| [(*var, "")])
        .collect();
        for value in ["", "  ", "\t"] {
            let env: Vec<(&str, &str)> = blank.iter().map(|(k, _)| (*k, value)).collect();
            let c = config(&[], &env).unwrap_or_else(|e| panic!("{e}"));
            assert!(c.problems.is_empty(), "{value:?}: {:?}", c.problems);
            assert_eq!(c.base_url.as_str(), "https://app.hienergy.ai/");
            assert_eq!(c.timeout, Duration::from_secs(30));
            assert_eq!(c.max_retries, 2);
            assert!(c.api_key.is_none());
        }
    }

    #[test]
    fn bad_variables_are_problems_not_exits() {
        for (var, value, says) in [
            ("HIENERGY_BASE_URL", "not a url", "HIENERGY_BASE_URL"),
            ("HIENERGY_BASE_URL", "http://app.hienergy.ai", "clear text"),
            ("HIENERGY_TIMEOUT", "soon", "HIENERGY_TIMEOUT"),
            (
                "HIENERGY_TIMEOUT",
                "0",
                "HIENERGY_TIMEOUT must be more than 0",
            ),
            ("HIENERGY_CONNECT_TIMEOUT", "-1", "HIENERGY_CONNECT_TIMEOUT"),
            ("HIENERGY_MAX_RETRIES", "two", "HIENERGY_MAX_RETRIES"),
            ("HIENERGY_MAX_RETRY_WAIT", "x", "HIENERGY_MAX_RETRY_WAIT"),
            ("HIENERGY_DEDUPE_WINDOW", "x", "HIENERGY_DEDUPE_WINDOW"),
            (
                "HIENERGY_API_KEY_FILE",
                "/nonexistent/key",
                "/nonexistent/key",
            ),
        ] {
            let c = config(&[], &[(var, value)]).unwrap_or_else(|e| panic!("{var}: {e}"));
            let shown: Vec<String> = c.problems.iter().map(ToString::to_string).collect();
            assert_eq!(shown.len(), 1, "{var}={value}: {shown:?}");
            assert!(shown[0].contains(says), "{var}={value}: {shown:?}");
        }
        // Two at once are both named.
        let c = config(
            &[],
            &[("HIENERGY_TIMEOUT", "x"), ("HIENERGY_MAX_RETRIES", "y")],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.problems.len(), 2);
    }

    #[test]
    fn bad_flags_still_stop_the_program() {
        assert!(config(&["--base-url", "nope"], &[]).is_err());
        assert!(config(&["--api-key-file", "/nonexistent/key"], &[]).is_err());
        assert!(
            Args::try_parse_from(["hienergy-mcp", "--timeout", "soon"]).is_err(),
            "clap refuses a bad flag value"
        );
        // A flag wins over its variable, even over a bad one.
        let c = config(&["--timeout", "7"], &[("HIENERGY_TIMEOUT", "soon")])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.timeout, Duration::from_secs(7));
        assert!(c.problems.is_empty());
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
            "https://KEY@app.hienergy.ai",
            "https://:p@h",
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
    fn a_pasted_api_path_is_stripped_and_said() {
        for (raw, expected) in [
            ("http://127.0.0.1:8080/api/v1/", "http://127.0.0.1:8080/"),
            ("http://127.0.0.1:8080/api/v1", "http://127.0.0.1:8080/"),
            (
                "https://proxy.example/hienergy/api/v1",
                "https://proxy.example/hienergy/",
            ),
        ] {
            let c = config(&["--base-url", raw], &[]).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(c.base_url.as_str(), expected, "{raw}");
            assert!(c.notices.iter().any(|n| n.contains("/api/v1")), "{raw}");
        }
        // Only a whole trailing segment pair counts.
        let c = config(&["--base-url", "https://h/xapi/v1"], &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.base_url.as_str(), "https://h/xapi/v1/");
        assert!(c.notices.is_empty());
    }

    #[test]
    fn a_password_in_the_base_url_is_never_shown() {
        for raw in [
            "http://user:S3cret@127.0.0.1:1",
            "http://user:S3cret@app.hienergy.ai/x",
            "https://user:S3cret@[bad",
        ] {
            let shown = match config(&["--base-url", raw], &[]) {
                Err(e) => e.to_string(),
                Ok(c) => panic!("{raw} accepted: {c:?}"),
            };
            assert!(!shown.contains("S3cret"), "{shown}");
            assert!(!shown.contains("user"), "{shown}");
            let c = config(&[], &[("HIENERGY_BASE_URL", raw)]).unwrap_or_else(|e| panic!("{e}"));
            let shown = format!("{:?}", c.problems);
            assert!(!shown.contains("S3cret"), "{shown}");
        }
        assert_eq!(redact_url("https://a:b@h/p@q"), "https://[redacted]@h/p@q");
        assert_eq!(redact_url("https://h/p@q"), "https://h/p@q");
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
            Some(ConfigError::ZeroTimeout {
                flag: "--timeout",
                var: "HIENERGY_TIMEOUT"
            })
        );
    }

    #[test]
    fn batch_concurrency_from_flag_or_variable_within_its_range() {
        let c = config(&[], &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.batch_concurrency, 4);
        let c = config(
            &["--batch-concurrency", "16"],
            &[("HIENERGY_BATCH_CONCURRENCY", "x")],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((c.batch_concurrency, c.problems.len()), (16, 0));
        let c =
            config(&[], &[("HIENERGY_BATCH_CONCURRENCY", " 2 ")]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.batch_concurrency, 2);
        let c =
            config(&[], &[("HIENERGY_BATCH_CONCURRENCY", "")]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((c.batch_concurrency, c.problems.len()), (4, 0));
        for bad in ["0", "17", "-1", "four"] {
            let c = config(&[], &[("HIENERGY_BATCH_CONCURRENCY", bad)])
                .unwrap_or_else(|e| panic!("{e}"));
            let shown: Vec<String> = c.problems.iter().map(ToString::to_string).collect();
            assert_eq!(shown.len(), 1, "{bad}: {shown:?}");
            assert!(shown[0].contains("HIENERGY_BATCH_CONCURRENCY"), "{shown:?}");
            assert!(
                Args::try_parse_from(["hienergy-mcp", "--batch-concurrency", bad]).is_err(),
                "{bad}"
            );
        }
    }
}
