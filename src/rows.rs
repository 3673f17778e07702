//! HiEnergy's read answers turned into rows: one small normaliser per
//! resource (advertisers, contacts), so that the tools never look at a
//! shape.
//!
//! HiEnergy documents several shapes and its own clients accept them all:
//! rows as JSON:API (`{"id", "type", "attributes": {...}}`) or flat; ids as
//! integers or integer strings; `data` a list or one object; a
//! `{"contacts": {"data": [...]}}` wrapper; universal search's
//! `{"results": {"advertisers": {"data": [...], "total"}}, "meta":
//! {"searchkick_available"}}`, whose rows name the advertiser in `title`.
//! A row that cannot be read (not an object, no integer id) is skipped and
//! counted; an answer that is none of these shapes is a `bad_response`.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::answer::json_type;
use crate::contact::MAX_ADVERTISER_ID;
use crate::outcome::{Created, ErrorKind, ToolError, truncate};

/// Rows read from one answer at most; the rest are counted, not read. The
/// tools ask for at most 50.
pub const MAX_ROWS: usize = 100;
/// Characters kept of any text member of a row.
pub const MAX_TEXT: usize = 300;

/// The rows of one answer, and what the answer said about them.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub rows: Vec<T>,
    /// Rows skipped because they could not be read (not an object, or no
    /// id that is a whole number).
    pub unreadable: usize,
    /// Rows past [`MAX_ROWS`], not read.
    pub beyond_cap: usize,
    /// HiEnergy's count of matches, where it gave one.
    pub total: Option<u64>,
    /// HiEnergy says there is another page.
    pub more: bool,
    /// false when HiEnergy said its search index is down
    /// (`searchkick_available: false`): no rows then means "unknown", never
    /// "no match".
    pub search_available: bool,
}

/// One advertiser record. One brand often has several (one per network and publisher).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Advertiser {
    /// HiEnergy's id of this advertiser record: the advertiser_id that add_contact and add_contacts take.
    #[schemars(range(min = 1, max = MAX_ADVERTISER_ID))]
    pub id: u64,
    /// The advertiser's name (universal search calls it `title`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// The affiliate network of this record, e.g. "Awin".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    /// HiEnergy's status of the record, e.g. "approved".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    /// Universal search's one-line summary, e.g. "Awin · HiEnergy" (network · publisher).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtitle: Option<String>,
}

/// One contact as HiEnergy listed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ContactRow {
    /// HiEnergy's id of the contact.
    #[schemars(range(min = 1))]
    pub id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The advertiser's id, when HiEnergy gave it as a number.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub advertiser_id: Option<u64>,
    /// The advertiser, when HiEnergy named it by slug instead of id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertiser_slug: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertiser_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linkedin_url: Option<String>,
}

/// The advertiser rows of an answer from `/advertisers` or universal search.
pub fn advertisers(answer: &Value, path: &str) -> Result<Page<Advertiser>, ToolError> {
    page(answer, "advertisers", path, |row| {
        Some(Advertiser {
            id: id_of(row.get("id"))?,
            name: text(row, &["name", "title"]),
            domain: text(row, &["domain"]),
            network: text(row, &["network_name", "network"]),
            publisher: text(row, &["publisher_name", "publisher"]),
            status: text(row, &["status"]),
            slug: text(row, &["slug"]),
            subtitle: text(row, &["subtitle"]),
        })
    })
}

/// The contact rows of an answer from `/contacts` or universal search.
pub fn contacts(answer: &Value, path: &str) -> Result<Page<ContactRow>, ToolError> {
    page(answer, "contacts", path, |row| {
        let advertiser = row.get("advertiser_id");
        let advertiser_id = id_of(advertiser);
        Some(ContactRow {
            id: id_of(row.get("id"))?,
            email: text(row, &["email"]),
            name: text(row, &["name", "title"]),
            given_name: text(row, &["given_name"]),
            family_name: text(row, &["family_name"]),
            job_title: text(row, &["job_title"]),
            phone: text(row, &["phone"]),
            status: text(row, &["status"]),
            advertiser_id,
            advertiser_slug: advertiser_id
                .is_none()
                .then(|| text(row, &["advertiser_id", "advertiser_slug"]))
                .flatten(),
            advertiser_name: text(row, &["advertiser_name"]),
            linkedin_url: text(row, &["linkedin_url", "linkedin_profile_url"]),
        })
    })
}

