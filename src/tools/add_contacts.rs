//! `add_contacts`: a list of contacts in one call.
//!
//! Each item is checked on its own and sent exactly as `add_contact` sends
//! one ([`super::send`]: the same guard, retry rules and errors), a few at
//! a time, paced by HiEnergy's rate-limit budget. Invalid items do not hold
//! back the valid ones; the result lists every item in input order.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use rmcp::model::{CallToolResult, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::send::{self, Checked, Pacing, Sent, Would};
use super::{Backend, CallContext};
use crate::contact::{self, AddContactArgs, CLIENT_INJECTED, Contact, IfExists};
use crate::hienergy::Preview;
use crate::outcome::{
    self, AdvertiserRecord, Created, ErrorBody, ErrorKind, FieldProblem, PreviousAttempt, Reply,
    ToolError, truncate,
};
use crate::resolve::{self, Resolved, Unresolved};
use crate::{dedupe, schema};

pub const NAME: &str = "add_contacts";
pub const TITLE: &str = "Add HiEnergy contacts (a list)";
/// Contacts in one call, at most: a spreadsheet's worth, and a result an
/// agent can still read through.
pub const MAX_CONTACTS: usize = 100;
/// Unknown names quoted back per object; the rest are counted.
const MAX_UNKNOWN_NAMED: usize = 10;
const ARGUMENTS: [&str; 5] = [
    "contacts",
    "advertiser_id",
    "advertiser",
    "dry_run",
    "if_exists",
];

pub const DESCRIPTION: &str = "\
Add several contacts (people who work for an advertiser) to HiEnergy, the affiliate-marketing CRM, in one call: \
use this whenever there are two or more contacts to add (a list, a spreadsheet); use add_contact for a single contact. \
contacts holds 1 to 100 items with add_contact's fields: email is required, and advertiser_id (the numeric id of an existing HiEnergy advertiser) or advertiser (a brand's name, domain or URL) \
is required unless the top-level advertiser_id or advertiser gives it for every item without one. \
A name is resolved as in add_contact, by search_advertisers' search: one exact match is used, and when several records fit the user is asked once per name (or the items fail with advertiser_ambiguous and error.candidates: ask the user, never pick). search_contacts shows who is already there. \
Each item is checked on its own: invalid items are reported with their index and field (e.g. contacts[3].email) and the valid ones are still sent. \
Before each POST the email is looked up on its advertiser (if_exists: \"skip\", the default): one HiEnergy already has is not added again (status existing, with its id); if_exists: \"add\" sends without looking; a look that cannot be made never blocks the item (existing_check says why). \
The result lists every item in input order with its status: created (confirmed_by_lookup: true when a lookup after a timeout found it); replayed (an identical contact was already created, no new one); existing (already in HiEnergy, nothing added); \
failed (with error.kind, error.hint and error.created); or not_sent (never sent, e.g. HiEnergy's rate limit or a cancellation: nothing was created). \
Calling again with the same list after a partial failure sends only what was not created: the rest comes back replayed. \
error.created \"unknown\" means that contact may exist: check HiEnergy before sending it again. \
Set dry_run: true to check every item and preview the requests without sending anything; with an API key it also says which a real call would add and which it would skip as existing.";

pub fn tool() -> Tool {
    Tool::new(NAME, DESCRIPTION, input_schema())
        .with_title(TITLE)
        .with_raw_output_schema(schema::output_schema::<Output>())
        .with_annotations(
            ToolAnnotations::with_title(TITLE)
                .read_only(false)
                .destructive(false)
                .idempotent(false)
                .open_world(true),
        )
}

/// The contact of `add_contact`, as the items of a list: advertiser_id
/// may come from the top level instead.
pub fn input_schema() -> Map<String, Value> {
    let mut item = Value::Object(schema::portable_schema_for::<Contact>());
    if let Some(Value::Array(required)) = item.get_mut("required") {
        required.retain(|field| field != "advertiser_id");
    }
    let by_name = Value::Object(schema::input_schema())
        .pointer("/properties/advertiser")
        .cloned()
        .unwrap_or_default();
    if let Some(Value::Object(properties)) = item.get_mut("properties") {
        properties.insert("advertiser".into(), by_name.clone());
    }
    let mut top_name = by_name;
    if let Value::Object(name) = &mut top_name {
        name.insert(
            "description".into(),
            json!("The advertiser, by name, domain or URL, of every contact in `contacts` that gives neither advertiser nor advertiser_id; instead of the top-level advertiser_id. Each distinct name is looked up once (and the user asked once, if it matches several records)."),
        );
    }
    let mut top_id = item
        .pointer("/properties/advertiser_id")
        .cloned()
        .unwrap_or_default();
    if let Some(Value::String(description)) =
        item.pointer_mut("/properties/advertiser_id/description")
    {
        description
            .push_str(" Required unless the top-level advertiser_id or advertiser is given.");
    }
    if let Value::Object(id) = &mut top_id {
        id.insert(
            "description".into(),
            json!("The advertiser_id of every contact in `contacts` that has none of its own, e.g. 42: the id of an existing HiEnergy advertiser, not a name or a domain."),
        );
    }
    let schema = json!({
        "type": "object",
        "properties": {
            "contacts": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_CONTACTS,
                "description": format!("The contacts to add, 1 to {MAX_CONTACTS}, each with add_contact's fields. Identical contacts in one list are sent once."),
                "items": item
            },
            "advertiser_id": top_id,
            "advertiser": top_name,
            "dry_run": {
                "type": "boolean",
                "default": false,
                "description": "If true, check every contact and return the requests that would be sent (API key redacted) without sending any; with an API key, also look each one up in HiEnergy (read-only) to say whether a real call would add or skip it. Needs no API key. Default false."
            },
            "if_exists": {
                "type": "string",
                "enum": ["skip", "add"],
                "default": "skip",
                "description": "\"skip\" (default): before each POST, look the email up on its advertiser in HiEnergy and add nothing when it is already there (status existing). \"add\": send without looking."
            }
        },
        "required": ["contacts"],
        "additionalProperties": false
    });
    into_map(schema)
}

