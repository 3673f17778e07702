//! JSON schemas as every MCP client accepts them.
//!
//! schemars' output is valid JSON Schema, but real clients reject parts of
//! it: `$schema` (Gemini CLI), `$defs`/`$ref` (LM Studio), type arrays such
//! as `["string","null"]` (Gemini, Cursor), `format: uint64` (Ajv strict).
//! [`make_portable`] rewrites a schema into the plain subset they all take.
//!
//! No `format` survives either: Gemini CLI checks arguments against the
//! input schema itself, and its `email` and `uri` formats refuse addresses
//! the server accepts (`josé@example.com`). The server validates.

use std::sync::Arc;

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

use crate::contact::AddContactArgs;

/// The `add_contact` input schema.
pub fn input_schema() -> Map<String, Value> {
    portable_schema_for::<AddContactArgs>()
}

/// The schema of the arguments a type reads, as every client accepts it.
pub fn portable_schema_for<T: JsonSchema>() -> Map<String, Value> {
    portable_root::<T>(SchemaSettings::draft2020_12().for_deserialize())
}

/// A tool's outputSchema: what its result type writes (members it skips
/// when empty are optional), as every client accepts it.
pub fn output_schema<T: JsonSchema>() -> Arc<Map<String, Value>> {
    let mut schema = portable_root::<T>(SchemaSettings::draft2020_12().for_serialize());
    // The type's doc is for Rust readers; the tool's description speaks to
    // the model.
    schema.remove("description");
    Arc::new(schema)
}