/// Finds the list of rows in any documented shape and reads each with
/// `read`, which sees a row's members flat whatever its shape.
fn page<T>(
    answer: &Value,
    resource: &str,
    path: &str,
    read: impl Fn(&Map<String, Value>) -> Option<T>,
) -> Result<Page<T>, ToolError> {
    let bad = |what: &str| {
        ToolError::new(
            ErrorKind::BadResponse,
            Created::No,
            format!(
                "HiEnergy's answer to GET {} is not a list of {resource}: {what}.",
                truncate(path, MAX_TEXT)
            ),
        )
    };
    let top = match answer {
        Value::Array(_) => None,
        Value::Object(top) => Some(top),
        other => return Err(bad(&format!("the body is {}", json_type(other)))),
    };
    let meta = top.and_then(|t| t.get("meta")).and_then(Value::as_object);
    // Universal search: results.<resource>; a wrapper: <resource>; else the
    // answer itself.
    let inner = match top {
        None => answer,
        Some(top) => top
            .get("results")
            .and_then(|r| r.get(resource))
            .or_else(|| top.get(resource))
            .unwrap_or(answer),
    };
    let search_available = [meta, inner.get("meta").and_then(Value::as_object)]
        .into_iter()
        .flatten()
        .all(|m| m.get("searchkick_available") != Some(&Value::Bool(false)));
    let rows: &[Value] = match inner {
        Value::Array(rows) => rows,
        Value::Object(inner) => match inner.get("data") {
            Some(Value::Array(rows)) => rows,
            Some(one @ Value::Object(_)) => std::slice::from_ref(one),
            Some(other) => return Err(bad(&format!("its `data` is {}", json_type(other)))),
            // Universal search with its index down may leave the resource
            // out altogether.
            None if !search_available => &[],
            None => return Err(bad("it has no `data` member")),
        },
        other => return Err(bad(&format!("its {resource} are {}", json_type(other)))),
    };
    let mut page = Page {
        rows: Vec::new(),
        unreadable: 0,
        beyond_cap: rows.len().saturating_sub(MAX_ROWS),
        total: ["total", "total_count"].iter().find_map(|key| {
            count(inner.get(*key)).or_else(|| count(meta.and_then(|m| m.get(*key))))
        }),
        more: meta
            .and_then(|m| m.get("next_page"))
            .is_some_and(|next| !next.is_null() && next != &Value::Bool(false)),
        search_available,
    };
    for row in rows.iter().take(MAX_ROWS) {
        match row.as_object().map(flat).as_ref().and_then(&read) {
            Some(row) => page.rows.push(row),
            None => page.unreadable += 1,
        }
    }
    Ok(page)
}

/// A row's members, flat: JSON:API's `attributes` merged under the row's
/// own `id`.
fn flat(row: &Map<String, Value>) -> Map<String, Value> {
    let Some(Value::Object(attributes)) = row.get("attributes") else {
        return row.clone();
    };
    let mut members = attributes.clone();
    if let Some(id) = row.get("id") {
        members.insert("id".into(), id.clone());
    }
    members
}

/// An id that is a whole number from 1 to 2^53 − 1, given as a number or a
/// string of digits.
fn id_of(value: Option<&Value>) -> Option<u64> {
    let id = match value? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }?;
    (1..=MAX_ADVERTISER_ID).contains(&id).then_some(id)
}

