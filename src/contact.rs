//! The tool's arguments: what a contact is, how it is checked, and the
//! portable JSON schema clients see.
//!
//! Arguments are parsed field by field rather than through serde so that
//! every problem is reported at once, each with its field name.

use email_address::{EmailAddress, Options};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::outcome::{FieldProblem, ToolError};

/// Longest string accepted in any field. Real names, titles and URLs are far
/// shorter; anything longer is a mistake or an attack, and is refused before
/// it costs HiEnergy anything.
pub const MAX_FIELD_CHARS: usize = 1_000;

/// The largest advertiser_id accepted: 2^53 − 1, the largest whole number
/// that every JSON client carries exactly (JavaScript's numbers are doubles).
/// Past it, an id may have been rounded before it reached the server, and
/// sending a rounded id would add the contact to another advertiser; such an
/// id is refused, never altered.
pub const MAX_ADVERTISER_ID: u64 = (1 << 53) - 1;

/// A contact to add to HiEnergy. Absent fields are omitted from the request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Contact {
    /// Id of the HiEnergy advertiser (brand) this contact works for, e.g. 42.
    /// It must be the id of an existing HiEnergy advertiser, not a name or a domain.
    #[schemars(range(min = 1, max = MAX_ADVERTISER_ID))]
    pub advertiser_id: u64,
    /// The contact's email address, e.g. "jane.doe@example.com".
    #[schemars(email)]
    pub email: String,
    /// Full name, e.g. "Jane Doe".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// First name, e.g. "Jane".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    /// Last name, e.g. "Doe".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// Phone number as the user gave it, e.g. "+1 415 555 0100".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Job title, e.g. "Affiliate Manager".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
    /// Where this contact came from, e.g. "conference", "linkedin", "referral".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Contact status in HiEnergy, e.g. "active".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Absolute http(s) URL of the contact's LinkedIn profile, e.g. "https://www.linkedin.com/in/janedoe".
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(url)]
    pub linkedin_profile_url: Option<String>,
}

/// Longest `advertiser` accepted: a brand's name, a domain or a URL.
/// Longest name, domain or URL accepted: `advertiser`, and the search
/// tools' `query`.
pub const MAX_QUERY_CHARS: usize = 200;

/// Everything `add_contact` accepts: the contact, plus how to run the call.
#[derive(Debug, Clone, PartialEq, Eq, JsonSchema)]
#[schemars(deny_unknown_fields, transform = advertiser_or_id)]
pub struct AddContactArgs {
    /// With `advertiser` (a name to resolve), `contact.advertiser_id` is 0
    /// until [`crate::resolve`] sets it; nothing is sent before.
    #[schemars(flatten)]
    pub contact: Contact,
    /// The advertiser by name, domain or URL (e.g. "Alo Yoga", "aloyoga.com"), instead of advertiser_id.
    /// Used only when exactly one HiEnergy record matches exactly; otherwise the user is asked to choose
    /// (when the client supports it) or the result lists the candidates. Give advertiser or advertiser_id, not both.
    #[schemars(length(min = 1, max = MAX_QUERY_CHARS))]
    pub advertiser: Option<String>,
    /// If true, validate and return exactly the request that would be sent
    /// (API key redacted) without sending it. Needs no API key. Default false.
    #[schemars(default)]
    pub dry_run: bool,
    /// "skip" (default): first look the email up on this advertiser in HiEnergy and add nothing if it is already there. "add": send without looking.
    #[schemars(default)]
    pub if_exists: IfExists,
}

/// What to do when HiEnergy already lists the contact's email on its
/// advertiser.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IfExists {
    /// Look first; add nothing when it is already there.
    #[default]
    Skip,
    /// Send without looking.
    Add,
}

