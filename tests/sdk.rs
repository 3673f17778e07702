//! The built binary driven by rmcp's client, against a fake HiEnergy.

use crate::common::*;
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn created_contact() -> Value {
    json!({
        "id": 9001,
        "advertiser_id": 42,
        "email": "jane.doe@example.com",
        "name": "Jane Doe",
        "created_at": "2026-11-26T12:00:00Z"
    })
}

async fn client_for(server: &MockServer) -> Client {
    sdk_client(command(&server.uri(), Some(TEST_KEY), &[])).await
}

fn envelope(code: &str, message: &str, details: Value) -> Value {
    json!({"error": {"code": code, "message": message, "request_id": "req-abc", "details": details}})
}

#[tokio::test]
async fn initialize_reports_our_identity_and_instructions() {
    let server = MockServer::start().await;
    let client = client_for(&server).await;
    let info = client
        .peer_info()
        .unwrap_or_else(|| panic!("no server info"));
    assert_eq!(
        info.server_info.as_ref().map(|i| i.name.as_str()),
        Some("hienergy-mcp")
    );
    assert_eq!(
        info.server_info.as_ref().map(|i| i.version.as_str()),
        Some(env!("CARGO_PKG_VERSION"))
    );
    let instructions = info.instructions.clone().unwrap_or_default();
    for needed in [
        "add_contact",
        "admin API key",
        "advertiser_id",
        "HiEnergy advertiser",
    ] {
        assert!(
            instructions.contains(needed),
            "instructions lack {needed:?}: {instructions}"
        );
    }
    assert!(info.capabilities.tools.is_some());
    let _ = client.cancel().await;
}

#[tokio::test]
async fn tools_list_has_a_portable_annotated_add_contact() {
    let server = MockServer::start().await;
    let client = client_for(&server).await;
    let tools = client
        .list_all_tools()
        .await
        .unwrap_or_else(|e| panic!("tools/list: {e}"));
    let tool = tool_named(&tools, "add_contact");
    assert_eq!(tool.title.as_deref(), Some("Add HiEnergy contact"));
    let annotations = tool
        .annotations
        .clone()
        .unwrap_or_else(|| panic!("no annotations"));
    assert_eq!(annotations.title.as_deref(), Some("Add HiEnergy contact"));
    assert_eq!(annotations.read_only_hint, Some(false));
    assert_eq!(annotations.destructive_hint, Some(false));
    assert_eq!(annotations.idempotent_hint, Some(false));
    assert_eq!(annotations.open_world_hint, Some(true));
    let schema = Value::Object(tool.input_schema.as_ref().clone());
    assert_eq!(schema, Value::Object(hienergy_mcp::schema::input_schema()));
    assert!(tool.output_schema.is_some());
    let _ = client.cancel().await;
}

#[tokio::test]
async fn success_sends_exactly_the_documented_request() {
    let server = MockServer::start().await;
    let full = json!({
        "advertiser_id": "42",
        "email": "  jane.doe@example.com ",
        "name": "Jane Doe",
        "given_name": "Jane",
        "family_name": "Doe",
        "phone": "+1 415 555 0100",
        "job_title": "Affiliate Manager",
        "source": "conference",
        "status": "active",
        "linkedin_profile_url": "https://www.linkedin.com/in/janedoe"
    });
    let expected_body = json!({"contact": {
        "advertiser_id": 42,
        "email": "jane.doe@example.com",
        "name": "Jane Doe",
        "given_name": "Jane",
        "family_name": "Doe",
        "phone": "+1 415 555 0100",
        "job_title": "Affiliate Manager",
        "source": "conference",
        "status": "active",
        "linkedin_profile_url": "https://www.linkedin.com/in/janedoe"
    }});
    Mock::given(method("POST"))
        .and(path(CONTACTS_PATH))
        .and(header("x-api-key", TEST_KEY))
        .and(header("accept", "application/json"))
        .and(header("content-type", "application/json"))
        .and(header(
            "user-agent",
            concat!("hienergy-mcp/", env!("CARGO_PKG_VERSION")),
        ))
        .and(body_json(&expected_body))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"data": created_contact()})))
        .expect(1)
        .mount(&server)
        .await;
    let client = client_for(&server).await;
    let result = call(&client, full).await;
    assert_eq!(result.is_error, Some(false), "{result:?}");
    assert_eq!(
        result.structured_content,
        Some(json!({"contact": created_contact(), "replayed": false}))
    );
    assert_eq!(
        text_of(&result),
        "Created HiEnergy contact 9001 <jane.doe@example.com> for advertiser 42."
    );

    // The result validates against the advertised outputSchema.
    let tools = client
        .list_all_tools()
        .await
        .unwrap_or_else(|e| panic!("tools/list: {e}"));
    let output_schema = tool_named(&tools, "add_contact")
        .output_schema
        .clone()
        .unwrap_or_else(|| panic!("add_contact has no outputSchema"));
    let validator = jsonschema::validator_for(&Value::Object(output_schema.as_ref().clone()))
        .unwrap_or_else(|e| panic!("outputSchema is not a schema: {e}"));
    let structured = result.structured_content.clone().unwrap_or_default();
    assert!(validator.is_valid(&structured), "{structured}");

    // Absent optional fields are omitted, not null.
    let received = server.received_requests().await.unwrap_or_default();
    let body: Value = serde_json::from_slice(&received[0].body).unwrap_or_default();
    assert_eq!(body, expected_body);
    let _ = client.cancel().await;
    server.verify().await;
}

