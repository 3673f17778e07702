//! `advertiser` by name, domain or URL: resolution against the fake
//! HiEnergy's reads, and the user's choice by elicitation when a name does
//! not pick one record (issue 20). Clients that declare elicitation answer
//! accept, decline, cancel or never; one declares nothing; the request's
//! exact shape is read as raw JSON-RPC.

use std::sync::{Arc, Mutex};

use rmcp::model::{
    ClientCapabilities, ClientConfig, ElicitRequestParams, ElicitResult, ElicitationAction,
    Implementation,
};
use rmcp::service::{RequestContext, RunningService};
use rmcp::{ClientHandler, ErrorData as McpError, RoleClient};
use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{
    CONTACTS_PATH, SEARCH_PATH, TEST_KEY, call_tool, command, error_of, mount_answer, mount_reads,
    requests_to, sdk_client, sdk_client_in, sdk_client_with, text_of,
};
use crate::fault_kit::Proc;

const ALO_AWIN: &str = "Alo Yoga (aloyoga.com) on Awin, #42";
const ALO_CJ: &str = "Alo Yoga (aloyoga.com) on CJ, #43";
const AMBIGUOUS_HINT: &str =
    "ask the user which advertiser they mean, then call again with advertiser_id";

/// The fake of `common::mount_reads` (Alo Yoga: two records of one brand;
/// `nothing.com`; `down`; `boom`), plus a brand with one record and a
/// near namesake: `q=Lole` and `q=Lol` find Lole (7, lolewomen.com) and
/// Lole Canada (8, lole.ca) (and so does `q=lole`: HiEnergy's search
/// ignores case); `domain=lolewomen.com` (from `mount_reads`) finds 7 alone. Every
/// POST creates.
async fn fake() -> MockServer {
    let mock = MockServer::start().await;
    mount_reads(&mock).await;
    let lole = json!({"query": "Lole", "results": {"advertisers": {"data": [
        {"id": 7, "type": "advertiser", "title": "Lole", "subtitle": "Awin · HiEnergy", "domain": "lolewomen.com", "status": "approved"},
        {"id": "8", "type": "advertiser", "title": "Lole Canada", "subtitle": "CJ · HiEnergy", "domain": "lole.ca", "status": "approved"}
    ], "total": 2}}, "meta": {"per_type_limit": 10, "types": ["advertisers"], "searchkick_available": true}});
    for q in ["Lole", "lole", "Lol"] {
        Mock::given(method("GET"))
            .and(path(SEARCH_PATH))
            .and(query_param("q", q))
            .respond_with(ResponseTemplate::new(200).set_body_json(lole.clone()))
            .mount(&mock)
            .await;
    }
    mount_answer(
        &mock,
        ResponseTemplate::new(201)
            .set_body_json(json!({"data": {"id": 9001, "email": "jane@aloyoga.com"}})),
    )
    .await;
    mock
}

/// The advertiser_id of every POST the fake received, in order.
async fn posted_ids(mock: &MockServer) -> Vec<Value> {
    requests_to(mock, CONTACTS_PATH)
        .await
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
            body["contact"]["advertiser_id"].clone()
        })
        .collect()
}

/// How a test client's user answers.
#[derive(Clone, Copy)]
enum User {
    Picks(&'static str),
    Declines,
    Cancels,
    /// Never answers.
    Away,
}

/// A client that declared elicitation and keeps every request it was sent.
#[derive(Clone)]
struct Asked {
    user: User,
    seen: Arc<Mutex<Vec<ElicitRequestParams>>>,
}

impl Asked {
    fn new(user: User) -> Self {
        Self {
            user,
            seen: Arc::default(),
        }
    }

    fn seen(&self) -> Vec<ElicitRequestParams> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl ClientHandler for Asked {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::builder().enable_elicitation().build(),
            Implementation::new("elicitation-test", "0"),
        )
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, McpError> {
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(request);
        }
        match self.user {
            User::Picks(label) => Ok(ElicitResult::new(ElicitationAction::Accept)
                .with_content(json!({"advertiser": label}))),
            User::Declines => Ok(ElicitResult::new(ElicitationAction::Decline)),
            User::Cancels => Ok(ElicitResult::new(ElicitationAction::Cancel)),
            User::Away => std::future::pending().await,
        }
    }
}

async fn asking_client(
    mock: &MockServer,
    user: User,
    args: &[&str],
) -> (RunningService<RoleClient, Asked>, Asked) {
    let handler = Asked::new(user);
    let client = sdk_client_with(handler.clone(), command(&mock.uri(), Some(TEST_KEY), args)).await;
    (client, handler)
}

