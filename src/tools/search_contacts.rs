//! `search_contacts`: the contacts HiEnergy lists for an email, an
//! advertiser or a search text, so that the agent sees what is there before
//! it adds anything.

use std::fmt::Write;

use rmcp::model::{CallToolResult, Tool};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

use super::read;
use super::{Backend, CallContext};
use crate::contact::{MAX_ADVERTISER_ID, parse_advertiser_id, parse_email};
use crate::hienergy::{CONTACTS_PATH, SEARCH_PATH};
use crate::outcome::{FieldProblem, ToolError};
use crate::rows::{self, ContactRow};

pub const NAME: &str = "search_contacts";
pub const TITLE: &str = "Search HiEnergy contacts";
pub const MAX_LIMIT: usize = 50;
pub const DEFAULT_LIMIT: usize = 10;

/// Said with every answer, found or not.
pub const NOT_PROOF: &str = "Absence is not proof: HiEnergy does not list contacts rated below 1, so a contact missing here may still exist.";

pub const DESCRIPTION: &str = "\
List the contacts HiEnergy already has, by email, by advertiser_id, or by a search text (a name, email or domain); give at least one. \
Read-only: it never changes anything. Use it to see whether a person is already in HiEnergy before add_contact or add_contacts, \
or to show the user an advertiser's contacts; find an advertiser_id first with search_advertisers. \
HiEnergy does not list contacts rated below 1, so a contact missing from the result may still exist: absence is not proof.";

/// Give at least one of email, advertiser_id and query.
#[derive(Debug, Clone, PartialEq, Eq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SearchContactsArgs {
    /// A contact's email address: contacts with this email (any case).
    #[schemars(email)]
    pub email: Option<String>,
    /// The id of a HiEnergy advertiser (from search_advertisers): its contacts.
    #[schemars(range(min = 1, max = MAX_ADVERTISER_ID))]
    pub advertiser_id: Option<u64>,
    /// Search text: a person's name, an email or a domain, 1 to 200 characters. With email or advertiser_id, it narrows their contacts to those whose name, email, job title or advertiser name contains it.
    #[schemars(length(min = 1, max = 200))]
    pub query: Option<String>,
    /// How many contacts to return, 1 to 50. Default 10.
    #[schemars(range(min = 1, max = 50))]
    pub limit: Option<u64>,
}

// What `search_contacts` answers with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SearchContactsResult {
    /// The contacts HiEnergy listed, with the fields it gave.
    pub contacts: Vec<ContactRow>,
    /// HiEnergy's count of matches (which may exceed those returned), or else the number returned.
    #[schemars(range(min = 0))]
    pub total: u64,
    /// false when HiEnergy's search is down: no contacts then is not "none".
    pub search_available: bool,
    /// Rows HiEnergy sent that could not be read (no whole-number id) or were past the 100 read; absent when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub unreadable_rows: Option<u64>,
}

pub fn tool() -> Tool {
    read::tool::<SearchContactsArgs, SearchContactsResult>(NAME, TITLE, DESCRIPTION)
}

const ALLOWED: [&str; 4] = ["email", "advertiser_id", "query", "limit"];

struct Args {
    email: Option<String>,
    advertiser_id: Option<u64>,
    query: Option<String>,
    limit: usize,
}

fn parse(arguments: Option<&Map<String, Value>>) -> Result<Args, ToolError> {
    let empty = Map::new();
    let args = arguments.unwrap_or(&empty);
    let mut problems = Vec::new();
    let given = |field: &str| !matches!(args.get(field), None | Some(Value::Null));
    // parse_email and parse_advertiser_id call an absent value required;
    // here each is optional, so they see only one that was given.
    let email = match args.get("email") {
        Some(Value::String(s)) if s.trim().is_empty() => {
            problems.push(FieldProblem::new(
                "email",
                "is empty: give an email address or leave it out",
            ));
            None
        }
        _ if given("email") => parse_email(args.get("email"), &mut problems),
        _ => None,
    };
    let advertiser_id = given("advertiser_id")
        .then(|| parse_advertiser_id(args.get("advertiser_id"), &mut problems))
        .flatten();
    let query = read::parse_text("query", args.get("query"), &mut problems);
    let limit = read::parse_limit(args.get("limit"), MAX_LIMIT, DEFAULT_LIMIT, &mut problems);
    read::unknown_arguments(NAME, args, &ALLOWED, &mut problems);
    if !["email", "advertiser_id", "query"].iter().any(|f| given(f)) {
        problems.push(FieldProblem::new(
            "email",
            "give at least one of email, advertiser_id and query",
        ));
    }
    if !problems.is_empty() {
        return Err(ToolError::invalid_arguments(problems));
    }
    Ok(Args {
        email,
        advertiser_id,
        query,
        limit,
    })
}

