//! Every result the server can give conforms to the outputSchema it
//! advertises in `tools/list`, errors included: the TypeScript SDK (and
//! Inspector, Gemini CLI, opencode) reject a result that does not, and
//! show the agent a protocol error instead of our kind and hint.
//!
//! The results are read off the wire as raw JSON, and checked against the
//! schema the same server advertised, not a copy.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::{TEST_KEY, command, mount_reads};
use crate::fault_kit::{Conn, Proc, TcpFake, contact, created_body};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use wiremock::matchers::{body_partial_json, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The outputSchema of every tool, from this server's own `tools/list`.
async fn advertised_schemas(proc: &mut Proc) -> Vec<(String, jsonschema::Validator)> {
    let listed = proc.request("tools/list", json!({})).await;
    let tools = listed["result"]["tools"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("no tools: {listed}"));
    assert!(!tools.is_empty());
    tools
        .iter()
        .map(|tool| {
            let name = tool["name"].as_str().unwrap_or_default().to_owned();
            let schema = tool
                .get("outputSchema")
                .unwrap_or_else(|| panic!("{name} has no outputSchema"));
            let validator = jsonschema::validator_for(schema)
                .unwrap_or_else(|e| panic!("{name}: outputSchema is not a schema: {e}"));
            (name, validator)
        })
        .collect()
}

fn schema_of<'a>(
    schemas: &'a [(String, jsonschema::Validator)],
    tool: &str,
) -> &'a jsonschema::Validator {
    schemas
        .iter()
        .find(|(name, _)| name == tool)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("{tool} not listed"))
}

