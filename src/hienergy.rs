//! The HTTP call to HiEnergy: one POST, its answer read with a cap and
//! handed to [`crate::answer`], or the lack of an answer turned into a
//! [`ToolError`].
//!
//! A POST is not idempotent, so this file re-sends only when HiEnergy
//! certainly did not receive the request: the connection was never made, or
//! HiEnergy answered 429 (it says it did not process it).

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::{self, HeaderValue};
use serde_json::{Map, Value, json};
use tokio::sync::SetOnce;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::answer::{MAX_UPSTREAM_TEXT, classify, classify_read, created_for_status};
use crate::budget::RateBudget;
use crate::config::{Config, is_loopback};
use crate::contact::Contact;
use crate::outcome::{Created, ErrorKind, SpecialHint, ToolError, truncate};

pub const CONTACTS_ADD_PATH: &str = "api/v1/contacts/add";
/// Sent as Accept and Content-Type, and shown as such by a dry run: one
/// constant so the preview cannot drift from the request.
const JSON_MEDIA_TYPE: &str = "application/json";
pub const USER_AGENT: &str = concat!("hienergy-mcp/", env!("CARGO_PKG_VERSION"));
/// Largest answer read from HiEnergy. A created contact is a few hundred
/// bytes; anything near this is not an answer to this request.
pub const MAX_BODY_BYTES: usize = 1 << 20;
const REDACTED: &str = "[redacted]";

/// With dry_run: the HTTP request that would be sent, API key redacted.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Preview {
    pub method: &'static str,
    pub url: String,
    pub headers: std::collections::BTreeMap<&'static str, &'static str>,
    pub body: Map<String, Value>,
    /// Whether a key is configured: the text says what a real call needs.
    #[serde(skip)]
    pub has_key: bool,
}

/// The client for HiEnergy's contacts endpoint.
pub struct HiEnergy {
    endpoint: Url,
    timeout: Duration,
    max_retries: u32,
    max_retry_wait: Duration,
    /// Built once, off the path of any call where it can be: see
    /// [`ClientCell`].
    client: Arc<ClientCell>,
    /// This key's rate-limit budget, as HiEnergy's answers state it.
    budget: RateBudget,
}

/// What one attempt ended in: a final outcome, or a reason it is safe to
/// send again after a pause.
enum Attempt {
    Done(Result<Map<String, Value>, ToolError>),
    Resend {
        after: Option<Duration>,
        error: ToolError,
    },
}

impl HiEnergy {
    pub fn new(config: &Config) -> Self {
        // base_url always ends in '/', so the join keeps any path prefix; the
        // fallback is unreachable but keeps this constructor infallible.
        let endpoint = config
            .base_url
            .join(CONTACTS_ADD_PATH)
            .unwrap_or_else(|_| config.base_url.clone());
        let settings = ClientSettings {
            timeout: config.timeout,
            connect_timeout: config.connect_timeout,
            https: endpoint.scheme() == "https",
            loopback: is_loopback(&endpoint),
        };
        Self {
            endpoint,
            timeout: config.timeout,
            max_retries: config.max_retries,
            max_retry_wait: config.max_retry_wait,
            client: Arc::new(ClientCell::new(settings)),
            budget: RateBudget::default(),
        }
    }

    /// Starts building the HTTP client, trust roots and all, in the
    /// background, so that the first real call does not wait for it. Called
    /// once the session is up; a call that comes first waits for this same
    /// build.
    pub fn prepare(&self) {
        self.client.start();
    }

    pub fn budget(&self) -> &RateBudget {
        &self.budget
    }

    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// Exactly what [`Self::add_contact`] would send, with the key redacted.
    pub fn preview(&self, contact: &Contact, has_key: bool) -> Preview {
        let key = if has_key {
            REDACTED
        } else {
            "(not set: HIENERGY_API_KEY is required to send)"
        };
        Preview {
            method: "POST",
            url: self.endpoint.to_string(),
            headers: [
                ("Accept", JSON_MEDIA_TYPE),
                ("Content-Type", JSON_MEDIA_TYPE),
                ("User-Agent", USER_AGENT),
                ("X-Api-Key", key),
            ]
            .into(),
            body: match request_body(contact) {
                Value::Object(body) => body,
                _ => Map::new(),
            },
            has_key,
        }
    }

    async fn client(&self) -> Result<&reqwest::Client, ToolError> {
        self.client.get().await.as_ref().map_err(|reason| {
            ToolError::new(
                ErrorKind::Network,
                Created::No,
                format!("Could not set up the HTTPS client: {reason}."),
            )
        })
    }