fn jane(advertiser: &str) -> Value {
    json!({"advertiser": advertiser, "email": "jane@aloyoga.com", "name": "Jane Doe"})
}

#[tokio::test]
async fn the_user_picks_one_record_and_the_contact_goes_to_it() {
    let mock = fake().await;
    let (client, asked) = asking_client(&mock, User::Picks(ALO_CJ), &[]).await;
    let result = call_tool(&client, "add_contact", jane("Alo Yoga")).await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let structured = result.structured_content.clone().unwrap_or_default();
    assert_eq!(
        structured["advertiser"],
        json!({"id": 43, "name": "Alo Yoga", "domain": "aloyoga.com", "network": "CJ"})
    );
    assert_eq!(posted_ids(&mock).await, vec![json!(43)]);
    let text = text_of(&result);
    assert!(
        text.contains(ALO_CJ) && text.contains("chosen by the user"),
        "{text}"
    );
    // The form the user saw: the contact named, one choice per record.
    let seen = asked.seen();
    assert_eq!(seen.len(), 1);
    let ElicitRequestParams::FormElicitationParams {
        message,
        requested_schema,
        ..
    } = &seen[0]
    else {
        panic!("not a form: {:?}", seen[0]);
    };
    assert_eq!(
        message,
        "Which HiEnergy advertiser should Jane Doe <jane@aloyoga.com> be added to? \"Alo Yoga\" matches 2 advertiser records; one brand often has a record per network. Nothing is added until you choose."
    );
    let schema = serde_json::to_value(requested_schema).unwrap_or_default();
    assert_eq!(
        schema["properties"]["advertiser"]["enum"],
        json!([ALO_AWIN, ALO_CJ])
    );
    let _ = client.cancel().await;
}

#[tokio::test]
async fn decline_cancel_and_no_answer_send_nothing_and_say_the_user_did_not_choose() {
    let mock = fake().await;
    for (user, kind, says) in [
        (User::Declines, "not_chosen", "declined to choose"),
        (User::Cancels, "not_chosen", "cancelled the choice"),
        (User::Away, "choice_timeout", "did not answer within 1s"),
    ] {
        let (client, asked) = asking_client(&mock, user, &["--elicitation-timeout", "1"]).await;
        let result = call_tool(&client, "add_contact", jane("Alo Yoga")).await;
        let error = error_of(&result);
        assert_eq!(error["kind"], kind, "{result:?}");
        assert_eq!(error["created"], "no");
        assert_eq!(
            error["retryable"], false,
            "not for the agent to retry alone"
        );
        assert!(
            error["message"].as_str().unwrap_or_default().contains(says),
            "{error}"
        );
        assert_eq!(asked.seen().len(), 1);
        let _ = client.cancel().await;
    }
    assert_eq!(posted_ids(&mock).await, Vec::<Value>::new());
}

#[tokio::test]
async fn without_elicitation_the_agent_gets_the_candidates_and_nothing_is_sent() {
    let mock = fake().await;
    let client = sdk_client(command(&mock.uri(), Some(TEST_KEY), &[])).await;
    for (query, candidates) in [
        // Two records of one brand, by name and by domain.
        ("Alo Yoga", vec![42, 43]),
        ("aloyoga.com", vec![42, 43]),
        // Near matches only: never taken.
        ("Lol", vec![7, 8]),
    ] {
        let result = call_tool(&client, "add_contact", jane(query)).await;
        let error = error_of(&result);
        assert_eq!(error["kind"], "advertiser_ambiguous", "{query}: {error}");
        assert_eq!(error["created"], "no");
        let ids: Vec<u64> = error["candidates"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["id"].as_u64())
            .collect();
        assert_eq!(ids, candidates, "{query}");
        assert!(
            error["hint"]
                .as_str()
                .unwrap_or_default()
                .contains(AMBIGUOUS_HINT)
        );
        let text = text_of(&result);
        assert!(
            text.contains(AMBIGUOUS_HINT) && text.contains("#43") || query == "Lol",
            "{text}"
        );
    }
    assert_eq!(posted_ids(&mock).await, Vec::<Value>::new());
    let _ = client.cancel().await;
}

