//! `add_contact`: one contact, one POST, one result.

use std::sync::Arc;

use rmcp::model::{CallToolResult, Tool, ToolAnnotations};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::Backend;
use super::send::{self, Sent};
use crate::contact::AddContactArgs;
use crate::hienergy::HiEnergy;
use crate::outcome::{self, ToolError, success_result};
use crate::schema;

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
        .with_raw_output_schema(Arc::new(output_schema()))
        .with_annotations(
            ToolAnnotations::with_title(TITLE)
                .read_only(false)
                .destructive(false)
                .idempotent(false)
                .open_world(true),
        )
}

/// Every shape `add_contact` answers with, in one portable schema: a
/// created or replayed contact, a dry-run preview, or an error. Clients
/// such as the TypeScript SDK check error results against it too, so the
/// error object is described member by member.
pub fn output_schema() -> Map<String, Value> {
    let schema = json!({
        "type": "object",
        "properties": {
            "contact": {
                "type": "object",
                "description": "On success: the contact as HiEnergy returned it (its `data` member), including its id.",
                "additionalProperties": true
            },
            "replayed": {
                "type": "boolean",
                "description": "true when this is the result of an identical earlier call in this session: no new contact was created."
            },
            "previous_attempt": {
                "type": "string",
                "enum": ["unknown"],
                "description": "Present when an identical earlier call ended with created \"unknown\": check HiEnergy for a duplicate."
            },
            "dry_run": {
                "type": "boolean",
                "description": "true when nothing was sent: `request` shows what would have been."
            },
            "request": preview_schema(),
            "error": outcome::error_schema(),
        },
        "additionalProperties": false
    });
    match schema {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The schema of a dry run's `request`: what [`HiEnergy::preview`] writes.
pub fn preview_schema() -> Value {
    json!({
        "type": "object",
        "description": "With dry_run: the HTTP request that would be sent, API key redacted.",
        "properties": {
            "method": {"type": "string"},
            "url": {"type": "string"},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "body": {"type": "object", "additionalProperties": true}
        },
        "required": ["method", "url", "headers", "body"],
        "additionalProperties": false
    })
}

/// One `add_contact` call, from raw arguments to the result the agent
/// sees. Never fails: every problem is a structured error result.
pub async fn call(
    backend: &Backend,
    arguments: Option<&Map<String, Value>>,
    cancelled: CancellationToken,
) -> CallToolResult {
    let args = match AddContactArgs::parse(arguments) {
        Ok(args) => args,
        Err(error) => return error.into_result(),
    };
    if let Some(error) = super::unusable(&backend.config) {
        return error.into_result();
    }
    if args.dry_run {
        return dry_run_result(&backend.api, &args, backend.config.api_key().is_some());
    }
    let Some(api_key) = backend.config.api_key() else {
        return ToolError::not_configured().into_result();
    };
    let extra_for = |previous_unknown: bool| {
        let mut extra = Map::new();
        if previous_unknown {
            extra.insert("previous_attempt".into(), json!("unknown"));
        }
        extra
    };
    match send::guarded(backend, api_key, &args.contact, &cancelled, None).await {
        Sent::Created {
            contact,
            replayed,
            previous_unknown,
        } => {
            let mut extra = extra_for(previous_unknown);
            extra.insert("replayed".into(), json!(replayed));
            success_result(contact, extra)
        }
        Sent::Failed {
            error,
            previous_unknown,
        } => error.into_result_with(extra_for(previous_unknown)),
        // Only a paced send is ever held back, and this one is not.
        Sent::NotSent(error) => error.into_result(),
    }
}

fn dry_run_result(api: &HiEnergy, args: &AddContactArgs, has_key: bool) -> CallToolResult {
    let request = api.preview(&args.contact, has_key);
    let body = crate::hienergy::request_body_text(&args.contact);
    let key_note = if has_key {
        "the API key is configured (redacted here)"
    } else {
        "no API key is configured yet, so a real call would fail with not_configured"
    };
    let text = format!(
        "Dry run: nothing was sent. A real call would POST {} with body {body}; {key_note}.",
        api.endpoint()
    );
    outcome::tool_result(json!({"dry_run": true, "request": request}), text, false)
}
