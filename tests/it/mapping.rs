//! The mapping layer: object-constructor mappings, errors, guardrails, variables, sharing
//! between threads, and the pure part of `tessera map` (`evaluate_cli`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tessera::cli::map::{CliError, evaluate_cli};
use tessera::mapping::{Expr, Limits, MappingEngine, MappingError, Vars, default_engine, engine};

// Compiled expressions and engines are shared across tokio workers.
const _: fn() = || {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<Expr>();
    send_sync::<Vars>();
    send_sync::<MappingError>();
    send_sync::<Arc<dyn MappingEngine>>();
};

fn vars(value: Value) -> Vars {
    match value {
        Value::Object(map) => Vars::from_map(map),
        other => panic!("not an object: {other}"),
    }
}

fn eval(source: &str, input: Option<&Value>) -> Result<Option<Value>, MappingError> {
    default_engine()
        .compile(source)?
        .evaluate(input, &Vars::none())
}

/// An error from `source` evaluated with `limits` on a thread with a tokio worker's 2 MiB
/// stack, and how long it took.
fn error_on_small_stack(limits: Limits, source: &'static str) -> (MappingError, Duration) {
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || {
            let expr = engine(limits).compile(source).unwrap();
            let started = Instant::now();
            let err = expr.evaluate(None, &Vars::none()).unwrap_err();
            (err, started.elapsed())
        })
        .unwrap()
        .join()
        .unwrap()
}

fn hubspot_contact() -> Value {
    json!({
        "id": "51",
        "properties": {
            "createdate": "2024-01-05T10:00:00.000Z",
            "email": "ada@example.com",
            "firstname": "Ada",
            "hs_lead_status": "OPEN",
            "lastname": "Lovelace",
            "num_employees": "42",
            "phone": null
        },
        "associations": {
            "companies": {"results": [
                {"id": "9001", "type": "contact_to_company"},
                {"id": "9002", "type": "contact_to_company"}
            ]}
        },
        "archived": false
    })
}

#[test]
fn hubspot_record_maps_to_unified_object_in_construction_order() {
    let expr = default_engine()
        .compile(
            r#"{
                "id": id,
                "name": properties.firstname & " " & properties.lastname,
                "email": properties.email,
                "phone": properties.phone,
                "website": properties.website,
                "status": $lowercase(properties.hs_lead_status),
                "employees": $number(properties.num_employees),
                "companyIds": [associations.companies.results.id],
                "createdAt": properties.createdate,
                "active": $not(archived),
                "source": $provider
            }"#,
        )
        .unwrap();
    let got = expr
        .evaluate(
            Some(&hubspot_contact()),
            &vars(json!({"provider": "hubspot"})),
        )
        .unwrap()
        .unwrap();
    // Compared as text: the keys must come in construction order (not the record's), a null
    // stays null, and an undefined field (`website`) is left out.
    assert_eq!(
        got.to_string(),
        r#"{"id":"51","name":"Ada Lovelace","email":"ada@example.com","phone":null,"status":"open","employees":42,"companyIds":["9001","9002"],"createdAt":"2024-01-05T10:00:00.000Z","active":true,"source":"hubspot"}"#
    );
}

#[test]
fn undefined_result_is_none() {
    let record = hubspot_contact();
    assert_eq!(eval("properties.website", Some(&record)).unwrap(), None);
    assert_eq!(eval("$", None).unwrap(), None);
    assert_eq!(eval("$exists($)", None).unwrap(), Some(json!(false)));
    assert_eq!(eval("$", Some(&Value::Null)).unwrap(), Some(Value::Null));
}

#[test]
fn compile_error_has_code_and_position() {
    let err = default_engine().compile("Account.Order[0").unwrap_err();
    assert_eq!(err.code, "S0203");
    assert_eq!(err.position, Some(15));
    assert_eq!(
        err.to_string(),
        r#"S0203 at position 15: Expected "]" before end of expression"#
    );

    let err = default_engine().compile("{ \"a\": 1 ").unwrap_err();
    assert!(err.code.starts_with('S'), "{err}");
    assert!(err.position.is_some(), "{err}");
}

#[test]
fn evaluation_error_has_code_and_position() {
    let err = eval("$number(properties.firstname)", Some(&hubspot_contact())).unwrap_err();
    assert_eq!(err.code, "D3030");
    assert!(err.position.is_some());
    assert!(err.to_string().starts_with("D3030 at position "), "{err}");
}

