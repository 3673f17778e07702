//! `advertiser` (a name, a domain or a URL) to one advertiser_id.
//!
//! One brand often has several HiEnergy records (one per network and
//! publisher), and the wrong one puts the contact on the wrong record
//! without a word. So a record is taken without asking only when exactly
//! one matches exactly (its domain is the domain given, or its name is the
//! name given and no other record has it); otherwise the user chooses
//! ([`crate::elicit`]) or, when they cannot be asked, the agent gets the
//! candidates (`advertiser_ambiguous`). The lookup is `search_advertisers`'
//! own search; when it fails, nothing is guessed.

use crate::elicit::{Answer, Asker};
use crate::outcome::{
    AdvertiserRecord, Created, ErrorKind, MAX_CANDIDATES, SpecialHint, ToolError,
};
use crate::rows::Advertiser;
use crate::tools::Backend;
use crate::tools::search_advertisers::{self, SearchAdvertisersResult, domain_of};

/// Why `advertiser` gave no record: the error, and with
/// advertiser_ambiguous the records the user may mean. (Kept beside the
/// error rather than in it: every `Result` in the server carries a
/// [`ToolError`], and this list is for one kind only.)
#[derive(Debug, Clone, PartialEq)]
pub struct Unresolved {
    pub error: ToolError,
    pub candidates: Vec<AdvertiserRecord>,
}

impl Unresolved {
    /// The `error` member, candidates included.
    pub fn body(&self) -> crate::outcome::ErrorBody {
        let mut body = self.error.body();
        body.candidates.clone_from(&self.candidates);
        body
    }
}

impl From<ToolError> for Box<Unresolved> {
    fn from(error: ToolError) -> Self {
        Box::new(Unresolved {
            error,
            candidates: Vec::new(),
        })
    }
}

/// What a lookup found, before anyone is asked.
#[derive(Debug, Clone, PartialEq)]
pub enum Match {
    /// The one record that matches exactly.
    Exact(AdvertiserRecord),
    /// 1 to [`MAX_CANDIDATES`] records the user may mean, exact matches
    /// first.
    Choose(Vec<AdvertiserRecord>),
}

/// The record a contact goes to, and how it was picked.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub record: AdvertiserRecord,
    /// true when the user chose it from a list; false for the one exact
    /// match.
    pub chosen_by_user: bool,
}

impl Resolved {
    /// "Alo Yoga (aloyoga.com) on Awin, #42 (the only exact match for
    /// "aloyoga.com")": said in every result that used it.
    pub fn sentence(&self, query: &str) -> String {
        let how = if self.chosen_by_user {
            format!("chosen by the user for {query:?}")
        } else {
            format!("the only exact match for {query:?}")
        };
        format!("advertiser {} ({how})", self.record.label())
    }
}

/// Looks `query` up and settles on one record: the exact match, or the
/// user's choice when `asker` can ask them. `about` names the contact(s)
/// for the question. Every failure is an error with created "no".
pub async fn resolve(
    backend: &Backend,
    api_key: &str,
    query: &str,
    asker: Option<&Asker>,
    about: &str,
) -> Result<Resolved, Box<Unresolved>> {
    let candidates = match lookup(backend, api_key, query).await? {
        Match::Exact(record) => {
            return Ok(Resolved {
                record,
                chosen_by_user: false,
            });
        }
        Match::Choose(candidates) => candidates,
    };
    let Some(asker) = asker else {
        return Err(ambiguous(
            query,
            candidates,
            "this client cannot ask the user (it did not declare elicitation)",
        ));
    };
    let message = question(query, about, candidates.len());
    match asker.choose(&question_key(query), message, &candidates).await {
        Answer::Chose(record) => Ok(Resolved {
            record,
            chosen_by_user: true,
        }),
        Answer::Declined => Err(not_chosen(query, "declined to choose").into()),
        Answer::Cancelled => Err(not_chosen(query, "cancelled the choice").into()),
        Answer::NoAnswer(waited) => Err(ToolError::new(
            ErrorKind::ChoiceTimeout,
            Created::No,
            format!(
                "The user was asked which advertiser {query:?} means and did not answer within {} (--elicitation-timeout), so nothing was sent.",
                humantime::format_duration(waited)
            ),
        )
        .into()),
        Answer::Failed(why) => Err(ambiguous(
            query,
            candidates,
            &format!("asking the user failed: {why}"),
        )),
        // Never shown: the call answers input_required instead.
        Answer::Asked => Err(ambiguous(query, candidates, "the user is being asked")),
    }
}

/// The key of the question about `query`: the same in the retried call,
/// and one question per name however many contacts use it.
pub fn question_key(query: &str) -> String {
    format!("advertiser:{}", query.trim().to_lowercase())
}