/// A count: a non-negative whole number, or a string of one.
fn count(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The first of `keys` that holds text (a number or boolean written out, an
/// object's `name`), trimmed and bounded.
fn text(row: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|key| {
        let text = match row.get(*key)? {
            Value::String(s) => s.trim().to_owned(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Object(o) => o.get("name")?.as_str()?.trim().to_owned(),
            _ => return None,
        };
        let text: String = text.chars().filter(|c| !c.is_control()).collect();
        (!text.is_empty()).then(|| truncate(&text, MAX_TEXT))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ads(answer: Value) -> Page<Advertiser> {
        advertisers(&answer, "/api/v1/advertisers").unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn people(answer: Value) -> Page<ContactRow> {
        contacts(&answer, "/api/v1/contacts").unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn alo(id: u64, network: &str) -> Advertiser {
        Advertiser {
            id,
            name: Some("Alo Yoga".into()),
            domain: Some("aloyoga.com".into()),
            network: Some(network.into()),
            publisher: None,
            status: Some("approved".into()),
            slug: None,
            subtitle: None,
        }
    }

    #[test]
    fn json_api_rows_with_string_ids_and_flat_rows_with_integers_read_the_same() {
        let json_api = json!({"data": [
            {"id": "42", "type": "advertiser", "attributes": {"name": "Alo Yoga", "domain": "aloyoga.com", "network_name": "Awin", "status": "approved"}},
            {"id": "43", "type": "advertiser", "attributes": {"name": "Alo Yoga", "domain": "aloyoga.com", "network_name": "CJ", "status": "approved"}}
        ], "meta": {"current_page": 1, "next_page": null, "per_page": 10}});
        let flat = json!({"data": [
            {"id": 42, "name": "Alo Yoga", "domain": "aloyoga.com", "network_name": "Awin", "status": "approved"},
            {"id": 43, "name": "Alo Yoga", "domain": "aloyoga.com", "network": "CJ", "status": "approved"}
        ]});
        for answer in [json_api, flat] {
            let page = ads(answer);
            assert_eq!(page.rows, vec![alo(42, "Awin"), alo(43, "CJ")]);
            assert_eq!((page.unreadable, page.beyond_cap), (0, 0));
            assert!(page.search_available && !page.more);
        }
    }

    #[test]
    fn one_object_as_data_and_a_bare_list_are_rows_too() {
        let one = ads(json!({"data": {"id": 42, "attributes": {"name": "Alo Yoga"}}}));
        assert_eq!(one.rows.len(), 1);
        assert_eq!(one.rows[0].id, 42);
        let bare = ads(json!([{"id": "7", "name": "X"}]));
        assert_eq!(bare.rows[0].name.as_deref(), Some("X"));
    }

    #[test]
    fn universal_search_rows_name_the_advertiser_in_title() {
        let answer = json!({"query": "alo yoga", "results": {"advertisers": {"data": [
            {"id": 42, "type": "advertiser", "title": "Alo Yoga", "subtitle": "Awin · HiEnergy", "slug": "alo-yoga", "domain": "aloyoga.com", "status": "approved"}
        ], "total": 1}}, "meta": {"per_type_limit": 10, "types": ["advertisers"], "searchkick_available": true}});
        let page = ads(answer);
        assert_eq!(
            page.rows,
            vec![Advertiser {
                id: 42,
                name: Some("Alo Yoga".into()),
                domain: Some("aloyoga.com".into()),
                network: None,
                publisher: None,
                status: Some("approved".into()),
                slug: Some("alo-yoga".into()),
                subtitle: Some("Awin · HiEnergy".into()),
            }]
        );
        assert_eq!(page.total, Some(1));
        assert!(page.search_available);
    }

    #[test]
    fn an_index_that_is_down_is_search_unavailable_never_no_match() {
        for answer in [
            json!({"query": "alo", "results": {"advertisers": {"data": [], "total": 0}}, "meta": {"searchkick_available": false}}),
            json!({"query": "alo", "results": {}, "meta": {"searchkick_available": false}}),
            json!({"data": [], "meta": {"searchkick_available": false}}),
        ] {
            let page = ads(answer.clone());
            assert!(page.rows.is_empty(), "{answer}");
            assert!(!page.search_available, "{answer}");
        }
        // Without the flag, or with it true, search is available.
        assert!(ads(json!({"data": []})).search_available);
        assert!(ads(json!({"results": {"advertisers": {"data": []}}, "meta": {"searchkick_available": true}})).search_available);
    }

    #[test]
    fn the_contacts_wrapper_and_both_row_shapes_are_read() {
        let wrapped = json!({"contacts": {"data": [
            {"id": "7", "type": "contact", "attributes": {"email": "Jane@AloYoga.com", "name": "Jane Doe", "advertiser_id": "42", "advertiser_name": "Alo Yoga", "linkedin_url": "https://www.linkedin.com/in/jane"}},
            {"id": 8, "email": "sam@aloyoga.com", "advertiser_id": "alo-yoga", "job_title": "Affiliate Manager", "phone": 4155550100_u64}
        ]}});
        let page = people(wrapped);
        assert_eq!(page.rows.len(), 2);
        let jane = &page.rows[0];
        assert_eq!((jane.id, jane.advertiser_id), (7, Some(42)));
        assert_eq!(jane.email.as_deref(), Some("Jane@AloYoga.com"));
        assert_eq!(jane.advertiser_slug, None);
        assert_eq!(
            jane.linkedin_url.as_deref(),
            Some("https://www.linkedin.com/in/jane")
        );
        let sam = &page.rows[1];
        assert_eq!(sam.advertiser_id, None);
        assert_eq!(sam.advertiser_slug.as_deref(), Some("alo-yoga"));
        assert_eq!(sam.phone.as_deref(), Some("4155550100"));
        let flat = people(json!({"data": [{"id": 9, "email": "a@b.co", "advertiser_id": 42}]}));
        assert_eq!(flat.rows[0].advertiser_id, Some(42));
    }

    #[test]
    fn rows_without_a_whole_number_id_are_skipped_and_counted() {
        let page = ads(json!({"data": [
            {"id": "abc", "name": "A"}, {"id": 1.5}, {"id": -3}, {"id": 0}, {"name": "no id"},
            {"id": "9007199254740992"}, "a string", 12, null, [],
            {"id": " 44 ", "name": "B"}
        ]}));
        assert_eq!(page.rows.len(), 1);
        assert_eq!(page.rows[0].id, 44);
        assert_eq!(page.unreadable, 10);
    }

    #[test]
    fn answers_of_another_shape_are_bad_responses_that_name_what_came() {
        for (answer, words) in [
            (json!({"data": "Alo Yoga"}), "its `data` is a string"),
            (json!({"data": 42}), "its `data` is a number"),
            (
                json!({"advertisers": "none"}),
                "its advertisers are a string",
            ),
            (json!({"error": "nope"}), "it has no `data` member"),
            (json!("ok"), "the body is a string"),
            (json!(null), "the body is null"),
        ] {
            let error = advertisers(&answer, "/api/v1/advertisers")
                .err()
                .unwrap_or_else(|| panic!("{answer} should fail"));
            assert_eq!(error.kind, ErrorKind::BadResponse, "{answer}");
            assert_eq!(error.created, Created::No, "{answer}");
            assert!(error.message.contains(words), "{answer}: {}", error.message);
            assert!(
                error.message.contains("GET /api/v1/advertisers"),
                "{}",
                error.message
            );
        }
    }

    #[test]
    fn ten_thousand_rows_are_read_up_to_the_cap_and_the_rest_counted() {
        let rows: Vec<Value> = (1..=10_000)
            .map(|i| json!({"id": i, "name": "A"}))
            .collect();
        let page = ads(json!({"data": rows, "meta": {"next_page": 2}}));
        assert_eq!(page.rows.len(), MAX_ROWS);
        assert_eq!(page.beyond_cap, 10_000 - MAX_ROWS);
        assert!(page.more);
    }

    #[test]
    fn text_members_are_trimmed_cleaned_and_bounded() {
        let long = "y".repeat(5_000);
        let page = ads(
            json!({"data": [{"id": 1, "name": " A\u{0}\nB ", "domain": long, "network": {"name": "Awin"}, "status": "", "slug": []}]}),
        );
        let row = &page.rows[0];
        assert_eq!(row.name.as_deref(), Some("AB"));
        assert_eq!(
            row.domain.as_ref().map(|d| d.chars().count()),
            Some(MAX_TEXT + 1)
        );
        assert_eq!(row.network.as_deref(), Some("Awin"));
        assert_eq!((row.status.as_ref(), row.slug.as_ref()), (None, None));
    }

    #[test]
    fn totals_come_from_the_list_or_its_meta() {
        assert_eq!(
            ads(json!({"data": [], "meta": {"total": "12"}})).total,
            Some(12)
        );
        assert_eq!(
            ads(json!({"data": [], "meta": {"total_count": 3}})).total,
            Some(3)
        );
        assert_eq!(ads(json!({"data": []})).total, None);
    }
}