/// `advertiser_id` is required unless `advertiser` is given: the schema
/// cannot say "one of", portably, so it requires neither and the parser
/// refuses both and neither.
fn advertiser_or_id(schema: &mut schemars::Schema) {
    if let Some(Value::Array(required)) = schema.get_mut("required") {
        required.retain(|field| field != "advertiser_id");
    }
    if let Some(Value::String(description)) = schema
        .get_mut("properties")
        .and_then(|p| p.get_mut("advertiser_id"))
        .and_then(|p| p.get_mut("description"))
    {
        description.push_str(" Required unless `advertiser` (a name or domain) is given.");
    }
}

const OPTIONAL_STRINGS: [&str; 8] = [
    "name",
    "given_name",
    "family_name",
    "phone",
    "job_title",
    "source",
    "status",
    "linkedin_profile_url",
];

/// Every argument name the tool accepts, in schema order.
pub const ALLOWED_FIELDS: [&str; 13] = [
    "advertiser_id",
    "email",
    "name",
    "given_name",
    "family_name",
    "phone",
    "job_title",
    "source",
    "status",
    "linkedin_profile_url",
    "advertiser",
    "dry_run",
    "if_exists",
];

/// Arguments some clients add to every tool's schema for their own use and
/// then send: Gemini CLI's `wait_for_previous` (its model is told to set
/// it). They mean nothing to this server, so they are accepted and ignored
/// by name; any other unknown name is still refused as a likely typo.
pub const CLIENT_INJECTED: [&str; 1] = ["wait_for_previous"];

impl AddContactArgs {
    /// Validates and normalises raw tool arguments. `None` (no `arguments`
    /// member) is treated as an empty object, so the agent hears which
    /// fields are required.
    pub fn parse(arguments: Option<&Map<String, Value>>) -> Result<Self, ToolError> {
        let empty = Map::new();
        let args = arguments.unwrap_or(&empty);
        let mut problems = Vec::new();

        let (advertiser_id, advertiser) = parse_advertiser(args, &mut problems);
        let email = parse_email(args.get("email"), &mut problems);
        let mut optional: [Option<String>; 8] = Default::default();
        for (slot, field) in optional.iter_mut().zip(OPTIONAL_STRINGS) {
            *slot = parse_optional_string(field, args.get(field), &mut problems);
        }
        if let Some(url) = &optional[7] {
            check_linkedin_url(url, &mut problems);
        }
        let dry_run = parse_dry_run(args.get("dry_run"), &mut problems);
        let if_exists = parse_if_exists(args.get("if_exists"), &mut problems);

        // After the known fields: the error lists a bounded number of
        // problems, and thousands of unknown names must not crowd out a
        // missing email.
        let mut unknown: Vec<&str> = args
            .keys()
            .map(String::as_str)
            .filter(|k| !ALLOWED_FIELDS.contains(k) && !CLIENT_INJECTED.contains(k))
            .collect();
        unknown.sort_unstable();
        for field in unknown {
            problems.push(FieldProblem::new(
                // A name can be as long as the input: name it, do not echo it.
                crate::outcome::truncate(field, 100),
                format!(
                    "is not an argument of add_contact; allowed: {}",
                    ALLOWED_FIELDS.join(", ")
                ),
            ));
        }

        if !problems.is_empty() {
            return Err(ToolError::invalid_arguments(problems));
        }
        let (Some(advertiser_id), Some(email)) =
            (advertiser_id.or(advertiser.is_some().then_some(0)), email)
        else {
            // Both parsers push a problem whenever they return None.
            return Err(ToolError::invalid_arguments(problems));
        };
        let [
            name,
            given_name,
            family_name,
            phone,
            job_title,
            source,
            status,
            linkedin_profile_url,
        ] = optional;
        Ok(Self {
            contact: Contact {
                advertiser_id,
                email,
                name,
                given_name,
                family_name,
                phone,
                job_title,
                source,
                status,
                linkedin_profile_url,
            },
            advertiser,
            dry_run,
            if_exists,
        })
    }
}