/// "Jane Doe <jane@lolewomen.com>": the contact a question is about.
pub fn about(contact: &crate::contact::Contact) -> String {
    match &contact.name {
        Some(name) => format!("{name} <{}>", contact.email),
        None => contact.email.clone(),
    }
}

/// The question the user sees, naming the contact being added.
pub fn question(query: &str, about: &str, n: usize) -> String {
    format!(
        "Which HiEnergy advertiser should {about} be added to? {query:?} matches {n} advertiser record{}; one brand often has a record per network. Nothing is added until you choose.",
        if n == 1 { "" } else { "s" }
    )
}

/// The same search as `search_advertisers`, read for one record.
pub async fn lookup(backend: &Backend, api_key: &str, query: &str) -> Result<Match, ToolError> {
    let args = search_advertisers::Args {
        query: query.to_owned(),
        limit: MAX_CANDIDATES,
    };
    match search_advertisers::search(backend, api_key, &args).await {
        Ok(found) => pick(query, &found),
        Err(error) => Err(search_failed(query, error)),
    }
}

/// The exact-match rule, on what the search returned.
pub fn pick(query: &str, found: &SearchAdvertisersResult) -> Result<Match, ToolError> {
    if found.advertisers.is_empty() {
        if !found.search_available {
            return Err(ToolError::new(
                ErrorKind::SearchUnavailable,
                Created::No,
                format!(
                    "HiEnergy's search is unavailable right now (search_available: false), so {query:?} could not be looked up and nothing was sent: this is not \"no match\"."
                ),
            ));
        }
        let mut error = ToolError::new(
            ErrorKind::AdvertiserNotFound,
            Created::No,
            format!("No HiEnergy advertiser matched {query:?}, so nothing was sent."),
        );
        error.special_hint = Some(SpecialHint::NoAdvertiserNamed);
        return Err(error);
    }
    let domain = domain_of(query);
    let wanted = query.trim().to_lowercase();
    let exact = |row: &Advertiser| match &domain {
        Some(domain) => row
            .domain
            .as_deref()
            .and_then(domain_of)
            .is_some_and(|d| &d == domain),
        None => row
            .name
            .as_deref()
            .is_some_and(|name| name.trim().to_lowercase() == wanted),
    };
    let (mut exact, near): (Vec<&Advertiser>, Vec<&Advertiser>) =
        found.advertisers.iter().partition(|row| exact(row));
    // "No other record has that name" is known only when the search saw
    // every record: not when it is down, nor when it returned a part.
    let complete = found.search_available && found.total <= found.advertisers.len() as u64;
    if exact.len() == 1 && complete {
        return Ok(Match::Exact(record(exact.remove(0))));
    }
    Ok(Match::Choose(
        exact
            .into_iter()
            .chain(near)
            .take(MAX_CANDIDATES)
            .map(record)
            .collect(),
    ))
}

fn record(row: &Advertiser) -> AdvertiserRecord {
    AdvertiserRecord {
        id: row.id,
        name: row.name.clone(),
        domain: row.domain.clone(),
        // Universal search gives no network, only "Awin · HiEnergy"
        // (network · publisher): without it, records of one brand would
        // look alike to the user choosing.
        network: row.network.clone().or_else(|| {
            let subtitle = row.subtitle.as_deref()?;
            let network = subtitle.split('·').next()?.trim();
            (!network.is_empty()).then(|| network.to_owned())
        }),
    }
}

/// Several records, or none exactly, and nobody to ask.
pub fn ambiguous(query: &str, candidates: Vec<AdvertiserRecord>, why: &str) -> Box<Unresolved> {
    let error = ToolError::new(
        ErrorKind::AdvertiserAmbiguous,
        Created::No,
        format!(
            "{query:?} does not name exactly one HiEnergy advertiser ({} record{} could be meant) and {why}, so nothing was sent.",
            candidates.len(),
            if candidates.len() == 1 { "" } else { "s" }
        ),
    );
    Box::new(Unresolved { error, candidates })
}

fn not_chosen(query: &str, what: &str) -> ToolError {
    ToolError::new(
        ErrorKind::NotChosen,
        Created::No,
        format!(
            "The user was asked which advertiser {query:?} means and {what}, so nothing was sent."
        ),
    )
}

