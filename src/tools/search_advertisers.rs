//! `search_advertisers`: find the advertiser records that match a name, a
//! domain or a URL, so that the user can choose the advertiser_id to add
//! contacts to.

use std::fmt::Write;

use rmcp::model::{CallToolResult, Tool};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};
use url::{Host, Url};

use super::read;
use super::{Backend, CallContext};
use crate::hienergy::{ADVERTISERS_PATH, SEARCH_PATH};
use crate::outcome::{self, ToolError};
use crate::rows::{self, Advertiser, Page};

pub const NAME: &str = "search_advertisers";
pub const TITLE: &str = "Search HiEnergy advertisers";
pub const MAX_LIMIT: usize = 25;
pub const DEFAULT_LIMIT: usize = 10;

pub const DESCRIPTION: &str = "\
Find HiEnergy advertisers (brands) by name, domain or URL, to get the numeric advertiser_id for add_contact and add_contacts, or to show the user what a brand has \
(the add tools also take the name itself as advertiser, resolved with this same search). Read-only: it never changes anything. \
A domain or URL (reduced to its domain, without www.) is looked up by HiEnergy's domain filter, then by its search if that finds nothing; a name goes to HiEnergy's search. \
One brand often has several advertiser records (one per network and publisher), so a name alone does not pick one: \
when more than one record comes back, show them all to the user (id, name, domain, network, publisher, status) and let the user choose; never pick one yourself. \
search_available: false means HiEnergy's search is down, which says nothing about whether the advertiser exists: try again later or ask the user for the id. \
To see the contacts an advertiser already has, use search_contacts.";

// The arguments, as the input schema shows them (one line per
// description: a model reads them).
#[derive(Debug, Clone, PartialEq, Eq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SearchAdvertisersArgs {
    /// The advertiser's name ("Alo Yoga"), domain ("aloyoga.com") or a URL of its site ("https://www.aloyoga.com/shop"). 1 to 200 characters.
    #[schemars(length(min = 1, max = 200))]
    pub query: String,
    /// How many advertiser records to return, 1 to 25. Default 10.
    #[schemars(range(min = 1, max = 25))]
    pub limit: Option<u64>,
}

// What `search_advertisers` answers with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SearchAdvertisersResult {
    /// The matching advertiser records, with the members HiEnergy gave. Several may be the same brand: let the user choose.
    pub advertisers: Vec<Advertiser>,
    /// HiEnergy's count of matches (which may exceed the records returned), or else the number returned.
    #[schemars(range(min = 0))]
    pub total: u64,
    /// false when HiEnergy's search is down: no records then is not "no match".
    pub search_available: bool,
    /// The domain the query was reduced to, when it was a domain or a URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Rows HiEnergy sent that could not be read (no whole-number id) or were past the 100 read; absent when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub unreadable_rows: Option<u64>,
}

pub fn tool() -> Tool {
    read::tool::<SearchAdvertisersArgs, SearchAdvertisersResult>(NAME, TITLE, DESCRIPTION)
}

/// Every argument name the tool accepts.
const ALLOWED: [&str; 2] = ["query", "limit"];

pub(crate) struct Args {
    pub(crate) query: String,
    pub(crate) limit: usize,
}

fn parse(arguments: Option<&Map<String, Value>>) -> Result<Args, ToolError> {
    let empty = Map::new();
    let args = arguments.unwrap_or(&empty);
    let mut problems = Vec::new();
    let query = read::parse_text("query", args.get("query"), &mut problems);
    if query.is_none() && problems.is_empty() {
        problems.push(outcome::FieldProblem::new(
            "query",
            "is required: an advertiser's name, domain or URL, e.g. \"Alo Yoga\" or \"aloyoga.com\"",
        ));
    }
    let limit = read::parse_limit(args.get("limit"), MAX_LIMIT, DEFAULT_LIMIT, &mut problems);
    read::unknown_arguments(NAME, args, &ALLOWED, &mut problems);
    match query {
        Some(query) if problems.is_empty() => Ok(Args { query, limit }),
        _ => Err(ToolError::invalid_arguments(problems)),
    }
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
        |args, result| sentence(&args.query, result),
    )
    .await
}

/// The domain filter for a domain, then universal search if that found
/// nothing; universal search alone for anything else.
pub(crate) async fn search(
    backend: &Backend,
    api_key: &str,
    args: &Args,
) -> Result<SearchAdvertisersResult, ToolError> {
    let limit = args.limit.to_string();
    let domain = domain_of(&args.query);
    if let Some(domain) = &domain {
        let query = [("domain", domain.as_str()), ("limit", limit.as_str())];
        let answer = backend.api.get(api_key, ADVERTISERS_PATH, &query).await?;
        let page = rows::advertisers(&answer, ADVERTISERS_PATH)?;
        if !page.rows.is_empty() {
            return Ok(result(page, args.limit, Some(domain.clone())));
        }
    }
    let text = domain.as_deref().unwrap_or(&args.query);
    let query = [
        ("q", text),
        ("types", "advertisers"),
        ("per_type_limit", limit.as_str()),
    ];
    let answer = backend.api.get(api_key, SEARCH_PATH, &query).await?;
    let page = rows::advertisers(&answer, SEARCH_PATH)?;
    Ok(result(page, args.limit, domain))
}

fn result(page: Page<Advertiser>, limit: usize, domain: Option<String>) -> SearchAdvertisersResult {
    let unreadable = page.unreadable + page.beyond_cap;
    let listing = read::Listing::new(page.rows, page.total, unreadable, limit);
    SearchAdvertisersResult {
        advertisers: listing.rows,
        total: listing.total,
        search_available: page.search_available,
        domain,
        unreadable_rows: listing.unreadable_rows,
    }
}

