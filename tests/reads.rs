//! `search_advertisers` and `search_contacts` through the real binary,
//! against a fake HiEnergy that serves every documented read shape
//! (`common::mount_reads`). Every result is checked against the
//! outputSchema the server advertised, and its text against its facts.

use rmcp::model::CallToolResult;
use serde_json::{Value, json};
use wiremock::MockServer;

use crate::common::{
    ADVERTISERS_PATH, CONTACTS_LIST_PATH, Client, SEARCH_PATH, TEST_KEY, call_tool, command,
    error_of, mount_reads, requests_to, sdk_client, text_of,
};

async fn fake() -> MockServer {
    let mock = MockServer::start().await;
    mount_reads(&mock).await;
    mock
}

async fn client(mock: &MockServer, args: &[&str]) -> Client {
    sdk_client(command(&mock.uri(), Some(TEST_KEY), args)).await
}

/// Calls `tool` and checks the result against the outputSchema this
/// server advertised for it, and that the key shows nowhere.
async fn checked(client: &Client, tool: &'static str, arguments: Value) -> CallToolResult {
    let tools = client
        .list_all_tools()
        .await
        .unwrap_or_else(|e| panic!("tools/list: {e}"));
    let listed = crate::common::tool_named(&tools, tool);
    let schema = Value::Object(
        listed
            .output_schema
            .as_ref()
            .map(|s| s.as_ref().clone())
            .unwrap_or_else(|| panic!("{tool} has no outputSchema")),
    );
    let validator = jsonschema::validator_for(&schema)
        .unwrap_or_else(|e| panic!("{tool}: outputSchema is not a schema: {e}"));
    let result = call_tool(client, tool, arguments).await;
    let structured = result
        .structured_content
        .clone()
        .unwrap_or_else(|| panic!("no structuredContent: {result:?}"));
    let problems: Vec<String> = validator
        .iter_errors(&structured)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(problems.is_empty(), "{tool}: {problems:?}\n{structured}");
    let everything = format!("{structured} {}", text_of(&result));
    assert!(!everything.contains(TEST_KEY), "the key is in a result");
    result
}

fn structured(result: &CallToolResult) -> Value {
    assert_ne!(result.is_error, Some(true), "{result:?}");
    result.structured_content.clone().unwrap_or_default()
}