    /// Sends the contact to HiEnergy, re-sending only where that cannot
    /// create a duplicate. Once `stop` is cancelled an attempt under way
    /// still ends (within `--timeout`), but none follows it.
    pub async fn add_contact(
        &self,
        api_key: &str,
        contact: &Contact,
        stop: &CancellationToken,
    ) -> Result<Map<String, Value>, ToolError> {
        let client = self.client().await?;
        let key = key_header(api_key)?;
        // Serialised once: every attempt sends the very same bytes.
        let body = request_body_text(contact);
        let mut resends = 0;
        let started = Instant::now();
        let finish = |result| {
            let result = scrub_key(result, api_key);
            log_outcome(&result, started);
            result
        };
        loop {
            let attempt = self.attempt(client, &key, &body).await;
            let (after, error) = match attempt {
                Attempt::Done(result) => return finish(result),
                Attempt::Resend { after, error } => (after, error),
            };
            if resends >= self.max_retries || stop.is_cancelled() {
                return finish(Err(not_resent(error, stop)));
            }
            let pause = self.pause(after, resends);
            tracing::info!(
                kind = error.kind.as_str(),
                pause_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
                "HiEnergy certainly did not receive the request; sending it again"
            );
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.cancelled() => return finish(Err(not_resent(error, stop))),
            }
            resends += 1;
        }
    }

    async fn attempt(&self, client: &reqwest::Client, key: &HeaderValue, body: &str) -> Attempt {
        let sent = client
            .post(self.endpoint.clone())
            .header("X-Api-Key", key.clone())
            .header(header::ACCEPT, JSON_MEDIA_TYPE)
            .header(header::CONTENT_TYPE, JSON_MEDIA_TYPE)
            .body(body.to_owned())
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => return transport_failure(&e),
        };
        let status = response.status();
        let headers = response.headers().clone();
        self.budget.observe(status, &headers);
        let body = match read_capped(response).await {
            Ok(body) => body,
            Err(error) => return Attempt::Done(Err(error.with_status(status.as_u16()))),
        };
        match classify(status, &headers, &body, self.endpoint.path()) {
            Err(error) if error.kind == ErrorKind::RateLimited => self.after_rate_limit(error),
            result => Attempt::Done(result),
        }
    }

    /// A 429 is waited out here only when HiEnergy asks for no longer than
    /// `--max-retry-wait` and `--timeout` both allow; a longer wait goes to
    /// the agent in `retry_after_seconds`. Without a wait named, the
    /// backoff applies.
    fn after_rate_limit(&self, error: ToolError) -> Attempt {
        let limit = self.max_retry_wait.min(self.timeout);
        match error.retry_after_seconds.map(Duration::from_secs) {
            Some(wait) if wait > limit => Attempt::Done(Err(error)),
            wait => Attempt::Resend {
                after: wait.map(jitter),
                error,
            },
        }
    }

    /// The pause before re-send number `resends + 1`: what HiEnergy asked
    /// for, else the backoff, and never longer than `--timeout`, however
    /// large the settings or the header.
    fn pause(&self, after: Option<Duration>, resends: u32) -> Duration {
        after.unwrap_or_else(|| backoff(resends)).min(self.timeout)
    }
}

/// The error of the last attempt, which HiEnergy certainly did not receive,
/// as the call's outcome. When the call was cancelled rather than out of
/// re-sends it is a cancellation: a call waiting behind this one then sends
/// for itself instead of taking this error for its own.
fn not_resent(error: ToolError, stop: &CancellationToken) -> ToolError {
    if !stop.is_cancelled() {
        return error;
    }
    let mut cancelled = ToolError::new(
        ErrorKind::Cancelled,
        Created::No,
        format!(
            "Not sent again after the call was cancelled; HiEnergy did not receive it: {}",
            error.message
        ),
    );
    cancelled.status = error.status;
    cancelled
}

/// What the HTTP client is built from.
#[derive(Clone, Copy, Debug)]
struct ClientSettings {
    timeout: Duration,
    connect_timeout: Duration,
    /// Whether the endpoint is https://, the only case that needs the
    /// system's trust roots.
    https: bool,
    loopback: bool,
}

/// The HTTP client, built exactly once.
///
/// For https:// the build loads the system's trust roots, which costs
/// about ten milliseconds of CPU (reading and decoding every PEM
/// certificate the system has). That runs on a blocking thread, started
/// by [`HiEnergy::prepare`] once the session is up or by the first call,
/// whichever comes first. The build fills a [`SetOnce`] that every call
/// waits on: a call never starts a second build, and one that gives up
/// waiting (cancelled) leaves the build running for the next. (A
/// `OnceCell::get_or_init` would make a waiting call the builder whenever
/// the one building is cancelled.) An http:// endpoint (loopback only)
/// never loads roots and builds in place.
struct ClientCell {
    settings: ClientSettings,
    client: SetOnce<Result<reqwest::Client, String>>,
    started: AtomicBool,
    /// How many builds were started: one, or none yet.
    builds: AtomicUsize,
}

impl ClientCell {
    fn new(settings: ClientSettings) -> Self {
        Self {
            settings,
            client: SetOnce::new(),
            started: AtomicBool::new(false),
            builds: AtomicUsize::new(0),
        }
    }

    fn build(&self) {
        let started = Instant::now();
        let client = build_client(self.settings);
        tracing::debug!(
            ms = started.elapsed().as_millis() as u64,
            https = self.settings.https,
            ok = client.is_ok(),
            "HTTP client built"
        );
        // Only this one build ever sets it.
        let _ = self.client.set(client);
    }

    /// Starts the build unless it has started already.
    fn start(self: &Arc<Self>) {
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        self.builds.fetch_add(1, Ordering::Relaxed);
        if !self.settings.https {
            self.build();
            return;
        }
        let cell = Arc::clone(self);
        // Off the runtime's one thread: ten milliseconds there would hold
        // up every other request, tools/list included.
        tokio::task::spawn_blocking(move || cell.build());
    }

    async fn get(self: &Arc<Self>) -> &Result<reqwest::Client, String> {
        self.start();
        self.client.wait().await
    }
}

/// The key as the `X-Api-Key` header, marked sensitive so no debug output
/// of the request shows it. The POST and every read build it alike.
fn key_header(api_key: &str) -> Result<HeaderValue, ToolError> {
    let mut key = HeaderValue::from_str(api_key).map_err(|_| {
        ToolError::new(
            ErrorKind::NotConfigured,
            Created::No,
            "The configured API key contains characters that cannot be sent in an HTTP header.",
        )
    })?;
    key.set_sensitive(true);
    Ok(key)
}

