//! What an agent relies on: no accidental duplicates, a preview that sends
//! nothing, and an error for every kind that says what to do next.

use std::time::Duration;

use crate::common::*;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn created(id: u64) -> ResponseTemplate {
    ResponseTemplate::new(201)
        .set_body_json(json!({"data": {"id": id, "email": "jane.doe@example.com"}}))
}

#[tokio::test]
async fn identical_second_call_is_replayed_without_a_post() {
    let server = MockServer::start().await;
    mount_answer(&server, created(1)).await;
    let client = sdk_client(command(&server.uri(), Some(TEST_KEY), &[])).await;
    let first = call(&client, minimal_contact()).await;
    assert_eq!(
        first
            .structured_content
            .as_ref()
            .map(|s| s["replayed"].clone()),
        Some(json!(false))
    );
    // Same contact, spelled differently: case, whitespace, an empty optional,
    // the id as a string.
    let second = call(
        &client,
        json!({"advertiser_id": "42", "email": " Jane.Doe@EXAMPLE.com", "phone": ""}),
    )
    .await;
    assert_eq!(second.is_error, Some(false));
    let structured = second.structured_content.clone().unwrap_or_default();
    assert_eq!(structured["replayed"], true);
    assert_eq!(structured["contact"]["id"], 1);
    assert!(
        text_of(&second).contains("no new contact"),
        "{}",
        text_of(&second)
    );
    assert_eq!(posts(&server).await, 1);
    // A different contact is sent.
    call(
        &client,
        json!({"advertiser_id": 42, "email": "john@example.com"}),
    )
    .await;
    assert_eq!(posts(&server).await, 2);
    let _ = client.cancel().await;
}

#[tokio::test]
async fn twenty_identical_concurrent_calls_make_one_post() {
    let server = MockServer::start().await;
    mount_answer(&server, created(7).set_delay(Duration::from_millis(300))).await;
    let client = sdk_client(command(&server.uri(), Some(TEST_KEY), &[])).await;
    let calls = (0..20).map(|_| call(&client, minimal_contact()));
    let results = futures::future::join_all(calls).await;
    assert_eq!(posts(&server).await, 1);
    let mut replayed = 0;
    for result in &results {
        assert_eq!(result.is_error, Some(false), "{result:?}");
        let structured = result.structured_content.clone().unwrap_or_default();
        assert_eq!(structured["contact"]["id"], 7);
        if structured["replayed"] == true {
            replayed += 1;
        }
    }
    assert_eq!(replayed, 19);
    let _ = client.cancel().await;
}

#[tokio::test]
async fn retry_after_an_unknown_outcome_is_sent_and_flagged() {
    let server = MockServer::start().await;
    // First answer arrives after the 1 s timeout; the second is instant.
    Mock::given(method("POST"))
        .and(path(CONTACTS_PATH))
        .respond_with(created(1).set_delay(Duration::from_secs(3)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_answer(&server, created(2)).await;
    let client = sdk_client(command(&server.uri(), Some(TEST_KEY), &["--timeout", "1"])).await;
    let first = call(&client, minimal_contact()).await;
    let error = error_of(&first);
    assert_eq!(error["kind"], "timeout");
    assert_eq!(error["created"], "unknown");
    let second = call(&client, minimal_contact()).await;
    assert_eq!(second.is_error, Some(false), "{second:?}");
    let structured = second.structured_content.clone().unwrap_or_default();
    assert_eq!(structured["previous_attempt"], "unknown");
    assert_eq!(structured["replayed"], false);
    assert_eq!(structured["contact"]["id"], 2);
    assert_eq!(posts(&server).await, 2);
    let _ = client.cancel().await;
}

#[tokio::test]
async fn failures_are_not_replayed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(CONTACTS_PATH))
        .respond_with(ResponseTemplate::new(401))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_answer(&server, created(3)).await;
    let client = sdk_client(command(&server.uri(), Some(TEST_KEY), &[])).await;
    assert_eq!(
        error_of(&call(&client, minimal_contact()).await)["kind"],
        "unauthorized"
    );
    let second = call(&client, minimal_contact()).await;
    assert_eq!(second.is_error, Some(false));
    let structured = second.structured_content.clone().unwrap_or_default();
    assert_eq!(structured["replayed"], false);
    assert!(structured.get("previous_attempt").is_none(), "{structured}");
    assert_eq!(posts(&server).await, 2);
    let _ = client.cancel().await;
}

