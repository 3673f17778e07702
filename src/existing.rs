//! Whether a contact is already in HiEnergy: the same email (ASCII
//! case-insensitive, trimmed) on the same advertiser, looked up with
//! `GET /api/v1/contacts?email=&advertiser_id=`.
//!
//! HiEnergy does not list contacts rated below 1, so "not found" is never
//! proof of absence; and a check that cannot judge says why rather than
//! guessing, so that the caller can go ahead and say so.

use serde_json::Value;

use crate::hienergy::{CONTACTS_PATH, HiEnergy};
use crate::outcome::{ErrorKind, ToolError};
use crate::rows::{self, ContactRow};

/// Rows asked for: a contact's email on one advertiser is one row, but a
/// HiEnergy that ignores the email filter lists the advertiser's contacts.
pub const LOOKUP_LIMIT: usize = 50;

/// What the lookup found.
#[derive(Debug, Clone, PartialEq)]
pub enum Existing {
    /// HiEnergy lists a contact with this email on this advertiser.
    Found(ContactRow),
    /// HiEnergy lists none (which does not prove there is none).
    NotFound,
    /// HiEnergy refused the key (401): a POST would be refused the same way.
    Unauthorized(ToolError),
    /// The lookup could not judge; the sentence says why.
    Unknown(String),
}

/// Looks for `email` on `advertiser_id` in HiEnergy.
pub async fn find_existing(
    api: &HiEnergy,
    api_key: &str,
    email: &str,
    advertiser_id: u64,
) -> Existing {
    let email = email.trim();
    let advertiser = advertiser_id.to_string();
    let limit = LOOKUP_LIMIT.to_string();
    let query = [
        ("email", email),
        ("advertiser_id", advertiser.as_str()),
        ("limit", limit.as_str()),
    ];
    match api.get(api_key, CONTACTS_PATH, &query).await {
        Ok(answer) => judge(&answer, email, advertiser_id),
        Err(error) if error.kind == ErrorKind::Unauthorized => Existing::Unauthorized(error),
        Err(error) => Existing::Unknown(format!(
            "the lookup failed ({}): {}",
            error.kind.as_str(),
            error.message
        )),
    }
}

