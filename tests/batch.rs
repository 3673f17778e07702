//! `add_contacts` driven over stdio against a fake HiEnergy: a whole list
//! in one call, each item sent once and resumable, paced by the rate
//! limit, stopped cleanly, with progress that never follows the result.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{CONTACTS_PATH, TEST_KEY, call_tool, command, posts, sdk_client_with};
use crate::fault_kit::Proc;
use rmcp::model::ProgressNotificationParam;
use rmcp::service::NotificationContext;
use rmcp::{ClientHandler, RoleClient};
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const TOOL: &str = "add_contacts";

/// `n` distinct contacts for advertiser 42.
fn list(tag: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"advertiser_id": 42, "email": format!("{tag}{i}@example.com")}))
        .collect()
}

/// 201 with the posted contact and a fresh id, so that each result can be
/// matched to its item.
#[derive(Default)]
struct Echo {
    ids: AtomicU64,
}

impl Echo {
    fn created(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let mut contact = body["contact"].clone();
        contact["id"] = json!(self.ids.fetch_add(1, Ordering::SeqCst) + 1);
        ResponseTemplate::new(201).set_body_json(json!({ "data": contact }))
    }
}

impl Respond for Echo {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.created(request)
    }
}

async fn echo(mock: &MockServer, delay: Duration) {
    Mock::given(method("POST"))
        .and(path(CONTACTS_PATH))
        .respond_with(Delayed(Echo::default(), delay))
        .mount(mock)
        .await;
}

struct Delayed(Echo, Duration);

impl Respond for Delayed {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.0.created(request).set_delay(self.1)
    }
}

