//! Reading HiEnergy's answer: any status, headers and body. It never
//! panics, takes only a 2xx `{"data": {...}}` as success, says "not
//! created" only for a 4xx, and bounds what it quotes back.
#![no_main]

use arbitrary::Arbitrary;
use hienergy_mcp::answer::{MAX_UPSTREAM_TEXT, classify};
use hienergy_mcp::budget::retry_after;
use hienergy_mcp::outcome::Created;
use libfuzzer_sys::fuzz_target;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

#[derive(Debug, Arbitrary)]
struct Answer {
    status: u16,
    headers: Vec<(u8, Vec<u8>)>,
    body: Vec<u8>,
}

/// Headers the reader looks at, and one it does not.
const NAMES: [&str; 7] = [
    "content-type",
    "retry-after",
    "x-ratelimit-reset",
    "x-ratelimit-remaining",
    "x-request-id",
    "location",
    "x-other",
];

fuzz_target!(|answer: Answer| {
    let Ok(status) = StatusCode::from_u16(answer.status) else {
        return;
    };
    let mut headers = HeaderMap::new();
    for (name, value) in &answer.headers {
        let name = NAMES[usize::from(*name) % NAMES.len()];
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(name, value);
        }
    }
    let _ = retry_after(&headers);
    match classify(status, &headers, &answer.body, "/api/v1/contacts/add") {
        Ok(_) => assert!(status.is_success()),
        Err(error) => {
            assert_eq!(
                error.created == Created::No,
                status.is_client_error(),
                "{status}: {error:?}"
            );
            // A lead sentence plus at most MAX_UPSTREAM_TEXT of HiEnergy's.
            assert!(
                error.message.chars().count() <= MAX_UPSTREAM_TEXT + 400,
                "{} chars",
                error.message.chars().count()
            );
            assert!(error.fields.len() <= 51);
        }
    }
});
