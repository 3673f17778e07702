//! The look before each POST and after one of unknown fate (issue 19,
//! items 3–6): a contact HiEnergy already lists is not added again, even
//! after a restart; a POST that timed out is settled by a lookup; a look
//! that cannot judge never blocks the write, and says so.

use std::time::Duration;

use crate::common::{
    CONTACTS_LIST_PATH, TEST_KEY, call, call_tool, command, error_of, mount_answer, mount_kept,
    mount_reads, posts, requests_to, sdk_client, text_of,
};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn structured(result: &rmcp::model::CallToolResult) -> Value {
    result.structured_content.clone().unwrap_or_default()
}

fn created() -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(
        json!({"data": {"id": 99, "email": "jane.doe@aloyoga.com", "advertiser_id": 42}}),
    )
}

/// Documented shape: the `{"contacts": {"data"}}` wrapper, JSON:API rows,
/// string ids (`common::mount_reads`).
#[tokio::test]
async fn a_contact_hienergy_already_lists_is_not_posted_and_is_a_success() {
    let mock = MockServer::start().await;
    mount_reads(&mock).await;
    mount_answer(&mock, created()).await;
    let client = sdk_client(command(&mock.uri(), Some(TEST_KEY), &[])).await;
    let result = call(
        &client,
        json!({"advertiser_id": 42, "email": " jane.doe@aloyoga.com ", "if_exists": "skip"}),
    )
    .await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let out = structured(&result);
    assert_eq!(out["existing"], true, "{out}");
    assert_eq!(out["contact"]["id"], 7, "{out}");
    let text = text_of(&result);
    assert!(
        text.contains("Already in HiEnergy")
            && text.contains(" 7 ")
            && text.contains("nothing was added"),
        "{text}"
    );
    assert_eq!(posts(&mock).await, 0);
    assert_eq!(requests_to(&mock, CONTACTS_LIST_PATH).await.len(), 1);

    // if_exists "add": sent without looking.
    let result = call(
        &client,
        json!({"advertiser_id": 42, "email": "jane.doe@aloyoga.com", "if_exists": "add"}),
    )
    .await;
    assert_eq!(structured(&result)["contact"]["id"], 99, "{result:?}");
    assert_eq!(posts(&mock).await, 1);
    assert_eq!(requests_to(&mock, CONTACTS_LIST_PATH).await.len(), 1);

    let bad = call(
        &client,
        json!({"advertiser_id": 42, "email": "jane.doe@aloyoga.com", "if_exists": "overwrite"}),
    )
    .await;
    assert_eq!(error_of(&bad)["fields"][0]["field"], "if_exists");
    client.cancel().await.ok();
}

#[tokio::test]
async fn the_same_list_after_a_restart_comes_back_existing_with_no_post() {
    let mock = MockServer::start().await;
    let kept = mount_kept(&mock, Duration::ZERO, true).await;
    let list: Vec<Value> = (0..3)
        .map(|i| json!({"advertiser_id": 42, "email": format!("p{i}@aloyoga.com")}))
        .collect();
    let args = json!({"contacts": list, "if_exists": "skip"});
    let first = sdk_client(command(&mock.uri(), Some(TEST_KEY), &[])).await;
    let result = call_tool(&first, "add_contacts", args.clone()).await;
    assert_eq!(structured(&result)["summary"]["created"], 3, "{result:?}");
    assert_eq!((posts(&mock).await, kept.len()), (3, 3));
    first.cancel().await.ok();

    // A new process: the duplicate guard's memory is gone; HiEnergy's is not.
    let second = sdk_client(command(&mock.uri(), Some(TEST_KEY), &[])).await;
    let again = call_tool(&second, "add_contacts", args.clone()).await;
    let out = structured(&again);
    assert_eq!(out["summary"]["existing"], 3, "{out}");
    assert_eq!(out["summary"]["created"], 0, "{out}");
    assert_ne!(again.is_error, Some(true));
    for item in out["results"].as_array().unwrap() {
        assert_eq!(
            (item["status"].as_str(), &item["existing"]),
            (Some("existing"), &json!(true))
        );
    }
    assert!(
        text_of(&again).contains("3 existing"),
        "{}",
        text_of(&again)
    );
    // One look per contact, no POST.
    assert_eq!(kept.requests(), (3, 6), "no POST the second time");
    let mut one = list[1].clone();
    one["if_exists"] = json!("skip");
    let single = call(&second, one).await;
    assert_eq!(structured(&single)["existing"], true, "{single:?}");
    assert_eq!(posts(&mock).await, 3);
    second.cancel().await.ok();
}