/// The emails of every POST the fake received, in arrival order.
async fn posted_emails(mock: &MockServer) -> Vec<String> {
    mock.received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
            body["contact"]["email"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

fn results(result: &Value) -> Vec<Value> {
    result["structuredContent"]["results"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("no results: {result}"))
}

fn summary(result: &Value) -> Value {
    result["structuredContent"]["summary"].clone()
}

fn statuses(result: &Value) -> Vec<String> {
    results(result)
        .iter()
        .map(|r| r["status"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn text(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_hundred_contacts_are_a_hundred_posts_and_the_same_list_again_sends_none() {
    let mock = MockServer::start().await;
    echo(&mock, Duration::ZERO).await;
    let mut proc = Proc::start(command(&mock.uri(), Some(TEST_KEY), &[])).await;
    let contacts = list("hundred", 100);

    let result = proc.call_tool(TOOL, json!({"contacts": contacts})).await;
    assert_ne!(result["isError"], true, "{result}");
    assert_eq!(
        summary(&result),
        json!({"created": 100, "replayed": 0, "failed": 0, "not_sent": 0})
    );
    let first = results(&result);
    for (i, item) in first.iter().enumerate() {
        assert_eq!(item["index"], i, "{item}");
        assert_eq!(item["status"], "created", "{item}");
        assert_eq!(item["contact"]["email"], contacts[i]["email"], "{item}");
    }
    let sent = posted_emails(&mock).await;
    assert_eq!(sent.len(), 100);
    let unique: BTreeSet<&String> = sent.iter().collect();
    assert_eq!(unique.len(), 100, "an item was posted twice");

    let again = proc.call_tool(TOOL, json!({"contacts": contacts})).await;
    assert_ne!(again["isError"], true, "{again}");
    assert_eq!(posts(&mock).await, 100, "the rerun sent something");
    assert_eq!(
        summary(&again),
        json!({"created": 0, "replayed": 100, "failed": 0, "not_sent": 0})
    );
    for (item, before) in results(&again).iter().zip(&first) {
        assert_eq!(item["status"], "replayed", "{item}");
        assert_eq!(item["contact"], before["contact"], "{item}");
    }
    let (status, _) = proc.finish().await;
    assert!(status.success());
}

#[tokio::test]
async fn invalid_items_and_a_refusal_leave_the_rest_created_and_a_rerun_sends_only_the_refused() {
    let mock = MockServer::start().await;
    let mut contacts = list("mixed", 10);
    contacts[3]["email"] = json!("not-an-email");
    contacts[7]["advertiser_id"] = json!(0);
    Mock::given(method("POST"))
        .and(body_partial_json(
            json!({"contact": {"email": contacts[5]["email"]}}),
        ))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({"error": {
            "code": "validation_failed", "message": "Validation failed", "request_id": "r5",
            "details": {"email": ["has already been taken"]}
        }})))
        .mount(&mock)
        .await;
    echo(&mock, Duration::ZERO).await;
    let mut proc = Proc::start(command(&mock.uri(), Some(TEST_KEY), &[])).await;

    let check_failures = |result: &Value| {
        let items = results(result);
        assert_eq!(items[3]["error"]["kind"], "invalid_arguments");
        assert_eq!(items[3]["error"]["fields"][0]["field"], "contacts[3].email");
        assert_eq!(items[7]["error"]["kind"], "invalid_arguments");
        assert_eq!(
            items[7]["error"]["fields"][0]["field"],
            "contacts[7].advertiser_id"
        );
        assert_eq!(items[5]["error"]["kind"], "rejected");
        assert_eq!(items[5]["error"]["created"], "no");
        assert_eq!(items[5]["error"]["status"], 422);
        assert_eq!(
            items[5]["error"]["fields"],
            json!([{"field": "email", "problem": "has already been taken"}])
        );
        let said = text(result);
        assert!(said.contains("invalid_arguments (items 3, 7)"), "{said}");
        assert!(said.contains("rejected (item 5)"), "{said}");
    };

    let result = proc.call_tool(TOOL, json!({"contacts": contacts})).await;
    assert_ne!(result["isError"], true, "{result}");
    assert_eq!(
        statuses(&result),
        [
            "created", "created", "created", "failed", "created", "failed", "created", "failed",
            "created", "created"
        ]
    );
    assert_eq!(
        summary(&result),
        json!({"created": 7, "replayed": 0, "failed": 3, "not_sent": 0})
    );
    check_failures(&result);
    assert_eq!(posts(&mock).await, 8, "invalid items must not be sent");

    let again = proc.call_tool(TOOL, json!({"contacts": contacts})).await;
    assert_eq!(posts(&mock).await, 9, "only item 5 is sent again");
    assert_eq!(
        posted_emails(&mock).await.last().map(String::as_str),
        contacts[5]["email"].as_str()
    );
    assert_eq!(
        summary(&again),
        json!({"created": 0, "replayed": 7, "failed": 3, "not_sent": 0})
    );
    check_failures(&again);
    proc.finish().await;
}

#[tokio::test]
async fn identical_items_in_one_list_make_one_post_even_without_the_guard() {
    let mock = MockServer::start().await;
    echo(&mock, Duration::ZERO).await;
    let mut proc = Proc::start(command(
        &mock.uri(),
        Some(TEST_KEY),
        &["--dedupe-window", "0"],
    ))
    .await;
    let result = proc
        .call_tool(
            TOOL,
            json!({"advertiser_id": 42, "contacts": [
                {"email": "twice@example.com"},
                {"email": "other@example.com"},
                {"email": " TWICE@example.com ", "advertiser_id": "42"},
            ]}),
        )
        .await;
    assert_eq!(posts(&mock).await, 2);
    let items = results(&result);
    assert_eq!(statuses(&result), ["created", "created", "replayed"]);
    assert_eq!(items[2]["duplicate_of"], 0);
    assert_eq!(items[2]["contact"], items[0]["contact"]);
    proc.finish().await;
}

#[tokio::test]
async fn a_dry_run_sends_nothing_and_shows_each_request() {
    let mock = MockServer::start().await;
    echo(&mock, Duration::ZERO).await;
    let mut proc = Proc::start(command(&mock.uri(), None, &[])).await;
    let mut contacts = list("dry", 3);
    contacts[1]["email"] = json!("nope");
    let result = proc
        .call_tool(TOOL, json!({"contacts": contacts, "dry_run": true}))
        .await;
    assert_ne!(result["isError"], true, "{result}");
    assert_eq!(result["structuredContent"]["dry_run"], true);
    assert_eq!(statuses(&result), ["not_sent", "failed", "not_sent"]);
    let items = results(&result);
    assert_eq!(
        items[2]["request"]["body"],
        json!({"contact": {"advertiser_id": 42, "email": "dry2@example.com"}})
    );
    assert_eq!(items[1]["error"]["fields"][0]["field"], "contacts[1].email");
    assert_eq!(posts(&mock).await, 0);
    proc.finish().await;
}

/// A fake HiEnergy with a fixed-window rate limit that states its budget
/// on every answer, as HiEnergy does, and counts the 429s it gave.
struct RateWindow {
    limit: u64,
    window: Duration,
    state: Mutex<(Option<Instant>, u64)>,
    refused: Arc<AtomicUsize>,
    echo: Echo,
}

impl RateWindow {
    fn new(limit: u64, window: Duration) -> (Self, Arc<AtomicUsize>) {
        let refused = Arc::new(AtomicUsize::new(0));
        let fake = Self {
            limit,
            window,
            state: Mutex::new((None, 0)),
            refused: refused.clone(),
            echo: Echo::default(),
        };
        (fake, refused)
    }
}

impl Respond for RateWindow {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (first, count) = &mut *guard;
        let now = Instant::now();
        let mut start = *first.get_or_insert(now);
        while now >= start + self.window {
            start += self.window;
            *count = 0;
        }
        *first = Some(start);
        // Rounded up, as a server that states whole seconds must.
        let reset = (start + self.window - now).as_secs_f64().ceil() as u64;
        let (template, remaining) = if *count >= self.limit {
            self.refused.fetch_add(1, Ordering::SeqCst);
            let template = ResponseTemplate::new(429)
                .insert_header("retry-after", reset.to_string().as_str())
                .set_body_json(json!({"error": {"code": "rate_limited", "message": "Slow down"}}));
            (template, 0)
        } else {
            *count += 1;
            (self.echo.created(request), self.limit - *count)
        };
        template
            .insert_header("x-ratelimit-limit", self.limit.to_string().as_str())
            .insert_header("x-ratelimit-remaining", remaining.to_string().as_str())
            .insert_header("x-ratelimit-reset", reset.to_string().as_str())
    }
}

async fn rate_limited(limit: u64, window: Duration) -> (MockServer, Arc<AtomicUsize>) {
    let mock = MockServer::start().await;
    let (fake, refused) = RateWindow::new(limit, window);
    Mock::given(method("POST"))
        .and(path(CONTACTS_PATH))
        .respond_with(fake)
        .mount(&mock)
        .await;
    (mock, refused)
}

#[tokio::test]
async fn the_batch_waits_for_the_rate_limit_to_reset_instead_of_meeting_a_429() {
    let (mock, refused) = rate_limited(5, Duration::from_secs(2)).await;
    // No re-sends: a 429 would show as a failed item, not be hidden.
    let mut proc = Proc::start(command(
        &mock.uri(),
        Some(TEST_KEY),
        &["--max-retries", "0"],
    ))
    .await;
    let result = proc
        .call_tool(TOOL, json!({"contacts": list("paced", 12)}))
        .await;
    assert_eq!(
        summary(&result),
        json!({"created": 12, "replayed": 0, "failed": 0, "not_sent": 0}),
        "{result}"
    );
    assert_eq!(refused.load(Ordering::SeqCst), 0, "HiEnergy answered 429");
    assert_eq!(posts(&mock).await, 12);
    proc.finish().await;
}

#[tokio::test]
async fn a_reset_beyond_max_retry_wait_leaves_the_rest_not_sent() {
    let (mock, refused) = rate_limited(6, Duration::from_secs(60)).await;
    let mut proc = Proc::start(command(
        &mock.uri(),
        Some(TEST_KEY),
        &["--max-retry-wait", "5"],
    ))
    .await;
    let result = proc
        .call_tool(TOOL, json!({"contacts": list("spent", 10)}))
        .await;
    assert_ne!(result["isError"], true, "{result}");
    assert_eq!(
        summary(&result),
        json!({"created": 6, "replayed": 0, "failed": 0, "not_sent": 4}),
        "{result}"
    );
    assert_eq!(refused.load(Ordering::SeqCst), 0, "HiEnergy answered 429");
    assert_eq!(posts(&mock).await, 6);
    for item in &results(&result)[6..] {
        assert_eq!(item["status"], "not_sent", "{item}");
        let error = &item["error"];
        assert_eq!(error["kind"], "rate_limited", "{item}");
        assert_eq!(error["created"], "no", "{item}");
        let wait = error["retry_after_seconds"].as_u64().unwrap_or(0);
        assert!((50..=61).contains(&wait), "{item}");
    }
    let said = text(&result);
    assert!(
        said.contains("Not sent: rate_limited (items 6–9)"),
        "{said}"
    );
    proc.finish().await;
}

/// Waits until the fake has received `n` requests.
async fn until_posts(mock: &MockServer, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while posts(mock).await < n {
        assert!(Instant::now() < deadline, "the fake never got {n} requests");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn stdin_closing_mid_list_ends_in_flight_items_unknown_and_the_rest_not_sent() {
    let mock = MockServer::start().await;
    // Long enough that the second wave is still in flight when the
    // server stops, 0.7 s after stdin closes.
    echo(&mock, Duration::from_secs(3)).await;
    let mut proc = Proc::start(command(&mock.uri(), Some(TEST_KEY), &[])).await;
    let id = proc
        .start_tool(TOOL, json!({"arguments": {"contacts": list("eof", 20)}}))
        .await;
    // Two waves of four: the first answered, the second in flight.
    until_posts(&mock, 8).await;
    proc.close_stdin();
    let (response, _) = proc.recv_response(&id).await;
    let result = &response["result"];
    let items = results(result);
    let split = |status: &str, created: Option<&str>| {
        items
            .iter()
            .filter(|i| i["status"] == status && i["error"]["created"].as_str() == created)
            .count()
    };
    let created = split("created", None);
    let unknown = split("failed", Some("unknown"));
    let not_sent = split("not_sent", Some("no"));
    assert_eq!((created, unknown, not_sent), (4, 4, 12), "{result}");
    assert_eq!(posts(&mock).await, created + unknown);
    for item in items.iter().filter(|i| i["status"] == "not_sent") {
        assert_eq!(item["error"]["kind"], "cancelled", "{item}");
    }
    proc.wait_exit(Duration::from_secs(5)).await;
}

/// How many POSTs each email got.
async fn posts_per_email(mock: &MockServer) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for email in posted_emails(mock).await {
        *counts.entry(email).or_default() += 1;
    }
    counts
}

/// The TypeScript SDK cancels a call after 60 s by default; the POSTs
/// already on their way then still end, are remembered, and the same list
/// again replays them instead of creating those contacts twice.
#[tokio::test]
async fn a_cancelled_list_starts_nothing_new_and_the_same_list_again_sends_nothing_twice() {
    let mock = MockServer::start().await;
    echo(&mock, Duration::from_secs(1)).await;
    let mut proc = Proc::start(command(&mock.uri(), Some(TEST_KEY), &[])).await;
    let contacts = list("cancel", 20);
    let id = proc
        .start_tool(TOOL, json!({"arguments": {"contacts": contacts}}))
        .await;
    until_posts(&mock, 8).await;
    proc.send(
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": id, "reason": "user pressed stop"}}),
    )
    .await;
    // Past the moment the second wave was answered and a third would
    // have started.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        posts(&mock).await,
        8,
        "items started after the cancellation"
    );
    proc.ping().await;

    // Again: the four created before the cancel and the four answered
    // after it are replayed; only the twelve never sent are sent.
    let result = proc.call_tool(TOOL, json!({"contacts": contacts})).await;
    assert_eq!(
        summary(&result),
        json!({"created": 12, "replayed": 8, "failed": 0, "not_sent": 0}),
        "{result}"
    );
    let twice: Vec<_> = posts_per_email(&mock)
        .await
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .collect();
    assert!(twice.is_empty(), "posted more than once: {twice:?}");
    assert_eq!(posts(&mock).await, 20);
    proc.finish().await;
}

/// Rails' rack-attack answers 429 with neither Retry-After nor
/// X-RateLimit-Reset: nothing to pace by, so the first 429 stops the list.
#[tokio::test]
async fn a_429_without_a_reset_time_stops_the_list() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(CONTACTS_PATH))
        .respond_with(ResponseTemplate::new(429).set_body_string("Retry later\n"))
        .mount(&mock)
        .await;
    let mut proc = Proc::start(command(&mock.uri(), Some(TEST_KEY), &[])).await;
    let result = proc
        .call_tool(TOOL, json!({"contacts": list("throttled", 40)}))
        .await;
    let per_email = posts_per_email(&mock).await;
    // The items already sending (four at a time) end after their own
    // re-sends (--max-retries 2); no other item is sent.
    assert!(per_email.len() <= 4, "{per_email:?}");
    assert!(per_email.values().all(|n| *n <= 3), "{per_email:?}");
    let items = results(&result);
    for item in &items {
        let email = format!("throttled{}@example.com", item["index"]);
        let (status, sent) = (&item["status"], per_email.contains_key(&email));
        assert_eq!(status, if sent { "failed" } else { "not_sent" }, "{item}");
        assert_eq!(item["error"]["kind"], "rate_limited", "{item}");
        assert_eq!(item["error"]["created"], "no", "{item}");
    }
    assert_eq!(
        summary(&result)["not_sent"],
        40 - per_email.len(),
        "{result}"
    );
    proc.finish().await;
}

/// 201 with the posted email, an id, and 100 kB of notes, written out by
/// hand: serialising each answer is slow in a debug build.
struct Large {
    ids: AtomicU64,
    notes: String,
}

impl Respond for Large {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let id = self.ids.fetch_add(1, Ordering::SeqCst) + 1;
        let body = format!(
            r#"{{"data": {{"id": {id}, "email": {}, "advertiser_id": 42, "notes": "{}"}}}}"#,
            body["contact"]["email"], self.notes
        );
        ResponseTemplate::new(201).set_body_raw(body, "application/json")
    }
}