pub async fn call(
    backend: &Backend,
    arguments: Option<&Map<String, Value>>,
    context: &CallContext,
) -> CallToolResult {
    read::run(
        backend,
        context,
        NAME,
        parse(arguments),
        async |args, api_key| search(backend, api_key, args).await,
        sentence,
    )
    .await
}

/// The contacts endpoint for an email or an advertiser (the query then
/// narrows the rows here); universal search for a query alone.
async fn search(
    backend: &Backend,
    api_key: &str,
    args: &Args,
) -> Result<SearchContactsResult, ToolError> {
    let limit = args.limit.to_string();
    if args.email.is_none() && args.advertiser_id.is_none() {
        let text = args.query.as_deref().unwrap_or_default();
        let query = [
            ("q", text),
            ("types", "contacts"),
            ("per_type_limit", limit.as_str()),
        ];
        let answer = backend.api.get(api_key, SEARCH_PATH, &query).await?;
        let page = rows::contacts(&answer, SEARCH_PATH)?;
        let unreadable = page.unreadable + page.beyond_cap;
        return Ok(result(
            page.rows,
            page.total,
            page.search_available,
            unreadable,
            args.limit,
        ));
    }
    let advertiser = args.advertiser_id.map(|id| id.to_string());
    let mut query = vec![("limit", limit.as_str())];
    if let Some(email) = &args.email {
        query.push(("email", email));
    }
    if let Some(advertiser) = &advertiser {
        query.push(("advertiser_id", advertiser));
    }
    let answer = backend.api.get(api_key, CONTACTS_PATH, &query).await?;
    let page = rows::contacts(&answer, CONTACTS_PATH)?;
    let unreadable = page.unreadable + page.beyond_cap;
    let listed = page.rows.len();
    // HiEnergy's filters are trusted only as far as the rows show them
    // applied: a row with another email, or another advertiser's id, is
    // not an answer to this search.
    let rows: Vec<ContactRow> = page
        .rows
        .into_iter()
        .filter(|row| args.matches(row))
        .collect();
    let total = if rows.len() == listed {
        page.total
    } else {
        None
    };
    Ok(result(
        rows,
        total,
        page.search_available,
        unreadable,
        args.limit,
    ))
}

impl Args {
    fn matches(&self, row: &ContactRow) -> bool {
        let email_ok = self.email.as_deref().is_none_or(|email| {
            row.email
                .as_deref()
                .is_some_and(|e| e.trim().eq_ignore_ascii_case(email))
        });
        let advertiser_ok = match (self.advertiser_id, row.advertiser_id) {
            (Some(wanted), Some(listed)) => wanted == listed,
            _ => true,
        };
        let query_ok = self.query.as_deref().is_none_or(|query| {
            let query = query.to_lowercase();
            [
                &row.name,
                &row.given_name,
                &row.family_name,
                &row.email,
                &row.job_title,
                &row.advertiser_name,
            ]
            .into_iter()
            .flatten()
            .any(|text| text.to_lowercase().contains(&query))
        });
        email_ok && advertiser_ok && query_ok
    }
}

fn result(
    contacts: Vec<ContactRow>,
    total: Option<u64>,
    search_available: bool,
    unreadable: usize,
    limit: usize,
) -> SearchContactsResult {
    let listing = read::Listing::new(contacts, total, unreadable, limit);
    SearchContactsResult {
        contacts: listing.rows,
        total: listing.total,
        search_available,
        unreadable_rows: listing.unreadable_rows,
    }
}

