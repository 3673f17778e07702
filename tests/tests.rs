//! The one integration test crate (ripgrep's layout): each module below is a
//! file beside this one, all linked into one test binary so the tests build
//! once. Most modules drive the real binary over stdio, as an MCP client
//! would, against a fake HiEnergy on 127.0.0.1.
//!
//! Shared harness:
//! - `common`: the binary spawned as a client spawns it, rmcp's client, a
//!   wiremock HiEnergy.
//! - `fault_kit`: a hand-written HTTP peer for faults below HTTP, and a raw
//!   JSON-RPC process driver.
//! - `kept_fake`: a wiremock HiEnergy that keeps what was POSTed and lists
//!   it back (also used by the bench).
//! - `tls_fake`: HiEnergy over TLS and HTTP/2 with a CA made at run time
//!   (also used by the bench).
//!
//! Where a test goes:
//! - `agent`: what an agent relies on: dry runs, no accidental duplicates,
//!   an actionable error per kind.
//! - `batch`: `add_contacts`: a list in one call, pacing, cancel, progress.
//! - `existing`: the look for the contact before each POST and after one
//!   of unknown fate: no second add, even after a restart.
//! - `faults`: rate limits, bodies over the cap and faults below HTTP →
//!   kind, `created`, and how many requests were sent. (Status and body →
//!   kind is one table in `src/answer.rs`.)
//! - `reads`: `search_advertisers` and `search_contacts` against every
//!   documented read shape; bad input, search down, 5xx on reads.
//! - `raw_protocol`: JSON-RPC spoken as bytes: framing, malformed input,
//!   concurrency, exit on EOF, signals and a closed stdout.
//! - `protocol_revisions`: 2026-07-28 (no initialize) and the older ones.
//! - `elicitation`: `advertiser` by name, domain or URL, and the user's
//!   choice when it names several records (accept, decline, cancel, no
//!   answer, no elicitation; the request's exact shape; the 2026-07-28
//!   input_required round).
//! - `conformance`: every result validated against the advertised
//!   outputSchema; `ts_sdk`: the same through the official TypeScript SDK.
//! - `canary`: the API key never shows in stdout, stderr or a result.
//! - `sdk`: rmcp's client end to end: its happy path once, no key, bad
//!   arguments.
//! - `settings`, `upstream`: settings and answers at their extremes.
//! - `tls`: HTTPS + HTTP/2 end to end, trusted and untrusted.
//! - `setup`: `hienergy-mcp setup` against fixture files under a temp HOME.
//! - `manifest`, `release`: the bundle manifest and dist config promise what
//!   is built.
//! - `proptest_args`: arbitrary JSON at the argument parser.
//! - `bundle` (ignored; `.ci/run` runs it): the .mcpb built and started as
//!   Claude Desktop starts it.
//! - `clients` (ignored; `.ci/run` runs it): `setup` checked by the real
//!   Claude Code, Gemini CLI, opencode and Codex, each reporting us connected.

// Test and bench code: a failed unwrap is a failed test (clippy.toml allows
// this inside #[test] functions; here it covers the harness too).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
mod fault_kit;
mod kept_fake;
mod tls_fake;

mod agent;
mod batch;
mod bundle;
mod canary;
mod clients;
mod conformance;
mod elicitation;
mod existing;
mod faults;
mod manifest;
mod proptest_args;
mod protocol_revisions;
mod raw_protocol;
mod reads;
mod release;
mod sdk;
mod settings;
mod setup;
mod tls;
mod ts_sdk;
mod upstream;
