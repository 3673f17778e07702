//! The stdin line reader with its repairs, fed arbitrary bytes in
//! arbitrary pieces: it never panics, and every line comes out byte for
//! byte except a request whose `params` is not an object, which comes out
//! as valid JSON under the repair method, with the same id.
#![no_main]

use arbitrary::Arbitrary;
use hienergy_mcp::server::INVALID_PARAMS_METHOD;
use hienergy_mcp::stdio::frame_for_fuzzing;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

#[derive(Debug, Arbitrary)]
struct Input {
    data: Vec<u8>,
    /// Where the data is cut into the pieces reads would return.
    cuts: Vec<u16>,
}

/// Lines with their newline; a last line without one gets one, as the
/// reader ends it.
fn lines(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = data
        .split_inclusive(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    if let Some(last) = out.last_mut()
        && last.last() != Some(&b'\n')
    {
        last.push(b'\n');
    }
    out
}

fuzz_target!(|input: Input| {
    let mut cuts: Vec<usize> = input
        .cuts
        .iter()
        .map(|c| usize::from(*c) % (input.data.len() + 1))
        .collect();
    cuts.sort_unstable();
    let mut pieces = Vec::new();
    let mut from = 0;
    for cut in cuts {
        pieces.push(&input.data[from..cut]);
        from = cut;
    }
    pieces.push(&input.data[from..]);
    let out = frame_for_fuzzing(&pieces);

    let given = lines(&input.data);
    let got = lines(&out);
    assert_eq!(given.len(), got.len(), "lines in and out differ");
    for (before, after) in given.iter().zip(&got) {
        if before == after {
            continue;
        }
        // Only a repaired request may differ: valid JSON under the marker,
        // with the request's own id and its method inside params.
        let before: Value = serde_json::from_slice(before).expect("a changed line was JSON");
        let after: Value = serde_json::from_slice(after).expect("a repaired line is JSON");
        assert_eq!(after["method"], INVALID_PARAMS_METHOD);
        assert_eq!(after["id"], before["id"]);
        assert_eq!(after["params"]["method"], before["method"]);
        assert!(!before["params"].is_object() && !before["params"].is_null());
    }
});