#[tokio::test]
async fn one_exact_name_domain_or_url_is_used_and_named_in_the_result() {
    let mock = fake().await;
    let client = sdk_client(command(&mock.uri(), Some(TEST_KEY), &[])).await;
    for (i, query) in [
        "Lole",
        " lole ",
        "lolewomen.com",
        "https://www.LoleWomen.com/about",
    ]
    .into_iter()
    .enumerate()
    {
        let email = format!("p{i}@lolewomen.com");
        let result = call_tool(
            &client,
            "add_contact",
            json!({"advertiser": query, "email": email}),
        )
        .await;
        assert_ne!(result.is_error, Some(true), "{query}: {result:?}");
        let structured = result.structured_content.clone().unwrap_or_default();
        assert_eq!(structured["advertiser"]["id"], 7, "{query}");
        assert_eq!(structured["advertiser"]["network"], "Awin", "{query}");
        assert!(text_of(&result).contains("Lole (lolewomen.com) on Awin, #7"));
    }
    assert_eq!(posted_ids(&mock).await, vec![json!(7); 4]);
    let _ = client.cancel().await;
}

#[tokio::test]
async fn no_match_and_a_failing_search_are_their_own_errors_and_never_a_guess() {
    let mock = fake().await;
    let client = sdk_client(command(&mock.uri(), Some(TEST_KEY), &[])).await;
    for (query, kind, hint) in [
        ("nothing.com", "advertiser_not_found", "search_advertisers"),
        ("down", "search_unavailable", "advertiser_id"),
        ("boom", "search_unavailable", "advertiser_id"),
    ] {
        let result = call_tool(&client, "add_contact", jane(query)).await;
        let error = error_of(&result);
        assert_eq!(error["kind"], kind, "{query}: {error}");
        assert_eq!(error["created"], "no");
        assert!(
            error["hint"].as_str().unwrap_or_default().contains(hint),
            "{error}"
        );
    }
    assert_eq!(posted_ids(&mock).await, Vec::<Value>::new());
    let _ = client.cancel().await;
}

#[tokio::test]
async fn both_or_neither_advertiser_and_advertiser_id_is_invalid() {
    let mock = fake().await;
    let client = sdk_client(command(&mock.uri(), Some(TEST_KEY), &[])).await;
    for (arguments, field) in [
        (
            json!({"advertiser": "Lole", "advertiser_id": 7, "email": "a@b.co"}),
            "advertiser",
        ),
        (json!({"email": "a@b.co"}), "advertiser_id"),
    ] {
        let error = error_of(&call_tool(&client, "add_contact", arguments.clone()).await);
        assert_eq!(error["kind"], "invalid_arguments");
        assert_eq!(error["fields"][0]["field"], field, "{arguments}");
    }
    let error = error_of(
        &call_tool(
            &client,
            "add_contacts",
            json!({"advertiser": "Lole", "advertiser_id": 7, "contacts": [{"email": "a@b.co"}]}),
        )
        .await,
    );
    assert_eq!(error["fields"][0]["field"], "advertiser");
    assert!(requests_to(&mock, SEARCH_PATH).await.is_empty());
    let _ = client.cancel().await;
}

#[tokio::test]
async fn a_call_by_name_and_one_by_id_for_the_same_contact_are_one_contact() {
    let mock = fake().await;
    let client = sdk_client(command(&mock.uri(), Some(TEST_KEY), &[])).await;
    let by_name = call_tool(
        &client,
        "add_contact",
        json!({"advertiser": "Lole", "email": "jane@lolewomen.com"}),
    )
    .await;
    assert_ne!(by_name.is_error, Some(true), "{by_name:?}");
    let by_id = call_tool(
        &client,
        "add_contact",
        json!({"advertiser_id": 7, "email": "jane@lolewomen.com"}),
    )
    .await;
    let structured = by_id.structured_content.clone().unwrap_or_default();
    assert_eq!(structured["replayed"], true, "{structured}");
    assert_eq!(posted_ids(&mock).await, vec![json!(7)]);
    let _ = client.cancel().await;
}