fn build_client(settings: ClientSettings) -> Result<reqwest::Client, String> {
    let ClientSettings {
        timeout,
        connect_timeout,
        https,
        loopback,
    } = settings;
    // Another part of the process may have installed a provider already;
    // either way one is installed afterwards.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        // A redirect would replay the POST, and could carry the key to
        // another host: never follow one.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(connect_timeout)
        .user_agent(USER_AGENT);
    if !https {
        // Plain http:// never does TLS (and redirects, the one way to reach
        // an https:// URL from here, are off): no trust roots to load.
        builder = builder.tls_certs_only([]);
    }
    if loopback {
        // http:// is allowed only for loopback, and a proxy from
        // HTTP_PROXY or ALL_PROXY would get that plain-text request, key and
        // all; no proxy can reach this machine's loopback anyway. A remote
        // https:// host keeps honouring the proxy settings (through a
        // CONNECT tunnel the proxy never sees the key).
        builder = builder.no_proxy();
    }
    builder.build().map_err(|e| error_chain(&e))
}

/// The body as sent, written straight from the contact: going through a
/// `Value` first cost a map built and dropped on every call.
pub fn request_body_text(contact: &Contact) -> String {
    #[derive(serde::Serialize)]
    struct Body<'a> {
        contact: &'a Contact,
    }
    // A struct of strings and an integer cannot fail to serialise; the
    // fallback keeps this infallible all the same.
    serde_json::to_string(&Body { contact }).unwrap_or_else(|_| request_body(contact).to_string())
}

pub fn request_body(contact: &Contact) -> Value {
    json!({ "contact": contact })
}

fn log_outcome(result: &Result<Map<String, Value>, ToolError>, started: Instant) {
    let ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(_) => tracing::info!(ms, "HiEnergy created the contact"),
        Err(e) => tracing::warn!(
            ms,
            kind = e.kind.as_str(),
            status = e.status,
            created = ?e.created,
            "add_contact failed: {}",
            e.message
        ),
    }
}

/// Removes the API key from everything HiEnergy's answer contributed. A
/// server or proxy that quotes the key back (in an error message, a
/// Location, a request id, or the "contact" itself) must not hand it to the
/// agent, whose transcript is no place for a secret.
///
/// Every occurrence goes, whatever the key's length, inside words too: the
/// rule is that the key's text never reaches the agent, and matching only
/// whole words would let `key=abc123;`-style echoes with odd neighbours
/// through. A key of a few characters therefore mangles ordinary text (a
/// key `e` turns "HiEnergy" into "HiEn[redacted]rgy"); no real key is that
/// short, and a readable message is worth less than the guarantee.
fn scrub_key(
    result: Result<Map<String, Value>, ToolError>,
    key: &str,
) -> Result<Map<String, Value>, ToolError> {
    // An empty pattern matches between every two characters.
    if key.is_empty() {
        return result;
    }
    let clean = |s: &mut String| {
        if s.contains(key) {
            *s = s.replace(key, REDACTED);
        }
    };
    match result {
        Ok(mut contact) => {
            scrub_map(&mut contact, key);
            Ok(contact)
        }
        Err(mut error) => {
            clean(&mut error.message);
            for text in [&mut error.code, &mut error.request_id]
                .into_iter()
                .flatten()
            {
                clean(text);
            }
            for field in &mut error.fields {
                clean(&mut field.field);
                clean(&mut field.problem);
            }
            Err(error)
        }
    }
}

fn scrub_map(map: &mut Map<String, Value>, key: &str) {
    if map.keys().any(|k| k.contains(key)) {
        *map = std::mem::take(map)
            .into_iter()
            .map(|(k, v)| (k.replace(key, REDACTED), v))
            .collect();
    }
    for value in map.values_mut() {
        scrub_value(value, key);
    }
}

fn scrub_value(value: &mut Value, key: &str) {
    match value {
        Value::String(s) if s.contains(key) => *s = s.replace(key, REDACTED),
        Value::Array(items) => items.iter_mut().for_each(|v| scrub_value(v, key)),
        Value::Object(map) => scrub_map(map, key),
        _ => {}
    }
}

/// A send that failed before any answer. Only a failed connect proves the
/// request never left; after that, HiEnergy may have it.
fn transport_failure(e: &reqwest::Error) -> Attempt {
    let detail = error_chain(e);
    if e.is_connect() && certificate_refused(e) {
        // The handshake failed before any request was written, and it
        // fails the same way every time: say so instead of re-sending.
        let mut error = ToolError::new(
            ErrorKind::Network,
            Created::No,
            format!("HiEnergy's TLS certificate was not accepted: {detail}."),
        );
        error.special_hint = Some(SpecialHint::UntrustedCertificate);
        return Attempt::Done(Err(error));
    }
    if e.is_connect() {
        let kind = if e.is_timeout() {
            ErrorKind::Timeout
        } else {
            ErrorKind::Network
        };
        let error = ToolError::new(
            kind,
            Created::No,
            format!("Could not connect to HiEnergy: {detail}."),
        );
        return Attempt::Resend { after: None, error };
    }
    let error = if e.is_timeout() {
        ToolError::new(
            ErrorKind::Timeout,
            Created::Unknown,
            "HiEnergy did not answer within the configured timeout after the request was sent.",
        )
    } else {
        ToolError::new(
            ErrorKind::Network,
            Created::Unknown,
            format!("The connection to HiEnergy broke after the request was sent: {detail}."),
        )
    };
    Attempt::Done(Err(error))
}

/// Whether the TLS handshake failed because the server's certificate was
/// refused (unknown issuer, expired, wrong name, ...). rustls's error sits
/// inside an `io::Error`, itself wrapped in another by hyper-rustls, and
/// `io::Error::source()` skips what it wraps: hence the unwrapping.
fn certificate_refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(error) = cause {
        let mut inner: &(dyn std::error::Error + 'static) = error;
        // Bounded: each step goes one wrapper in.
        for _ in 0..8 {
            match inner
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
            {
                Some(wrapped) => inner = wrapped,
                None => break,
            }
        }
        if matches!(
            inner.downcast_ref::<rustls::Error>(),
            Some(
                rustls::Error::InvalidCertificate(_)
                    | rustls::Error::NoCertificatesPresented
                    | rustls::Error::InvalidCertRevocationList(_)
            )
        ) {
            return true;
        }
        cause = error.source();
    }
    false
}