/// `advertiser_id`, or `advertiser` (a name, a domain or a URL): exactly
/// one of the two. A problem is pushed whenever both are `None`.
pub(crate) fn parse_advertiser(
    args: &Map<String, Value>,
    problems: &mut Vec<FieldProblem>,
) -> (Option<u64>, Option<String>) {
    let given = |field| args.get(field).is_some_and(|v| !v.is_null());
    match (given("advertiser_id"), given("advertiser")) {
        (true, true) => {
            problems.push(FieldProblem::new(
                "advertiser",
                "give advertiser (a name or domain) or advertiser_id, not both",
            ));
            (None, None)
        }
        (false, false) => {
            problems.push(FieldProblem::new(
                "advertiser_id",
                "is required: the id of a HiEnergy advertiser, e.g. 42, or else give advertiser (its name or domain, e.g. \"aloyoga.com\")",
            ));
            (None, None)
        }
        (true, false) => (
            parse_advertiser_id(args.get("advertiser_id"), problems),
            None,
        ),
        (false, true) => (
            None,
            parse_text("advertiser", args.get("advertiser"), problems),
        ),
    }
}

/// A name, a domain or a URL (`advertiser`, a search's `query`): trimmed,
/// not blank, at most [`MAX_QUERY_CHARS`] characters, one line. `None`
/// when absent (or null), or after a problem.
pub fn parse_text(
    field: &str,
    value: Option<&Value>,
    problems: &mut Vec<FieldProblem>,
) -> Option<String> {
    let problem = match value {
        None | Some(Value::Null) => return None,
        Some(Value::String(s)) => {
            let text = s.trim();
            let chars = text.chars().count();
            if text.is_empty() {
                "is empty: give a name, a domain or a URL".to_owned()
            } else if chars > MAX_QUERY_CHARS {
                format!("is too long ({chars} characters; at most {MAX_QUERY_CHARS})")
            } else if text.chars().any(char::is_control) {
                "contains control characters (such as line breaks)".to_owned()
            } else {
                return Some(text.to_owned());
            }
        }
        Some(other) => format!("must be a string, got {}", describe(Some(other))),
    };
    problems.push(FieldProblem::new(field, problem));
    None
}

pub(crate) fn parse_advertiser_id(
    value: Option<&Value>,
    problems: &mut Vec<FieldProblem>,
) -> Option<u64> {
    const FIELD: &str = "advertiser_id";
    let id = match value {
        None | Some(Value::Null) => {
            problems.push(FieldProblem::new(
                FIELD,
                "is required: the id of a HiEnergy advertiser, e.g. 42",
            ));
            return None;
        }
        Some(Value::Number(n)) => n.as_u64().or_else(|| {
            // A number written with a fraction or an exponent, or too large
            // for u64, arrives as a double: 42.0 is 42; 42.5 and negatives
            // are not ids. Up to MAX_ADVERTISER_ID every whole double is an
            // exact integer, so the range check below is what keeps a
            // rounded one (9007199254740993.0 reads as ...992) out.
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 1.0 && *f <= MAX_ADVERTISER_ID as f64)
                .map(|f| f as u64)
        }),
        // Some clients send numbers as strings.
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(_) => None,
    };
    match id {
        Some(id) if (1..=MAX_ADVERTISER_ID).contains(&id) => Some(id),
        _ => {
            problems.push(FieldProblem::new(
                FIELD,
                format!(
                    "must be a whole number from 1 to {MAX_ADVERTISER_ID} (the id of a HiEnergy advertiser), got {}",
                    describe(value)
                ),
            ));
            None
        }
    }
}

pub(crate) fn parse_email(
    value: Option<&Value>,
    problems: &mut Vec<FieldProblem>,
) -> Option<String> {
    const FIELD: &str = "email";
    let before = problems.len();
    let Some(email) = parse_optional_string(FIELD, value, problems) else {
        if problems.len() == before {
            problems.push(FieldProblem::new(
                FIELD,
                "is required: the contact's email address, e.g. jane.doe@example.com",
            ));
        }
        return None;
    };
    let options = Options::default()
        .with_required_tld()
        .without_display_text()
        .without_domain_literal();
    match EmailAddress::parse_with_options(&email, options) {
        Ok(_) => Some(email),
        Err(e) => {
            problems.push(FieldProblem::new(
                FIELD,
                format!("is not a valid email address ({e}), e.g. jane.doe@example.com"),
            ));
            None
        }
    }
}