#[tokio::test]
async fn dedupe_window_zero_sends_every_call() {
    let server = MockServer::start().await;
    mount_answer(&server, created(1)).await;
    let client = sdk_client(command(
        &server.uri(),
        Some(TEST_KEY),
        &["--dedupe-window", "0"],
    ))
    .await;
    for _ in 0..3 {
        let result = call(&client, minimal_contact()).await;
        assert_eq!(
            result
                .structured_content
                .as_ref()
                .map(|s| s["replayed"].clone()),
            Some(json!(false))
        );
    }
    assert_eq!(posts(&server).await, 3);
    let _ = client.cancel().await;
}

#[tokio::test]
async fn dry_run_sends_nothing_and_redacts_the_key() {
    let server = MockServer::start().await;
    mount_answer(&server, created(1)).await;
    for key in [Some(TEST_KEY), None] {
        let client = sdk_client(command(&server.uri(), key, &[])).await;
        let mut args = json!({"advertiser_id": "42", "email": "jane.doe@example.com", "name": " Jane ", "dry_run": true});
        let result = call(&client, args.clone()).await;
        assert_eq!(result.is_error, Some(false), "{result:?}");
        let structured = result.structured_content.clone().unwrap_or_default();
        assert_eq!(structured["dry_run"], true);
        let request = &structured["request"];
        assert_eq!(request["method"], "POST");
        assert_eq!(request["url"], format!("{}{CONTACTS_PATH}", server.uri()));
        assert_eq!(
            request["body"],
            json!({"contact": {"advertiser_id": 42, "email": "jane.doe@example.com", "name": "Jane"}})
        );
        assert_eq!(request["headers"]["Content-Type"], "application/json");
        let shown_key = request["headers"]["X-Api-Key"].as_str().unwrap_or_default();
        match key {
            Some(_) => assert_eq!(shown_key, "[redacted]"),
            None => assert!(shown_key.contains("not set"), "{shown_key}"),
        }
        let everything = format!("{result:?}");
        assert!(!everything.contains(TEST_KEY));
        assert!(text_of(&result).starts_with("Dry run: nothing was sent"));
        // dry_run is validated like everything else.
        args["email"] = json!("nope");
        assert_eq!(
            error_of(&call(&client, args).await)["kind"],
            "invalid_arguments"
        );
        let _ = client.cancel().await;
    }
    assert_eq!(posts(&server).await, 0);
}