/// The search's own failure, as the reason nothing was sent. What the
/// user must fix (the key, the settings) keeps its kind; the rest is
/// `search_unavailable`, saying what happened.
fn search_failed(query: &str, error: ToolError) -> ToolError {
    match error.kind {
        ErrorKind::Unauthorized
        | ErrorKind::Forbidden
        | ErrorKind::NotConfigured
        | ErrorKind::Cancelled => ToolError {
            created: Created::No,
            ..error
        },
        kind => ToolError {
            kind: ErrorKind::SearchUnavailable,
            created: Created::No,
            message: format!(
                "HiEnergy's advertiser search failed ({}: {}), so {query:?} was not looked up and nothing was sent.",
                kind.as_str(),
                error.message.trim_end_matches('.')
            ),
            special_hint: None,
            ..error
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: u64, name: &str, domain: &str, network: &str) -> Advertiser {
        Advertiser {
            id,
            name: Some(name.into()),
            domain: Some(domain.into()),
            network: Some(network.into()),
            publisher: None,
            status: None,
            slug: None,
            subtitle: None,
        }
    }

    fn found(rows: Vec<Advertiser>) -> SearchAdvertisersResult {
        SearchAdvertisersResult {
            total: rows.len() as u64,
            advertisers: rows,
            search_available: true,
            domain: None,
            unreadable_rows: None,
        }
    }

    fn ids(m: Result<Match, ToolError>) -> (bool, Vec<u64>) {
        match m {
            Ok(Match::Exact(r)) => (true, vec![r.id]),
            Ok(Match::Choose(c)) => (false, c.iter().map(|r| r.id).collect()),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn one_exact_name_or_domain_is_taken_and_nothing_else_is() {
        let lole = row(7, "Lole", "lolewomen.com", "Awin");
        let near = row(8, "Lole Canada", "lole.ca", "CJ");
        // Exact name, case and surrounding space aside.
        assert_eq!(
            ids(pick("  lOLE ", &found(vec![near.clone(), lole.clone()]))),
            (true, vec![7])
        );
        // Exact domain, given as a URL.
        assert_eq!(
            ids(pick(
                "https://www.LoleWomen.com/shop",
                &found(vec![near.clone(), lole.clone()])
            )),
            (true, vec![7])
        );
        // Two records of one brand: the user chooses, exact ones first.
        let lole_cj = row(9, "Lole", "lolewomen.com", "CJ");
        assert_eq!(
            ids(pick(
                "Lole",
                &found(vec![near.clone(), lole.clone(), lole_cj.clone()])
            )),
            (false, vec![7, 9, 8])
        );
        assert_eq!(
            ids(pick("lolewomen.com", &found(vec![lole.clone(), lole_cj]))),
            (false, vec![7, 9])
        );
        // Near matches only: never taken.
        assert_eq!(
            ids(pick("Lol", &found(vec![near.clone()]))),
            (false, vec![8])
        );
        // One exact match of a partial answer: another may hide.
        let mut partial = found(vec![lole.clone()]);
        partial.total = 12;
        assert_eq!(ids(pick("Lole", &partial)), (false, vec![7]));
        // Search down but some rows back: not complete, so asked.
        let mut down = found(vec![lole]);
        down.search_available = false;
        assert_eq!(ids(pick("Lole", &down)), (false, vec![7]));
    }

    #[test]
    fn no_match_and_search_down_are_errors_that_sent_nothing() {
        let none = pick("Nobody", &found(vec![])).err();
        let none = none.unwrap_or_else(|| panic!("no error"));
        assert_eq!(none.kind, ErrorKind::AdvertiserNotFound);
        assert_eq!(none.created, Created::No);
        assert!(
            none.hint().contains("search_advertisers"),
            "{}",
            none.hint()
        );
        assert!(none.hint().contains("domain"), "{}", none.hint());
        let mut down = found(vec![]);
        down.search_available = false;
        let down = pick("Lole", &down)
            .err()
            .unwrap_or_else(|| panic!("no error"));
        assert_eq!(down.kind, ErrorKind::SearchUnavailable);
        assert_eq!(down.created, Created::No);
    }

    #[test]
    fn at_most_ten_candidates() {
        let rows = (1..=15)
            .map(|i| row(i, "Lole", "lolewomen.com", "Awin"))
            .collect();
        let (exact, ids) = ids(pick("Lole", &found(rows)));
        assert!(!exact);
        assert_eq!(ids.len(), MAX_CANDIDATES);
    }

    #[test]
    fn a_failed_search_keeps_what_the_user_must_fix_and_is_otherwise_search_unavailable() {
        let timeout = ToolError::new(ErrorKind::Timeout, Created::Unknown, "No answer.");
        let error = search_failed("Lole", timeout);
        assert_eq!(error.kind, ErrorKind::SearchUnavailable);
        assert_eq!(error.created, Created::No);
        assert!(
            error.message.contains("timeout: No answer"),
            "{}",
            error.message
        );
        let unauthorized = ToolError::new(ErrorKind::Unauthorized, Created::No, "401.");
        assert_eq!(
            search_failed("Lole", unauthorized).kind,
            ErrorKind::Unauthorized
        );
    }
}