/// A server that gives up on HiEnergy after a second, without retrying.
async fn timing_out(mock: &MockServer) -> crate::common::Client {
    let flags = ["--timeout", "1", "--max-retries", "0"];
    sdk_client(command(&mock.uri(), Some(TEST_KEY), &flags)).await
}

#[tokio::test]
async fn a_timed_out_post_that_created_the_contact_is_created_by_lookup() {
    let mock = MockServer::start().await;
    // Kept on arrival, answered only after the client's timeout.
    mount_kept(&mock, Duration::from_secs(5), true).await;
    let client = timing_out(&mock).await;
    let result = call(
        &client,
        json!({"advertiser_id": 42, "email": "slow@aloyoga.com", "if_exists": "skip"}),
    )
    .await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let out = structured(&result);
    assert_eq!(out["confirmed_by_lookup"], true, "{out}");
    assert_eq!(out["contact"]["id"], 1001, "{out}");
    assert!(out.get("error").is_none(), "{out}");
    assert!(text_of(&result).contains("confirmed_by_lookup: true"));
    assert_eq!(posts(&mock).await, 1);
    // One look before, one after.
    assert_eq!(requests_to(&mock, CONTACTS_LIST_PATH).await.len(), 2);
    client.cancel().await.ok();
}

#[tokio::test]
async fn a_timed_out_post_the_lookup_does_not_find_stays_unknown_and_says_why() {
    let mock = MockServer::start().await;
    mount_kept(&mock, Duration::from_secs(5), false).await;
    let client = timing_out(&mock).await;
    let result = call(
        &client,
        json!({"advertiser_id": 42, "email": "lost@aloyoga.com", "if_exists": "skip"}),
    )
    .await;
    let error = error_of(&result);
    assert_eq!(
        (error["kind"].as_str(), error["created"].as_str()),
        (Some("timeout"), Some("unknown"))
    );
    let hint = error["hint"].as_str().unwrap_or_default();
    assert!(
        hint.contains("did not find it")
            && hint.contains("rated below 1")
            && hint.contains("before it is sent again"),
        "{hint}"
    );
    assert!(text_of(&result).contains(hint));
    assert_eq!(posts(&mock).await, 1);
    assert_eq!(requests_to(&mock, CONTACTS_LIST_PATH).await.len(), 2);
    client.cancel().await.ok();
}

#[tokio::test]
async fn a_check_that_cannot_judge_never_blocks_the_post_and_says_why() {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(CONTACTS_LIST_PATH))
        .respond_with(ResponseTemplate::new(503).set_body_json(
            json!({"error": {"code": "unavailable", "message": "Search timed out", "request_id": "r"}}),
        ))
        .mount(&mock)
        .await;
    mount_answer(&mock, created()).await;
    let client = sdk_client(command(
        &mock.uri(),
        Some(TEST_KEY),
        &["--max-retries", "0"],
    ))
    .await;
    let result = call(
        &client,
        json!({"advertiser_id": 42, "email": "jane.doe@aloyoga.com", "if_exists": "skip"}),
    )
    .await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let out = structured(&result);
    let why = out["existing_check"].as_str().unwrap_or_default();
    assert!(why.contains("upstream_error"), "{out}");
    assert_eq!(out["contact"]["id"], 99);
    assert!(
        text_of(&result).contains("could not be checked"),
        "{}",
        text_of(&result)
    );
    assert_eq!(posts(&mock).await, 1);

    let list = call_tool(
        &client,
        "add_contacts",
        json!({"advertiser_id": 42, "if_exists": "skip", "contacts": [{"email": "a@aloyoga.com"}, {"email": "b@aloyoga.com"}]}),
    )
    .await;
    let out = structured(&list);
    assert_eq!(out["summary"]["created"], 2, "{out}");
    assert!(out["results"][1]["existing_check"].is_string(), "{out}");
    assert_eq!(posts(&mock).await, 3);
    client.cancel().await.ok();
}