/// Trims the string; an empty or null value is absent. Pushes a problem for
/// a wrong type or an absurd length.
fn parse_optional_string(
    field: &str,
    value: Option<&Value>,
    problems: &mut Vec<FieldProblem>,
) -> Option<String> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            let trimmed = s.trim();
            let chars = trimmed.chars().count();
            if chars > MAX_FIELD_CHARS {
                problems.push(FieldProblem::new(
                    field,
                    format!("is too long ({chars} characters; at most {MAX_FIELD_CHARS})"),
                ));
                None
            } else if trimmed.chars().any(char::is_control) {
                problems.push(FieldProblem::new(
                    field,
                    "contains control characters (such as line breaks)",
                ));
                None
            } else if trimmed.is_empty() {
                None
            } else {
                Some(trimmed.to_owned())
            }
        }
        Some(other) => {
            problems.push(FieldProblem::new(
                field,
                format!("must be a string, got {}", describe(Some(other))),
            ));
            None
        }
    }
}

fn check_linkedin_url(raw: &str, problems: &mut Vec<FieldProblem>) {
    const FIELD: &str = "linkedin_profile_url";
    let problem = match url::Url::parse(raw) {
        Err(e) => Some(format!(
            "is not an absolute URL ({e}), e.g. https://www.linkedin.com/in/janedoe"
        )),
        Ok(url) if !matches!(url.scheme(), "http" | "https") => Some(format!(
            "must be an http(s) URL, not {}:, e.g. https://www.linkedin.com/in/janedoe",
            url.scheme()
        )),
        Ok(url) if url.host_str().is_none_or(str::is_empty) => {
            Some("has no host, e.g. https://www.linkedin.com/in/janedoe".to_owned())
        }
        Ok(_) => None,
    };
    if let Some(problem) = problem {
        problems.push(FieldProblem::new(FIELD, problem));
    }
}

pub(crate) fn parse_dry_run(value: Option<&Value>, problems: &mut Vec<FieldProblem>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        // Like numbers, booleans sometimes arrive as strings.
        Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("true") => true,
        Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("false") => false,
        Some(other) => {
            problems.push(FieldProblem::new(
                "dry_run",
                format!("must be true or false, got {}", describe(Some(other))),
            ));
            false
        }
    }
}

pub(crate) fn parse_if_exists(value: Option<&Value>, problems: &mut Vec<FieldProblem>) -> IfExists {
    match value {
        None | Some(Value::Null) => IfExists::Skip,
        Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("skip") => IfExists::Skip,
        Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("add") => IfExists::Add,
        Some(other) => {
            problems.push(FieldProblem::new(
                "if_exists",
                format!("must be \"skip\" or \"add\", got {}", describe(Some(other))),
            ));
            IfExists::Skip
        }
    }
}

