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

/// rmcp's client from start to created contacts, in one session: our
/// identity and instructions, the tool as listed, exactly the documented
/// request, and a minimal body. (Which status becomes which kind is
/// `answer`'s table; its end to end is `agent`'s one call per kind.)
#[tokio::test]
async fn initialize_list_and_add_with_rmcp_client() {
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
    // As given, with the advertiser an integer and the email trimmed.
    let mut sent = full.clone();
    sent["advertiser_id"] = json!(42);
    sent["email"] = json!("jane.doe@example.com");
    let expected_body = json!({"contact": sent});
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
    let minimal_created = json!({"id": 9002, "advertiser_id": 42, "email": "john.roe@example.com"});
    Mock::given(method("POST"))
        .and(path(CONTACTS_PATH))
        .and(body_json(
            json!({"contact": {"advertiser_id": 42, "email": "john.roe@example.com"}}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"data": minimal_created})))
        .expect(1)
        .mount(&server)
        .await;
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
    let output_schema = tool
        .output_schema
        .clone()
        .unwrap_or_else(|| panic!("add_contact has no outputSchema"));

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
    let validator = jsonschema::validator_for(&Value::Object(output_schema.as_ref().clone()))
        .unwrap_or_else(|e| panic!("outputSchema is not a schema: {e}"));
    let structured = result.structured_content.clone().unwrap_or_default();
    assert!(validator.is_valid(&structured), "{structured}");
    let received = server.received_requests().await.unwrap_or_default();
    let body: Value = serde_json::from_slice(&received[0].body).unwrap_or_default();
    assert_eq!(body, expected_body);

    // Absent optional fields, empty strings and nulls are omitted, not sent.
    let result = call(
        &client,
        json!({"advertiser_id": 42, "email": "john.roe@example.com", "name": "", "phone": null}),
    )
    .await;
    assert_eq!(result.is_error, Some(false), "{result:?}");
    let _ = client.cancel().await;
    server.verify().await;
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