/// Reads the body, refusing to hold more than [`MAX_BODY_BYTES`].
async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, ToolError> {
    let created = created_for_status(response.status());
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(too_large(created));
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(too_large(created));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) if e.is_timeout() => {
                return Err(ToolError::new(
                    ErrorKind::Timeout,
                    created,
                    "HiEnergy's answer did not arrive in full within the configured timeout.",
                ));
            }
            Err(e) => {
                return Err(ToolError::new(
                    ErrorKind::Network,
                    created,
                    format!(
                        "The connection broke while reading HiEnergy's answer: {}.",
                        error_chain(&e)
                    ),
                ));
            }
        }
    }
}

fn too_large(created: Created) -> ToolError {
    ToolError::new(
        ErrorKind::BadResponse,
        created,
        format!("HiEnergy's answer was larger than {MAX_BODY_BYTES} bytes and was not read."),
    )
}

fn backoff(resends: u32) -> Duration {
    let base = Duration::from_millis(200).saturating_mul(2u32.saturating_pow(resends));
    jitter(base.min(Duration::from_secs(2)))
}

/// Spreads a pause over [d, 1.25·d] so that parallel callers do not all
/// come back at the same instant; saturates at [`Duration::MAX`], since the
/// pause can come from a header or a setting of any size.
fn jitter(d: Duration) -> Duration {
    jitter_by(d, RandomState::new().hash_one(Instant::now()))
}

/// `d` plus (`random` mod 1000)/4000 of it: less than a quarter more.
fn jitter_by(d: Duration, random: u64) -> Duration {
    // A fraction below one quarter cannot overflow `mul_f64`; the sum can.
    let fraction = (random % 1000) as f64 / 4000.0;
    d.saturating_add(d.mul_f64(fraction))
}

/// An error with its causes ("error sending request: connection refused"),
/// bounded; reqwest's own text names only the URL, never headers.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    truncate(&parts.join(": "), MAX_UPSTREAM_TEXT)
}

/// HiEnergy's read endpoints, relative to its API root.
pub const SEARCH_PATH: &str = "api/v1/search";
pub const ADVERTISERS_PATH: &str = "api/v1/advertisers";
pub const CONTACTS_PATH: &str = "api/v1/contacts";

impl HiEnergy {
    /// The URL of a read endpoint (`api/v1/...`). The base URL is three
    /// levels above the contacts endpoint, so a base URL with a path prefix
    /// keeps it for reads too.
    pub fn read_url(&self, path: &str) -> Url {
        self.endpoint
            .join("../../../")
            .and_then(|root| root.join(path))
            .unwrap_or_else(|_| self.endpoint.clone())
    }

