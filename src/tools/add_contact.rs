//! `add_contact`: one contact, one POST, one result.

use super::send::{self, Sent, Would};
use super::{Backend, CallContext};
use crate::contact::{AddContactArgs, IfExists};
use crate::hienergy::Preview;
use crate::outcome::{
    self, AdvertiserRecord, Created, ErrorBody, ErrorKind, PreviousAttempt, Reply, ToolError,
};
use crate::resolve::{self, Resolved, Unresolved};
use crate::schema;
use rmcp::model::{CallToolResult, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

pub const NAME: &str = "add_contact";
pub const TITLE: &str = "Add HiEnergy contact";

pub const DESCRIPTION: &str = "\
Add a contact (a person who works for an advertiser) to HiEnergy, the affiliate-marketing CRM. \
Required: the contact's email, and either advertiser_id (the numeric id of an existing HiEnergy advertiser, e.g. from search_advertisers) \
or advertiser (the brand's name, domain or URL; never both); every other field is optional. \
By name, a record is used only when exactly one matches exactly, and the result names it (advertiser); when several fit, the server asks the user to choose (clients with elicitation) \
or fails with advertiser_ambiguous and error.candidates: show them to the user and call again with the advertiser_id they pick; never pick one yourself. \
not_chosen means the user chose nothing: do not retry on your own. search_contacts shows the user who is already there, when they ask. \
This writes to a live CRM: call it once per contact; for two or more contacts, call add_contacts once with the whole list instead. \
Before sending it looks the email up on that advertiser (if_exists: \"skip\", the default): if HiEnergy already has it, nothing is added and the result is a success with existing: true and the existing contact's id; if_exists: \"add\" sends without looking. \
If that look cannot be made, the contact is sent anyway and existing_check says why. After a timeout or 5xx the server looks again: found, the result is the contact with confirmed_by_lookup: true. \
An identical call that already succeeded is not sent again: it returns the first result with replayed: true (no new contact). \
Set dry_run: true to preview the exact request without sending it; with an API key it also says whether a real call would add it or skip it as existing. \
On failure the result carries error.kind, error.hint (what to do next) and error.created: \
\"no\" means nothing was created, so fix and retry; \
\"unknown\" means the contact may exist, so check HiEnergy before retrying.";

pub fn tool() -> Tool {
    Tool::new(NAME, DESCRIPTION, schema::input_schema())
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

/// Every shape `add_contact` answers with: a created or replayed contact,
/// a dry-run preview, or an error. Its schema is the outputSchema.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Output {
    /// On success: the contact as HiEnergy returned it (its `data` member), including its id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<Map<String, Value>>,
    /// true when this is the result of an identical earlier call in this session: no new contact was created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replayed: Option<bool>,
    /// Present when an identical earlier call ended with created "unknown": check HiEnergy for a duplicate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_attempt: Option<PreviousAttempt>,
    /// true when nothing was sent: `request` shows what would have been.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    /// With dry_run: the HTTP request that would be sent, API key redacted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<Preview>,
    /// true: HiEnergy already had a contact with this email on this advertiser, so nothing was added; `contact` is that contact. With dry_run, false: the check found none, so a real call would add it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing: Option<bool>,
    /// Present when the check for an existing contact could not be made: why. The contact was sent anyway (with dry_run: would be).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing_check: Option<String>,
    /// true when HiEnergy did not answer the POST but a lookup afterwards found the contact: it was created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmed_by_lookup: Option<bool>,
    /// Present when the call failed (isError: true): what went wrong and what to do next.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
    /// With `advertiser` given (a name or domain): the HiEnergy record the contact was added to. Tell the user which one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertiser: Option<AdvertiserRecord>,
    /// How `advertiser` was picked, for the text.
    #[serde(skip)]
    pub advertiser_said: Option<String>,
}

impl Reply for Output {
    fn text(&self) -> String {
        let dry = self.dry_run == Some(true);
        let mut text = match (&self.error, &self.contact, &self.request) {
            (Some(error), _, _) => error.text(),
            (None, _, Some(request)) if dry => dry_run_text(request),
            (None, Some(_), _) if self.existing == Some(true) => String::new(),
            (None, Some(contact), _) => {
                outcome::success_sentence(contact, self.replayed == Some(true))
            }
            (None, None, Some(request)) => dry_run_text(request),
            (None, None, None) => String::new(),
        };
        let checked = outcome::check_sentence(
            self.contact.as_ref(),
            self.existing,
            self.existing_check.as_deref(),
            self.confirmed_by_lookup == Some(true),
            dry,
        );
        if !checked.is_empty() {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(&checked);
        }
        if self.previous_attempt.is_some() {
            text.push(' ');
            text.push_str(PreviousAttempt::TEXT);
            text.push('.');
        }
        if let Some(said) = &self.advertiser_said {
            text.push_str(" Used ");
            text.push_str(said);
            text.push('.');
        }
        text
    }

    fn is_error(&self) -> bool {
        self.error.is_some()
    }
}

/// What a dry run says: the request a real call would send.
pub fn dry_run_text(request: &Preview) -> String {
    let body = serde_json::to_string(&request.body).unwrap_or_default();
    let key_note = if request.has_key {
        "the API key is configured (redacted here)"
    } else {
        "no API key is configured yet, so a real call would fail with not_configured"
    };
    format!(
        "Dry run: nothing was sent. A real call would {} {} with body {body}; {key_note}.",
        request.method, request.url
    )
}

/// One `add_contact` call, from raw arguments to the result the agent
/// sees. Never fails: every problem is a structured error result.
pub async fn call(
    backend: &Backend,
    arguments: Option<&Map<String, Value>>,
    context: &CallContext,
) -> CallToolResult {
    let cancelled = &context.cancelled;
    let mut args = match AddContactArgs::parse(arguments) {
        Ok(args) => args,
        Err(error) => return error.into_result(),
    };
    if let Some(error) = super::unusable(&backend.config) {
        return error.into_result();
    }
    let resolved = match &args.advertiser {
        None => None,
        Some(query) => {
            let about = resolve::about(&args.contact);
            match resolve_named(backend, query, context, &about).await {
                Ok(resolved) => {
                    args.contact.advertiser_id = resolved.record.id;
                    Some(Output {
                        advertiser_said: Some(resolved.sentence(query)),
                        advertiser: Some(resolved.record),
                        ..Output::default()
                    })
                }
                Err(unresolved) => return unresolved.body().into_result(),
            }
        }
    };
    let named = || resolved.clone().unwrap_or_default();
    if args.dry_run {
        let api_key = backend.config.api_key();
        let mut output = Output {
            dry_run: Some(true),
            request: Some(backend.api.preview(&args.contact, api_key.is_some())),
            ..named()
        };
        if let Some(api_key) = api_key
            && args.if_exists == IfExists::Skip
        {
            match send::would_exist(backend, api_key, &args.contact, cancelled).await {
                Ok(Would::Skip(contact)) => {
                    output.existing = Some(true);
                    output.contact = Some(contact);
                }
                Ok(Would::Add) => output.existing = Some(false),
                Ok(Would::Unchecked(why)) => output.existing_check = Some(why),
                // A 401 would fail the real call; a look stopped (the
                // shutdown, a cancel) still leaves the preview to show.
                Err(error) if error.kind == ErrorKind::Unauthorized => {
                    return error.into_result();
                }
                Err(error) => output.existing_check = Some(error.message),
            }
        }
        return output.into_result();
    }
    let Some(api_key) = backend.config.api_key() else {
        return ToolError::not_configured().into_result();
    };
    let (sent, checked) = send::guarded(
        backend,
        api_key,
        &args.contact,
        args.if_exists,
        cancelled,
        None,
    )
    .await;
    let existing_check = checked.existing_check;
    let output = match sent {
        Sent::Created {
            contact,
            replayed,
            previous_unknown,
        } => Output {
            contact: Some(contact),
            replayed: Some(replayed),
            previous_attempt: PreviousAttempt::from_flag(previous_unknown),
            existing_check,
            confirmed_by_lookup: checked.confirmed_by_lookup.then_some(true),
            ..named()
        },
        Sent::Failed {
            error,
            previous_unknown,
        } => Output {
            error: Some(error.body()),
            previous_attempt: PreviousAttempt::from_flag(previous_unknown),
            existing_check,
            ..named()
        },
        Sent::Existing(contact) => Output {
            contact: Some(contact),
            existing: Some(true),
            ..named()
        },
        // Only a paced send is ever held back, and this one is not.
        Sent::NotSent(error) => return error.into_result(),
    };
    output.into_result()
}

/// The record `advertiser` names, or why there is none. A lookup needs
/// the key, even for a dry run.
pub(crate) async fn resolve_named(
    backend: &Backend,
    query: &str,
    context: &CallContext,
    about: &str,
) -> Result<Resolved, Box<Unresolved>> {
    let Some(api_key) = backend.config.api_key() else {
        return Err(ToolError::new(
            ErrorKind::NotConfigured,
            Created::No,
            format!(
                "No HiEnergy API key is configured (HIENERGY_API_KEY is not set), so the advertiser {query:?} could not be looked up and nothing was sent; a dry run without a key needs advertiser_id."
            ),
        )
        .into());
    };
    resolve::resolve(backend, api_key, query, context.asker.as_ref(), about).await
}
