//! Arbitrary JSON thrown at the argument parser: it never panics, an error
//! is always a structured invalid_arguments that names its fields without
//! echoing huge input, and what it accepts is normalised and stable.

use hienergy_mcp::contact::{ALLOWED_FIELDS, AddContactArgs, MAX_FIELD_CHARS};
use hienergy_mcp::outcome::{Created, ErrorKind};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        (0u32..100).prop_map(|n| json!(f64::from(n) + 0.0)),
        any::<String>().prop_map(Value::String),
        "\\PC{0,40}".prop_map(Value::String),
        "[ \t\n\r]{0,2}-?[0-9]{1,22}(\\.[05])?[ \t]{0,2}".prop_map(Value::String),
        "[a-zA-Z0-9.+_ -]{0,12}@{1,2}[a-z0-9-]{0,10}(\\.[a-z]{0,4}){0,3}".prop_map(Value::String),
        "(https?|ftp|javascript|mailto)?:?(//)?[a-z.\\[\\]0-9:]{0,15}(/[a-zé]{0,5}){0,2}"
            .prop_map(Value::String),
        ("[a-zé ]", 990usize..1010).prop_map(|(c, n)| Value::String(c.repeat(n))),
        prop::sample::select(vec![
            "true", "FALSE", " true ", "yes", "", "   ", "\u{0}", "a\nb"
        ])
        .prop_map(|s| json!(s)),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("\\PC{0,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Objects mixing the tool's own argument names (with any values) and
/// random names.
fn arguments() -> impl Strategy<Value = Map<String, Value>> {
    let known = prop::collection::vec(
        (prop::sample::select(ALLOWED_FIELDS.to_vec()), value()),
        0..12,
    );
    let random = prop::collection::vec(("\\PC{0,12}", value()), 0..3);
    (known, random).prop_map(|(known, random)| {
        let mut map = Map::new();
        for (k, v) in known {
            map.insert(k.to_owned(), v);
        }
        for (k, v) in random {
            map.insert(k, v);
        }
        map
    })
}

/// Arguments that are usually valid, so the accepting path is exercised
/// as much as the refusing one.
fn plausible() -> impl Strategy<Value = Map<String, Value>> {
    let optional = prop::collection::vec(
        (
            prop::sample::select(ALLOWED_FIELDS[2..].to_vec()),
            prop_oneof![
                3 => "[ ]{0,2}[A-Za-zé0-9 .'-]{0,30}[ ]{0,2}".prop_map(Value::String),
                1 => "https://(www\\.)?linkedin\\.com/in/[a-z]{1,10}".prop_map(Value::String),
                1 => any::<bool>().prop_map(Value::Bool),
                1 => Just(Value::Null),
                1 => leaf(),
            ],
        ),
        0..6,
    );
    (
        prop_oneof![
            (1u64..u64::MAX).prop_map(|n| json!(n)),
            (1u64..100_000).prop_map(|n| json!(format!(" {n} "))),
            (1u32..1000).prop_map(|n| json!(f64::from(n))),
        ],
        "[ ]{0,2}[a-z0-9._%+-]{1,10}@[a-z0-9-]{1,10}\\.[a-z]{2,6}[ ]{0,2}",
        optional,
    )
        .prop_map(|(id, email, optional)| {
            let mut map = Map::new();
            map.insert("advertiser_id".into(), id);
            map.insert("email".into(), json!(email));
            for (k, v) in optional {
                map.insert(k.to_owned(), v);
            }
            map
        })
}

fn is_clean(s: &str) -> bool {
    !s.is_empty()
        && s.trim() == s
        && !s.chars().any(char::is_control)
        && s.chars().count() <= MAX_FIELD_CHARS
}

/// The properties every outcome of `parse` must have.
fn check(input: Option<&Map<String, Value>>) -> Result<(), TestCaseError> {
    let first = AddContactArgs::parse(input);
    // Deterministic: the same input gives the same answer.
    prop_assert_eq!(&first, &AddContactArgs::parse(input));
    match first {
        Ok(args) => {
            let c = &args.contact;
            prop_assert!(c.advertiser_id >= 1);
            prop_assert!(is_clean(&c.email), "email {:?}", c.email);
            prop_assert!(c.email.contains('@'));
            for s in [
                &c.name,
                &c.given_name,
                &c.family_name,
                &c.phone,
                &c.job_title,
                &c.source,
                &c.status,
                &c.linkedin_profile_url,
            ]
            .into_iter()
            .flatten()
            {
                prop_assert!(is_clean(s), "{:?}", s);
            }
            if let Some(url) = &c.linkedin_profile_url {
                let parsed = url::Url::parse(url);
                prop_assert!(
                    parsed
                        .as_ref()
                        .is_ok_and(|u| matches!(u.scheme(), "http" | "https")),
                    "{}",
                    url
                );
            }
            // Accepted input only ever names the tool's own arguments.
            if let Some(map) = input {
                prop_assert!(map.keys().all(|k| ALLOWED_FIELDS.contains(&k.as_str())));
            }
            // Normalising is idempotent: the contact as sent parses to itself.
            let Ok(Value::Object(mut sent)) = serde_json::to_value(c) else {
                return Err(TestCaseError::fail("contact is not an object"));
            };
            sent.insert("dry_run".into(), json!(args.dry_run));
            prop_assert_eq!(AddContactArgs::parse(Some(&sent)), Ok(args));
        }
        Err(e) => {
            prop_assert_eq!(e.kind, ErrorKind::InvalidArguments);
            prop_assert_eq!(e.created, Created::No);
            prop_assert!(!e.fields.is_empty(), "no fields: {}", e.message);
            for f in &e.fields {
                prop_assert!(!f.field.is_empty() || input.is_some_and(|m| m.contains_key("")));
                prop_assert!(f.field.chars().count() <= 101, "field name echoed whole");
                prop_assert!(!f.problem.is_empty());
                prop_assert!(
                    f.problem.chars().count() <= 400,
                    "{}: {} chars",
                    f.field,
                    f.problem.chars().count()
                );
            }
            // The result an agent sees is well-formed too.
            let json = e.to_json();
            prop_assert_eq!(&json["error"]["kind"], "invalid_arguments");
            prop_assert_eq!(&json["error"]["created"], "no");
            let result = e.into_result();
            prop_assert_eq!(result.is_error, Some(true));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_objects_never_panic(args in arguments()) {
        check(Some(&args))?;
    }

    #[test]
    fn plausible_objects_are_accepted_or_refused_cleanly(args in plausible()) {
        check(Some(&args))?;
    }

    #[test]
    fn any_json_value_as_arguments(value in value()) {
        // Whatever a client sends as `arguments`, the server hands the parser
        // an object or nothing.
        match &value {
            Value::Object(map) => check(Some(map))?,
            _ => check(None)?,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn megabyte_values_and_names_are_refused_without_echo(
        field in prop::sample::select(ALLOWED_FIELDS.to_vec()),
        fill in "[a-zé\u{1F600} ]",
        as_key in any::<bool>(),
    ) {
        let huge = fill.repeat((1 << 20) / fill.len());
        let mut args = Map::new();
        args.insert("advertiser_id".into(), json!(1));
        args.insert("email".into(), json!("a@b.co"));
        if as_key {
            args.insert(huge.clone(), json!(1));
        } else {
            args.insert(field.to_owned(), json!(huge));
        }
        check(Some(&args))?;
        if let Err(e) = AddContactArgs::parse(Some(&args)) {
            prop_assert!(e.message.len() < 4096, "message of {} bytes", e.message.len());
        }
    }
}

#[test]
fn no_arguments_at_all_names_the_required_fields() {
    let e = AddContactArgs::parse(None).expect_err("refused");
    let fields: Vec<_> = e.fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(fields, ["advertiser_id", "email"]);
}
