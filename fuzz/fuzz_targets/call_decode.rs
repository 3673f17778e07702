//! The `tools/call` decode that skips rmcp's untagged unions
//! (`transport::decode_call`), fed lines built to look like JSON-RPC
//! messages (members a request has, and others, in any order, repeated or
//! missing) and raw bytes: whenever it takes a line, rmcp's own decode of
//! that line must succeed and give the same value, `_meta` and extensions
//! included.
#![no_main]

use arbitrary::Arbitrary;
use hienergy_mcp::transport::agrees_with_rmcp;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Input {
    /// A call, each part right or wrong or missing: the first variant of
    /// each is the right one, so small inputs are valid calls and the fuzzer
    /// works from there.
    Call(Call),
    /// Members of any kind in any order.
    Message(Vec<(Key, Val)>),
    Raw(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
struct Call {
    jsonrpc: Part<()>,
    id: Part<Id>,
    method: Part<()>,
    params: Part<Params>,
    /// Members added at the top level after the others.
    extra: Vec<(Key, Val)>,
    /// Rotates the order of the four members.
    rotate: u8,
}

/// The right value, another value, or no member at all.
#[derive(Debug, Arbitrary)]
enum Part<T> {
    Right(T),
    Other(Val),
    Missing,
}

#[derive(Debug, Arbitrary)]
enum Id {
    Int(i64),
    Str(String),
}

#[derive(Debug, Arbitrary)]
struct Params {
    name: Part<String>,
    arguments: Option<Vec<(Key, Val)>>,
    meta: Option<Vec<(Key, Val)>>,
    extra: Vec<(Key, Val)>,
}

#[derive(Debug, Arbitrary)]
enum Key {
    Jsonrpc,
    Id,
    Method,
    Params,
    Result,
    Error,
    Name,
    Arguments,
    Meta,
    ProgressToken,
    RequestState,
    InputResponses,
    Other(String),
}

#[derive(Debug, Arbitrary)]
enum Val {
    Null,
    Bool(bool),
    Int(i64),
    Unsigned(u64),
    Float(f64),
    Str(String),
    Version,
    ToolsCall,
    Array(Vec<Val>),
    Object(Vec<(Key, Val)>),
}

fn key(k: &Key) -> String {
    let name = match k {
        Key::Jsonrpc => "jsonrpc",
        Key::Id => "id",
        Key::Method => "method",
        Key::Params => "params",
        Key::Result => "result",
        Key::Error => "error",
        Key::Name => "name",
        Key::Arguments => "arguments",
        Key::Meta => "_meta",
        Key::ProgressToken => "progressToken",
        Key::RequestState => "requestState",
        Key::InputResponses => "inputResponses",
        Key::Other(s) => s,
    };
    quoted(name)
}

fn quoted(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

fn json(v: &Val) -> String {
    let mut out = String::new();
    value(v, &mut out);
    out
}

/// `"key":value` for each member, as the extra members of an object.
fn extra_members(extra: &[(Key, Val)]) -> impl Iterator<Item = String> + '_ {
    extra.iter().map(|(k, v)| format!("{}:{}", key(k), json(v)))
}

fn object(members: &[(Key, Val)], out: &mut String) {
    out.push('{');
    for (i, (k, v)) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&key(k));
        out.push(':');
        value(v, out);
    }
    out.push('}');
}

fn value(v: &Val, out: &mut String) {
    match v {
        Val::Null => out.push_str("null"),
        Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Val::Int(n) => out.push_str(&n.to_string()),
        Val::Unsigned(n) => out.push_str(&n.to_string()),
        Val::Float(f) => out.push_str(&serde_json::Value::from(*f).to_string()),
        Val::Str(s) => out.push_str(&quoted(s)),
        Val::Version => out.push_str("\"2.0\""),
        Val::ToolsCall => out.push_str("\"tools/call\""),
        Val::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                value(item, out);
            }
            out.push(']');
        }
        Val::Object(members) => object(members, out),
    }
}

fn call(c: &Call) -> String {
    let mut members: Vec<String> = Vec::new();
    let mut part = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            members.push(format!("\"{name}\":{value}"));
        }
    };
    part("jsonrpc", text(&c.jsonrpc, |()| "\"2.0\"".to_owned()));
    part(
        "id",
        text(&c.id, |id| match id {
            Id::Int(n) => n.to_string(),
            Id::Str(s) => quoted(s),
        }),
    );
    part("method", text(&c.method, |()| "\"tools/call\"".to_owned()));
    part("params", text(&c.params, params));
    let rotate = usize::from(c.rotate) % members.len().max(1);
    members.rotate_left(rotate);
    members.extend(extra_members(&c.extra));
    format!("{{{}}}", members.join(","))
}

fn text<T>(part: &Part<T>, right: impl Fn(&T) -> String) -> Option<String> {
    match part {
        Part::Right(t) => Some(right(t)),
        Part::Other(v) => Some(json(v)),
        Part::Missing => None,
    }
}

fn params(p: &Params) -> String {
    let mut members = Vec::new();
    if let Some(name) = text(&p.name, |n| quoted(n)) {
        members.push(format!("\"name\":{name}"));
    }
    for (k, fields) in [("arguments", &p.arguments), ("_meta", &p.meta)] {
        if let Some(fields) = fields {
            let mut out = String::new();
            object(fields, &mut out);
            members.push(format!("\"{k}\":{out}"));
        }
    }
    members.extend(extra_members(&p.extra));
    format!("{{{}}}", members.join(","))
}

fuzz_target!(|input: Input| {
    let line = match &input {
        Input::Call(c) => call(c).into_bytes(),
        Input::Raw(bytes) => bytes.clone(),
        Input::Message(members) => {
            let mut out = String::new();
            object(members, &mut out);
            out.into_bytes()
        }
    };
    if let Err(e) = agrees_with_rmcp(&line) {
        panic!("{e}\nline: {}", String::from_utf8_lossy(&line));
    }
});