#[tokio::test]
async fn minimal_body_omits_absent_fields() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(CONTACTS_PATH))
        .and(body_json(
            json!({"contact": {"advertiser_id": 42, "email": "jane.doe@example.com"}}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"data": created_contact()})))
        .expect(1)
        .mount(&server)
        .await;
    let client = client_for(&server).await;
    let result = call(
        &client,
        json!({"advertiser_id": 42, "email": "jane.doe@example.com", "name": "", "phone": null}),
    )
    .await;
    assert_eq!(result.is_error, Some(false), "{result:?}");
    let _ = client.cancel().await;
    server.verify().await;
}

/// Status → (kind, created, retryable), with the envelope carried through.
#[tokio::test]
async fn upstream_refusals_map_to_kinds() {
    let cases = [
        (401, "unauthorized", "invalid_api_key", "Invalid API key"),
        (403, "forbidden", "forbidden", "Admin API key required"),
        (
            404,
            "advertiser_not_found",
            "not_found",
            "Advertiser not found",
        ),
    ];
    for (status, kind, code, message) in cases {
        let server = MockServer::start().await;
        mount_answer(
            &server,
            ResponseTemplate::new(status).set_body_json(envelope(code, message, Value::Null)),
        )
        .await;
        let client = client_for(&server).await;
        let result = call(&client, minimal_contact()).await;
        let error = error_of(&result);
        assert_eq!(error["kind"], kind, "{status}: {error}");
        assert_eq!(error["created"], "no", "{status}");
        assert_eq!(error["retryable"], false, "{status}");
        assert_eq!(error["status"], status, "{status}");
        assert_eq!(error["code"], code, "{status}");
        assert_eq!(error["request_id"], "req-abc", "{status}");
        assert!(
            error["message"]
                .as_str()
                .unwrap_or_default()
                .contains(message),
            "{error}"
        );
        assert!(
            error["hint"].as_str().is_some_and(|h| h.len() > 20),
            "{error}"
        );
        assert!(text_of(&result).contains(kind), "{}", text_of(&result));
        assert_eq!(posts(&server).await, 1, "{status}");
        let _ = client.cancel().await;
    }
}

#[tokio::test]
async fn validation_details_from_hienergy_become_fields() {
    let server = MockServer::start().await;
    let details = json!({"email": ["has already been taken"], "phone": ["is invalid"]});
    mount_answer(
        &server,
        ResponseTemplate::new(422).set_body_json(envelope(
            "validation_failed",
            "Validation failed",
            details,
        )),
    )
    .await;
    let client = client_for(&server).await;
    let error = error_of(&call(&client, minimal_contact()).await);
    assert_eq!(error["kind"], "rejected");
    assert_eq!(error["created"], "no");
    assert_eq!(error["status"], 422);
    assert_eq!(
        error["fields"],
        json!([
            {"field": "email", "problem": "has already been taken"},
            {"field": "phone", "problem": "is invalid"}
        ])
    );
    let _ = client.cancel().await;
}

#[tokio::test]
async fn rate_limit_reports_when_to_retry() {
    let server = MockServer::start().await;
    mount_answer(
        &server,
        ResponseTemplate::new(429)
            .insert_header("retry-after", "60")
            .insert_header("x-ratelimit-limit", "100")
            .insert_header("x-ratelimit-remaining", "0")
            .set_body_json(envelope("rate_limited", "Too many requests", Value::Null)),
    )
    .await;
    let client = client_for(&server).await;
    let error = error_of(&call(&client, minimal_contact()).await);
    assert_eq!(error["kind"], "rate_limited");
    assert_eq!(error["created"], "no");
    assert_eq!(error["retryable"], true);
    assert_eq!(error["retry_after_seconds"], 60);
    assert!(
        error["hint"]
            .as_str()
            .unwrap_or_default()
            .contains("60 seconds"),
        "{error}"
    );
    // 60 s is past --max-retry-wait, so it is reported, not waited out.
    assert_eq!(posts(&server).await, 1);
    let _ = client.cancel().await;
}