/// Every shape `add_contacts` answers with: the per-item results and their
/// totals, or, when the call as a whole was refused, only `error`. Its
/// schema is the outputSchema.
#[derive(Debug, Default, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Output {
    /// How many items ended in each status; they add up to the number of contacts.
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<Tally>,
    /// One entry per contact, in input order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_CONTACTS))]
    results: Vec<ItemResult>,
    /// true when nothing was sent: each valid item's `request` shows what would have been.
    #[serde(skip_serializing_if = "Option::is_none")]
    dry_run: Option<bool>,
    /// Present when the call as a whole was refused (isError: true): what went wrong and what to do next.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorBody>,
    /// Whether a rerun of the same list is deduplicated: the text says how
    /// to resend.
    #[serde(skip)]
    guard_enabled: bool,
}

/// How one item ended.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
struct ItemResult {
    /// The item's position in `contacts`, from 0.
    index: usize,
    /// created: a new contact. replayed: already created, no new contact. failed: see error (error.created says whether it may exist). not_sent: never sent, nothing created.
    status: Status,
    /// With created or replayed: the contact as HiEnergy returned it, including its id.
    #[serde(skip_serializing_if = "Option::is_none")]
    contact: Option<Map<String, Value>>,
    /// With failed or not_sent: what went wrong and what to do next.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorBody>,
    /// An identical earlier call ended with created "unknown" and this one was sent anyway: check HiEnergy for a duplicate.
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_attempt: Option<PreviousAttempt>,
    /// This item is identical to the item at this index, so it was not sent again and shares that item's outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    duplicate_of: Option<usize>,
    /// With dry_run: the HTTP request that would be sent, API key redacted.
    #[serde(skip_serializing_if = "Option::is_none")]
    request: Option<Preview>,
    /// true with status existing: HiEnergy already had this email on this advertiser, so nothing was added; `contact` is that contact. With dry_run: true, a real call would skip it; false, would add it.
    #[serde(skip_serializing_if = "Option::is_none")]
    existing: Option<bool>,
    /// Present when the check for an existing contact could not be made: why. The item was sent anyway (with dry_run: would be).
    #[serde(skip_serializing_if = "Option::is_none")]
    existing_check: Option<String>,
    /// true when HiEnergy did not answer the POST but a lookup afterwards found the contact: it was created.
    #[serde(skip_serializing_if = "Option::is_none")]
    confirmed_by_lookup: Option<bool>,
    /// When the item named its advertiser (advertiser, a name or domain): the HiEnergy record it went to. Tell the user which one.
    #[serde(skip_serializing_if = "Option::is_none")]
    advertiser: Option<AdvertiserRecord>,
    /// How `advertiser` was picked, for the text.
    #[serde(skip)]
    advertiser_said: Option<String>,
}

fn into_map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The arguments, checked: every item valid, invalid, or the duplicate of
/// an earlier one.
struct Batch {
    items: Vec<Item>,
    dry_run: bool,
    if_exists: IfExists,
    /// Per item, the `advertiser` it names (its own or the top-level
    /// one), until [`resolve_names`] has replaced it with a record.
    named: Vec<Option<String>>,
    /// Per item, the record its name resolved to and how.
    resolved: Vec<Option<(AdvertiserRecord, String)>>,
    /// Per item, the records its name may mean, when it named several.
    candidates: Vec<Vec<AdvertiserRecord>>,
}

enum Item {
    Valid(Contact),
    Invalid(ToolError),
    /// Identical, as the duplicate guard compares, to the valid item at
    /// this index: sent once, for both.
    Duplicate(usize),
}

/// The contact fields an item may have: add_contact's, less `dry_run`,
/// which belongs to the call.
fn is_contact_field(name: &str) -> bool {
    !matches!(name, "dry_run" | "if_exists") && contact::ALLOWED_FIELDS.contains(&name)
}

fn contact_fields() -> String {
    contact::ALLOWED_FIELDS
        .iter()
        .filter(|f| is_contact_field(f))
        .copied()
        .collect::<Vec<_>>()
        .join(", ")
}

/// "is not a field …" for the first few unknown names, a count for the
/// rest: a name can be as long as the input, so it is cut, never echoed.
fn unknown_names(
    names: &[&str],
    at: impl Fn(&str) -> String,
    first: &str,
    rest: &str,
    problems: &mut Vec<FieldProblem>,
) {
    for (i, name) in names.iter().take(MAX_UNKNOWN_NAMED).enumerate() {
        let problem = if i == 0 { first } else { rest };
        problems.push(FieldProblem::new(at(&truncate(name, 100)), problem));
    }
    if names.len() > MAX_UNKNOWN_NAMED {
        problems.push(FieldProblem::new(
            at("…"),
            format!("and {} more unknown names", names.len() - MAX_UNKNOWN_NAMED),
        ));
    }
}

impl Batch {
    fn parse(arguments: Option<&Map<String, Value>>) -> Result<Self, ToolError> {
        let empty = Map::new();
        let args = arguments.unwrap_or(&empty);
        let mut problems = Vec::new();

        let mut unknown: Vec<&str> = args
            .keys()
            .map(String::as_str)
            .filter(|k| !ARGUMENTS.contains(k) && !CLIENT_INJECTED.contains(k))
            .collect();
        unknown.sort_unstable();
        // The likeliest mistake: add_contact's arguments given to this tool.
        let (misplaced, unknown): (Vec<&str>, Vec<&str>) =
            unknown.into_iter().partition(|k| is_contact_field(k));
        for field in misplaced {
            problems.push(FieldProblem::new(
                field,
                "belongs inside each item of `contacts` (only advertiser_id may also be given here); for a single contact use add_contact",
            ));
        }
        unknown_names(
            &unknown,
            str::to_owned,
            &format!(
                "is not an argument of add_contacts; allowed: {}",
                ARGUMENTS.join(", ")
            ),
            "is not an argument of add_contacts either",
            &mut problems,
        );

        let dry_run = contact::parse_dry_run(args.get("dry_run"), &mut problems);
        let if_exists = contact::parse_if_exists(args.get("if_exists"), &mut problems);
        let given = |field| args.get(field).is_some_and(|v: &Value| !v.is_null());
        let default = if given("advertiser_id") || given("advertiser") {
            match contact::parse_advertiser(args, &mut problems) {
                (Some(id), _) => Some(json!(id)),
                (None, Some(name)) => Some(json!(name)),
                (None, None) => None,
            }
            .map(|value| {
                let field = if value.is_number() {
                    "advertiser_id"
                } else {
                    "advertiser"
                };
                (field, value)
            })
        } else {
            None
        };
        let contacts = contacts_list(args.get("contacts"), &mut problems);
        if !problems.is_empty() {
            return Err(ToolError::invalid_arguments(problems));
        }

        let mut first_of: HashMap<Box<str>, usize> = HashMap::new();
        let mut named = Vec::with_capacity(contacts.len());
        let items = contacts
            .iter()
            .enumerate()
            .map(|(index, value)| {
                let parsed = parse_item(index, value, default.as_ref());
                named.push(parsed.as_ref().ok().and_then(|a| a.advertiser.clone()));
                match parsed {
                    // Before resolution, a named item's key holds its name.
                    Ok(args) => match first_of.entry(item_key(&args)) {
                        Entry::Occupied(first) => Item::Duplicate(*first.get()),
                        Entry::Vacant(slot) => {
                            slot.insert(index);
                            Item::Valid(args.contact)
                        }
                    },
                    Err(error) => Item::Invalid(error),
                }
            })
            .collect();
        Ok(Self {
            items,
            dry_run,
            if_exists,
            named,
            resolved: vec![None; contacts.len()],
            candidates: vec![Vec::new(); contacts.len()],
        })
    }
}