#[test]
fn error_messages_do_not_carry_whole_documents() {
    let secret = "s3cr3t-".repeat(200);
    let input = json!({"notes": secret});
    let err = eval("$number(notes)", Some(&input)).unwrap_err();
    assert_eq!(err.code, "D3030");
    assert!(!err.message.contains(&secret), "{err}");
    assert!(err.message.chars().count() < 200, "{err}");
    assert!(
        err.message
            .starts_with("Unable to cast value to a number: \"s3cr3t-")
    );
}

#[test]
fn infinite_recursion_on_a_2_mib_stack_is_an_error() {
    // A tail call: runs in constant stack, and loops until a budget stops it.
    let (err, elapsed) =
        error_on_small_stack(Limits::default(), "($f := function($x){ $f($x) }; $f(1))");
    assert!(["U1006", "D1012"].contains(&err.code.as_str()), "{err}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");

    // Not a tail call: the stack grows until the depth limit.
    let (err, elapsed) = error_on_small_stack(
        Limits::default(),
        "($f := function($x){ 1 + $f($x) }; $f(1))",
    );
    assert_eq!(err.code, "D1011", "{err}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");

    // Even with a depth limit far above what a 2 MiB stack holds, the engine grows the stack
    // rather than overflowing it.
    let deep = Limits {
        max_depth: 100_000,
        ..Limits::default()
    };
    let (err, _) = error_on_small_stack(deep, "($f := function($x){ [$f($x)] }; $f(1))");
    assert!(
        ["D1011", "U1006", "D1012"].contains(&err.code.as_str()),
        "{err}"
    );
}