#[tokio::test]
async fn a_hundred_large_contacts_make_a_bounded_reply() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(CONTACTS_PATH))
        .respond_with(Large {
            ids: AtomicU64::new(0),
            notes: "n".repeat(100_000),
        })
        .mount(&mock)
        .await;
    let mut proc = Proc::start(command(&mock.uri(), Some(TEST_KEY), &[])).await;
    let contacts = list("large", 100);
    let result = proc.call_tool(TOOL, json!({"contacts": contacts})).await;
    assert_eq!(
        summary(&result),
        json!({"created": 100, "replayed": 0, "failed": 0, "not_sent": 0}),
    );
    let mut ids = BTreeSet::new();
    for (item, sent) in results(&result).iter().zip(&contacts) {
        assert_eq!(item["contact"]["email"], sent["email"], "{item:.300}");
        ids.insert(item["contact"]["id"].as_u64().unwrap_or(0));
    }
    assert_eq!(ids.len(), 100, "an id was lost");
    let longest = proc.transcript.iter().map(String::len).max().unwrap_or(0);
    // 10 MB before each contact was capped.
    assert!(longest < 8 << 20, "a reply line of {longest} bytes");
    proc.finish().await;
}

#[tokio::test]
async fn progress_comes_before_the_result_over_raw_json_rpc() {
    let mock = MockServer::start().await;
    echo(&mock, Duration::from_millis(20)).await;
    let mut proc = Proc::start(command(&mock.uri(), Some(TEST_KEY), &[])).await;
    let mut contacts = list("progress", 10);
    contacts[4]["email"] = json!("invalid");
    let id = proc
        .start_tool(
            TOOL,
            json!({"arguments": {"contacts": contacts}, "_meta": {"progressToken": "p-1"}}),
        )
        .await;
    let (response, before) = proc.recv_response(&id).await;
    assert_ne!(response["result"]["isError"], true, "{response}");
    let mut last = 0.0;
    for note in &before {
        assert_eq!(note["method"], "notifications/progress", "{note}");
        let params = &note["params"];
        assert_eq!(params["progressToken"], "p-1");
        assert_eq!(params["total"], 10.0);
        assert!(params["message"].is_string(), "{note}");
        let progress = params["progress"].as_f64().unwrap_or_default();
        assert!(progress > last, "progress went back: {before:?}");
        last = progress;
    }
    // One notification per item sent; the invalid one counts from the start.
    assert_eq!(before.len(), 9, "{before:?}");
    assert_eq!(last, 10.0);
    let late = proc.recv_within(Duration::from_millis(500)).await;
    assert!(late.is_none(), "a message after the result: {late:?}");

    // Without a token, no progress at all.
    let id = proc
        .start_tool(TOOL, json!({"arguments": {"contacts": list("quiet", 3)}}))
        .await;
    let (_, before) = proc.recv_response(&id).await;
    assert!(before.is_empty(), "{before:?}");
    proc.finish().await;
}