/// The `contacts` array, or a problem with it. A list sent as a string
/// holding JSON (as some clients send nested arguments) is read as such.
fn contacts_list(value: Option<&Value>, problems: &mut Vec<FieldProblem>) -> Vec<Value> {
    const FIELD: &str = "contacts";
    let parsed;
    let list = match value {
        Some(Value::Array(list)) => list,
        Some(Value::String(text)) if text.trim_start().starts_with('[') => {
            parsed = serde_json::from_str::<Value>(text).ok();
            match &parsed {
                Some(Value::Array(list)) => list,
                _ => {
                    problems.push(FieldProblem::new(
                        FIELD,
                        "must be an array of contacts; the string given is not a JSON array",
                    ));
                    return Vec::new();
                }
            }
        }
        None | Some(Value::Null) => {
            problems.push(FieldProblem::new(
                FIELD,
                format!("is required: an array of 1 to {MAX_CONTACTS} contacts, e.g. [{{\"email\": \"jane.doe@example.com\", \"advertiser_id\": 42}}]"),
            ));
            return Vec::new();
        }
        Some(other) => {
            problems.push(FieldProblem::new(
                FIELD,
                format!(
                    "must be an array of contacts, got {}",
                    contact::describe(Some(other))
                ),
            ));
            return Vec::new();
        }
    };
    if list.is_empty() {
        problems.push(FieldProblem::new(
            FIELD,
            "is empty: give at least one contact",
        ));
    } else if list.len() > MAX_CONTACTS {
        problems.push(FieldProblem::new(
            FIELD,
            format!(
                "has {} contacts; at most {MAX_CONTACTS} per call: send the list in parts",
                list.len()
            ),
        ));
    } else {
        return list.clone();
    }
    Vec::new()
}

/// What makes two items one contact before their advertisers are
/// resolved: the duplicate guard's key, and the name an item gives.
fn item_key(args: &AddContactArgs) -> Box<str> {
    let key = dedupe::key(&args.contact);
    match &args.advertiser {
        None => key,
        Some(name) => format!("{key}\u{0}{}", name.to_lowercase()).into(),
    }
}