/// Every fact of the result, for clients that show only text.
fn sentence(args: &Args, result: &SearchContactsResult) -> String {
    let mut by = Vec::new();
    if let Some(email) = &args.email {
        by.push(format!("email {email}"));
    }
    if let Some(id) = args.advertiser_id {
        by.push(format!("advertiser_id {id}"));
    }
    if let Some(query) = &args.query {
        by.push(format!("{query:?}"));
    }
    let by = by.join(", ");
    let mut text = String::with_capacity(300 + 200 * result.contacts.len());
    let n = result.contacts.len();
    if !result.search_available && n == 0 {
        let _ = write!(
            text,
            "HiEnergy's search is unavailable right now (search_available: false), so nothing could be looked up for {by}: this is not \"no contacts\". Try again later."
        );
    } else if n == 0 {
        let _ = write!(text, "HiEnergy lists no contact for {by} (total: 0).");
    } else {
        let _ = write!(
            text,
            "HiEnergy lists {n} contact{} for {by} (total: {}):",
            if n == 1 { "" } else { "s" },
            result.total
        );
        for contact in &result.contacts {
            text.push_str("\n- ");
            read::describe_row(&mut text, contact);
        }
        if !result.search_available {
            text.push_str("\nHiEnergy's search is unavailable right now (search_available: false), so there may be more.");
        }
    }
    if let Some(n) = result.unreadable_rows {
        let _ = write!(
            text,
            "\n{n} more row{} in HiEnergy's answer could not be read and {} not shown.",
            if n == 1 { "" } else { "s" },
            if n == 1 { "is" } else { "are" }
        );
    }
    text.push('\n');
    text.push_str(NOT_PROOF);
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::ErrorKind;
    use serde_json::json;

    fn parsed(arguments: Value) -> Result<Args, ToolError> {
        parse(arguments.as_object())
    }

    fn fields(arguments: Value) -> Vec<String> {
        match parsed(arguments) {
            Ok(_) => Vec::new(),
            Err(error) => {
                assert_eq!(error.kind, ErrorKind::InvalidArguments);
                error.fields.into_iter().map(|f| f.field).collect()
            }
        }
    }

    #[test]
    fn at_least_one_of_the_three_is_needed_and_each_is_checked() {
        assert_eq!(fields(json!({})), ["email"]);
        assert_eq!(fields(json!({"limit": 5, "email": null})), ["email"]);
        assert_eq!(fields(json!({"email": "nope"})), ["email"]);
        assert_eq!(fields(json!({"email": "  "})), ["email"]);
        assert_eq!(fields(json!({"advertiser_id": 0})), ["advertiser_id"]);
        assert_eq!(fields(json!({"advertiser_id": "alo"})), ["advertiser_id"]);
        assert_eq!(fields(json!({"query": ""})), ["query"]);
        assert_eq!(fields(json!({"query": "x".repeat(201)})), ["query"]);
        assert_eq!(fields(json!({"query": "a", "limit": 51})), ["limit"]);
        assert_eq!(fields(json!({"query": "a", "limit": 0})), ["limit"]);
        assert_eq!(fields(json!({"query": "a", "emial": "x"})), ["emial"]);
        let args = parsed(json!({"email": " Jane@AloYoga.com ", "advertiser_id": "42", "wait_for_previous": true}))
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(args.email.as_deref(), Some("Jane@AloYoga.com"));
        assert_eq!((args.advertiser_id, args.limit), (Some(42), DEFAULT_LIMIT));
    }

    fn row(id: u64, email: &str, advertiser_id: Option<u64>) -> ContactRow {
        ContactRow {
            id,
            email: Some(email.into()),
            name: Some("Jane Doe".into()),
            given_name: None,
            family_name: None,
            job_title: None,
            phone: None,
            status: None,
            advertiser_id,
            advertiser_slug: None,
            advertiser_name: None,
            linkedin_url: None,
        }
    }

    #[test]
    fn rows_that_do_not_answer_the_search_are_left_out() {
        let args = Args {
            email: Some("jane@aloyoga.com".into()),
            advertiser_id: Some(42),
            query: Some("jane".into()),
            limit: 10,
        };
        assert!(args.matches(&row(1, "JANE@aloyoga.com", Some(42))));
        assert!(args.matches(&row(2, "jane@aloyoga.com", None)));
        assert!(!args.matches(&row(3, "sam@aloyoga.com", Some(42))));
        assert!(!args.matches(&row(4, "jane@aloyoga.com", Some(43))));
        let no_jane = Args {
            query: Some("sam".into()),
            ..args
        };
        assert!(!no_jane.matches(&row(1, "jane@aloyoga.com", Some(42))));
    }

    #[test]
    fn the_text_lists_every_field_and_always_says_absence_is_not_proof() {
        let args = Args {
            email: None,
            advertiser_id: Some(42),
            query: None,
            limit: 10,
        };
        let mut jane = row(7, "jane@aloyoga.com", Some(42));
        jane.job_title = Some("Affiliate Manager".into());
        jane.linkedin_url = Some("https://www.linkedin.com/in/jane".into());
        let found = SearchContactsResult {
            contacts: vec![jane],
            total: 1,
            search_available: true,
            unreadable_rows: None,
        };
        let text = sentence(&args, &found);
        assert!(
            text.contains("HiEnergy lists 1 contact for advertiser_id 42 (total: 1):"),
            "{text}"
        );
        assert!(text.contains("id 7: Jane Doe (advertiser_id 42, email jane@aloyoga.com, job_title Affiliate Manager, linkedin_url https://www.linkedin.com/in/jane)"), "{text}");
        assert!(text.ends_with(NOT_PROOF), "{text}");
        let none = SearchContactsResult {
            contacts: vec![],
            total: 0,
            ..found.clone()
        };
        assert!(sentence(&args, &none).ends_with(NOT_PROOF));
        let down = SearchContactsResult {
            search_available: false,
            ..none
        };
        assert!(sentence(&args, &down).contains("unavailable"));
    }
}
