//! `add_contact`: one contact, one POST, one result.

use super::send::{self, Sent};
use super::{Backend, CallContext};
use crate::contact::AddContactArgs;
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
Required: advertiser_id, the numeric id of an existing HiEnergy advertiser (not its name or domain), \
and the contact's email; every other field is optional. \
With only a brand's name or domain, find its id with search_advertisers first; search_contacts shows whether the person is already there. \
This writes to a live CRM: call it once per contact; for two or more contacts, call add_contacts once with the whole list instead. \
An identical call that already succeeded is not sent again: it returns the first result with replayed: true (no new contact). \
Set dry_run: true to preview the exact request without sending it. \
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
        let mut text = match (&self.error, &self.contact, &self.request) {
            (Some(error), _, _) => error.text(),
            (None, Some(contact), _) => {
                outcome::success_sentence(contact, self.replayed == Some(true))
            }
            (None, None, Some(request)) => dry_run_text(request),
            (None, None, None) => String::new(),
        };
        if self.previous_attempt.is_some() {
            text.push(' ');
            text.push_str(PreviousAttempt::TEXT);
            text.push('.');
        }
        if let Some(said) = &self.advertiser_said {
            text.push_str(" To ");
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
        let has_key = backend.config.api_key().is_some();
        return Output {
            dry_run: Some(true),
            request: Some(backend.api.preview(&args.contact, has_key)),
            ..named()
        }
        .into_result();
    }
    let Some(api_key) = backend.config.api_key() else {
        return ToolError::not_configured().into_result();
    };
    let output = match send::guarded(backend, api_key, &args.contact, cancelled, None).await {
        Sent::Created {
            contact,
            replayed,
            previous_unknown,
        } => Output {
            contact: Some(contact),
            replayed: Some(replayed),
            previous_attempt: PreviousAttempt::from_flag(previous_unknown),
            ..named()
        },
        Sent::Failed {
            error,
            previous_unknown,
        } => Output {
            error: Some(error.body()),
            previous_attempt: PreviousAttempt::from_flag(previous_unknown),
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
