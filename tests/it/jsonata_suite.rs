//! The official JSONata test suite (jsonata-js 2.2.2, flattened in
//! `tests/fixtures/jsonata-suite/cases.jsonl`), run through the mapping layer exactly as the
//! gateway runs a mapping: `default_engine()`, its limits, and `Vars` for the bindings.
//!
//! It checks that Tessera's engine, conversions and guardrails keep JSONata's semantics. A few
//! cases fail by design (the limits stop them, or jlens reports a limit with its own code); the
//! test prints every failure and requires at least `MIN_PASSING`.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Map, Value};
use tessera::mapping::{MappingError, Vars, default_engine};

/// Cases in the fixture: a truncated or replaced file must not pass.
const TOTAL: usize = 1686;

/// jlens-core 0.26.0 passes 1,683 with its default options; Tessera's limits add a few
/// failures by design (e.g. `[1..10000000] ~> $count()` hits the array cap).
const MIN_PASSING: usize = 1675;

#[derive(Deserialize)]
struct Case {
    id: String,
    expr: String,
    has_input: bool,
    #[serde(default)]
    input: Value,
    #[serde(default)]
    bindings: Map<String, Value>,
    expect: String,
    #[serde(default)]
    result: Value,
    #[serde(default)]
    code: Option<String>,
    /// The expected array may come in any order (`$each`, `$keys`, wildcards over objects).
    #[serde(default)]
    unordered: bool,
}

#[test]
fn official_jsonata_suite() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/jsonata-suite/cases.jsonl"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let engine = default_engine();

    let mut total = 0;
    let mut failures = Vec::new();
    let mut slowest: Vec<(Duration, String)> = Vec::new();
    for (line, json) in text.lines().enumerate() {
        if json.trim().is_empty() {
            continue;
        }
        total += 1;
        // Two cases hold lone UTF-16 surrogates (`'\ud800'`), which no Rust string can: they
        // count as failures, under the id the line starts with.
        let case: Case = match serde_json::from_str(json) {
            Ok(case) => case,
            Err(err) => {
                let id = leading_id(json)
                    .unwrap_or_else(|| panic!("{path}:{}: bad case: {err}", line + 1));
                failures.push(format!("{id}: not representable in Rust: {err}"));
                continue;
            }
        };

        let started = Instant::now();
        let run = || {
            engine.compile(&case.expr).and_then(|expr| {
                let input = case.has_input.then_some(&case.input);
                expr.evaluate(input, &Vars::from_map(case.bindings.clone()))
            })
        };
        let mut outcome = run();
        // The timeout is wall-clock: on a loaded CI machine running an unoptimized build, the
        // heaviest cases (~0.2 s there) could reach it. One retry tells load from a runaway,
        // which times out again; the deterministic step budget is not retried.
        if matches!(&outcome, Err(err) if err.code == "D1012") {
            outcome = run();
        }
        slowest.push((started.elapsed(), case.id.clone()));

        if let Err(why) = check(&case, &outcome) {
            failures.push(format!("{}: {}", case.id, why));
        }
    }

    slowest.sort_by_key(|(elapsed, _)| std::cmp::Reverse(*elapsed));
    let passed = total - failures.len();
    let mut report = format!("JSONata suite: {passed}/{total} passed\n");
    for failure in &failures {
        let _ = writeln!(report, "  FAIL {failure}");
    }
    let _ = writeln!(report, "slowest cases:");
    for (elapsed, id) in slowest.iter().take(5) {
        let _ = writeln!(report, "  {elapsed:>10.1?} {id}");
    }
    println!("{report}");

    assert_eq!(total, TOTAL, "the fixture should hold the whole suite");
    assert!(
        passed >= MIN_PASSING,
        "only {passed}/{total} cases passed (need {MIN_PASSING})\n{report}"
    );
}

/// `Ok` when `outcome` is what the case expects, or a short description of the difference.
fn check(case: &Case, outcome: &Result<Option<Value>, MappingError>) -> Result<(), String> {
    match (case.expect.as_str(), outcome) {
        ("result", Ok(Some(got))) => {
            let same = if case.unordered {
                same_members(&case.result, got)
            } else {
                equivalent(&case.result, got)
            };
            if same {
                Ok(())
            } else {
                Err(format!(
                    "expected {}, got {}",
                    short(&case.result.to_string()),
                    short(&got.to_string())
                ))
            }
        }
        ("undefined", Ok(None)) => Ok(()),
        ("code", Err(err)) if Some(&err.code) == case.code.as_ref() => Ok(()),
        (expect, outcome) => {
            let expected = match expect {
                "result" => short(&case.result.to_string()),
                "code" => format!("error {}", case.code.as_deref().unwrap_or("?")),
                other => other.to_owned(),
            };
            let got = match outcome {
                Ok(Some(value)) => short(&value.to_string()),
                Ok(None) => "undefined".to_owned(),
                Err(err) => format!("error {}", short(&err.to_string())),
            };
            Err(format!("expected {expected}, got {got}"))
        }
    }
}

/// Deep equality as the suite means it: numbers compared numerically (1 == 1.0, floats within
/// a relative 1e-9), object keys in any order, array items in order.
fn equivalent(expected: &Value, got: &Value) -> bool {
    match (expected, got) {
        (Value::Number(a), Value::Number(b)) => match (a.as_f64(), b.as_f64()) {
            (Some(a), Some(b)) => a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()),
            _ => a == b,
        },
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| equivalent(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(key, x)| b.get(key).is_some_and(|y| equivalent(x, y)))
        }
        _ => expected == got,
    }
}

/// For `unordered` cases: the same items as `expected`, in any order.
fn same_members(expected: &Value, got: &Value) -> bool {
    let (Value::Array(expected), Value::Array(got)) = (expected, got) else {
        return equivalent(expected, got);
    };
    if expected.len() != got.len() {
        return false;
    }
    let mut used = vec![false; got.len()];
    expected.iter().all(|x| {
        let found = got
            .iter()
            .enumerate()
            .position(|(i, y)| !used[i] && equivalent(x, y));
        found.map(|i| used[i] = true).is_some()
    })
}

/// The `id` a case's line starts with (`{"id":"group/case000.json",...`).
fn leading_id(line: &str) -> Option<&str> {
    let rest = line.strip_prefix(r#"{"id":""#)?;
    rest.split('"').next()
}

/// At most 160 characters of `text`, for the report.
fn short(text: &str) -> String {
    const MAX: usize = 160;
    if text.chars().count() <= MAX {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(MAX).collect();
    cut.push('…');
    cut
}