/// Checks the structured content against the schema; the problems found.
fn schema_problems(schema: &jsonschema::Validator, result: &Value) -> Vec<String> {
    let structured = result
        .get("structuredContent")
        .unwrap_or_else(|| panic!("no structuredContent: {result}"));
    schema
        .iter_errors(structured)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// Claude Code shows the model only the text of an error result, opencode
/// only the text of every result: each fact in structuredContent an agent
/// acts on must be in the text too. The check walks the structured content,
/// so a member nobody classified below fails here rather than going
/// unsaid. A list's items are checked on their own line.
fn text_holds_facts(result: &Value) {
    let text = result["content"][0]["text"].as_str().unwrap_or_default();
    let structured = &result["structuredContent"];
    let mut needed = Vec::new();
    facts(structured, &mut needed);
    for fact in &needed {
        assert!(
            text.contains(fact.as_str()),
            "{fact:?} is not in the text:\n{text}\n{structured}"
        );
    }
    for item in structured["results"].as_array().into_iter().flatten() {
        let prefix = format!("contacts[{}]: ", item["index"]);
        let line = text
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no line for {prefix}:\n{text}"));
        let mut needed = Vec::new();
        facts(item, &mut needed);
        // Said once for the whole list: each distinct hint, the endpoint.
        let shared = [&item["error"]["hint"], &item["request"]["url"]];
        for fact in needed {
            let place = if shared.iter().any(|s| s.as_str() == Some(&fact)) {
                text
            } else {
                line
            };
            assert!(
                place.contains(&fact),
                "{fact:?} is not on {place:?}\n{item}"
            );
        }
    }
}

/// The text each member of a result needs said.
fn facts(value: &Value, out: &mut Vec<String>) {
    let Some(members) = value.as_object() else {
        return;
    };
    let plain = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    for (key, member) in members {
        match key.as_str() {
            // The error: what failed, what to do, and the flags acted on.
            "kind" | "message" | "hint" => out.push(plain(member)),
            "created" | "retry_after_seconds" | "previous_attempt" | "retryable" => {
                out.push(format!("{key}: {}", plain(member)))
            }
            "status" if member.is_number() => out.push(format!("HTTP {member}")),
            "fields" => {
                for f in member.as_array().into_iter().flatten() {
                    out.push(format!("{}: {}", plain(&f["field"]), plain(&f["problem"])));
                }
            }
            "error" => facts(member, out),
            // Support details, not needed to act.
            "code" | "request_id" => {}
            // The contact: its id; the rest is what the agent sent.
            "contact" => {
                if let Some(id) = member.get("id") {
                    out.push(plain(id));
                }
            }
            "replayed" => {
                if member == true {
                    out.push("replayed".into());
                }
            }
            "dry_run" => out.push("Dry run: nothing was sent".into()),
            // The look before the POST and after one of unknown fate.
            "existing" | "existing_check" | "confirmed_by_lookup" => {
                out.push(format!("{key}: {}", plain(member)))
            }
            // The preview is for a client that shows it; the text says
            // where it would go.
            "request" => out.push(plain(&member["url"])),
            "summary" => {
                for (status, n) in member.as_object().into_iter().flatten() {
                    out.push(format!("{n} {status}"));
                }
            }
            // Each on its own line, checked by the caller.
            "results" => {}
            // An item's own: status as a word; the copy it repeats.
            "status" => out.push(plain(member)),
            "index" => {}
            "duplicate_of" => out.push(format!("same as contacts[{member}]")),
            // The record a name resolved to, and the records the user may
            // mean: each as "Name (domain) on network, #id".
            "advertiser" => out.push(format!("#{}", member["id"])),
            "candidates" => {
                for candidate in member.as_array().into_iter().flatten() {
                    out.push(format!("#{}", candidate["id"]));
                }
            }
            other => panic!(
                "{other}: a member the text check does not know; say in the text what an agent needs of it, then add it here"
            ),
        }
    }
}

/// Checks one result against the schema and returns what it is, for the
/// tally of shapes covered.
fn conforms(schema: &jsonschema::Validator, result: &Value) -> String {
    text_holds_facts(result);
    let problems = schema_problems(schema, result);
    let structured = &result["structuredContent"];
    assert!(
        problems.is_empty(),
        "result does not match the advertised outputSchema: {problems:?}\n{structured}"
    );
    if let Some(kind) = structured["error"]["kind"].as_str() {
        assert_eq!(result["isError"], true, "{result}");
        return kind.to_owned();
    }
    assert_ne!(result["isError"], true, "{result}");
    if structured["dry_run"] == true {
        "dry_run".into()
    } else if structured["existing"] == true {
        "existing".into()
    } else if structured["confirmed_by_lookup"] == true {
        "confirmed_by_lookup".into()
    } else if structured["existing_check"].is_string() {
        "existing_check".into()
    } else if structured["previous_attempt"] == "unknown" {
        "previous_attempt".into()
    } else if structured["replayed"] == true {
        "replayed".into()
    } else {
        "created".into()
    }
}

fn with_email(tag: &str) -> Value {
    contact(tag)
}

/// A fake HiEnergy that answers by the contact's email, so one server
/// process covers every status.
async fn by_email(mock: &MockServer, tag: &str, response: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(body_partial_json(
            json!({"contact": {"email": contact(tag)["email"]}}),
        ))
        .respond_with(response)
        .mount(mock)
        .await;
}

fn envelope(code: &str, message: &str, details: Value) -> Value {
    json!({"error": {"code": code, "message": message, "request_id": "req-1", "details": details}})
}

/// HiEnergy's answers by the contact's email, one process covering every
/// status: `s401` … `s302`, and `ok` for a created contact.
async fn mount_answers(mock: &MockServer) {
    let answers = [
        (
            "s401",
            ResponseTemplate::new(401).set_body_json(envelope(
                "invalid_api_key",
                "Invalid API key",
                Value::Null,
            )),
        ),
        (
            "s403",
            ResponseTemplate::new(403).set_body_json(envelope(
                "forbidden",
                "Admin API key required",
                Value::Null,
            )),
        ),
        (
            "s404",
            ResponseTemplate::new(404).set_body_json(envelope(
                "not_found",
                "Advertiser not found",
                Value::Null,
            )),
        ),
        (
            "s422",
            ResponseTemplate::new(422).set_body_json(envelope(
                "validation_failed",
                "Validation failed",
                json!({"email": ["has already been taken"]}),
            )),
        ),
        (
            "s429",
            ResponseTemplate::new(429)
                .insert_header("retry-after", "60")
                .set_body_json(envelope("rate_limited", "Slow down", Value::Null)),
        ),
        (
            "s500",
            ResponseTemplate::new(500).set_body_string("<html><title>Oops</title></html>"),
        ),
        ("s200text", ResponseTemplate::new(200).set_body_string("OK")),
        (
            "s302",
            ResponseTemplate::new(302).insert_header("location", "https://login.example/"),
        ),
        (
            "ok",
            ResponseTemplate::new(201).set_body_json(created_body("ok")),
        ),
    ];
    for (tag, response) in answers {
        by_email(mock, tag, response).await;
    }
}

#[tokio::test]
async fn every_result_matches_the_advertised_output_schema() {
    let mock = MockServer::start().await;
    mount_answers(&mock).await;
    mount_reads(&mock).await;
    let mut seen = BTreeSet::new();

    let mut proc = Proc::start(command(&mock.uri(), Some(TEST_KEY), &[])).await;
    let schemas = advertised_schemas(&mut proc).await;
    let schema = schema_of(&schemas, "add_contact");
    // By name (this client cannot be asked): one record, two, search down.
    for advertiser in ["lolewomen.com", "aloyoga.com", "down"] {
        let mut by_name = with_email("ok");
        by_name["advertiser"] = json!(advertiser);
        by_name["advertiser_id"] = Value::Null;
        seen.insert(conforms(schema, &proc.call(by_name).await));
    }
    for tag in [
        "s401", "s403", "s404", "s422", "s429", "s500", "s200text", "s302", "ok",
    ] {
        let result = proc.call(with_email(tag)).await;
        seen.insert(conforms(schema, &result));
    }
    // The same contact again: a replay.
    seen.insert(conforms(schema, &proc.call(with_email("ok")).await));
    let mut dry = with_email("dry");
    dry["dry_run"] = json!(true);
    seen.insert(conforms(schema, &proc.call(dry).await));
    // Every invalid-argument shape at once: wrong types, unknown names.
    let invalid =
        json!({"advertiser_id": "x", "email": 5, "bogus": 1, "linkedin_profile_url": "nope"});
    seen.insert(conforms(schema, &proc.call(invalid).await));
    let (status, _) = proc.finish().await;
    assert!(status.success());

    // No key.
    let mut proc = Proc::start(command(&mock.uri(), None, &[])).await;
    seen.insert(conforms(schema, &proc.call(with_email("nokey")).await));
    proc.finish().await;

    // A port nobody listens on.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let closed = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let mut proc = Proc::start(command(&closed, Some(TEST_KEY), &["--max-retries", "0"])).await;
    seen.insert(conforms(schema, &proc.call(with_email("refused")).await));
    proc.finish().await;

    // A fake that takes the request and never answers: a timeout, then a
    // retry that succeeds carries previous_attempt; then a call still in
    // flight when stdin closes ends cancelled.
    let hang = TcpFake::start(|mut conn: Conn| async move {
        if conn.read_request().await.is_none() {
            return;
        }
        if conn.index == 1 {
            let _ = conn
                .write(&crate::fault_kit::http_201(&created_body("hang")))
                .await;
            return;
        }
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    let mut proc = Proc::start(command(
        &hang.http_url(),
        Some(TEST_KEY),
        &["--timeout", "1"],
    ))
    .await;
    seen.insert(conforms(schema, &proc.call(with_email("hang")).await));
    seen.insert(conforms(schema, &proc.call(with_email("hang")).await));
    let id = proc.start_call(with_email("cancel")).await;
    let response = proc.response_after_stdin_closes(&id).await;
    seen.insert(conforms(schema, &response["result"]));

    let expected: BTreeSet<String> = [
        "invalid_arguments",
        "not_configured",
        "unauthorized",
        "forbidden",
        "advertiser_not_found",
        "rejected",
        "rate_limited",
        "upstream_error",
        "timeout",
        "network",
        "bad_response",
        "cancelled",
        "advertiser_ambiguous",
        "search_unavailable",
        "created",
        "replayed",
        "dry_run",
        "previous_attempt",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(seen, expected);
}

/// Checks an add_contacts result against its schema and the isError rule,
/// and returns the shapes it shows: its whole-call error, or "dry_run",
/// or each status (with the error kind and created of failures).
fn list_conforms(schema: &jsonschema::Validator, result: &Value) -> BTreeSet<String> {
    text_holds_facts(result);
    let problems = schema_problems(schema, result);
    let structured = &result["structuredContent"];
    assert!(
        problems.is_empty(),
        "result does not match the advertised outputSchema: {problems:?}\n{structured}"
    );
    if let Some(kind) = structured["error"]["kind"].as_str() {
        assert_eq!(result["isError"], true, "{result}");
        return BTreeSet::from([format!("call:{kind}")]);
    }
    let items = structured["results"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let summary = &structured["summary"];
    let count = |status: &str| items.iter().filter(|i| i["status"] == status).count();
    for status in ["created", "replayed", "existing", "failed", "not_sent"] {
        // A status none has may be left out of the summary.
        let counted = summary[status].as_u64().unwrap_or(0) as usize;
        assert_eq!(counted, count(status), "{status}: {structured}");
    }
    let mut shapes = BTreeSet::new();
    if structured["dry_run"] == true {
        assert_eq!(result["isError"], count("not_sent") == 0, "{result}");
        shapes.insert("dry_run".to_owned());
        return shapes;
    }
    let nothing = count("created") + count("replayed") + count("existing") == 0;
    assert_eq!(result["isError"] == true, nothing, "isError: {result}");
    if nothing {
        shapes.insert("isError".to_owned());
    }
    for item in &items {
        let status = item["status"].as_str().unwrap_or_default();
        shapes.insert(match item["error"]["kind"].as_str() {
            Some(kind) => format!(
                "{status}:{kind}:{}",
                item["error"]["created"].as_str().unwrap_or("")
            ),
            None => status.to_owned(),
        });
    }
    shapes
}

#[tokio::test]
async fn every_add_contacts_result_matches_its_advertised_output_schema() {
    let mock = MockServer::start().await;
    mount_answers(&mock).await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(created_body("list")))
        .mount(&mock)
        .await;
    let list =
        |tags: &[&str]| json!({"contacts": tags.iter().map(|t| contact(t)).collect::<Vec<_>>()});
    let mut seen = BTreeSet::new();

    let mut proc = Proc::start(command(&mock.uri(), Some(TEST_KEY), &[])).await;
    let schemas = advertised_schemas(&mut proc).await;
    let schema = schema_of(&schemas, "add_contacts");
    let mut invalid = list(&["a1", "a2"]);
    invalid["contacts"][1]["email"] = json!("nope");
    invalid["contacts"][1]["bogus"] = json!(1);
    for arguments in [
        // All created, then the same again: all replayed.
        list(&["a0", "a1"]),
        list(&["a0", "a1"]),
        // Partial: created, refused, failed with created unknown, invalid.
        list(&["b0", "s422", "s500"]),
        invalid,
        // Nothing created.
        list(&["s401"]),
        // A dry run, and calls refused as a whole.
        json!({"contacts": [contact("d0"), {"email": "x"}], "dry_run": true}),
        json!({"contacts": []}),
        json!({"contacts": [{"email": "x"}], "dry_run": "x"}),
    ] {
        let result = proc.call_tool("add_contacts", arguments).await;
        seen.extend(list_conforms(schema, &result));
    }
    proc.finish().await;

    // The rate limit spent for longer than the server waits: the rest is
    // not sent.
    let mut proc = Proc::start(command(
        &mock.uri(),
        Some(TEST_KEY),
        &["--batch-concurrency", "1"],
    ))
    .await;
    let result = proc
        .call_tool("add_contacts", list(&["s429", "c1", "c2"]))
        .await;
    seen.extend(list_conforms(schema, &result));
    proc.finish().await;

    // No key.
    let mut proc = Proc::start(command(&mock.uri(), None, &[])).await;
    let result = proc.call_tool("add_contacts", list(&["k0"])).await;
    seen.extend(list_conforms(schema, &result));
    proc.finish().await;

    // Stopped when stdin closes: in flight unknown, the rest never sent.
    let hang = TcpFake::start(|mut conn: Conn| async move {
        if conn.read_request().await.is_some() {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
    })
    .await;
    let mut proc = Proc::start(command(&hang.http_url(), Some(TEST_KEY), &[])).await;
    let id = proc
        .start_tool(
            "add_contacts",
            json!({"arguments": list(&["h0", "h1", "h2", "h3", "h4", "h5"])}),
        )
        .await;
    let response = proc.response_after_stdin_closes(&id).await;
    seen.extend(list_conforms(schema, &response["result"]));

    let expected: BTreeSet<String> = [
        "created",
        "replayed",
        "failed:rejected:no",
        "failed:upstream_error:unknown",
        "failed:invalid_arguments:no",
        "failed:unauthorized:no",
        "failed:rate_limited:no",
        "not_sent:rate_limited:no",
        "failed:cancelled:unknown",
        "not_sent:cancelled:no",
        "isError",
        "dry_run",
        "call:invalid_arguments",
        "call:not_configured",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(seen, expected);
}

/// The results of the look for an existing contact, before a POST and
/// after one of unknown fate, for both tools.
#[tokio::test]
async fn every_result_of_the_look_for_an_existing_contact_matches_its_schema() {
    use crate::common::{mount_kept, mount_reads};
    let mock = MockServer::start().await;
    mount_reads(&mock).await;
    let mut seen = BTreeSet::new();
    let mut proc = Proc::start(command(&mock.uri(), Some(TEST_KEY), &[])).await;
    let schemas = advertised_schemas(&mut proc).await;
    let (one, list) = (
        schema_of(&schemas, "add_contact"),
        schema_of(&schemas, "add_contacts"),
    );
    let jane = json!({"advertiser_id": 42, "email": "jane.doe@aloyoga.com", "if_exists": "skip"});
    seen.insert(conforms(one, &proc.call(jane.clone()).await));
    let mut dry = jane.clone();
    dry["dry_run"] = json!(true);
    seen.insert(conforms(one, &proc.call(dry).await));
    let args = json!({"advertiser_id": 42, "if_exists": "skip", "contacts": [
        {"email": "jane.doe@aloyoga.com"}, {"email": "hidden@aloyoga.com"}, {"email": "jane.doe@aloyoga.com"}
    ]});
    let mut dry = args.clone();
    dry["dry_run"] = json!(true);
    seen.extend(list_conforms(
        list,
        &proc.call_tool("add_contacts", dry).await,
    ));
    proc.finish().await;

    // The look fails (no GET mounted: 404); the POSTs time out, kept or not.
    let slow = MockServer::start().await;
    let kept = MockServer::start().await;
    mount_kept(&kept, Duration::from_secs(5), true).await;
    let lost = MockServer::start().await;
    mount_kept(&lost, Duration::from_secs(5), false).await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(created_body("checked")))
        .mount(&slow)
        .await;
    for (server, tag) in [(&slow, "unchecked"), (&kept, "kept"), (&lost, "lost")] {
        let flags = ["--timeout", "1", "--max-retries", "0"];
        let mut proc = Proc::start(command(&server.uri(), Some(TEST_KEY), &flags)).await;
        let contact = json!({"advertiser_id": 42, "email": format!("{tag}@aloyoga.com"), "if_exists": "skip"});
        seen.insert(format!(
            "{tag}:{}",
            conforms(one, &proc.call(contact).await)
        ));
        let items = json!({"advertiser_id": 42, "if_exists": "skip", "contacts": [{"email": format!("{tag}2@aloyoga.com")}]});
        seen.extend(
            list_conforms(list, &proc.call_tool("add_contacts", items).await)
                .into_iter()
                .map(|s| format!("{tag}:{s}")),
        );
        proc.finish().await;
    }
    let _ = args;
    let expected = [
        "dry_run",
        "existing",
        "kept:confirmed_by_lookup",
        "kept:created",
        "lost:failed:timeout:unknown",
        "lost:isError",
        "lost:timeout",
        "unchecked:created",
        "unchecked:existing_check",
    ];
    for shape in expected {
        assert!(seen.contains(shape), "{shape} not covered: {seen:?}");
    }
}
