//! The production path once end to end: HTTPS with HTTP/2 to a fake
//! HiEnergy (tests/tls_fake) whose certificate the server trusts only
//! through `SSL_CERT_FILE`, and the same with a certificate it does not
//! trust.

use std::path::Path;
use std::time::Duration;

use crate::common::{TEST_KEY, command};
use crate::fault_kit::{Proc, contact, tool_contact, tool_error};
use crate::tls_fake::{Ca, TlsFake};

/// The binary pointed at `fake`, trusting exactly the CA in `ca_file`.
async fn server(fake: &TlsFake, ca_file: &Path, args: &[&str]) -> Proc {
    let mut cmd = command(&fake.base_url(), Some(TEST_KEY), args);
    cmd.env("SSL_CERT_FILE", ca_file).env_remove("SSL_CERT_DIR");
    Proc::start(cmd).await
}

#[tokio::test]
async fn https_call_to_a_trusted_fake_is_created_over_http2() {
    let fake = TlsFake::start();
    let mut proc = server(&fake, fake.ca_file(), &[]).await;
    let result = proc.call(contact("tls-trusted")).await;
    let created = tool_contact(&result);
    assert_eq!(created["email"], "tls-trusted@example.com", "{result}");
    assert_eq!(fake.requests(), 1);
    assert_eq!(fake.h2_requests(), 1, "the call did not go over HTTP/2");
    assert_eq!(fake.h2_connections(), 1);
    assert_eq!(fake.handshake_failures(), 0);
    let (status, _) = proc.finish().await;
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn a_certificate_the_server_does_not_trust_is_network_no_and_never_a_request() {
    let fake = TlsFake::start();
    // Another throwaway CA, which signed nothing the fake presents.
    let stranger = Ca::new("a CA that signed nothing here");
    let dir = tempfile::tempdir().expect("temp dir");
    let stranger_file = stranger.write(dir.path(), "stranger-ca.pem");
    let mut proc = server(&fake, &stranger_file, &[]).await;
    let error = tool_error(&proc.call(contact("tls-untrusted")).await);
    assert_eq!(error["kind"], "network", "{error}");
    assert_eq!(error["created"], "no", "{error}");
    let message = error["message"].as_str().unwrap_or_default().to_lowercase();
    assert!(
        message.contains("certificate"),
        "the message should name the certificate problem: {error}"
    );
    // It fails the same way every time: not retryable, not re-sent, and
    // the hint names the setting that fixes it.
    assert_eq!(error["retryable"], false, "{error}");
    let hint = error["hint"].as_str().unwrap_or_default();
    assert!(hint.contains("SSL_CERT_FILE"), "{error}");
    // The client may give up before the fake has read its alert on the
    // connection.
    for _ in 0..100 {
        if fake.handshake_failures() == fake.connections() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fake.connections(), 1, "the handshake was tried again");
    assert_eq!(
        fake.handshake_failures(),
        fake.connections(),
        "a connection got past the handshake"
    );
    assert_eq!(
        fake.requests(),
        0,
        "a request went out over an untrusted connection"
    );
    let (status, _) = proc.finish().await;
    assert!(status.success(), "{status}");
}