/// One call per error kind: kind, created and retryable as documented, and
/// a hint an agent can act on.
#[tokio::test]
async fn every_error_kind_carries_its_hint_created_and_retryable() {
    struct Case {
        kind: &'static str,
        created: &'static str,
        retryable: bool,
        hint_says: &'static str,
    }
    let case = |kind, created, retryable, hint_says| Case {
        kind,
        created,
        retryable,
        hint_says,
    };
    let cases = [
        case("invalid_arguments", "no", false, "Fix the fields"),
        case("not_configured", "no", false, "HIENERGY_API_KEY"),
        case("unauthorized", "no", false, "HIENERGY_API_KEY"),
        case("forbidden", "no", false, "admin API key"),
        case(
            "advertiser_not_found",
            "no",
            false,
            "look the advertiser up",
        ),
        case("rejected", "no", false, "fix the fields"),
        case("rate_limited", "no", true, "retry after 30 seconds"),
        case("upstream_error", "unknown", true, "check for it"),
        case("timeout", "unknown", true, "check for it"),
        case("network", "no", true, "retry"),
        case("bad_response", "unknown", false, "check for it"),
    ];
    for case in cases {
        let server = MockServer::start().await;
        let mut args = minimal_contact();
        let mut key = Some(TEST_KEY);
        let mut base = server.uri();
        let mut flags: Vec<&str> = vec!["--max-retries", "0"];
        match case.kind {
            "invalid_arguments" => args["email"] = json!("nope"),
            "not_configured" => key = None,
            "unauthorized" => mount_answer(&server, ResponseTemplate::new(401)).await,
            "forbidden" => mount_answer(&server, ResponseTemplate::new(403)).await,
            "advertiser_not_found" => {
                mount_answer(&server, ResponseTemplate::new(404).set_body_json(json!({"error": "Advertiser not found"}))).await
            }
            "rejected" => mount_answer(&server, ResponseTemplate::new(422).set_body_json(json!({"error": {"code": "invalid", "message": "Invalid", "details": {"email": ["is taken"]}}}))).await,
            "rate_limited" => mount_answer(&server, ResponseTemplate::new(429).insert_header("retry-after", "30")).await,
            "upstream_error" => mount_answer(&server, ResponseTemplate::new(503)).await,
            "timeout" => {
                mount_answer(&server, created(1).set_delay(Duration::from_secs(3))).await;
                flags.extend(["--timeout", "1"]);
            }
            "network" => {
                // A port nothing listens on: connection refused.
                let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
                let port = listener.local_addr().map(|a| a.port()).unwrap_or(1);
                drop(listener);
                base = format!("http://127.0.0.1:{port}");
            }
            "bad_response" => mount_answer(&server, ResponseTemplate::new(200).set_body_json(json!({"data": "oops"}))).await,
            other => panic!("no setup for {other}"),
        }
        let client = sdk_client(command(&base, key, &flags)).await;
        let result = call(&client, args).await;
        let error = error_of(&result);
        assert_eq!(error["kind"], case.kind, "{error}");
        assert_eq!(error["created"], case.created, "{}: {error}", case.kind);
        assert_eq!(error["retryable"], case.retryable, "{}: {error}", case.kind);
        let hint = error["hint"].as_str().unwrap_or_default();
        assert!(
            hint.contains(case.hint_says),
            "{}: hint {hint:?}",
            case.kind
        );
        assert!(hint.ends_with('.'), "{hint}");
        let text = text_of(&result);
        assert!(text.contains(case.kind) && text.contains(hint), "{text}");
        if case.kind == "rejected" {
            assert_eq!(
                error["fields"],
                json!([{"field": "email", "problem": "is taken"}])
            );
        }
        let _ = client.cancel().await;
    }
}

#[tokio::test]
async fn instructions_and_description_teach_the_workflow() {
    let server = MockServer::start().await;
    let client = sdk_client(command(&server.uri(), None, &[])).await;
    let instructions = client
        .peer_info()
        .and_then(|i| i.instructions.clone())
        .unwrap_or_default();
    let tools = client.list_all_tools().await.unwrap_or_default();
    let description = tool_named(&tools, "add_contact")
        .description
        .clone()
        .unwrap_or_default();
    for text in [&instructions, &description.to_string()] {
        for needed in ["advertiser_id", "email", "replayed", "unknown", "dry_run"] {
            assert!(text.contains(needed), "{needed:?} missing from: {text}");
        }
    }
    assert!(instructions.contains("within 10 minutes"), "{instructions}");
    assert!(instructions.contains("previous_attempt"), "{instructions}");
    let _ = client.cancel().await;
}

#[tokio::test]
async fn an_email_equal_only_under_unicode_case_folding_is_another_contact() {
    let server = MockServer::start().await;
    mount_answer(&server, created(1)).await;
    let client = sdk_client(command(&server.uri(), Some(TEST_KEY), &[])).await;
    call(
        &client,
        json!({"advertiser_id": 42, "email": "kim@example.org"}),
    )
    .await;
    // U+212A KELVIN SIGN, which Unicode lower-cases to "k".
    let kelvin = call(
        &client,
        json!({"advertiser_id": 42, "email": "\u{212A}im@example.org"}),
    )
    .await;
    assert_eq!(kelvin.is_error, Some(false), "{kelvin:?}");
    let structured = kelvin.structured_content.clone().unwrap_or_default();
    assert_eq!(structured["replayed"], false, "{structured}");
    assert_eq!(posts(&server).await, 2);
    // ASCII case still does not matter.
    let upper = call(
        &client,
        json!({"advertiser_id": 42, "email": "KIM@Example.ORG"}),
    )
    .await;
    let structured = upper.structured_content.clone().unwrap_or_default();
    assert_eq!(structured["replayed"], true, "{structured}");
    assert_eq!(posts(&server).await, 2);
    let _ = client.cancel().await;
}
