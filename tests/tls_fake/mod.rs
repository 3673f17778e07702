//! HiEnergy as production serves it, TLS with HTTP/2, faked on 127.0.0.1:
//! a CA made at run time, a certificate for `localhost` and 127.0.0.1
//! signed by it, and hyper behind rustls offering `h2` and `http/1.1`.
//! The server trusts the CA through `SSL_CERT_FILE` (rustls-native-certs,
//! under rustls-platform-verifier, reads it instead of the system store).
//!
//! One file for tests/tls.rs (`mod tls_fake;`) and benches/stdio.rs
//! (`#[path]`): it depends on nothing of tests/common, which a bench cannot
//! compile (`CARGO_BIN_EXE_*`, the test modules). It runs on a thread
//! and a runtime of its own, so async tests and the synchronous bench drive
//! it alike.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde_json::{Value, json};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const CONTACTS_PATH: &str = "/api/v1/contacts/add";
/// A client that connects and never finishes the handshake is given up on.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);
/// What HiEnergy's edge is assumed to allow on one connection; hyper's own
/// default, written out so a burst of 200 fits on one connection knowingly.
const MAX_STREAMS: u32 = 200;

/// A throwaway certificate authority.
pub struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("self-signed CA");
        Self {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// Writes the CA certificate to `dir/name`, for `SSL_CERT_FILE`.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, &self.pem).expect("write the CA file");
        path
    }

    /// A server certificate for `localhost` and 127.0.0.1, and its key.
    fn leaf(&self) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().expect("leaf key");
        // Strings that parse as an IP address become IP SANs.
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("leaf parameters");
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.issuer).expect("sign the leaf");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (cert.der().clone(), key)
    }
}

#[derive(Default)]
struct State {
    latency_us: AtomicU64,
    connections: AtomicU64,
    handshake_failures: AtomicU64,
    h2_connections: AtomicU64,
    requests: AtomicU64,
    h2_requests: AtomicU64,
}

/// The fake. It stops serving when dropped.
pub struct TlsFake {
    pub addr: SocketAddr,
    ca: Ca,
    /// Holds the CA file; removed with the fake.
    dir: tempfile::TempDir,
    ca_file: PathBuf,
    state: Arc<State>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl TlsFake {
    pub fn start() -> Self {
        let ca = Ca::new("hienergy-mcp throwaway test CA");
        let (cert, key) = ca.leaf();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .expect("server certificate");
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));

        let dir = tempfile::tempdir().expect("temp dir");
        let ca_file = ca.write(dir.path(), "fake-hienergy-ca.pem");
        let state = Arc::new(State::default());
        let shared = state.clone();
        let (addr, stop) = serve_on_thread("tls-fake", move |stream| {
            shared.connections.fetch_add(1, Ordering::SeqCst);
            serve(stream, acceptor.clone(), shared.clone())
        });
        Self {
            addr,
            ca,
            dir,
            ca_file,
            state,
            _stop: stop,
        }
    }

    /// `https://localhost:PORT`: the name the certificate is for, as a
    /// real base URL has one.
    pub fn base_url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    /// `https://127.0.0.1:PORT`: no name to resolve.
    pub fn ip_base_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn ca(&self) -> &Ca {
        &self.ca
    }

    /// A file holding only the CA certificate.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    pub fn set_latency(&self, latency: Duration) {
        self.state
            .latency_us
            .store(latency.as_micros() as u64, Ordering::SeqCst);
    }

    /// TCP connections accepted, whether or not TLS came up on them.
    pub fn connections(&self) -> u64 {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Connections that negotiated `h2` by ALPN.
    pub fn h2_connections(&self) -> u64 {
        self.state.h2_connections.load(Ordering::SeqCst)
    }

    /// Connections on which the TLS handshake failed or did not finish.
    pub fn handshake_failures(&self) -> u64 {
        self.state.handshake_failures.load(Ordering::SeqCst)
    }

    /// HTTP requests received, whatever they asked for.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Of those, the ones that came over HTTP/2.
    pub fn h2_requests(&self) -> u64 {
        self.state.h2_requests.load(Ordering::SeqCst)
    }
}

/// Listens on 127.0.0.1 (a free port) on a thread of its own, with a
/// current-thread runtime, and runs `connection` for each connection
/// accepted, as a task of its own, until the returned sender is dropped.
/// Shared by this fake and the bench's plain HTTP/1.1 one.
pub fn serve_on_thread<F, C>(
    name: &str,
    connection: F,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>)
where
    F: Fn(tokio::net::TcpStream) -> C + Send + 'static,
    C: Future<Output = ()> + Send + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("fake runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                loop {
                    tokio::select! {
                        _ = &mut stopped => return,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            tokio::spawn(connection(stream));
                        }
                    }
                }
            });
        })
        .expect("spawn the fake's thread");
    (addr, stop)
}

async fn serve(stream: tokio::net::TcpStream, acceptor: TlsAcceptor, state: Arc<State>) {
    let _ = stream.set_nodelay(true);
    let tls = match tokio::time::timeout(HANDSHAKE_LIMIT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        _ => {
            state.handshake_failures.fetch_add(1, Ordering::SeqCst);
            return;
        }
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
    if h2 {
        state.h2_connections.fetch_add(1, Ordering::SeqCst);
    }
    let io = TokioIo::new(tls);
    let service = hyper::service::service_fn(move |request| answer(request, state.clone()));
    if h2 {
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .max_concurrent_streams(MAX_STREAMS)
            .serve_connection(io, service)
            .await;
    } else {
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(io, service)
            .await;
    }
}

/// 201 with the created contact after the set latency, as HiEnergy
/// answers an add; a HiEnergy-shaped 404 or 401 for anything else.
async fn answer(
    request: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    if request.version() == Version::HTTP_2 {
        state.h2_requests.fetch_add(1, Ordering::SeqCst);
    }
    let id = state.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let (head, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    if head.method != Method::POST || head.uri.path() != CONTACTS_PATH {
        return Ok(error(StatusCode::NOT_FOUND, "not_found", "no such route"));
    }
    if !head.headers.contains_key("x-api-key") {
        return Ok(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing API key",
        ));
    }
    let latency = state.latency_us.load(Ordering::SeqCst);
    if latency > 0 {
        tokio::time::sleep(Duration::from_micros(latency)).await;
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Ok(json_response(StatusCode::CREATED, &created(id, &request)))
}

/// HiEnergy's 201 body for the contact in `request`, with the given id:
/// what both of the benchmark's fakes answer.
pub fn created(id: u64, request: &Value) -> Value {
    let contact = &request["contact"];
    json!({"data": {
        "id": id,
        "advertiser_id": contact["advertiser_id"],
        "email": contact["email"],
        "name": contact["name"],
        "status": "active",
        "created_at": "2025-01-01T00:00:00Z"
    }})
}

fn error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    let body = json!({"error": {"code": code, "message": message, "request_id": "tls-fake"}});
    json_response(status, &body)
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}