/// One item, checked by add_contact's own rules; its problems are named
/// with its index (`contacts[3].email`). `default` is the top-level
/// advertiser_id or advertiser, for an item that gives neither.
fn parse_item(
    index: usize,
    value: &Value,
    default: Option<&(&str, Value)>,
) -> Result<AddContactArgs, ToolError> {
    let at = |field: &str| format!("contacts[{index}].{field}");
    let Value::Object(fields) = value else {
        return Err(ToolError::invalid_arguments(vec![FieldProblem::new(
            format!("contacts[{index}]"),
            format!(
                "must be an object with a contact's fields, got {}",
                contact::describe(Some(value))
            ),
        )]));
    };
    let mut problems = Vec::new();
    let mut unknown: Vec<&str> = fields
        .keys()
        .map(String::as_str)
        .filter(|k| !is_contact_field(k))
        .collect();
    unknown.sort_unstable();
    unknown_names(
        &unknown,
        at,
        &format!("is not a field of a contact; allowed: {}", contact_fields()),
        "is not a field of a contact either",
        &mut problems,
    );
    let mut known: Map<String, Value> = fields
        .iter()
        .filter(|(k, _)| is_contact_field(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let own = |field: &str| known.get(field).is_some_and(|v| !v.is_null());
    if let Some((field, value)) = default
        && !own("advertiser_id")
        && !own("advertiser")
    {
        known.insert((*field).into(), value.clone());
    }
    match AddContactArgs::parse(Some(&known)) {
        Ok(args) if problems.is_empty() => Ok(args),
        Ok(_) => Err(ToolError::invalid_arguments(problems)),
        Err(error) => {
            problems.extend(
                error
                    .fields
                    .into_iter()
                    .map(|p| FieldProblem::new(at(&p.field), p.problem)),
            );
            Err(ToolError::invalid_arguments(problems))
        }
    }
}

/// One `add_contacts` call, from raw arguments to the result the agent
/// sees. Never fails: every problem is a structured result.
pub async fn call(
    backend: &Backend,
    arguments: Option<&Map<String, Value>>,
    context: &CallContext,
) -> CallToolResult {
    let mut batch = match Batch::parse(arguments) {
        Ok(batch) => batch,
        Err(error) => return error.into_result(),
    };
    if let Some(error) = super::unusable(&backend.config) {
        return error.into_result();
    }
    resolve_names(backend, &mut batch, context).await;
    // 2026-07-28: the user is asked between two rounds of this call, and
    // no item goes out before the retry brings the answers.
    if context
        .asker
        .as_ref()
        .is_some_and(crate::elicit::Asker::waiting)
    {
        return CallToolResult::success(Vec::new());
    }
    if batch.dry_run {
        return dry_run_result(backend, &batch, context).await;
    }
    let Some(api_key) = backend.config.api_key() else {
        return ToolError::not_configured().into_result();
    };
    let sent = send_all(backend, api_key, &batch, context).await;
    // Only a rate limit, a cancellation or the shutdown leaves an item
    // unstarted; the rate limit is told apart in `outcomes`.
    let stopped_by = send::stopped_by(&context.cancelled, &backend.shutdown)
        .unwrap_or("the server is shutting down");
    let outcomes = outcomes(&batch, sent, stopped_by);
    result(backend, &outcomes)
}

/// Sends every valid item, at most `--batch-concurrency` at a time, and
/// returns how each one that started ended, by index. Nothing new starts
/// once the call is cancelled, the server stops, HiEnergy answers 429, or
/// the rate-limit budget is spent for longer than the server waits; items
/// already sending finish (see [`super::send`]).
async fn send_all(
    backend: &Backend,
    api_key: &str,
    batch: &Batch,
    context: &CallContext,
) -> Vec<Option<(Sent, Checked)>> {
    let total = batch.items.len();
    let mut copies = vec![0usize; total];
    for item in &batch.items {
        if let Item::Duplicate(first) = item
            && let Some(n) = copies.get_mut(*first)
        {
            *n += 1;
        }
    }
    let mut done = batch
        .items
        .iter()
        .filter(|i| matches!(i, Item::Invalid(_)))
        .count();
    let pacing = Pacing {
        budget: backend.api.budget(),
        max_wait: backend.config.max_retry_wait,
    };
    let cancelled = &context.cancelled;
    let stopping = || cancelled.is_cancelled() || backend.shutdown.is_cancelled();
    let mut sent: Vec<Option<(Sent, Checked)>> = (0..total).map(|_| None).collect();
    let mut queue = batch
        .items
        .iter()
        .enumerate()
        .filter_map(|(index, item)| match item {
            Item::Valid(contact) => Some((index, contact)),
            _ => None,
        });
    let mut running = FuturesUnordered::new();
    // A 429, or a 401 (every item would be refused the same way).
    let mut refused = false;
    loop {
        while running.len() < backend.config.batch_concurrency.max(1) && !refused && !stopping() {
            let Some((index, contact)) = queue.next() else {
                break;
            };
            let pacing = &pacing;
            running.push(async move {
                let sent = send::guarded(
                    backend,
                    api_key,
                    contact,
                    batch.if_exists,
                    cancelled,
                    Some(pacing),
                )
                .await;
                (index, sent)
            });
        }
        let Some((index, outcome)) = running.next().await else {
            break;
        };
        if let (Sent::NotSent(error) | Sent::Failed { error, .. }, _) = &outcome
            && matches!(error.kind, ErrorKind::RateLimited | ErrorKind::Unauthorized)
        {
            refused = true;
        }
        done += 1 + copies.get(index).copied().unwrap_or(0);
        let status = Status::of(&outcome.0).as_str();
        if let Some(slot) = sent.get_mut(index) {
            *slot = Some(outcome);
        }
        // Awaited, so that every notification is written before the
        // result: none may follow it. A cancelled call wants no more.
        if let Some(progress) = &context.progress
            && !stopping()
        {
            progress
                .report(
                    done,
                    total,
                    format!("{done}/{total}: item {index} {status}"),
                )
                .await;
        }
    }
    sent
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Status {
    Created,
    Replayed,
    Existing,
    Failed,
    NotSent,
}

impl Status {
    /// An item never sent: not_sent when the user did not choose its
    /// advertiser (nothing is wrong with it), failed otherwise.
    fn unsent(error: &ToolError) -> Self {
        match error.kind {
            ErrorKind::NotChosen | ErrorKind::ChoiceTimeout => Status::NotSent,
            _ => Status::Failed,
        }
    }

    fn of(sent: &Sent) -> Self {
        match sent {
            Sent::Created {
                replayed: false, ..
            } => Status::Created,
            Sent::Created { replayed: true, .. } => Status::Replayed,
            Sent::Failed { .. } => Status::Failed,
            Sent::NotSent(_) => Status::NotSent,
            Sent::Existing(_) => Status::Existing,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Replayed => "replayed",
            Status::Existing => "existing",
            Status::Failed => "failed",
            Status::NotSent => "not_sent",
        }
    }
}

/// How one item ended, as the result shows it.
struct Outcome {
    status: Status,
    contact: Option<Map<String, Value>>,
    error: Option<ToolError>,
    previous_unknown: bool,
    duplicate_of: Option<usize>,
    /// With dry_run: the request that would be sent.
    request: Option<Preview>,
    /// With dry_run: whether a real call would skip (true) or add (false).
    would_exist: Option<bool>,
    checked: Checked,
    /// The record the item's `advertiser` resolved to, and how.
    advertiser: Option<(AdvertiserRecord, String)>,
    /// The records its `advertiser` may mean (advertiser_ambiguous).
    candidates: Vec<AdvertiserRecord>,
}

impl Outcome {
    fn new(status: Status) -> Self {
        Self {
            status,
            contact: None,
            error: None,
            previous_unknown: false,
            duplicate_of: None,
            request: None,
            would_exist: None,
            checked: Checked::default(),
            advertiser: None,
            candidates: Vec::new(),
        }
    }

    fn failed(status: Status, error: ToolError) -> Self {
        Self {
            error: Some(error),
            ..Self::new(status)
        }
    }

    fn from_sent((sent, checked): &(Sent, Checked)) -> Self {
        let status = Status::of(sent);
        let checked = checked.clone();
        match sent {
            Sent::Created {
                contact,
                previous_unknown,
                ..
            } => Self {
                contact: Some(contact.clone()),
                previous_unknown: *previous_unknown,
                checked,
                ..Self::new(status)
            },
            Sent::Failed {
                error,
                previous_unknown,
            } => Self {
                previous_unknown: *previous_unknown,
                checked,
                ..Self::failed(status, error.clone())
            },
            Sent::NotSent(error) => Self::failed(status, error.clone()),
            Sent::Existing(contact) => Self {
                contact: Some(contact.clone()),
                ..Self::new(status)
            },
        }
    }

    /// The same outcome for an identical item later in the list, which
    /// made no request of its own.
    fn for_duplicate(&self, first: usize) -> Self {
        let status = match self.status {
            Status::Created | Status::Replayed => Status::Replayed,
            other => other,
        };
        Self {
            contact: self.contact.clone(),
            error: self.error.clone(),
            duplicate_of: Some(first),
            would_exist: self.would_exist,
            ..Self::new(status)
        }
    }

    fn item(&self, index: usize) -> ItemResult {
        ItemResult {
            index,
            status: self.status,
            contact: self.contact.clone(),
            error: self.error.as_ref().map(|e| ErrorBody {
                candidates: self.candidates.clone(),
                ..e.body()
            }),
            previous_attempt: PreviousAttempt::from_flag(self.previous_unknown),
            duplicate_of: self.duplicate_of,
            request: self.request.clone(),
            existing: self
                .would_exist
                .or((self.status == Status::Existing).then_some(true)),
            existing_check: self.checked.existing_check.clone(),
            confirmed_by_lookup: self.checked.confirmed_by_lookup.then_some(true),
            advertiser: self.advertiser.as_ref().map(|(record, _)| record.clone()),
            advertiser_said: self.advertiser.as_ref().map(|(_, said)| said.clone()),
        }
    }
}

/// Every item's outcome, in input order. An item that never started is
/// not_sent, saying why: the rate limit, or else what stopped the call.
fn outcomes(batch: &Batch, sent: Vec<Option<(Sent, Checked)>>, stopped_by: &str) -> Vec<Outcome> {
    let rate_limited = sent.iter().flatten().find_map(|(s, _)| match s {
        Sent::NotSent(error) if error.kind == ErrorKind::RateLimited => Some(error.clone()),
        Sent::Failed { error, .. } if error.kind == ErrorKind::RateLimited => {
            Some(send::stopped_by_rate_limit(error))
        }
        Sent::NotSent(error) | Sent::Failed { error, .. }
            if error.kind == ErrorKind::Unauthorized =>
        {
            Some(send::stopped_by_unauthorized())
        }
        _ => None,
    });
    let never_started = || {
        rate_limited
            .clone()
            .unwrap_or_else(|| send::not_started(stopped_by))
    };
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(batch.items.len());
    for (item, sent) in batch.items.iter().zip(&sent) {
        let outcome = match (item, sent) {
            (Item::Invalid(error), _) => Outcome::failed(Status::unsent(error), error.clone()),
            (Item::Valid(_), Some(sent)) => Outcome::from_sent(sent),
            (Item::Valid(_), None) => Outcome::failed(Status::NotSent, never_started()),
            (Item::Duplicate(first), _) => match outcomes.get(*first) {
                Some(original) => original.for_duplicate(*first),
                None => Outcome::failed(Status::NotSent, never_started()),
            },
        };
        outcomes.push(outcome);
    }
    with_advertisers(batch, outcomes)
}

/// Each item's outcome names the record its `advertiser` resolved to.
fn with_advertisers(batch: &Batch, mut outcomes: Vec<Outcome>) -> Vec<Outcome> {
    for ((outcome, resolved), candidates) in outcomes
        .iter_mut()
        .zip(&batch.resolved)
        .zip(&batch.candidates)
    {
        outcome.advertiser.clone_from(resolved);
        outcome.candidates.clone_from(candidates);
    }
    outcomes
}

#[derive(Debug, Default, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
struct Tally {
    /// Contacts HiEnergy created in this call.
    created: usize,
    /// Items an identical earlier call, or an identical item earlier in this list, had already created: no new contact.
    replayed: usize,
    /// Items HiEnergy already had (the same email on the same advertiser): nothing was added. Absent when none.
    #[serde(skip_serializing_if = "is_zero")]
    existing: usize,
    /// Items that were invalid or that HiEnergy did not create; see each item's error.
    failed: usize,
    /// Items never sent (rate limit, cancellation, or dry_run): nothing was created.
    not_sent: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Tally {
    fn of(results: &[ItemResult]) -> Self {
        let mut tally = Self::default();
        for item in results {
            match item.status {
                Status::Created => tally.created += 1,
                Status::Replayed => tally.replayed += 1,
                Status::Existing => tally.existing += 1,
                Status::Failed => tally.failed += 1,
                Status::NotSent => tally.not_sent += 1,
            }
        }
        tally
    }
}

impl Output {
    fn of(outcomes: &[Outcome], dry_run: bool, guard_enabled: bool) -> Self {
        let results: Vec<ItemResult> = outcomes
            .iter()
            .enumerate()
            .map(|(i, o)| o.item(i))
            .collect();
        Self {
            summary: Some(Tally::of(&results)),
            results,
            dry_run: dry_run.then_some(true),
            error: None,
            guard_enabled,
        }
    }
}

impl Reply for Output {
    /// The totals, the failures grouped by kind, one line per item, and
    /// each distinct hint once.
    fn text(&self) -> String {
        if let Some(error) = &self.error {
            return error.text();
        }
        let mut text = if self.dry_run == Some(true) {
            self.dry_run_head()
        } else {
            self.summary_head()
        };
        let mut hints: Vec<(ErrorKind, &str)> = Vec::new();
        for item in &self.results {
            text.push('\n');
            text.push_str(&item.line());
            if let Some(error) = &item.error
                && !hints.contains(&(error.kind, error.hint.as_str()))
            {
                hints.push((error.kind, &error.hint));
            }
        }
        for (kind, hint) in hints {
            text.push_str(&format!("\nHint ({}): {hint}", kind.as_str()));
        }
        text
    }

    fn is_error(&self) -> bool {
        match (&self.error, &self.summary) {
            (Some(_), _) | (None, None) => true,
            // A dry run fails when no item would be sent.
            (None, Some(_)) if self.dry_run == Some(true) => {
                !self.results.iter().any(|i| i.request.is_some())
            }
            (None, Some(tally)) => tally.created + tally.replayed + tally.existing == 0,
        }
    }
}

impl ItemResult {
    /// "contacts[5]: failed: rejected (created: no, …): message …": every
    /// fact of the item but its hint, on one line.
    fn line(&self) -> String {
        let mut line = format!("contacts[{}]: {}", self.index, self.status.as_str());
        if let Some(contact) = &self.contact {
            line.push_str(&format!(", contact{}", outcome::contact_label(contact)));
        }
        if let Some(first) = self.duplicate_of {
            line.push_str(&format!(", same as contacts[{first}]"));
        }
        let dry = self.request.is_some();
        if dry && self.existing != Some(true) {
            line.push_str(", would be sent");
        }
        if let Some(said) = &self.advertiser_said {
            line.push_str(", to ");
            line.push_str(said);
        }
        if let Some(error) = &self.error {
            line.push_str(": ");
            line.push_str(&error.line());
        }
        let checked = outcome::check_sentence(
            self.contact.as_ref(),
            self.existing,
            self.existing_check.as_deref(),
            self.confirmed_by_lookup == Some(true),
            dry,
        );
        if !checked.is_empty() {
            line.push_str("; ");
            line.push_str(&checked);
        }
        if self.previous_attempt.is_some() {
            line.push_str("; ");
            line.push_str(PreviousAttempt::TEXT);
        }
        line
    }
}

impl Output {
    /// The totals, which items failed or were not sent by kind, and what
    /// to do about them.
    fn summary_head(&self) -> String {
        let mut text = format!("Of {}.", self.counts());
        for (status, lead) in [(Status::Failed, "Failed"), (Status::NotSent, "Not sent")] {
            let groups = by_kind(&self.results, status);
            if !groups.is_empty() {
                text.push_str(&format!(" {lead}: {}.", groups.join("; ")));
            }
        }
        let unknown: Vec<usize> = indexes(&self.results, |i| {
            i.error
                .as_ref()
                .is_some_and(|e| e.created == Created::Unknown)
        });
        if !unknown.is_empty() {
            text.push_str(&format!(
                " {} may have been created anyway (created \"unknown\"): check HiEnergy before sending {} again.",
                items(&unknown),
                if unknown.len() == 1 { "it" } else { "them" }
            ));
        }
        if self
            .summary
            .as_ref()
            .is_some_and(|t| t.failed + t.not_sent > 0)
        {
            text.push_str(if self.guard_enabled {
                " Fix what the errors name and send the same list again: items already created come back replayed, not created twice."
            } else {
                " Send again only the items that were not created: this server does not deduplicate calls (--dedupe-window 0)."
            });
        }
        text
    }

    /// "3 contacts: 1 created, 0 replayed (…), 1 failed, 1 not_sent".
    fn counts(&self) -> String {
        let tally = self.summary.as_ref();
        let count = |pick: fn(&Tally) -> usize| tally.map(pick).unwrap_or_default();
        format!(
            "{} contacts: {} created, {} replayed (already created: no new contact), {} existing (already in HiEnergy: nothing added), {} failed, {} not_sent",
            self.results.len(),
            count(|t| t.created),
            count(|t| t.replayed),
            count(|t| t.existing),
            count(|t| t.failed),
            count(|t| t.not_sent),
        )
    }

    fn dry_run_head(&self) -> String {
        let requests: Vec<&Preview> = self
            .results
            .iter()
            .filter(|i| i.existing != Some(true))
            .filter_map(|i| i.request.as_ref())
            .collect();
        let mut text = format!(
            "Dry run: nothing was sent ({}). {} would be sent",
            self.counts(),
            requests.len(),
        );
        if let Some(request) = requests.first() {
            text.push_str(&format!(
                ", each as {} {} (see each item's request)",
                request.method, request.url
            ));
        }
        text.push('.');
        let duplicates = indexes(&self.results, |i| i.duplicate_of.is_some());
        if !duplicates.is_empty() {
            text.push_str(&format!(
                " {} repeat an earlier item and would not be sent again.",
                items(&duplicates)
            ));
        }
        let groups = by_kind(&self.results, Status::Failed);
        if !groups.is_empty() {
            text.push_str(&format!(" Invalid: {}.", groups.join("; ")));
        }
        match requests.first() {
            Some(request) if request.has_key => {
                text.push_str(" The API key is configured (redacted here).")
            }
            Some(_) => text.push_str(
                " No API key is configured yet, so a real call would fail with not_configured.",
            ),
            None => {}
        }
        text
    }
}

fn result(backend: &Backend, outcomes: &[Outcome]) -> CallToolResult {
    let output = Output::of(outcomes, false, backend.guard.enabled());
    if let Some(tally) = &output.summary {
        tracing::info!(
            contacts = outcomes.len(),
            created = tally.created,
            replayed = tally.replayed,
            existing = tally.existing,
            failed = tally.failed,
            not_sent = tally.not_sent,
            "add_contacts finished"
        );
    }
    output.into_result()
}

/// "rejected (item 5); invalid_arguments (items 3, 7)": the items of one
/// status grouped by error kind, in order of first appearance.
fn by_kind(results: &[ItemResult], status: Status) -> Vec<String> {
    let mut kinds: Vec<(ErrorKind, Vec<usize>)> = Vec::new();
    for item in results {
        if item.status != status {
            continue;
        }
        let Some(kind) = item.error.as_ref().map(|e| e.kind) else {
            continue;
        };
        match kinds.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, list)) => list.push(item.index),
            None => kinds.push((kind, vec![item.index])),
        }
    }
    kinds
        .into_iter()
        .map(|(kind, list)| format!("{} ({})", kind.as_str(), items(&list)))
        .collect()
}

fn indexes(results: &[ItemResult], pick: impl Fn(&ItemResult) -> bool) -> Vec<usize> {
    results
        .iter()
        .filter(|i| pick(i))
        .map(|i| i.index)
        .collect()
}

/// "item 4", "items 3, 5–9, 12": runs of consecutive indexes as ranges,
/// so that the text stays short whatever the list.
fn items(list: &[usize]) -> String {
    let mut runs: Vec<String> = Vec::new();
    let mut i = 0;
    while let Some(&start) = list.get(i) {
        let mut end = start;
        while list.get(i + 1) == Some(&(end + 1)) {
            end += 1;
            i += 1;
        }
        runs.push(if end == start {
            start.to_string()
        } else {
            format!("{start}–{end}")
        });
        i += 1;
    }
    let noun = if list.len() == 1 { "item" } else { "items" };
    format!("{noun} {}", runs.join(", "))
}

/// What a real call would do with one item: only a valid one is looked up.
async fn would(
    backend: &Backend,
    api_key: &str,
    item: &Item,
    cancelled: &tokio_util::sync::CancellationToken,
) -> Option<Result<Would, ToolError>> {
    match item {
        Item::Valid(contact) => Some(send::would_exist(backend, api_key, contact, cancelled).await),
        _ => None,
    }
}

/// The requests a real call would send; with a key (and `if_exists:
/// "skip"`), each valid item looked up first, read-only, as many at once as
/// a real call sends.
async fn dry_run_result(backend: &Backend, batch: &Batch, context: &CallContext) -> CallToolResult {
    let api_key = backend.config.api_key();
    let checks: Vec<Option<Result<Would, ToolError>>> = match api_key {
        Some(api_key) if batch.if_exists == IfExists::Skip => {
            let mut checks = Vec::with_capacity(batch.items.len());
            // A few at a time, as a real call sends: a dry run is rare
            // enough that a chunk waits for its slowest.
            for chunk in batch.items.chunks(backend.config.batch_concurrency.max(1)) {
                let looks = chunk
                    .iter()
                    .map(|item| would(backend, api_key, item, &context.cancelled));
                checks.extend(futures_util::future::join_all(looks).await);
            }
            checks
        }
        _ => batch.items.iter().map(|_| None).collect(),
    };
    if let Some(Some(Err(error))) = checks
        .iter()
        .find(|c| matches!(c, Some(Err(e)) if e.kind == ErrorKind::Unauthorized))
    {
        return error.clone().into_result();
    }
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(batch.items.len());
    for (item, check) in batch.items.iter().zip(checks) {
        let outcome = match item {
            Item::Valid(contact) => {
                let mut outcome = Outcome {
                    request: Some(backend.api.preview(contact, api_key.is_some())),
                    ..Outcome::new(Status::NotSent)
                };
                match check {
                    Some(Ok(Would::Skip(existing))) => {
                        outcome.would_exist = Some(true);
                        outcome.contact = Some(existing);
                    }
                    Some(Ok(Would::Add)) => outcome.would_exist = Some(false),
                    Some(Ok(Would::Unchecked(why))) => outcome.checked.existing_check = Some(why),
                    Some(Err(error)) => outcome.checked.existing_check = Some(error.message),
                    None => {}
                }
                outcome
            }
            Item::Invalid(error) => Outcome::failed(Status::unsent(error), error.clone()),
            Item::Duplicate(first) => Outcome {
                duplicate_of: Some(*first),
                ..Outcome::new(Status::NotSent)
            },
        };
        outcomes.push(outcome);
    }
    let outcomes = with_advertisers(batch, outcomes);
    Output::of(&outcomes, true, backend.guard.enabled()).into_result()
}

/// Resolves every distinct `advertiser` name of the list once, in the
/// order the names first appear, before anything is sent: one question per
/// name however many items use it. An item whose name does not resolve
/// becomes that error (not_sent when the user did not choose), and is
/// never sent.
async fn resolve_names(backend: &Backend, batch: &mut Batch, context: &CallContext) {
    let mut names: Vec<(String, Vec<usize>)> = Vec::new();
    for (index, name) in batch.named.iter().enumerate() {
        let Some(name) = name else { continue };
        let key = name.to_lowercase();
        match names.iter_mut().find(|(k, _)| *k == key) {
            Some((_, users)) => users.push(index),
            None => names.push((key, vec![index])),
        }
    }
    for (_, users) in names {
        let Some(query) = users
            .first()
            .and_then(|i| batch.named.get(*i))
            .cloned()
            .flatten()
        else {
            continue;
        };
        let about = about_items(batch, &users);
        let answer = match send::stopped_by(&context.cancelled, &backend.shutdown) {
            Some(why) => Err(send::not_started(why).into()),
            None => super::add_contact::resolve_named(backend, &query, context, &about).await,
        };
        for index in users {
            apply(batch, index, &query, &answer);
        }
    }
}

/// The contacts one question is about: "Jane Doe <jane@x.com>", or "3
/// contacts (jane@x.com, bob@x.com, and 1 more)".
fn about_items(batch: &Batch, users: &[usize]) -> String {
    let contacts: Vec<&Contact> = users
        .iter()
        .filter_map(|i| match batch.items.get(*i) {
            Some(Item::Valid(contact)) => Some(contact),
            _ => None,
        })
        .collect();
    match contacts.as_slice() {
        [one] => resolve::about(one),
        many => {
            let shown: Vec<&str> = many.iter().take(3).map(|c| c.email.as_str()).collect();
            let more = match many.len().saturating_sub(3) {
                0 => String::new(),
                n => format!(", and {n} more"),
            };
            format!("{} contacts ({}{more})", many.len(), shown.join(", "))
        }
    }
}

fn apply(batch: &mut Batch, index: usize, query: &str, answer: &Result<Resolved, Box<Unresolved>>) {
    let Some(item) = batch.items.get_mut(index) else {
        return;
    };
    match answer {
        Ok(resolved) => {
            if let Item::Valid(contact) = item {
                contact.advertiser_id = resolved.record.id;
            }
            if let Some(slot) = batch.resolved.get_mut(index) {
                *slot = Some((resolved.record.clone(), resolved.sentence(query)));
            }
        }
        Err(unresolved) => {
            if let Item::Valid(_) = item {
                *item = Item::Invalid(unresolved.error.clone());
            }
            if let Some(slot) = batch.candidates.get_mut(index) {
                slot.clone_from(&unresolved.candidates);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: Value) -> Result<Batch, ToolError> {
        match value {
            Value::Object(map) => Batch::parse(Some(&map)),
            _ => Batch::parse(None),
        }
    }

    fn fields(error: &ToolError) -> Vec<&str> {
        error.fields.iter().map(|f| f.field.as_str()).collect()
    }

    #[test]
    fn item_problems_are_named_with_their_index() {
        let batch = parse(json!({"advertiser_id": 42, "contacts": [
            {"email": "a@example.com"},
            {"email": "nope", "nickname": "x", "dry_run": true},
            "jane@example.com",
            {"email": "b@example.com", "advertiser_id": 0},
        ]}));
        let batch = batch.unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(&batch.items[0], Item::Valid(c) if c.advertiser_id == 42));
        let Item::Invalid(error) = &batch.items[1] else {
            panic!("item 1 should be invalid")
        };
        assert_eq!(
            fields(error),
            [
                "contacts[1].dry_run",
                "contacts[1].nickname",
                "contacts[1].email"
            ]
        );
        assert!(
            error.message.contains("contacts[1].email"),
            "{}",
            error.message
        );
        let Item::Invalid(error) = &batch.items[2] else {
            panic!("item 2 should be invalid")
        };
        assert_eq!(fields(error), ["contacts[2]"]);
        // An item's own advertiser_id wins, and is checked as add_contact checks it.
        let Item::Invalid(error) = &batch.items[3] else {
            panic!("item 3 should be invalid")
        };
        assert_eq!(fields(error), ["contacts[3].advertiser_id"]);
    }

    #[test]
    fn an_item_without_an_advertiser_needs_the_top_level_one() {
        let batch = parse(json!({"contacts": [{"email": "a@example.com"}]}))
            .unwrap_or_else(|e| panic!("{e}"));
        let Item::Invalid(error) = &batch.items[0] else {
            panic!("should be invalid")
        };
        assert_eq!(fields(error), ["contacts[0].advertiser_id"]);
    }

    #[test]
    fn the_list_itself_must_be_1_to_100_contacts() {
        let contact = json!({"advertiser_id": 1, "email": "a@example.com"});
        for (contacts, says) in [
            (json!([]), "is empty"),
            (
                json!(vec![contact.clone(); MAX_CONTACTS + 1]),
                "at most 100",
            ),
            (json!({"email": "a@example.com"}), "must be an array"),
            (Value::Null, "is required"),
            (json!("[1,"), "not a JSON array"),
        ] {
            let error = match parse(json!({"contacts": contacts})) {
                Err(error) => error,
                Ok(_) => panic!("{says}: accepted"),
            };
            assert_eq!(error.kind, ErrorKind::InvalidArguments);
            assert_eq!(fields(&error), ["contacts"], "{says}");
            assert!(error.fields[0].problem.contains(says), "{:?}", error.fields);
        }
        assert!(parse(json!({"contacts": vec![contact.clone(); MAX_CONTACTS]})).is_ok());
        // A list sent as a JSON string is read as the list.
        let text = json!([contact]).to_string();
        let batch = parse(json!({"contacts": text})).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(&batch.items[..], [Item::Valid(_)]));
    }

    #[test]
    fn add_contact_arguments_at_the_top_level_are_pointed_inside() {
        let error = match parse(json!({"email": "a@example.com", "advertiser_id": 1, "bogus": 1})) {
            Err(error) => error,
            Ok(_) => panic!("accepted"),
        };
        assert_eq!(fields(&error), ["email", "bogus", "contacts"]);
        assert!(error.fields[0].problem.contains("inside each item"));
        let error = match parse(json!({"contacts": [], "advertiser_id": "x", "dry_run": 3})) {
            Err(error) => error,
            Ok(_) => panic!("accepted"),
        };
        assert_eq!(fields(&error), ["dry_run", "advertiser_id", "contacts"]);
    }

    #[test]
    fn unknown_names_are_bounded() {
        let mut item = Map::new();
        item.insert("email".into(), json!("a@example.com"));
        item.insert("advertiser_id".into(), json!(1));
        for i in 0..1000 {
            item.insert(format!("{}{i}", "k".repeat(500)), json!(1));
        }
        let batch = parse(json!({"contacts": [item]})).unwrap_or_else(|e| panic!("{e}"));
        let Item::Invalid(error) = &batch.items[0] else {
            panic!("should be invalid")
        };
        assert_eq!(error.fields.len(), MAX_UNKNOWN_NAMED + 1);
        assert!(error.to_json().to_string().len() < 10_000);
    }

    #[test]
    fn identical_items_are_one_contact() {
        let batch = parse(json!({"advertiser_id": 7, "contacts": [
            {"email": "a@example.com"},
            {"email": " A@EXAMPLE.COM ", "advertiser_id": "7", "name": ""},
            {"email": "a@example.com", "name": "A"},
        ]}))
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(batch.items[0], Item::Valid(_)));
        assert!(matches!(batch.items[1], Item::Duplicate(0)));
        assert!(matches!(batch.items[2], Item::Valid(_)));
    }

    #[test]
    fn a_refused_list_speaks_of_no_single_contact() {
        let Err(error) = parse(json!({"contacts": []})) else {
            panic!("accepted")
        };
        let result = error.into_result();
        let text = result.content[0].as_text().map(|t| t.text.clone());
        let text = text.unwrap_or_default();
        assert!(text.contains("created: no"), "{text}");
        assert!(!text.contains("The contact"), "{text}");
    }

    #[test]
    fn index_lists_read_as_ranges() {
        assert_eq!(items(&[4]), "item 4");
        assert_eq!(items(&[3, 5, 6, 7, 8, 9, 12]), "items 3, 5–9, 12");
        assert_eq!(items(&[0, 1]), "items 0–1");
    }

    #[test]
    fn the_input_schema_derives_from_the_contact() {
        let schema = Value::Object(input_schema());
        let item = &schema["properties"]["contacts"]["items"];
        assert_eq!(item["required"], json!(["email"]));
        assert_eq!(item["additionalProperties"], false);
        assert_eq!(schema["properties"]["contacts"]["maxItems"], MAX_CONTACTS);
        assert_eq!(schema["properties"]["advertiser_id"]["type"], "integer");
        assert_eq!(schema["properties"]["advertiser_id"]["minimum"], 1);
        let Some(Value::Object(properties)) = item.get("properties") else {
            panic!("no item properties")
        };
        let mut names: Vec<&str> = properties.keys().map(String::as_str).collect();
        names.sort_unstable();
        let mut expected: Vec<&str> = contact::ALLOWED_FIELDS
            .iter()
            .copied()
            .filter(|f| is_contact_field(f))
            .collect();
        expected.sort_unstable();
        assert_eq!(names, expected);
    }
}