#[tokio::test]
async fn a_401_on_the_check_stops_the_call_as_unauthorized_before_any_post() {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"error": {"code": "invalid_api_key", "message": "Invalid API key", "request_id": "r"}}),
        ))
        .mount(&mock)
        .await;
    mount_answer(&mock, created()).await;
    let client = sdk_client(command(&mock.uri(), Some(TEST_KEY), &[])).await;
    let result = call(
        &client,
        json!({"advertiser_id": 42, "email": "a@aloyoga.com", "if_exists": "skip"}),
    )
    .await;
    assert_eq!(error_of(&result)["kind"], "unauthorized");
    let list = call_tool(
        &client,
        "add_contacts",
        json!({"advertiser_id": 42, "if_exists": "skip", "contacts": [{"email": "a@aloyoga.com"}, {"email": "b@aloyoga.com"}, {"email": "c@aloyoga.com"}]}),
    )
    .await;
    assert_eq!(list.is_error, Some(true));
    let out = structured(&list);
    for item in out["results"].as_array().unwrap() {
        assert_eq!(item["error"]["kind"], "unauthorized", "{out}");
    }
    assert_eq!(posts(&mock).await, 0);
    // Concurrency 4 may start all three; none is started after the 401.
    assert!(requests_to(&mock, CONTACTS_LIST_PATH).await.len() <= 4);
    client.cancel().await.ok();
}

#[tokio::test]
async fn a_dry_run_with_a_key_says_what_a_real_call_would_do_without_a_key_only_the_requests() {
    let mock = MockServer::start().await;
    mount_reads(&mock).await;
    let args = json!({"advertiser_id": 42, "dry_run": true, "if_exists": "skip", "contacts": [
        {"email": "jane.doe@aloyoga.com"}, {"email": "hidden@aloyoga.com"}
    ]});
    let client = sdk_client(command(&mock.uri(), Some(TEST_KEY), &[])).await;
    let result = call_tool(&client, "add_contacts", args.clone()).await;
    let out = structured(&result);
    assert_eq!(out["results"][0]["existing"], true, "{out}");
    assert_eq!(out["results"][1]["existing"], false, "{out}");
    let text = text_of(&result);
    assert!(
        text.contains("would skip: already exists as id 7"),
        "{text}"
    );
    assert!(text.contains("would add"), "{text}");
    let single = call(
        &client,
        json!({"advertiser_id": 42, "email": "jane.doe@aloyoga.com", "dry_run": true, "if_exists": "skip"}),
    )
    .await;
    assert!(text_of(&single).contains("would skip: already exists as id 7"));
    assert_eq!(posts(&mock).await, 0);
    assert_eq!(requests_to(&mock, CONTACTS_LIST_PATH).await.len(), 3);
    client.cancel().await.ok();

    let keyless = sdk_client(command(&mock.uri(), None, &[])).await;
    let result = call_tool(&keyless, "add_contacts", args).await;
    assert!(structured(&result)["results"][0].get("existing").is_none());
    assert_eq!(requests_to(&mock, CONTACTS_LIST_PATH).await.len(), 3);
    keyless.cancel().await.ok();
}