/// The domain of a query that is a domain or a URL, lower-case and without
/// `www.`; `None` for a name (spaces, no dot, an email address, an IP).
pub fn domain_of(query: &str) -> Option<String> {
    if query.contains(char::is_whitespace) || query.contains('@') {
        return None;
    }
    let url = if query.contains("://") {
        Url::parse(query).ok()?
    } else {
        Url::parse(&format!("https://{query}")).ok()?
    };
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let Some(Host::Domain(host)) = url.host() else {
        return None;
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host);
    let (_, tld) = host.rsplit_once('.')?;
    let is_tld = tld.len() >= 2
        && tld.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && tld.chars().any(|c| c.is_ascii_alphabetic());
    is_tld.then(|| host.to_owned())
}

/// Every fact of the result, for clients that show only text.
fn sentence(query: &str, result: &SearchAdvertisersResult) -> String {
    let mut text = String::with_capacity(200 + 160 * result.advertisers.len());
    let how = match &result.domain {
        Some(domain) => format!("the domain {domain}"),
        None => format!("{query:?}"),
    };
    if !result.search_available && result.advertisers.is_empty() {
        let _ = write!(
            text,
            "HiEnergy's search is unavailable right now (search_available: false), so nothing could be looked up for {how}: this is not \"no match\". Try again later, or ask the user for the advertiser_id."
        );
    } else if result.advertisers.is_empty() {
        let _ = write!(
            text,
            "No HiEnergy advertiser matched {how} (total: 0). Try another spelling, the brand's domain, or ask the user for the advertiser_id; never guess one."
        );
    } else {
        let n = result.advertisers.len();
        let _ = write!(
            text,
            "{n} HiEnergy advertiser record{} matched {how} (total: {}):",
            if n == 1 { "" } else { "s" },
            result.total
        );
        for advertiser in &result.advertisers {
            text.push_str("\n- ");
            read::describe_row(&mut text, advertiser);
        }
        if n > 1 {
            text.push_str("\nOne brand often has several records (one per network and publisher): show these to the user and let them choose the advertiser_id; do not pick one yourself.");
        } else {
            text.push_str("\nIf this is the advertiser the user means, its id is the advertiser_id for add_contact.");
        }
        if !result.search_available {
            text.push_str(" HiEnergy's search is unavailable right now (search_available: false), so there may be more records.");
        }
    }
    if let Some(n) = result.unreadable_rows {
        let _ = write!(
            text,
            " {n} more row{} in HiEnergy's answer could not be read and {} not shown.",
            if n == 1 { "" } else { "s" },
            if n == 1 { "is" } else { "are" }
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_www_hosts_are_reduced_to_their_domain_and_names_are_not_domains() {
        for (query, domain) in [
            ("aloyoga.com", Some("aloyoga.com")),
            ("AloYoga.com", Some("aloyoga.com")),
            ("www.aloyoga.com", Some("aloyoga.com")),
            ("https://www.aloyoga.com/shop?x=1", Some("aloyoga.com")),
            ("http://shop.aloyoga.co.uk/", Some("shop.aloyoga.co.uk")),
            ("aloyoga.com/products", Some("aloyoga.com")),
            ("aloyoga.com.", Some("aloyoga.com")),
            ("Alo Yoga", None),
            ("aloyoga", None),
            ("jane@aloyoga.com", None),
            ("127.0.0.1", None),
            ("ftp://aloyoga.com", None),
            ("v1.2", None),
        ] {
            assert_eq!(domain_of(query).as_deref(), domain, "{query}");
        }
    }

    #[test]
    fn the_text_holds_every_member_of_every_record() {
        let alo = |id, network: &str| Advertiser {
            id,
            name: Some("Alo Yoga".into()),
            domain: Some("aloyoga.com".into()),
            network: Some(network.into()),
            publisher: Some("HiEnergy".into()),
            status: Some("approved".into()),
            slug: Some(format!("alo-yoga-{id}")),
            subtitle: Some(format!("{network} · HiEnergy")),
        };
        let result = SearchAdvertisersResult {
            advertisers: vec![alo(42, "Awin"), alo(43, "CJ")],
            total: 3,
            search_available: true,
            domain: Some("aloyoga.com".into()),
            unreadable_rows: Some(1),
        };
        let text = sentence("aloyoga.com", &result);
        for fact in [
            "2 HiEnergy advertiser records matched the domain aloyoga.com (total: 3)",
            "id 42: Alo Yoga (domain aloyoga.com, network Awin, publisher HiEnergy, slug alo-yoga-42, status approved, subtitle Awin · HiEnergy)",
            "id 43: Alo Yoga (",
            "network CJ",
            "let them choose",
            "1 more row in HiEnergy's answer could not be read",
        ] {
            assert!(text.contains(fact), "{fact} not in {text}");
        }
    }

    #[test]
    fn search_down_is_never_said_as_no_match() {
        let down = SearchAdvertisersResult {
            advertisers: vec![],
            total: 0,
            search_available: false,
            domain: None,
            unreadable_rows: None,
        };
        let text = sentence("alo", &down);
        assert!(
            text.contains("unavailable") && text.contains("not \"no match\""),
            "{text}"
        );
        let none = SearchAdvertisersResult {
            search_available: true,
            ..down
        };
        assert!(sentence("alo", &none).starts_with("No HiEnergy advertiser matched \"alo\""));
    }
}