    /// GET `path?query` with the same key, cap, timeout and key scrubbing
    /// as the POST, and HiEnergy's JSON answer as it came. A GET changes
    /// nothing, so unlike the POST it is sent again after a 5xx or a broken
    /// connection too; the whole read, pauses included, takes at most
    /// `--timeout`. Every error says created "no": a read creates nothing.
    pub async fn get(
        &self,
        api_key: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Value, ToolError> {
        let started = Instant::now();
        let read = tokio::time::timeout(self.timeout, self.get_with_resends(api_key, path, query));
        let result = match read.await {
            Ok(result) => result,
            Err(_) => Err(ToolError::new(
                ErrorKind::Timeout,
                Created::No,
                format!(
                    "HiEnergy did not answer GET /{path} within the configured timeout ({}).",
                    humantime::format_duration(self.timeout)
                ),
            )),
        };
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match result {
            Ok(mut value) => {
                tracing::info!(ms, path, "HiEnergy answered a read");
                if !api_key.is_empty() {
                    scrub_value(&mut value, api_key);
                }
                Ok(value)
            }
            Err(mut error) => {
                tracing::warn!(
                    ms,
                    path,
                    kind = error.kind.as_str(),
                    status = error.status,
                    "read failed: {}",
                    error.message
                );
                error.created = Created::No;
                scrub_key(Err(error), api_key).map(Value::Object)
            }
        }
    }

    async fn get_with_resends(
        &self,
        api_key: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Value, ToolError> {
        let client = self.client().await?;
        let key = key_header(api_key)?;
        let mut url = self.read_url(path);
        url.query_pairs_mut().extend_pairs(query);
        let mut resends = 0;
        loop {
            let (after, error) = match self.read_attempt(client, &key, &url).await {
                Read::Done(result) => return result,
                Read::Resend { after, error } => (after, error),
            };
            if resends >= self.max_retries {
                return Err(error);
            }
            let pause = self.pause(after, resends);
            tracing::info!(
                kind = error.kind.as_str(),
                pause_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
                "a read failed; a GET is safe to send again"
            );
            tokio::time::sleep(pause).await;
            resends += 1;
        }
    }

    async fn read_attempt(&self, client: &reqwest::Client, key: &HeaderValue, url: &Url) -> Read {
        let sent = client
            .get(url.clone())
            .header("X-Api-Key", key.clone())
            .header(header::ACCEPT, JSON_MEDIA_TYPE)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            // A refused certificate fails the same way every time; any
            // other failure of a GET may be tried again.
            Err(e) => {
                return match transport_failure(&e) {
                    Attempt::Done(Err(error))
                        if error.special_hint != Some(SpecialHint::UntrustedCertificate) =>
                    {
                        Read::Resend { after: None, error }
                    }
                    other => other.into(),
                };
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        self.budget.observe(status, &headers);
        let body = match read_capped(response).await {
            Ok(body) => body,
            Err(error) if error.kind == ErrorKind::BadResponse => {
                return Read::Done(Err(error.with_status(status.as_u16())));
            }
            Err(error) => {
                return Read::Resend {
                    after: None,
                    error: error.with_status(status.as_u16()),
                };
            }
        };
        match classify_read(status, &headers, &body, url.path()) {
            Ok(answer) => Read::Done(Ok(answer)),
            Err(error) if error.kind == ErrorKind::RateLimited => {
                self.after_rate_limit(error).into()
            }
            Err(error) if error.kind == ErrorKind::UpstreamError => {
                Read::Resend { after: None, error }
            }
            Err(error) => Read::Done(Err(error)),
        }
    }
}

/// What one GET ended in: [`Attempt`] for a read, whose answer is any JSON.
enum Read {
    Done(Result<Value, ToolError>),
    Resend {
        after: Option<Duration>,
        error: ToolError,
    },
}

/// The POST's handling of a failed send or a 429, applied to a read.
impl From<Attempt> for Read {
    fn from(attempt: Attempt) -> Self {
        match attempt {
            Attempt::Done(result) => Read::Done(result.map(Value::Object)),
            Attempt::Resend { after, error } => Read::Resend { after, error },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;
    use reqwest::header::HeaderMap;

    fn err(status: u16, body: &str) -> ToolError {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT);
        match classify(status, &HeaderMap::new(), body.as_bytes(), "/") {
            Ok(c) => panic!("expected an error, got {c:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn the_key_is_scrubbed_from_whatever_hienergy_quotes_back() {
        let key = "hk_live_0123456789";
        let body = format!(
            r#"{{"error":{{"code":"{key}","message":"bad key {key}","request_id":"{key}","details":{{"{key}":["is {key}"]}}}}}}"#
        );
        let e = err(401, &body);
        let e = scrub_key(Err(e), key)
            .err()
            .unwrap_or_else(|| panic!("an error"));
        let shown = format!("{:?} {}", e, e.to_json());
        assert!(!shown.contains(key), "{shown}");
        assert!(e.message.contains(REDACTED), "{}", e.message);

        let Value::Object(contact) = json!({"id": 1, key: [key, {"k": format!("x{key}x")}]}) else {
            unreachable!()
        };
        let contact = scrub_key(Ok(contact), key).ok().unwrap_or_default();
        assert_eq!(
            Value::Object(contact),
            json!({"id": 1, REDACTED: [REDACTED, {"k": format!("x{REDACTED}x")}]})
        );
    }

    #[test]
    fn a_key_of_any_length_is_scrubbed() {
        for key in ["k", "k2", "Zq7", "hk_live_"] {
            let body = format!(
                r#"{{"error":{{"code":"{key}","message":"Key {key} is not valid","request_id":"{key}"}}}}"#
            );
            let e = scrub_key(Err(err(401, &body)), key).err();
            let e = e.unwrap_or_else(|| panic!("an error"));
            // What HiEnergy contributed, and the message around it (the
            // hint is the server's own wording, not the answer's).
            let shown = format!("{} {:?} {:?}", e.message, e.code, e.fields);
            assert!(!shown.contains(key), "{key}: {shown}");
            assert_eq!(e.code.as_deref(), Some(REDACTED), "{key}");
            assert_eq!(e.request_id.as_deref(), Some(REDACTED), "{key}");
            // A key of one or two letters is found in the wording too.
            if key.len() > 2 {
                assert_eq!(
                    e.message, "HiEnergy refused the API key (401): Key [redacted] is not valid.",
                    "{key}"
                );
            }
        }
        let e = ToolError::new(ErrorKind::Network, Created::No, "abc");
        let got = scrub_key(Err(e), "b").err().map(|e| e.message);
        assert_eq!(got.as_deref(), Some("a[redacted]c"));
        // An empty key (never configured, but possible here) changes nothing.
        let e = ToolError::new(ErrorKind::Network, Created::No, "abc");
        assert_eq!(scrub_key(Err(e.clone()), "").err(), Some(e));
        let Value::Object(contact) = json!({"id": 1, "note": "abc"}) else {
            unreachable!()
        };
        let got = scrub_key(Ok(contact.clone()), "").ok();
        assert_eq!(got, Some(contact));
    }

    #[test]
    fn the_body_text_is_the_body_preview_shows() {
        let args =
            serde_json::json!({"advertiser_id": "42", "email": " A@B.co ", "name": "Ann \"Q\""});
        let args = crate::contact::AddContactArgs::parse(args.as_object())
            .unwrap_or_else(|e| panic!("{e:?}"));
        let text = request_body_text(&args.contact);
        assert_eq!(
            serde_json::from_str::<Value>(&text).ok(),
            Some(request_body(&args.contact))
        );
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        assert!(
            backoff(0) >= Duration::from_millis(200) && backoff(0) <= Duration::from_millis(250)
        );
        assert!(backoff(1) >= Duration::from_millis(400));
        assert!(backoff(3) >= Duration::from_millis(1600));
        for resends in [4, 30, 64, u32::MAX] {
            let pause = backoff(resends);
            assert!(
                pause >= Duration::from_secs(2) && pause <= Duration::from_millis(2500),
                "{resends}: {pause:?}"
            );
        }
    }

    #[test]
    fn jitter_adds_up_to_a_quarter_and_saturates() {
        let four = Duration::from_secs(4);
        assert_eq!(jitter_by(four, 0), four);
        assert_eq!(jitter_by(four, 500), Duration::from_millis(4500));
        assert_eq!(jitter_by(four, 999), Duration::from_millis(4999));
        assert_eq!(jitter_by(four, 1000), four);
        assert_eq!(jitter_by(four, 1999), Duration::from_millis(4999));
        assert_eq!(jitter_by(four, u64::MAX), Duration::from_millis(4615));
        // A Retry-After of 17,000,000,000,000,000,000 seconds, as a header may
        // say, used to panic here ("overflow when adding durations").
        let huge = Duration::from_secs(17_000_000_000_000_000_000);
        assert_eq!(jitter_by(huge, 999), Duration::MAX);
        assert_eq!(jitter_by(Duration::MAX, 999), Duration::MAX);
        assert_eq!(jitter_by(Duration::MAX, 0), Duration::MAX);
        assert_eq!(jitter(Duration::MAX), Duration::MAX);
        let once = jitter(four);
        assert!(once >= four && once < Duration::from_secs(5), "{once:?}");
    }

    fn client_with(flags: &[&str]) -> HiEnergy {
        use clap::Parser;
        let mut argv = vec!["hienergy-mcp", "--base-url", "http://127.0.0.1:9"];
        argv.extend_from_slice(flags);
        let args = crate::config::Args::try_parse_from(argv).unwrap_or_else(|e| panic!("{e}"));
        let config = Config::from_args(&args, |_| None).unwrap_or_else(|e| panic!("{e}"));
        HiEnergy::new(&config)
    }

    fn rate_limited(seconds: Option<u64>) -> ToolError {
        let mut error = ToolError::new(ErrorKind::RateLimited, Created::No, "429");
        error.retry_after_seconds = seconds;
        error
    }

    /// The pause a 429 leads to, or None when it is reported instead.
    fn pause_after(client: &HiEnergy, seconds: Option<u64>) -> Option<Duration> {
        match client.after_rate_limit(rate_limited(seconds)) {
            Attempt::Resend { after, error } => {
                assert_eq!(error.retry_after_seconds, seconds);
                Some(client.pause(after, 0))
            }
            Attempt::Done(result) => {
                let error = result.err().unwrap_or_else(|| panic!("an error"));
                assert_eq!(error.retry_after_seconds, seconds);
                None
            }
        }
    }

    #[test]
    fn a_rate_limit_is_waited_out_only_within_max_retry_wait_and_timeout() {
        let secs = Duration::from_secs;
        // Defaults: --max-retry-wait 5, --timeout 30.
        let client = client_with(&[]);
        let five = pause_after(&client, Some(5)).unwrap_or_default();
        assert!(
            five >= secs(5) && five <= Duration::from_millis(6250),
            "{five:?}"
        );
        assert_eq!(pause_after(&client, Some(6)), None);
        assert_eq!(pause_after(&client, Some(0)), Some(Duration::ZERO));
        let backoff = pause_after(&client, None).unwrap_or_default();
        assert!(backoff >= Duration::from_millis(200) && backoff <= Duration::from_millis(250));

        // The longest wait a setting allows, against the longest a header
        // can say: capped by --timeout, never a panic.
        let huge = "18000000000000000000";
        let client = client_with(&["--max-retry-wait", huge]);
        assert_eq!(pause_after(&client, Some(17_000_000_000_000_000_000)), None);
        assert_eq!(pause_after(&client, Some(u64::MAX)), None);
        assert_eq!(pause_after(&client, Some(31)), None);
        let thirty = pause_after(&client, Some(30)).unwrap_or_default();
        assert_eq!(thirty, secs(30), "jitter past --timeout is cut");

        let client = client_with(&["--max-retry-wait", huge, "--timeout", huge]);
        let long = pause_after(&client, Some(17_000_000_000_000_000_000)).unwrap_or_default();
        assert!(
            long >= secs(17_000_000_000_000_000_000) && long <= secs(18_000_000_000_000_000_000),
            "{long:?}"
        );
        assert_eq!(pause_after(&client, Some(u64::MAX)), None);

        // A short --timeout cuts the backoff too.
        let client = client_with(&["--timeout", "0.1"]);
        assert_eq!(client.pause(None, 3), Duration::from_millis(100));
        assert_eq!(pause_after(&client, Some(1)), None);
    }

    #[derive(Debug)]
    struct Layer(String, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    fn layers(texts: &[&str]) -> Layer {
        texts
            .iter()
            .rev()
            .fold(None, |inner, text| {
                Some(Layer(text.to_string(), inner.map(Box::new)))
            })
            .unwrap_or_else(|| Layer(String::new(), None))
    }

    #[test]
    fn error_chain_names_each_cause_once_and_is_bounded() {
        let e = layers(&[
            "error sending request for url (http://127.0.0.1:9/api/v1/contacts/add)",
            "client error (Connect)",
            "tcp connect error",
            "Connection refused (os error 111)",
        ]);
        assert_eq!(
            error_chain(&e),
            "error sending request for url (http://127.0.0.1:9/api/v1/contacts/add): client error (Connect): tcp connect error: Connection refused (os error 111)"
        );
        // A cause whose text an outer layer already carries adds nothing.
        let e = layers(&[
            "tcp connect error: Connection refused",
            "Connection refused",
        ]);
        assert_eq!(error_chain(&e), "tcp connect error: Connection refused");
        let e = layers(&["a"]);
        assert_eq!(error_chain(&e), "a");
        let long = "x".repeat(1000);
        let e = layers(&[&long, "y"]);
        assert_eq!(error_chain(&e), truncate(&long, MAX_UPSTREAM_TEXT));
    }

    /// An error whose cause is `inner`, as hyper and reqwest wrap theirs.
    #[derive(Debug)]
    struct Wrapped(Box<dyn std::error::Error + Send + Sync>);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("client error (Connect)")
        }
    }

    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(self.0.as_ref())
        }
    }

    fn unknown_issuer() -> rustls::Error {
        rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
    }

    #[test]
    fn a_refused_certificate_is_found_inside_io_errors() {
        use std::io::{Error as IoError, ErrorKind as Io};
        let in_io = |e: rustls::Error| Wrapped(Box::new(IoError::new(Io::InvalidData, e)));
        assert!(certificate_refused(&in_io(unknown_issuer())));
        assert!(certificate_refused(&Wrapped(Box::new(unknown_issuer()))));
        let expired = rustls::Error::InvalidCertificate(rustls::CertificateError::Expired);
        assert!(certificate_refused(&Wrapped(Box::new(in_io(expired)))));
        // hyper-rustls wraps tokio-rustls's io::Error in another one.
        let twice = IoError::other(IoError::new(Io::InvalidData, unknown_issuer()));
        assert!(certificate_refused(&Wrapped(Box::new(twice))));
        assert!(certificate_refused(&in_io(
            rustls::Error::NoCertificatesPresented
        )));
        // Other handshake failures and plain connection errors are not
        // about trust: they keep the usual network handling.
        assert!(!certificate_refused(&in_io(
            rustls::Error::NoApplicationProtocol
        )));
        let refused = IoError::new(Io::ConnectionRefused, "connection refused");
        assert!(!certificate_refused(&Wrapped(Box::new(refused))));
    }

    /// A one-connection HTTP peer on loopback that answers with `reply`
    /// and then either closes (FIN) or holds the connection open.
    async fn answering(reply: Vec<u8>, hold: bool) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        tokio::spawn(async move {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request).await;
            let _ = stream.write_all(&reply).await;
            let _ = stream.flush().await;
            if hold {
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
        });
        format!("http://{addr}/")
    }

    async fn read_from(reply: &str, hold: bool) -> Result<Vec<u8>, ToolError> {
        read_reply(reply.as_bytes().to_vec(), hold).await
    }

    async fn read_reply(reply: Vec<u8>, hold: bool) -> Result<Vec<u8>, ToolError> {
        let url = answering(reply, hold).await;
        let client = build_client(ClientSettings {
            timeout: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(2),
            https: false,
            loopback: true,
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let response = client.get(url).send().await;
        let response = response.unwrap_or_else(|e| panic!("no head: {e}"));
        read_capped(response).await
    }

    fn cell(https: bool) -> Arc<ClientCell> {
        Arc::new(ClientCell::new(ClientSettings {
            timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            https,
            loopback: true,
        }))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_client_is_built_once_whoever_asks_first() {
        for https in [true, false] {
            // Calls that arrive before the background build, and the build
            // started again: one build, every caller the same client.
            let cell = cell(https);
            let waiting: Vec<_> = (0..20)
                .map(|_| {
                    let cell = Arc::clone(&cell);
                    tokio::spawn(async move { cell.get().await.is_ok() })
                })
                .collect();
            cell.start();
            cell.start();
            let mut ok = Vec::new();
            for call in waiting {
                ok.push(call.await.unwrap_or_else(|e| panic!("{e}")));
            }
            assert_eq!(cell.builds.load(Ordering::Relaxed), 1, "https: {https}");
            assert!(ok.iter().all(|o| *o == ok[0]), "https: {https}");
            assert!(cell.get().await.is_ok() == ok[0]);
            assert_eq!(cell.builds.load(Ordering::Relaxed), 1, "https: {https}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_caller_that_gives_up_waiting_does_not_cost_a_second_build() {
        let cell = cell(true);
        // Dropped at its first wait: the build it started goes on.
        let gave_up = tokio::time::timeout(Duration::ZERO, cell.get()).await;
        assert!(gave_up.is_err() || cell.builds.load(Ordering::Relaxed) == 1);
        let _ = cell.get().await;
        assert_eq!(cell.builds.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn nothing_is_built_until_asked() {
        let cell = cell(true);
        tokio::task::yield_now().await;
        assert_eq!(cell.builds.load(Ordering::Relaxed), 0);
        assert!(!cell.client.initialized());
    }

    #[tokio::test]
    async fn a_body_cut_off_mid_read_is_network_and_a_stalled_one_timeout() {
        let partial = "HTTP/1.1 201 Created\r\nContent-Length: 100\r\n\r\n{\"data\":";
        let e = read_from(partial, false).await.err();
        let e = e.unwrap_or_else(|| panic!("a short body should fail"));
        assert_eq!((e.kind, e.created), (ErrorKind::Network, Created::Unknown));
        assert!(
            e.message.starts_with("The connection broke while reading"),
            "{}",
            e.message
        );

        let e = read_from(partial, true).await.err();
        let e = e.unwrap_or_else(|| panic!("a stalled body should fail"));
        assert_eq!((e.kind, e.created), (ErrorKind::Timeout, Created::Unknown));

        let refused = "HTTP/1.1 404 Not Found\r\nContent-Length: 100\r\n\r\n{";
        let e = read_from(refused, false).await.err();
        let e = e.unwrap_or_else(|| panic!("a short body should fail"));
        assert_eq!((e.kind, e.created), (ErrorKind::Network, Created::No));

        let whole = "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(read_from(whole, false).await.ok(), Some(b"{}".to_vec()));
    }

    #[tokio::test]
    async fn a_body_is_read_up_to_the_cap_and_not_a_byte_more() {
        let head = |length: Option<usize>| {
            let length = length
                .map(|n| format!("Content-Length: {n}\r\n"))
                .unwrap_or_default();
            format!("HTTP/1.1 201 Created\r\n{length}Connection: close\r\n\r\n").into_bytes()
        };
        for (length, size, fits) in [
            (Some(MAX_BODY_BYTES), MAX_BODY_BYTES, true),
            (None, MAX_BODY_BYTES, true),
            (None, MAX_BODY_BYTES + 1, false),
            (Some(MAX_BODY_BYTES + 1), 0, false),
        ] {
            let mut reply = head(length);
            reply.extend(std::iter::repeat_n(b' ', size));
            let got = read_reply(reply, false).await;
            match got {
                Ok(body) => assert!(fits && body.len() == size, "{length:?} {size}"),
                Err(e) => {
                    assert!(!fits, "{length:?} {size}: {e:?}");
                    assert_eq!(
                        (e.kind, e.created),
                        (ErrorKind::BadResponse, Created::Unknown)
                    );
                    assert!(
                        e.message.contains("larger than 1048576 bytes"),
                        "{}",
                        e.message
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod read_tests {
    use super::*;
    use clap::Parser;
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const KEY: &str = "hk_test_read_91ab";

    fn api(base: &str) -> HiEnergy {
        let argv = ["hienergy-mcp", "--base-url", base, "--max-retries", "2"];
        let args = crate::config::Args::try_parse_from(argv).unwrap_or_else(|e| panic!("{e}"));
        let config = Config::from_args(&args, |_| None).unwrap_or_else(|e| panic!("{e}"));
        HiEnergy::new(&config)
    }

    async fn answering(response: ResponseTemplate) -> MockServer {
        let mock = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(response)
            .mount(&mock)
            .await;
        mock
    }

    async fn sent(mock: &MockServer) -> usize {
        mock.received_requests().await.map_or(0, |r| r.len())
    }

    #[test]
    fn reads_are_beside_the_contacts_endpoint_under_any_prefix() {
        for (base, expected) in [
            ("http://127.0.0.1:9", "http://127.0.0.1:9/api/v1/search"),
            ("http://127.0.0.1:9/", "http://127.0.0.1:9/api/v1/search"),
            (
                "http://127.0.0.1:9/hi/energy",
                "http://127.0.0.1:9/hi/energy/api/v1/search",
            ),
        ] {
            assert_eq!(api(base).read_url(SEARCH_PATH).as_str(), expected, "{base}");
        }
    }

    #[tokio::test]
    async fn a_key_echoed_in_an_answer_is_scrubbed_from_every_member() {
        let body = json!({"data": [{"id": 1, "name": format!("echo {KEY}"), KEY: [KEY]}]});
        let mock = answering(ResponseTemplate::new(200).set_body_json(body)).await;
        let answer = api(&mock.uri()).get(KEY, ADVERTISERS_PATH, &[]).await;
        let text = answer
            .map(|a| a.to_string())
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(!text.contains(KEY), "{text}");
        assert!(text.contains("echo [redacted]"), "{text}");
    }

    #[tokio::test]
    async fn an_answer_over_the_cap_is_a_bad_response_read_once() {
        let huge = " ".repeat(MAX_BODY_BYTES + 1);
        let mock = answering(ResponseTemplate::new(200).set_body_string(huge)).await;
        let error = api(&mock.uri()).get(KEY, CONTACTS_PATH, &[]).await.err();
        let error = error.unwrap_or_else(|| panic!("a body over the cap should fail"));
        assert_eq!(
            (error.kind, error.created),
            (ErrorKind::BadResponse, Created::No)
        );
        assert_eq!(sent(&mock).await, 1);
    }

    /// A POST that HiEnergy answered may have created the contact, so no
    /// answer (refusal, server error, page, redirect) is a reason to send it
    /// again, and a redirect is not followed: a 307/308 would replay the
    /// POST there, key and all.
    #[tokio::test]
    async fn an_answered_post_is_sent_once_and_never_redirected() {
        let elsewhere = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(201))
            .mount(&elsewhere)
            .await;
        let location = format!("{}/somewhere/else", elsewhere.uri());
        let args = json!({"advertiser_id": 42, "email": "once@example.com"});
        let contact = crate::contact::AddContactArgs::parse(args.as_object())
            .unwrap_or_else(|e| panic!("{e:?}"))
            .contact;
        for status in [
            401, 403, 404, 422, 500, 502, 503, 200, 201, 301, 302, 303, 307, 308,
        ] {
            let mock = MockServer::start().await;
            Mock::given(method("POST"))
                .respond_with(
                    ResponseTemplate::new(status)
                        .insert_header("location", location.as_str())
                        .set_body_string("OK"),
                )
                .mount(&mock)
                .await;
            let error = api(&mock.uri())
                .add_contact(KEY, &contact, &CancellationToken::new())
                .await
                .err()
                .unwrap_or_else(|| panic!("{status} should fail"));
            assert_eq!(sent(&mock).await, 1, "{status}: {error:?}");
            if (300..400).contains(&status) {
                assert!(error.message.contains(&location), "{status}: {error:?}");
            }
        }
        assert_eq!(sent(&elsewhere).await, 0, "a redirect was followed");
    }

    #[tokio::test]
    async fn a_401_or_a_404_is_not_sent_again_and_a_5xx_is() {
        for (status, kind, requests) in [
            (401, ErrorKind::Unauthorized, 1),
            (404, ErrorKind::BadResponse, 1),
            (502, ErrorKind::UpstreamError, 3),
        ] {
            let mock = answering(ResponseTemplate::new(status)).await;
            let error = api(&mock.uri()).get(KEY, SEARCH_PATH, &[]).await.err();
            let error = error.unwrap_or_else(|| panic!("{status} should fail"));
            assert_eq!((error.kind, error.created), (kind, Created::No), "{status}");
            assert_eq!(sent(&mock).await, requests, "{status}");
        }
    }
}