/// Records every progress notification the server sends.
#[derive(Clone, Default)]
struct Recorder {
    progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl ClientHandler for Recorder {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(params);
    }
}

#[tokio::test]
async fn an_rmcp_client_receives_progress_for_every_item() {
    let mock = MockServer::start().await;
    echo(&mock, Duration::from_millis(20)).await;
    let recorder = Recorder::default();
    // rmcp's client puts a progressToken on every request.
    let client = sdk_client_with(recorder.clone(), command(&mock.uri(), Some(TEST_KEY), &[])).await;
    let result = call_tool(&client, TOOL, json!({"contacts": list("sdk", 8)})).await;
    assert_eq!(result.is_error, Some(false), "{result:?}");
    // rmcp hands notifications to the handler on tasks of their own, so
    // the last may be recorded just after the result is returned.
    let deadline = Instant::now() + Duration::from_secs(5);
    let seen = loop {
        let seen = recorder
            .progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if seen.len() >= 8 || Instant::now() > deadline {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(seen.len(), 8, "{seen:?}");
    let mut values: Vec<f64> = seen.iter().map(|p| p.progress).collect();
    values.sort_by(f64::total_cmp);
    assert_eq!(values, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
    assert!(seen.iter().all(|p| p.total == Some(8.0)));
    assert!(
        seen.iter()
            .all(|p| p.progress_token == seen[0].progress_token)
    );
    let _ = client.cancel().await;
}