/// The verdict on HiEnergy's answer to the lookup.
pub fn judge(answer: &Value, email: &str, advertiser_id: u64) -> Existing {
    let page = match rows::contacts(answer, CONTACTS_PATH) {
        Ok(page) => page,
        Err(error) => return Existing::Unknown(format!("the lookup failed: {}", error.message)),
    };
    if !page.search_available {
        return Existing::Unknown(
            "HiEnergy's search is unavailable right now (searchkick_available: false)".into(),
        );
    }
    let same_email = |row: &&ContactRow| {
        row.email
            .as_deref()
            .is_some_and(|e| e.trim().eq_ignore_ascii_case(email))
    };
    if let Some(found) = page
        .rows
        .iter()
        .filter(same_email)
        .find(|row| row.advertiser_id == Some(advertiser_id))
    {
        return Existing::Found(found.clone());
    }
    if let Some(unsure) = page
        .rows
        .iter()
        .filter(same_email)
        .find(|row| row.advertiser_id.is_none())
    {
        let named = unsure
            .advertiser_slug
            .as_deref()
            .map_or("does not name its advertiser".to_owned(), |slug| {
                format!("names its advertiser {slug:?} rather than by id")
            });
        return Existing::Unknown(format!(
            "HiEnergy lists a contact with this email (id {}) but {named}, so whether it is advertiser {advertiser_id}'s could not be told",
            unsure.id
        ));
    }
    if page.unreadable > 0 {
        return Existing::Unknown(format!(
            "{} of the rows HiEnergy listed could not be read",
            page.unreadable
        ));
    }
    // Rows with other emails mean the email filter was not applied: with
    // more rows than were read, the contact may be among the rest.
    let filtered = page.rows.iter().all(|row| same_email(&row));
    let all_read = !page.more && page.beyond_cap == 0 && page.rows.len() < LOOKUP_LIMIT;
    if !filtered && !all_read {
        return Existing::Unknown(format!(
            "HiEnergy did not filter by email and listed more contacts than the {LOOKUP_LIMIT} read"
        ));
    }
    Existing::NotFound
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Args, Config};
    use clap::Parser;
    use serde_json::json;
    use wiremock::matchers::{header, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const KEY: &str = "hk_test_existing_7c1d";

    fn api(base: &str, flags: &[&str]) -> HiEnergy {
        let mut argv = vec!["hienergy-mcp", "--base-url", base];
        argv.extend_from_slice(flags);
        let args = Args::try_parse_from(argv).unwrap_or_else(|e| panic!("{e}"));
        let config = Config::from_args(&args, |_| None).unwrap_or_else(|e| panic!("{e}"));
        HiEnergy::new(&config)
    }

    fn jane(id: Value, advertiser: Value) -> Value {
        json!({"id": id, "email": "Jane.Doe@AloYoga.com", "advertiser_id": advertiser})
    }

    #[test]
    fn the_same_email_on_the_same_advertiser_is_found_in_either_shape() {
        let flat = json!({"data": [jane(json!(7), json!(42))]});
        let json_api = json!({"contacts": {"data": [{"id": "7", "type": "contact", "attributes": {"email": " jane.doe@aloyoga.com ", "advertiser_id": "42"}}]}});
        for answer in [flat, json_api] {
            match judge(&answer, "JANE.DOE@aloyoga.com", 42) {
                Existing::Found(row) => assert_eq!(row.id, 7),
                other => panic!("{answer}: {other:?}"),
            }
        }
    }

    #[test]
    fn another_advertiser_s_contact_or_another_email_is_not_a_match() {
        let answer = json!({"data": [jane(json!(7), json!(43)), {"id": 8, "email": "sam@aloyoga.com", "advertiser_id": 42}]});
        // Only 2 rows and no next page: every row was read.
        assert_eq!(
            judge(&answer, "jane.doe@aloyoga.com", 42),
            Existing::NotFound
        );
        assert_eq!(
            judge(&json!({"data": []}), "jane.doe@aloyoga.com", 42),
            Existing::NotFound
        );
    }

    #[test]
    fn what_cannot_be_judged_is_unknown_with_the_reason() {
        let cases = [
            (
                json!({"data": [jane(json!(7), json!("alo-yoga"))]}),
                "names its advertiser \"alo-yoga\"",
            ),
            (
                json!({"data": [{"id": 7, "email": "jane.doe@aloyoga.com"}]}),
                "does not name its advertiser",
            ),
            (
                json!({"data": [], "meta": {"searchkick_available": false}}),
                "unavailable",
            ),
            (
                json!({"data": [{"id": "x7", "email": "jane.doe@aloyoga.com"}]}),
                "could not be read",
            ),
            (json!({"data": "none"}), "not a list of contacts"),
            (
                json!({"data": [{"id": 8, "email": "sam@aloyoga.com", "advertiser_id": 42}], "meta": {"next_page": 2}}),
                "did not filter by email",
            ),
        ];
        for (answer, words) in cases {
            match judge(&answer, "jane.doe@aloyoga.com", 42) {
                Existing::Unknown(why) => assert!(why.contains(words), "{answer}: {why}"),
                other => panic!("{answer}: {other:?}"),
            }
        }
        // A full page of other emails is as inconclusive as a next page.
        let rows: Vec<Value> = (1..=LOOKUP_LIMIT as u64)
            .map(|i| json!({"id": i, "email": format!("p{i}@aloyoga.com"), "advertiser_id": 42}))
            .collect();
        assert!(matches!(
            judge(&json!({"data": rows}), "jane.doe@aloyoga.com", 42),
            Existing::Unknown(_)
        ));
    }

    #[tokio::test]
    async fn the_lookup_sends_the_key_email_and_advertiser_under_the_base_url_s_prefix() {
        let mock = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/prefix/api/v1/contacts"))
            .and(query_param("email", "Jane.Doe@aloyoga.com"))
            .and(query_param("advertiser_id", "42"))
            .and(query_param("limit", "50"))
            .and(header("x-api-key", KEY))
            .and(header("accept", "application/json"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"data": [jane(json!("7"), json!("42"))]})),
            )
            .expect(1)
            .mount(&mock)
            .await;
        let api = api(&format!("{}/prefix", mock.uri()), &[]);
        let found = find_existing(&api, KEY, "  Jane.Doe@aloyoga.com ", 42).await;
        // The email is sent trimmed, as given (the mock matches it so); the
        // compare ignores case.
        match found {
            Existing::Found(row) => assert_eq!((row.id, row.advertiser_id), (7, Some(42))),
            other => panic!("{other:?}"),
        }
    }

    async fn answered(status: u16, body: Value, flags: &[&str]) -> (Existing, usize) {
        let mock = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(status).set_body_json(body))
            .mount(&mock)
            .await;
        let api = api(&mock.uri(), flags);
        let found = find_existing(&api, KEY, "jane.doe@aloyoga.com", 42).await;
        (found, mock.received_requests().await.map_or(0, |r| r.len()))
    }

    fn envelope(code: &str, message: &str) -> Value {
        json!({"error": {"code": code, "message": message, "request_id": "r1"}})
    }

    #[tokio::test]
    async fn a_401_is_unauthorized_and_other_refusals_are_unknown_with_the_reason() {
        let (found, requests) =
            answered(401, envelope("invalid_api_key", "Invalid API key"), &[]).await;
        match found {
            Existing::Unauthorized(error) => assert_eq!(error.status, Some(401)),
            other => panic!("{other:?}"),
        }
        assert_eq!(requests, 1);
        for (status, words) in [
            (403, "forbidden"),
            (404, "not at this base URL"),
            (422, "refused the read"),
        ] {
            let (found, requests) = answered(status, envelope("x", "no"), &[]).await;
            match found {
                Existing::Unknown(why) => assert!(why.contains(words), "{status}: {why}"),
                other => panic!("{status}: {other:?}"),
            }
            assert_eq!(requests, 1, "{status} is not sent again");
        }
    }

    #[tokio::test]
    async fn a_5xx_is_read_again_up_to_max_retries_then_unknown() {
        let (found, requests) = answered(
            503,
            envelope("unavailable", "down"),
            &["--max-retries", "2"],
        )
        .await;
        match found {
            Existing::Unknown(why) => assert!(why.contains("upstream_error"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(requests, 3);
    }

    #[tokio::test]
    async fn a_429_longer_than_max_retry_wait_is_unknown_at_once() {
        let mock = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "3600"))
            .mount(&mock)
            .await;
        let found = find_existing(&api(&mock.uri(), &[]), KEY, "a@b.co", 42).await;
        match found {
            Existing::Unknown(why) => assert!(why.contains("rate_limited"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(mock.received_requests().await.map_or(0, |r| r.len()), 1);
    }

    #[tokio::test]
    async fn no_answer_within_the_timeout_or_no_server_is_unknown() {
        let mock = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_delay(std::time::Duration::from_secs(5)))
            .mount(&mock)
            .await;
        let found =
            find_existing(&api(&mock.uri(), &["--timeout", "0.3"]), KEY, "a@b.co", 42).await;
        match found {
            Existing::Unknown(why) => assert!(why.contains("timeout"), "{why}"),
            other => panic!("{other:?}"),
        }
        let closed = api("http://127.0.0.1:9", &["--max-retries", "0"]);
        match find_existing(&closed, KEY, "a@b.co", 42).await {
            Existing::Unknown(why) => assert!(why.contains("network"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn html_or_a_key_echoed_back_never_reaches_the_reason_as_is() {
        let mock = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("content-type", "text/html")
                    .set_body_string(format!("<html><title>Sign in {KEY}</title></html>")),
            )
            .mount(&mock)
            .await;
        match find_existing(&api(&mock.uri(), &[]), KEY, "a@b.co", 42).await {
            Existing::Unknown(why) => {
                assert!(why.contains("HTML page"), "{why}");
                assert!(!why.contains(KEY), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }
}