/// The schema of `T`, subschemas inline, made portable.
fn portable_root<T: JsonSchema>(settings: SchemaSettings) -> Map<String, Value> {
    let settings = settings.with(|s| {
        s.inline_subschemas = true;
        s.meta_schema = None;
    });
    let mut value = settings
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value();
    make_portable(&mut value);
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Rewrites a schema in place into the subset every client accepts.
pub fn make_portable(value: &mut Value) {
    let Value::Object(map) = value else {
        if let Value::Array(items) = value {
            items.iter_mut().for_each(make_portable);
        }
        return;
    };
    map.remove("$schema");
    map.remove("$defs");
    map.remove("definitions");
    // A title repeats the Rust type name; it means nothing to a model.
    map.remove("title");

    // ["string","null"] → "string": absence already says "optional".
    if let Some(Value::Array(types)) = map.get("type") {
        let concrete: Vec<Value> = types
            .iter()
            .filter(|t| t.as_str() != Some("null"))
            .cloned()
            .collect();
        if let [single] = concrete.as_slice() {
            map.insert("type".into(), single.clone());
        }
    }
    map.remove("format");
    // An Option of an enum lists null among its values; absence says it.
    if let Some(Value::Array(values)) = map.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
    // A choice between a schema and null (an Option) → that schema; a
    // choice between constants (an enum with documented variants) → enum.
    for choice in ["anyOf", "oneOf"] {
        let Some(Value::Array(branches)) = map.get(choice) else {
            continue;
        };
        let concrete: Vec<&Value> = branches
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) != Some("null"))
            .collect();
        let constants: Option<Vec<Value>> =
            concrete.iter().map(|b| b.get("const").cloned()).collect();
        let replacement = match (concrete.as_slice(), constants) {
            ([Value::Object(single)], _) => Some(single.clone()),
            (_, Some(constants)) if !constants.is_empty() => {
                let mut enumeration = Map::new();
                if let Some(kind) = concrete.first().and_then(|b| b.get("type")) {
                    enumeration.insert("type".into(), kind.clone());
                }
                enumeration.insert("enum".into(), Value::Array(constants));
                Some(enumeration)
            }
            _ => None,
        };
        if let Some(replacement) = replacement {
            map.remove(choice);
            for (key, value) in replacement {
                // The member's own description wins over its type's.
                map.entry(key).or_insert(value);
            }
        }
    }
    // A `default: null` on an optional field is noise and some validators
    // reject a default that does not match the type.
    if map.get("default") == Some(&Value::Null) {
        map.remove("default");
    }
    for (_, child) in map.iter_mut() {
        make_portable(child);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// Every (key, value) pair anywhere in a schema; the tools' tests use it too.
    pub(crate) fn walk<'a>(value: &'a Value, out: &mut Vec<(&'a str, &'a Value)>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    out.push((k.as_str(), v));
                    walk(v, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }

    #[test]
    fn input_schema_is_plain() {
        let schema = Value::Object(input_schema());
        let mut members = Vec::new();
        walk(&schema, &mut members);
        for (key, value) in members {
            assert!(!key.starts_with('$'), "{key} in schema");
            if key == "type" {
                assert!(value.is_string(), "type {value} is not a single type");
            }
            assert_ne!(key, "format", "{value}");
            assert!(
                !matches!(key, "allOf" | "anyOf" | "oneOf"),
                "{key} in schema"
            );
        }
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["additionalProperties"], false);
        // advertiser_id or advertiser: the parser refuses both and neither.
        assert_eq!(schema["required"], json!(["email"]));
        assert_eq!(schema["properties"]["advertiser"]["type"], "string");
        assert_eq!(schema["properties"]["advertiser_id"]["type"], "integer");
        assert_eq!(schema["properties"]["advertiser_id"]["minimum"], 1);
        assert_eq!(schema["properties"]["dry_run"]["type"], "boolean");
    }

    #[test]
    fn every_argument_has_a_description_and_the_schema_lists_exactly_the_allowed_fields() {
        let schema = input_schema();
        let Some(Value::Object(properties)) = schema.get("properties") else {
            panic!("no properties");
        };
        let names: Vec<&str> = properties.keys().map(String::as_str).collect();
        let mut allowed = crate::contact::ALLOWED_FIELDS.to_vec();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        allowed.sort_unstable();
        assert_eq!(sorted, allowed);
        for (name, property) in properties {
            let description = property["description"].as_str().unwrap_or_default();
            assert!(description.len() > 10, "{name} has no description");
        }
    }

    #[test]
    fn make_portable_rewrites_what_clients_reject() {
        let mut value = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "X",
            "type": "object",
            "properties": {
                "a": {"type": ["string", "null"], "default": null},
                "n": {"type": "integer", "format": "uint32", "minimum": 1},
                "e": {"type": "string", "format": "email"},
                "o": {"description": "mine", "anyOf": [
                    {"type": "string", "description": "its", "minLength": 1},
                    {"type": "null"}
                ]},
                "p": {"type": ["string", "null"], "enum": ["unknown", null]},
                "k": {"oneOf": [
                    {"type": "string", "const": "no", "description": "n"},
                    {"type": "string", "const": "unknown", "description": "u"}
                ]}
            }
        });
        make_portable(&mut value);
        assert_eq!(
            value,
            json!({
                "type": "object",
                "properties": {
                    "a": {"type": "string"},
                    "n": {"type": "integer", "minimum": 1},
                    "e": {"type": "string"},
                    "o": {"description": "mine", "type": "string", "minLength": 1},
                    "p": {"type": "string", "enum": ["unknown"]},
                    "k": {"type": "string", "enum": ["no", "unknown"]}
                }
            })
        );
    }

    /// Gemini CLI checks arguments against the inputSchema before calling:
    /// an address the server takes must pass there too, with the
    /// validator's format checks on.
    #[test]
    fn addresses_the_server_accepts_pass_the_input_schemas() {
        let mut options = jsonschema::options();
        options = options.should_validate_formats(true);
        let one = options
            .build(&Value::Object(input_schema()))
            .unwrap_or_else(|e| panic!("{e}"));
        let list = options
            .build(&Value::Object(crate::tools::add_contacts::input_schema()))
            .unwrap_or_else(|e| panic!("{e}"));
        for email in ["josé@example.com", "x@exämple.de"] {
            let args = json!({"advertiser_id": 42, "email": email,
                "linkedin_profile_url": "https://www.linkedin.com/in/josé"});
            let Value::Object(map) = &args else {
                unreachable!()
            };
            if let Err(e) = AddContactArgs::parse(Some(map)) {
                panic!("the server refuses {email}: {e}");
            }
            let problems: Vec<String> = one.iter_errors(&args).map(|e| e.to_string()).collect();
            assert!(problems.is_empty(), "{email}: {problems:?}");
            let listed = json!({"contacts": [args]});
            let problems: Vec<String> = list.iter_errors(&listed).map(|e| e.to_string()).collect();
            assert!(problems.is_empty(), "{email}: {problems:?}");
        }
    }
}