fn ids(list: &Value) -> Vec<u64> {
    list.as_array()
        .map(|rows| rows.iter().filter_map(|r| r["id"].as_u64()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_url_is_looked_up_by_its_domain_and_a_brand_s_two_records_both_come_back() {
    let mock = fake().await;
    let client = client(&mock, &[]).await;
    for query in [
        "https://www.aloyoga.com/shop?ref=x",
        "aloyoga.com",
        "www.AloYoga.com",
    ] {
        let result = checked(&client, "search_advertisers", json!({"query": query})).await;
        let found = structured(&result);
        // JSON:API rows with string ids, read as integers.
        assert_eq!(ids(&found["advertisers"]), [42, 43], "{query}: {found}");
        assert_eq!(found["advertisers"][1]["network"], "CJ");
        assert_eq!(found["advertisers"][0]["publisher"], "HiEnergy");
        assert_eq!(found["domain"], "aloyoga.com");
        assert_eq!(
            (found["total"].as_u64(), &found["search_available"]),
            (Some(2), &json!(true))
        );
        let text = text_of(&result);
        for fact in [
            "id 42: Alo Yoga (domain aloyoga.com, network Awin, publisher HiEnergy, status approved)",
            "id 43: Alo Yoga (domain aloyoga.com, network CJ, publisher HiEnergy, status approved)",
            "let them choose",
        ] {
            assert!(text.contains(fact), "{fact} not in {text}");
        }
    }
    // The domain filter found them: universal search was never asked.
    let sent = requests_to(&mock, ADVERTISERS_PATH).await;
    assert_eq!(sent.len(), 3);
    for request in &sent {
        assert_eq!(
            request
                .headers
                .get("x-api-key")
                .and_then(|v| v.to_str().ok()),
            Some(TEST_KEY)
        );
        let query: Vec<(String, String)> = request.url.query_pairs().into_owned().collect();
        assert!(
            query.contains(&("domain".into(), "aloyoga.com".into())),
            "{query:?}"
        );
        assert!(query.contains(&("limit".into(), "10".into())), "{query:?}");
    }
    assert!(requests_to(&mock, SEARCH_PATH).await.is_empty());
    let _ = client.cancel().await;
}

#[tokio::test]
async fn a_name_goes_to_universal_search_and_a_domain_without_records_falls_back_to_it() {
    let mock = fake().await;
    let client = client(&mock, &[]).await;
    let result = checked(
        &client,
        "search_advertisers",
        json!({"query": "Alo Yoga", "limit": 5}),
    )
    .await;
    let found = structured(&result);
    assert_eq!(ids(&found["advertisers"]), [42, 43], "{found}");
    assert_eq!(
        found["advertisers"][0]["name"], "Alo Yoga",
        "title is the name"
    );
    assert_eq!(found["advertisers"][1]["subtitle"], "CJ · HiEnergy");
    assert!(found.get("domain").is_none());
    let searched = requests_to(&mock, SEARCH_PATH).await;
    let query: Vec<(String, String)> = searched[0].url.query_pairs().into_owned().collect();
    assert_eq!(
        query,
        [
            ("q", "Alo Yoga"),
            ("types", "advertisers"),
            ("per_type_limit", "5")
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );

    let result = checked(
        &client,
        "search_advertisers",
        json!({"query": "nothing.com"}),
    )
    .await;
    let none = structured(&result);
    assert_eq!(
        (none["advertisers"].clone(), none["total"].clone()),
        (json!([]), json!(0))
    );
    assert_eq!(none["search_available"], true);
    assert!(text_of(&result).starts_with("No HiEnergy advertiser matched the domain nothing.com"));
    assert_eq!(requests_to(&mock, ADVERTISERS_PATH).await.len(), 1);
    assert_eq!(requests_to(&mock, SEARCH_PATH).await.len(), 2);
    let _ = client.cancel().await;
}

#[tokio::test]
async fn search_down_is_said_as_unavailable_never_as_no_match() {
    let mock = fake().await;
    let client = client(&mock, &[]).await;
    for (tool, arguments) in [
        ("search_advertisers", json!({"query": "down"})),
        ("search_contacts", json!({"query": "down"})),
    ] {
        let result = checked(&client, tool, arguments).await;
        let down = structured(&result);
        assert_eq!(down["search_available"], false, "{tool}: {down}");
        let text = text_of(&result);
        assert!(
            text.contains("unavailable") && text.contains("this is not"),
            "{tool}: {text}"
        );
    }
    let _ = client.cancel().await;
}

#[tokio::test]
async fn a_5xx_on_a_read_is_read_again_then_an_upstream_error_that_wrote_nothing() {
    let mock = fake().await;
    let client = client(&mock, &["--max-retries", "1"]).await;
    let result = checked(&client, "search_advertisers", json!({"query": "boom"})).await;
    let error = error_of(&result);
    assert_eq!(error["kind"], "upstream_error", "{error}");
    assert_eq!(
        (error["status"].clone(), error["created"].clone()),
        (json!(503), json!("no"))
    );
    assert_eq!(error["request_id"], "req-r");
    let text = text_of(&result);
    assert!(
        text.starts_with("search_advertisers failed (upstream_error):"),
        "{text}"
    );
    assert!(
        text.contains("Search timed out") && text.contains("nothing was written"),
        "{text}"
    );
    assert!(!text.contains("may or may not"), "{text}");
    // A GET is safe to send again: 1 + --max-retries.
    assert_eq!(requests_to(&mock, SEARCH_PATH).await.len(), 2);
    let _ = client.cancel().await;
}

#[tokio::test]
async fn contacts_come_back_in_either_shape_and_absence_is_never_proof() {
    let mock = fake().await;
    let client = client(&mock, &[]).await;
    // The {"contacts": {"data": [...]}} wrapper, JSON:API rows, string ids.
    let result = checked(
        &client,
        "search_contacts",
        json!({"email": "jane.doe@aloyoga.com", "advertiser_id": 42}),
    )
    .await;
    let jane = structured(&result);
    assert_eq!(
        jane["contacts"],
        json!([{"id": 7, "email": "Jane.Doe@AloYoga.com", "name": "Jane Doe", "job_title": "Affiliate Manager",
                "advertiser_id": 42, "advertiser_name": "Alo Yoga"}])
    );
    let text = text_of(&result);
    assert!(text.contains("id 7: Jane Doe (advertiser_id 42, advertiser_name Alo Yoga, email Jane.Doe@AloYoga.com, job_title Affiliate Manager)"), "{text}");
    assert!(text.contains("Absence is not proof"), "{text}");

    // A contact rated below 1 is not listed: the text says that proves nothing.
    let result = checked(
        &client,
        "search_contacts",
        json!({"email": "hidden@aloyoga.com"}),
    )
    .await;
    assert_eq!(structured(&result)["contacts"], json!([]));
    let text = text_of(&result);
    assert!(
        text.contains("lists no contact") && text.contains("rated below 1"),
        "{text}"
    );

    // Flat rows, integer ids, an advertiser named by slug.
    let result = checked(
        &client,
        "search_contacts",
        json!({"advertiser_id": "43", "limit": 50}),
    )
    .await;
    let listed = structured(&result);
    assert_eq!(ids(&listed["contacts"]), [8, 9], "{listed}");
    assert_eq!(listed["contacts"][0]["phone"], "+1 415 555 0100");
    assert_eq!(listed["contacts"][1]["advertiser_slug"], "alo-yoga-cj");
    let sent = requests_to(&mock, CONTACTS_LIST_PATH).await;
    let query: Vec<(String, String)> = sent[0].url.query_pairs().into_owned().collect();
    assert!(
        query.contains(&("email".into(), "jane.doe@aloyoga.com".into())),
        "{query:?}"
    );
    assert!(
        query.contains(&("advertiser_id".into(), "42".into())),
        "{query:?}"
    );
    let _ = client.cancel().await;
}

#[tokio::test]
async fn bad_input_names_the_field_and_sends_nothing() {
    let mock = fake().await;
    let client = client(&mock, &[]).await;
    let long = "x".repeat(201);
    for (tool, arguments, field) in [
        ("search_advertisers", json!({}), "query"),
        ("search_advertisers", json!({"query": "  "}), "query"),
        ("search_advertisers", json!({"query": long}), "query"),
        (
            "search_advertisers",
            json!({"query": "alo", "limit": 26}),
            "limit",
        ),
        (
            "search_advertisers",
            json!({"query": "alo", "limit": 0}),
            "limit",
        ),
        ("search_advertisers", json!({"query": "alo", "q": "x"}), "q"),
        ("search_contacts", json!({}), "email"),
        ("search_contacts", json!({"email": "not-an-email"}), "email"),
        (
            "search_contacts",
            json!({"advertiser_id": -4}),
            "advertiser_id",
        ),
        ("search_contacts", json!({"query": ""}), "query"),
        (
            "search_contacts",
            json!({"query": "jane", "limit": 51}),
            "limit",
        ),
    ] {
        let result = checked(&client, tool, arguments.clone()).await;
        let error = error_of(&result);
        assert_eq!(
            error["kind"], "invalid_arguments",
            "{tool} {arguments}: {error}"
        );
        assert_eq!(
            error["fields"][0]["field"], field,
            "{tool} {arguments}: {error}"
        );
    }
    assert_eq!(mock.received_requests().await.map_or(0, |r| r.len()), 0);
    let _ = client.cancel().await;
}

#[tokio::test]
async fn without_a_key_a_search_is_not_configured_and_sends_nothing() {
    let mock = fake().await;
    let client = sdk_client(command(&mock.uri(), None, &[])).await;
    for (tool, arguments) in [
        ("search_advertisers", json!({"query": "Alo Yoga"})),
        ("search_contacts", json!({"advertiser_id": 42})),
    ] {
        let result = checked(&client, tool, arguments).await;
        assert_eq!(error_of(&result)["kind"], "not_configured");
    }
    assert_eq!(mock.received_requests().await.map_or(0, |r| r.len()), 0);
    let _ = client.cancel().await;
}