#[tokio::test]
async fn server_error_page_is_unknown_and_not_resent() {
    let server = MockServer::start().await;
    let page = "<!DOCTYPE html><html><head><title>We're sorry, but something went wrong (500)</title></head><body><h1>Oops</h1></body></html>";
    mount_answer(
        &server,
        ResponseTemplate::new(500).set_body_raw(page, "text/html"),
    )
    .await;
    let client = client_for(&server).await;
    let error = error_of(&call(&client, minimal_contact()).await);
    assert_eq!(error["kind"], "upstream_error");
    assert_eq!(error["created"], "unknown");
    assert_eq!(error["status"], 500);
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains("something went wrong"), "{message}");
    assert!(!message.contains('<'), "{message}");
    assert_eq!(posts(&server).await, 1);
    let _ = client.cancel().await;
}

#[tokio::test]
async fn non_json_success_is_a_bad_response() {
    let server = MockServer::start().await;
    mount_answer(&server, ResponseTemplate::new(200).set_body_string("OK")).await;
    let client = client_for(&server).await;
    let error = error_of(&call(&client, minimal_contact()).await);
    assert_eq!(error["kind"], "bad_response");
    assert_eq!(error["created"], "unknown");
    assert_eq!(error["status"], 200);
    assert_eq!(posts(&server).await, 1);
    let _ = client.cancel().await;
}

#[tokio::test]
async fn missing_key_answers_not_configured_without_sending() {
    let server = MockServer::start().await;
    mount_answer(
        &server,
        ResponseTemplate::new(201).set_body_json(json!({"data": created_contact()})),
    )
    .await;
    let client = sdk_client(command(&server.uri(), None, &[])).await;
    // The server still lists its tool without a key.
    let tools = client
        .list_all_tools()
        .await
        .unwrap_or_else(|e| panic!("tools/list: {e}"));
    tool_named(&tools, "add_contact");
    let result = call(&client, minimal_contact()).await;
    let error = error_of(&result);
    assert_eq!(error["kind"], "not_configured");
    assert_eq!(error["created"], "no");
    let hint = error["hint"].as_str().unwrap_or_default();
    assert!(hint.contains("HIENERGY_API_KEY"), "{hint}");
    assert!(hint.contains("env"), "{hint}");
    assert_eq!(posts(&server).await, 0);
    let _ = client.cancel().await;
}

#[tokio::test]
async fn invalid_arguments_list_every_field_and_send_nothing() {
    let server = MockServer::start().await;
    mount_answer(
        &server,
        ResponseTemplate::new(201).set_body_json(json!({"data": created_contact()})),
    )
    .await;
    let client = client_for(&server).await;
    let result = call(
        &client,
        json!({
            "advertiser_id": 0,
            "email": "not-an-email",
            "linkedin_profile_url": "linkedin.com/in/jane",
            "nickname": "JD"
        }),
    )
    .await;
    let error = error_of(&result);
    assert_eq!(error["kind"], "invalid_arguments");
    assert_eq!(error["created"], "no");
    assert_eq!(error["retryable"], false);
    let fields: Vec<&str> = error["fields"]
        .as_array()
        .map(|f| f.iter().filter_map(|p| p["field"].as_str()).collect())
        .unwrap_or_default();
    // Known fields first: a flood of unknown names cannot push them out
    // of the capped list.
    assert_eq!(
        fields,
        ["advertiser_id", "email", "linkedin_profile_url", "nickname"]
    );
    let text = text_of(&result);
    assert!(
        text.contains("nickname") && text.contains("email"),
        "{text}"
    );
    assert_eq!(posts(&server).await, 0);
    let _ = client.cancel().await;
}

#[tokio::test]
async fn unknown_tool_is_a_protocol_error() {
    let server = MockServer::start().await;
    let client = client_for(&server).await;
    let params = rmcp::model::CallToolRequestParams::new("delete_everything");
    match client.call_tool(params).await {
        Err(rmcp::ServiceError::McpError(e)) => {
            assert_eq!(e.code, rmcp::model::ErrorCode::INVALID_PARAMS, "{e:?}");
            assert!(e.message.contains("unknown tool"), "{e:?}");
            assert!(e.message.contains("add_contacts"), "{e:?}");
        }
        other => panic!("expected -32602 for an unknown tool, got {other:?}"),
    }
    assert_eq!(posts(&server).await, 0);
    let _ = client.cancel().await;
}
