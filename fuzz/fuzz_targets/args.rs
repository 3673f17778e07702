//! The argument parser, fed whatever JSON the bytes make: it never panics,
//! accepts only what it can send, and its refusal stays bounded however
//! large or strange the input.
#![no_main]

use hienergy_mcp::contact::AddContactArgs;
use hienergy_mcp::outcome::ErrorKind;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// The largest refusal the parser may produce: 50 listed problems with
/// bounded names and texts, whatever the input.
const MAX_REFUSAL_BYTES: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let arguments = value.as_object();
    match AddContactArgs::parse(arguments) {
        Ok(args) => {
            match &args.advertiser {
                // A name: its id is set by the lookup, before anything is sent.
                Some(name) => {
                    assert_eq!(args.contact.advertiser_id, 0);
                    assert!(!name.trim().is_empty());
                }
                None => assert!(args.contact.advertiser_id >= 1),
            }
            assert!(args.contact.email.contains('@'));
            assert_eq!(args.contact.email.trim(), args.contact.email);
            // What is sent is exactly representable in every JSON client.
            assert!(args.contact.advertiser_id <= (1u64 << 53) - 1);
        }
        Err(error) => {
            assert_eq!(error.kind, ErrorKind::InvalidArguments);
            assert!(!error.fields.is_empty());
            let shown = error.to_json().to_string();
            assert!(shown.len() <= MAX_REFUSAL_BYTES, "{} bytes", shown.len());
        }
    }
});