#[tokio::test]
async fn a_list_asks_once_per_name_however_many_items_use_it() {
    let mock = fake().await;
    let (client, asked) = asking_client(&mock, User::Picks(ALO_AWIN), &[]).await;
    let result = call_tool(
        &client,
        "add_contacts",
        json!({"advertiser": "Alo Yoga", "contacts": [
            {"email": "a@aloyoga.com"},
            {"email": "b@aloyoga.com", "advertiser": "alo yoga"},
            {"email": "c@aloyoga.com"},
            {"email": "d@lolewomen.com", "advertiser": "Lole"},
            {"email": "e@aloyoga.com", "advertiser_id": 43}
        ]}),
    )
    .await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let seen = asked.seen();
    assert_eq!(
        seen.len(),
        1,
        "one question for \"Alo Yoga\", none for Lole"
    );
    let ElicitRequestParams::FormElicitationParams { message, .. } = &seen[0] else {
        panic!("not a form");
    };
    assert!(
        message.contains("3 contacts (a@aloyoga.com, b@aloyoga.com, c@aloyoga.com)"),
        "{message}"
    );
    let structured = result.structured_content.clone().unwrap_or_default();
    assert_eq!(structured["summary"]["created"], 5, "{structured}");
    let advertisers: Vec<Value> = structured["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r["advertiser"]["id"].clone())
        .collect();
    assert_eq!(
        advertisers,
        vec![json!(42), json!(42), json!(42), json!(7), Value::Null]
    );
    let mut ids = posted_ids(&mock).await;
    ids.sort_by_key(|v| v.as_u64());
    assert_eq!(
        ids,
        vec![json!(7), json!(42), json!(42), json!(42), json!(43)]
    );
    let _ = client.cancel().await;
}

#[tokio::test]
async fn a_declined_name_leaves_its_items_not_sent_and_the_rest_go() {
    let mock = fake().await;
    let (client, _asked) = asking_client(&mock, User::Declines, &[]).await;
    let result = call_tool(
        &client,
        "add_contacts",
        json!({"contacts": [
            {"email": "a@aloyoga.com", "advertiser": "Alo Yoga"},
            {"email": "d@lolewomen.com", "advertiser": "Lole"}
        ]}),
    )
    .await;
    let structured = result.structured_content.clone().unwrap_or_default();
    assert_eq!(
        structured["results"][0]["status"], "not_sent",
        "{structured}"
    );
    assert_eq!(structured["results"][0]["error"]["kind"], "not_chosen");
    assert_eq!(structured["results"][1]["status"], "created");
    assert_eq!(posted_ids(&mock).await, vec![json!(7)]);
    let _ = client.cancel().await;
}

/// The request as bytes: `elicitation/create` in form mode, with a flat
/// object schema of one required `enum` string property, as the spec
/// requires of a form; the accepted label becomes the POST's id.
#[tokio::test]
async fn the_elicitation_request_has_the_exact_shape_the_spec_requires() {
    let mock = fake().await;
    let mut proc = Proc::spawn(command(&mock.uri(), Some(TEST_KEY), &[]));
    let init = proc
        .request(
            "initialize",
            json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {"elicitation": {}},
                "clientInfo": {"name": "raw", "version": "0"}
            }),
        )
        .await;
    assert!(init.get("result").is_some(), "{init}");
    proc.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await;
    let call_id = proc
        .start_call(json!({"advertiser": "Alo Yoga", "email": "jane@aloyoga.com"}))
        .await;
    let mut request = proc.recv().await;
    assert_eq!(request["method"], "elicitation/create", "{request}");
    // rmcp gives every request it sends a progressToken of its own.
    if let Some(params) = request["params"].as_object_mut() {
        params.remove("_meta");
    }
    assert_eq!(
        request["params"],
        json!({
            "mode": "form",
            "message": "Which HiEnergy advertiser should jane@aloyoga.com be added to? \"Alo Yoga\" matches 2 advertiser records; one brand often has a record per network. Nothing is added until you choose.",
            "requestedSchema": {
                "type": "object",
                "properties": {
                    "advertiser": {
                        "type": "string",
                        "title": "Advertiser",
                        "description": "The HiEnergy advertiser record to add the contact to",
                        "enum": [ALO_AWIN, ALO_CJ]
                    }
                },
                "required": ["advertiser"]
            }
        })
    );
    proc.send(json!({"jsonrpc": "2.0", "id": request["id"], "result": {
        "action": "accept", "content": {"advertiser": ALO_AWIN}
    }}))
    .await;
    let (response, _) = proc.recv_response(&call_id).await;
    assert_eq!(
        response["result"]["structuredContent"]["advertiser"]["id"], 42,
        "{response}"
    );
    assert_eq!(posted_ids(&mock).await, vec![json!(42)]);
}

/// A client on the 2026-07-28 revision: no `initialize`, and the question
/// comes back as an `input_required` result that rmcp's client answers
/// through the same handler, then retries.
async fn new_revision_client(
    mock: &MockServer,
    user: User,
) -> (RunningService<RoleClient, Asked>, Asked) {
    use rmcp::model::ProtocolVersion;
    use rmcp::service::ClientLifecycleMode;
    let handler = Asked::new(user);
    let lifecycle = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    let cmd = command(&mock.uri(), Some(TEST_KEY), &[]);
    let client = sdk_client_in(handler.clone(), cmd, lifecycle).await;
    (client, handler)
}