/// A short description of a received value for error messages: its type and,
/// for scalars, a bounded excerpt, never the whole of a huge value.
pub(crate) fn describe(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "null".into(),
        Some(Value::Bool(b)) => format!("the boolean {b}"),
        Some(Value::Number(n)) => format!("the number {n}"),
        Some(Value::String(s)) => {
            let excerpt: String = s.chars().take(40).collect();
            let more = if s.chars().nth(40).is_some() {
                "…"
            } else {
                ""
            };
            format!("the string {:?}", format!("{excerpt}{more}"))
        }
        Some(Value::Array(_)) => "an array".into(),
        Some(Value::Object(_)) => "an object".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<AddContactArgs, ToolError> {
        match value {
            Value::Object(map) => AddContactArgs::parse(Some(&map)),
            _ => AddContactArgs::parse(None),
        }
    }

    fn problems(value: Value) -> Vec<(String, String)> {
        match parse(value) {
            Ok(args) => panic!("expected problems, parsed {args:?}"),
            Err(e) => e.fields.into_iter().map(|f| (f.field, f.problem)).collect(),
        }
    }

    fn fields(value: Value) -> Vec<String> {
        problems(value).into_iter().map(|(f, _)| f).collect()
    }

    #[test]
    fn minimal_contact_parses() {
        let args = parse(json!({"advertiser_id": 42, "email": "jane@example.com"}));
        let args = args.ok().unwrap_or_else(|| panic!("should parse"));
        assert_eq!(args.contact.advertiser_id, 42);
        assert_eq!(args.contact.email, "jane@example.com");
        assert_eq!(args.contact.name, None);
        assert!(!args.dry_run);
    }

    #[test]
    fn advertiser_id_as_numeric_string_is_accepted() {
        let args = parse(json!({"advertiser_id": " 42 ", "email": "jane@example.com"}));
        assert_eq!(args.map(|a| a.contact.advertiser_id).ok(), Some(42));
        let args = parse(json!({"advertiser_id": 42.0, "email": "jane@example.com"}));
        assert_eq!(args.map(|a| a.contact.advertiser_id).ok(), Some(42));
    }

    #[test]
    fn advertiser_id_must_be_a_positive_whole_number() {
        for bad in [
            json!(0),
            json!(-3),
            json!(4.5),
            json!("abc"),
            json!("0"),
            json!(true),
            json!([1]),
            json!({}),
            json!("18446744073709551616"),
        ] {
            let got = problems(json!({"advertiser_id": bad, "email": "jane@example.com"}));
            assert_eq!(got.len(), 1, "{bad}: {got:?}");
            assert_eq!(got[0].0, "advertiser_id");
            assert!(
                got[0].1.contains("from 1 to 9007199254740991"),
                "{bad}: {got:?}"
            );
        }
    }

    /// Arguments as the server receives them: JSON text, parsed.
    fn parse_text(arguments: &str) -> Result<AddContactArgs, ToolError> {
        match serde_json::from_str::<Value>(arguments) {
            Ok(value) => parse(value),
            Err(e) => panic!("{arguments}: {e}"),
        }
    }

    /// An advertiser name is bounded as a search's query is, and a long
    /// one is told that bound (it was told the 1,000 of other fields).
    #[test]
    fn an_advertiser_name_over_200_characters_is_refused_naming_200() {
        for n in [201, 1_500] {
            let error = parse(json!({"email": "a@b.co", "advertiser": "x".repeat(n)}))
                .err()
                .unwrap_or_else(|| panic!("{n} characters accepted"));
            assert_eq!(error.fields.len(), 1, "{error:?}");
            assert_eq!(error.fields[0].field, "advertiser");
            assert!(
                error.fields[0].problem.contains("at most 200"),
                "{n}: {}",
                error.fields[0].problem
            );
        }
        let ok = parse(json!({"email": "a@b.co", "advertiser": " Alo Yoga "}));
        assert_eq!(
            ok.ok().and_then(|a| a.advertiser).as_deref(),
            Some("Alo Yoga")
        );
    }

    #[test]
    fn advertiser_ids_past_what_json_carries_exactly_are_refused_not_changed() {
        for text in [
            "18446744073709551616",
            "18446744073709551615",
            "9007199254740993.0",
            "9007199254740992",
            "9007199254740992.0",
            "9007199254740991.5",
            "1e300",
            r#""9007199254740992""#,
            r#""18446744073709551616""#,
        ] {
            let arguments = format!(r#"{{"advertiser_id": {text}, "email": "a@b.co"}}"#);
            match parse_text(&arguments) {
                Ok(args) => panic!("{text} was taken as {}", args.contact.advertiser_id),
                Err(e) => {
                    assert_eq!(e.fields.len(), 1, "{text}: {:?}", e.fields);
                    assert_eq!(e.fields[0].field, "advertiser_id");
                    assert!(
                        e.fields[0].problem.contains("from 1 to 9007199254740991"),
                        "{text}: {}",
                        e.fields[0].problem
                    );
                }
            }
        }
        for (text, id) in [
            ("9007199254740991", MAX_ADVERTISER_ID),
            ("9007199254740991.0", MAX_ADVERTISER_ID),
            (r#"" 9007199254740991 ""#, MAX_ADVERTISER_ID),
            ("4.2e1", 42),
            ("1", 1),
            ("1.0", 1),
        ] {
            let arguments = format!(r#"{{"advertiser_id": {text}, "email": "a@b.co"}}"#);
            let got = parse_text(&arguments).map(|a| a.contact.advertiser_id);
            assert_eq!(got.ok(), Some(id), "{text}");
        }
        assert_eq!(MAX_ADVERTISER_ID, 9_007_199_254_740_991);
    }

    #[test]
    fn required_fields_are_named_when_missing() {
        let got = problems(json!({}));
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, "advertiser_id");
        assert!(got[0].1.starts_with("is required"));
        assert_eq!(got[1].0, "email");
        assert!(got[1].1.starts_with("is required"));
        // No `arguments` at all reads the same as an empty object.
        assert_eq!(fields(Value::Null), ["advertiser_id", "email"]);
        // Null and blank are absent.
        assert_eq!(
            fields(json!({"advertiser_id": null, "email": "   "})),
            ["advertiser_id", "email"]
        );
    }

    #[test]
    fn email_must_parse_as_an_address() {
        for bad in [
            "jane",
            "jane@",
            "@example.com",
            "jane@localhost",
            "Jane <jane@example.com>",
            "jane@@example.com",
            "jane doe@example.com",
            "jane@[127.0.0.1]",
        ] {
            let got = problems(json!({"advertiser_id": 1, "email": bad}));
            assert_eq!(got.len(), 1, "{bad}: {got:?}");
            assert_eq!(got[0].0, "email");
            assert!(got[0].1.contains("not a valid email"), "{bad}: {got:?}");
        }
        let got = problems(json!({"advertiser_id": 1, "email": 5}));
        assert_eq!(
            got,
            [("email".into(), "must be a string, got the number 5".into())]
        );
    }

    #[test]
    fn strings_are_trimmed_and_blank_optionals_are_absent() {
        let args = parse(json!({
            "advertiser_id": 1,
            "email": "  jane@example.com\t",
            "name": "  Jane Doe ",
            "phone": "",
            "job_title": "   ",
            "source": null,
        }))
        .ok()
        .unwrap_or_else(|| panic!("should parse"));
        assert_eq!(args.contact.email, "jane@example.com");
        assert_eq!(args.contact.name.as_deref(), Some("Jane Doe"));
        assert_eq!(args.contact.phone, None);
        assert_eq!(args.contact.job_title, None);
        assert_eq!(args.contact.source, None);
    }

    #[test]
    fn absurd_lengths_and_control_characters_are_refused() {
        let long = "x".repeat(MAX_FIELD_CHARS + 1);
        let got = problems(json!({"advertiser_id": 1, "email": "a@b.co", "name": long}));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "name");
        assert!(got[0].1.contains("too long (1001 characters"), "{got:?}");
        let exact = "é".repeat(MAX_FIELD_CHARS);
        assert!(parse(json!({"advertiser_id": 1, "email": "a@b.co", "name": exact})).is_ok());
        let got = fields(json!({"advertiser_id": 1, "email": "a@b.co", "job_title": "a\nb"}));
        assert_eq!(got, ["job_title"]);
    }

    #[test]
    fn linkedin_url_must_be_absolute_http() {
        for bad in [
            "linkedin.com/in/jane",
            "/in/jane",
            "ftp://linkedin.com/in/jane",
            "javascript:alert(1)",
            "mailto:jane@example.com",
            "https://",
        ] {
            let got = problems(
                json!({"advertiser_id": 1, "email": "a@b.co", "linkedin_profile_url": bad}),
            );
            assert_eq!(got.len(), 1, "{bad}: {got:?}");
            assert_eq!(got[0].0, "linkedin_profile_url", "{bad}");
        }
        for good in [
            "https://www.linkedin.com/in/jane",
            "http://linkedin.com/in/jane?x=1",
        ] {
            assert!(
                parse(json!({"advertiser_id": 1, "email": "a@b.co", "linkedin_profile_url": good}))
                    .is_ok(),
                "{good}"
            );
        }
    }

    #[test]
    fn wrong_types_on_optional_fields_are_named() {
        let got = fields(json!({
            "advertiser_id": 1, "email": "a@b.co",
            "name": 3, "phone": ["1"], "status": {"a": 1}, "dry_run": "maybe"
        }));
        assert_eq!(got, ["name", "phone", "status", "dry_run"]);
    }

    #[test]
    fn unknown_fields_are_rejected_with_the_allowed_list() {
        let got = problems(json!({"advertiser_id": 1, "email": "a@b.co", "mail": "x", "Email": 1}));
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, "Email");
        assert_eq!(got[1].0, "mail");
        assert!(got[1].1.contains("allowed: advertiser_id, email, name"));
    }

    #[test]
    fn arguments_clients_inject_are_ignored_but_typos_are_not() {
        let args = parse(json!({
            "advertiser_id": 1, "email": "a@b.co", "wait_for_previous": true
        }));
        assert_eq!(args.map(|a| a.contact.advertiser_id).ok(), Some(1));
        let got = fields(json!({
            "advertiser_id": 1, "email": "a@b.co", "wait_for_previous": false, "phone_number": "1"
        }));
        assert_eq!(got, ["phone_number"]);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let got = fields(json!({
            "advertiser_id": "x", "email": "nope", "linkedin_profile_url": "nope", "bogus": 1
        }));
        assert_eq!(
            got,
            ["advertiser_id", "email", "linkedin_profile_url", "bogus"]
        );
    }

    #[test]
    fn ten_thousand_unknown_names_give_a_bounded_error_that_still_names_the_real_problems() {
        let mut args = Map::new();
        for i in 0..10_000 {
            args.insert(format!("unknown_{i:05}"), json!(1));
        }
        let error = match AddContactArgs::parse(Some(&args)) {
            Ok(parsed) => panic!("parsed {parsed:?}"),
            Err(e) => e,
        };
        assert_eq!(error.fields.len(), crate::outcome::MAX_LISTED_PROBLEMS);
        assert_eq!(error.fields[0].field, "advertiser_id");
        assert_eq!(error.fields[1].field, "email");
        assert_eq!(error.fields[2].field, "unknown_00000");
        assert!(
            error.message.contains("and 9952 more"),
            "{}",
            &error.message[error.message.len().saturating_sub(200)..]
        );
        let reply = serde_json::to_string(&error.to_json()).unwrap_or_default();
        assert!(reply.len() < 32 * 1024, "{} bytes", reply.len());
    }

    #[test]
    fn dry_run_accepts_booleans_and_their_strings() {
        for (value, expected) in [
            (json!(true), true),
            (json!("TRUE"), true),
            (json!(false), false),
            (json!("false"), false),
        ] {
            let args = parse(json!({"advertiser_id": 1, "email": "a@b.co", "dry_run": value}));
            assert_eq!(args.map(|a| a.dry_run).ok(), Some(expected));
        }
    }

    #[test]
    fn absent_fields_are_omitted_from_the_body() {
        let args = parse(json!({"advertiser_id": 7, "email": "a@b.co", "name": "A", "phone": ""}));
        let body = args
            .map(|a| serde_json::to_value(a.contact).ok())
            .ok()
            .flatten();
        assert_eq!(
            body,
            Some(json!({"advertiser_id": 7, "email": "a@b.co", "name": "A"}))
        );
    }

    #[test]
    fn describe_never_echoes_a_huge_value() {
        let huge = "y".repeat(1 << 20);
        let text = describe(Some(&Value::String(huge)));
        assert!(text.len() < 80, "{text}");
    }
}
