//! JSON schemas as every MCP client accepts them.
//!
//! schemars' output is valid JSON Schema, but real clients reject parts of
//! it: `$schema` (Gemini CLI), `$defs`/`$ref` (LM Studio), type arrays such
//! as `["string","null"]` (Gemini, Cursor), `format: uint64` (Ajv strict).
//! [`make_portable`] rewrites a schema into the plain subset they all take.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

use crate::contact::AddContactArgs;

/// Formats every JSON Schema validator knows; others (uint64, int32 …) are
/// schemars' own and make strict validators fail.
const PORTABLE_FORMATS: [&str; 5] = ["email", "uri", "date-time", "date", "uuid"];

/// The `add_contact` input schema.
pub fn input_schema() -> Map<String, Value> {
    portable_schema_for::<AddContactArgs>()
}

/// The schema of a type as every client accepts it, subschemas inline.
pub fn portable_schema_for<T: JsonSchema>() -> Map<String, Value> {
    let settings = SchemaSettings::draft2020_12().with(|s| {
        s.inline_subschemas = true;
        s.meta_schema = None;
    });
    let schema = settings.into_generator().into_root_schema_for::<T>();
    let mut value = schema.to_value();
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
    if let Some(format) = map.get("format").and_then(Value::as_str)
        && !PORTABLE_FORMATS.contains(&format)
    {
        map.remove("format");
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
    fn input_schema_snapshot() {
        insta::assert_json_snapshot!(Value::Object(input_schema()));
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
            if key == "format" {
                let format = value.as_str().unwrap_or_default();
                assert!(PORTABLE_FORMATS.contains(&format), "format {format}");
            }
            assert!(
                !matches!(key, "allOf" | "anyOf" | "oneOf"),
                "{key} in schema"
            );
        }
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["required"], json!(["advertiser_id", "email"]));
        assert_eq!(schema["properties"]["advertiser_id"]["type"], "integer");
        assert_eq!(schema["properties"]["advertiser_id"]["minimum"], 1);
        assert_eq!(schema["properties"]["email"]["format"], "email");
        assert_eq!(
            schema["properties"]["linkedin_profile_url"]["format"],
            "uri"
        );
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
                "e": {"type": "string", "format": "email"}
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
                    "e": {"type": "string", "format": "email"}
                }
            })
        );
    }
}