#[tokio::test]
async fn on_2026_07_28_the_question_is_an_input_required_round_and_the_retry_sends() {
    let mock = fake().await;
    let (client, asked) = new_revision_client(&mock, User::Picks(ALO_CJ)).await;
    let result = call_tool(&client, "add_contact", jane("Alo Yoga")).await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    assert_eq!(
        result.structured_content.clone().unwrap_or_default()["advertiser"]["id"],
        43
    );
    assert_eq!(asked.seen().len(), 1, "one question, one round");
    assert_eq!(posted_ids(&mock).await, vec![json!(43)]);

    // A list naming two ambiguous brands: both questions in one round,
    // nothing sent before the answers; the user picks CJ for both names
    // (Lole's label is not among its choices, so its items are not sent).
    let list = json!({"contacts": [
        {"email": "a@aloyoga.com", "advertiser": "Alo Yoga"},
        {"email": "b@aloyoga.com", "advertiser": "alo yoga"},
        {"email": "c@lolewomen.com", "advertiser": "Lol"}
    ]});
    let result = call_tool(&client, "add_contacts", list).await;
    let structured = result.structured_content.clone().unwrap_or_default();
    assert_eq!(asked.seen().len(), 3, "two more questions: {structured}");
    let statuses: Vec<&str> = structured["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["status"].as_str())
        .collect();
    assert_eq!(statuses, ["created", "created", "failed"], "{structured}");
    assert_eq!(
        structured["results"][2]["error"]["kind"],
        "advertiser_ambiguous"
    );
    assert_eq!(
        posted_ids(&mock).await,
        vec![json!(43), json!(43), json!(43)]
    );
    let _ = client.cancel().await;

    let (client, _) = new_revision_client(&mock, User::Declines).await;
    let error = error_of(&call_tool(&client, "add_contact", jane("Alo Yoga")).await);
    assert_eq!(error["kind"], "not_chosen", "{error}");
    assert_eq!(posted_ids(&mock).await.len(), 3);
    let _ = client.cancel().await;
}

/// The round as bytes: `resultType: "input_required"` with the form under
/// a key named for the advertiser, nothing sent; the retry carrying an
/// answer sends to the chosen record; an answer that names no record the
/// search finds again is never used.
#[tokio::test]
async fn the_2026_07_28_round_has_the_exact_shape_and_a_forged_answer_is_refused() {
    let mock = fake().await;
    let mut proc = Proc::spawn(command(&mock.uri(), Some(TEST_KEY), &[]));
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {"form": {}}},
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "0"}
    });
    let arguments = json!({"advertiser": "Alo Yoga", "email": "jane@aloyoga.com"});
    let call = |extra: Value| {
        let mut params = json!({"name": "add_contact", "arguments": arguments, "_meta": meta});
        if let (Some(params), Value::Object(extra)) = (params.as_object_mut(), extra) {
            params.extend(extra);
        }
        params
    };
    let first = proc.request("tools/call", call(json!({}))).await;
    let result = &first["result"];
    assert_eq!(result["resultType"], "input_required", "{first}");
    let question = &result["inputRequests"]["advertiser:alo yoga"];
    assert_eq!(question["method"], "elicitation/create", "{first}");
    assert_eq!(question["params"]["mode"], "form");
    assert_eq!(
        question["params"]["requestedSchema"]["properties"]["advertiser"]["enum"],
        json!([ALO_AWIN, ALO_CJ])
    );
    assert_eq!(posted_ids(&mock).await, Vec::<Value>::new());

    let answer = |label: &str| {
        json!({"inputResponses": {"advertiser:alo yoga": {
            "action": "accept", "content": {"advertiser": label}
        }}})
    };
    let forged = proc
        .request(
            "tools/call",
            call(answer("Alo Yoga (aloyoga.com) on Evil, #666")),
        )
        .await;
    assert_eq!(
        forged["result"]["structuredContent"]["error"]["kind"], "advertiser_ambiguous",
        "{forged}"
    );
    assert_eq!(posted_ids(&mock).await, Vec::<Value>::new());

    let retried = proc.request("tools/call", call(answer(ALO_AWIN))).await;
    assert_eq!(
        retried["result"]["structuredContent"]["advertiser"]["id"], 42,
        "{retried}"
    );
    assert_eq!(posted_ids(&mock).await, vec![json!(42)]);
}