#[test]
fn timeout_yields_d1012() {
    let limits = Limits {
        timeout: Duration::from_millis(50),
        max_steps: u64::MAX,
        ..Limits::default()
    };
    let (err, elapsed) = error_on_small_stack(limits, "($f := function($x){ $f($x) }; $f(1))");
    assert_eq!(err.code, "D1012", "{err}");
    assert!(elapsed >= Duration::from_millis(50), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[test]
fn step_budget_yields_u1006() {
    let limits = Limits {
        max_steps: 1_000,
        ..Limits::default()
    };
    let err = engine(limits.clone())
        .compile("$sum([1..100000].($ * 2))")
        .unwrap()
        .evaluate(None, &Vars::none())
        .unwrap_err();
    assert_eq!(err.code, "U1006", "{err}");
    // The same expression within the budget is fine.
    let ok = engine(limits)
        .compile("$sum([1..10].($ * 2))")
        .unwrap()
        .evaluate(None, &Vars::none())
        .unwrap();
    assert_eq!(ok, Some(json!(110)));
}

#[test]
fn result_size_limit_yields_u1001() {
    let limits = Limits {
        max_result_bytes: 1024,
        ..Limits::default()
    };
    let small = engine(limits);
    let run = |source: &str| small.compile(source).unwrap().evaluate(None, &Vars::none());
    // The result itself: 300 numbers are ~1.2 KB of JSON.
    assert_eq!(run("[1..300]").unwrap_err().code, "U1001");
    // A string built on the way, even if the result is small.
    assert_eq!(run("$length($pad('', 5000))").unwrap_err().code, "U1001");
    // An array built on the way.
    assert_eq!(run("$count([1..5000])").unwrap_err().code, "U1001");
    assert_eq!(
        run("[1..100]").unwrap().unwrap().as_array().map(Vec::len),
        Some(100)
    );
}

#[test]
fn default_limits_stop_blowups_quickly() {
    // The timeout may fire first on a slow, loaded machine running an unoptimized build.
    let cases: [(&str, &[&str]); 3] = [
        // Past the array cap (jlens builds a range before checking it: ~0.3 s).
        ("$count([1..10000000])", &["U1001"]),
        // Past the step budget.
        ("$sum([1..1000000].($ * 2))", &["U1006", "D1012"]),
        // A 10 MB string, past the string cap.
        (
            r#"$length($join([1..500000].("xxxxxxxxxxxxxxxxxxxx")))"#,
            &["U1001", "D1012"],
        ),
    ];
    for (source, codes) in cases {
        let started = Instant::now();
        let err = eval(source, None).unwrap_err();
        let elapsed = started.elapsed();
        assert!(codes.contains(&err.code.as_str()), "{source}: {err}");
        assert!(elapsed < Duration::from_secs(5), "{source}: {elapsed:?}");
    }
}

#[test]
fn vars_are_visible_as_dollar_names() {
    let expr = default_engine()
        .compile(r#"$portal & "/" & id & ($archived ? " (archived)" : "")"#)
        .unwrap();
    let bound = vars(json!({"portal": "p-7", "archived": true}));
    assert_eq!(bound.get("portal"), Some(&json!("p-7")));
    assert_eq!(
        bound.iter().map(|(name, _)| name).collect::<Vec<_>>(),
        ["portal", "archived"]
    );
    assert_eq!(
        expr.evaluate(Some(&hubspot_contact()), &bound).unwrap(),
        Some(json!("p-7/51 (archived)"))
    );
    // Unbound variables are undefined, not errors.
    assert_eq!(
        default_engine()
            .compile("$portal")
            .unwrap()
            .evaluate(None, &Vars::none())
            .unwrap(),
        None
    );
    assert!(Vars::none().is_empty());
    assert!(Vars::from_map(serde_json::Map::new()).is_empty());
}

#[test]
fn expr_is_shared_across_threads() {
    let expr = default_engine()
        .compile(r#"{"id": id, "double": n * 2, "who": $who}"#)
        .unwrap();
    assert_eq!(format!("{expr:?}"), format!("Expr({:?})", expr.source()));
    let handles: Vec<_> = (0..4)
        .map(|thread| {
            let expr = expr.clone();
            std::thread::spawn(move || {
                let who = vars(json!({"who": format!("t{thread}")}));
                for n in 0..200 {
                    let got = expr
                        .evaluate(Some(&json!({"id": n, "n": n})), &who)
                        .unwrap();
                    assert_eq!(
                        got,
                        Some(json!({"id": n, "double": n * 2, "who": format!("t{thread}")}))
                    );
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
}

#[test]
fn cli_prints_compact_json_or_nothing() {
    assert_eq!(
        evaluate_cli(
            r#"{"name": name, "tags": tags}"#,
            Some("{\n  \"name\": \"Ada\",\n  \"tags\": [1, 2]\n}"),
            None
        )
        .unwrap(),
        Some(r#"{"name":"Ada","tags":[1,2]}"#.to_owned())
    );
    assert_eq!(evaluate_cli("missing", Some("{}"), None).unwrap(), None);
    assert_eq!(evaluate_cli("$", None, None).unwrap(), None);
    assert_eq!(
        evaluate_cli("$x * 2", None, Some(r#"{"x": 21}"#)).unwrap(),
        Some("42".to_owned())
    );
}

#[test]
fn cli_invalid_input_names_line_and_column() {
    let err = evaluate_cli("a", Some("{\n  \"a\": 1,\n  \"b\": }"), None).unwrap_err();
    let CliError::InvalidInput { line, column, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!((*line, *column), (3, 8));
    let text = err.to_string();
    assert!(text.contains("line 3, column 8"), "{text}");
    assert!(text.starts_with("invalid JSON in the input"), "{text}");
}

#[test]
fn cli_bindings_must_be_a_json_object() {
    let err = evaluate_cli("1", None, Some("[1, 2]")).unwrap_err();
    assert!(
        matches!(err, CliError::BindingsNotObject { found: "an array" }),
        "{err:?}"
    );
    assert!(err.to_string().contains("--bindings must be a JSON object"));

    let err = evaluate_cli("1", None, Some("{\"x\": ")).unwrap_err();
    assert!(
        matches!(err, CliError::InvalidBindings { line: 1, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("--bindings"), "{err}");
}

#[test]
fn cli_expression_errors_carry_the_jsonata_code() {
    let err = evaluate_cli("$number(s)", Some(r#"{"s": "abc"}"#), None).unwrap_err();
    assert_eq!(err.code(), Some("D3030"));
    let text = err.to_string();
    assert!(text.starts_with("D3030 at position "), "{text}");
    assert!(text.contains("Unable to cast value to a number"), "{text}");

    let err = evaluate_cli("Account.Order[0", Some("{}"), None).unwrap_err();
    assert_eq!(err.code(), Some("S0203"));
    assert!(err.to_string().contains("at position 15"), "{err}");
}
