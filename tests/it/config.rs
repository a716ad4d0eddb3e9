//! `tessera check`, `tessera schema print`, and the promise that a field is data: an SDL
//! line plus a mapping line, no Rust change.

use serde_json::json;

use crate::common::{TestGateway, copy_dir, repo_path, tessera};

#[test]
fn the_shipped_schema_and_providers_pass_check() {
    let out = tessera(&["check"], None);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A copy of the shipped providers with `hubspot.json` edited by `edit`.
fn broken_copy(edit: impl Fn(&mut serde_json::Value)) -> (tempfile::TempDir, std::process::Output) {
    broken_copy_of("hubspot.json", edit)
}

/// A copy of the shipped providers with `file` edited by `edit`, and what `check` says.
fn broken_copy_of(
    file: &str,
    edit: impl Fn(&mut serde_json::Value),
) -> (tempfile::TempDir, std::process::Output) {
    let dir = tempfile::tempdir().unwrap();
    let providers = dir.path().join("providers");
    copy_dir(&repo_path("providers"), &providers);
    let path = providers.join(file);
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut doc);
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    let out = tessera(&["check", "--providers", providers.to_str().unwrap()], None);
    (dir, out)
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn check_points_at_an_invalid_jsonata_expression() {
    let (_dir, out) = broken_copy(|d| {
        d["resources"]["contacts"]["fields"]["firstName"] = json!("properties.firstname[")
    });
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("hubspot.json: /resources/contacts/fields/firstName: invalid JSONata: S0"),
        "{text}"
    );
}

#[test]
fn check_points_at_a_missing_records_path() {
    let (_dir, out) = broken_copy(|d| {
        d["resources"]["contacts"]["operations"]["list"]
            .as_object_mut()
            .unwrap()
            .remove("recordsPath");
    });
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains(
            "hubspot.json: /resources/contacts/operations/list: missing field `recordsPath`"
        ),
        "{text}"
    );
}

#[test]
fn check_points_at_an_unknown_auth_kind_and_unknown_fields() {
    let (_dir, out) = broken_copy(|d| d["auth"] = json!({"type": "magic"}));
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("hubspot.json: /auth/type: unknown variant `magic`"),
        "{text}"
    );
    let (_dir, out) =
        broken_copy(|d| d["resources"]["contacts"]["fields"]["nickName"] = json!("properties.x"));
    assert!(stdout(&out).contains("hubspot.json: /resources/contacts/fields/nickName: `nickName` is not an output field of `Contact`"), "{}", stdout(&out));
    let (_dir, out) = broken_copy(|d| d["pagination"]["cursorPath"] = json!("paging.next.after"));
    assert!(
        stdout(&out).contains(
            "hubspot.json: /pagination/cursorPath: `paging.next.after` is not a JSON pointer"
        ),
        "{}",
        stdout(&out)
    );
}

#[test]
fn check_points_into_a_bad_change_feed() {
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let at = "google.json: /resources/contacts/changes";
    let cases: Vec<(Edit, String)> = vec![
        (
            Box::new(|d| {
                d["resources"]["contacts"]["changes"]["nextTokenPath"] = json!("nextSyncToken")
            }),
            format!("{at}/nextTokenPath: `nextSyncToken` is not a JSON pointer"),
        ),
        (
            Box::new(|d| {
                d["resources"]["contacts"]["changes"]["deleted"] = json!("metadata.deleted =")
            }),
            format!("{at}/deleted: invalid JSONata"),
        ),
        (
            Box::new(|d| d["resources"]["contacts"]["changes"]["expired"] = json!("body.error[")),
            format!("{at}/expired: invalid JSONata"),
        ),
        (
            Box::new(|d| d["resources"]["contacts"]["changes"]["tokenParam"] = json!("pageToken")),
            format!(
                "{at}/tokenParam: `pageToken` is also a paging parameter of the `list` operation"
            ),
        ),
        (
            Box::new(|d| d["resources"]["contacts"]["changes"]["query"]["pageSize"] = json!("10")),
            format!("{at}/query/pageSize: `pageSize` is a paging parameter"),
        ),
        (
            Box::new(|d| {
                d["resources"]["contacts"]["changes"]
                    .as_object_mut()
                    .unwrap()
                    .remove("expired");
            }),
            format!("{at}: missing field `expired`"),
        ),
        (
            Box::new(|d| d["resources"]["contacts"]["changes"]["type"] = json!("delta_link")),
            format!("{at}/type: unknown variant `delta_link`"),
        ),
        (
            Box::new(|d| {
                d["resources"]["contacts"]["operations"]
                    .as_object_mut()
                    .unwrap()
                    .remove("list");
            }),
            format!("{at}: a change feed is read through the resource's `list` operation"),
        ),
    ];
    for (edit, expected) in cases {
        let (_dir, out) = broken_copy_of("google.json", edit);
        assert_eq!(out.status.code(), Some(1), "{expected}");
        let text = stdout(&out);
        assert!(
            text.contains(&expected),
            "expected `{expected}` in:\n{text}"
        );
    }
}

#[test]
fn check_reports_invalid_json_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let providers = dir.path().join("providers");
    copy_dir(&repo_path("providers"), &providers);
    std::fs::write(
        providers.join("hubspot.json"),
        "{\n  \"name\": \"hubspot\",\n  oops\n}",
    )
    .unwrap();
    let out = tessera(&["check", "--providers", providers.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out)
            .contains("hubspot.json: /: invalid JSON: key must be a string at line 3 column 3"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn schema_print_matches_what_introspection_serves() {
    let out = tessera(&["schema", "print"], None);
    assert!(out.status.success());
    let printed = stdout(&out);
    let model = tessera::schema::load_dir(&repo_path("schema")).unwrap();
    assert_eq!(printed, tessera::graphql::print_sdl(&model).unwrap());
    for needle in [
        "type Contact implements Node",
        "): ContactConnection!",
        "accountId: ID!",
        "after: String",
        "customFields: JSON",
        "remoteData: JSON",
        "interface Node",
    ] {
        assert!(
            printed.contains(needle),
            "missing `{needle}` in:\n{printed}"
        );
    }
}

#[tokio::test]
async fn introspection_lists_the_printed_types() {
    let t = TestGateway::start().await;
    let r = t
        .gql(
            Some(&t.env_key),
            "{ __schema { types { name kind } } }",
            json!({}),
        )
        .await;
    let printed = stdout(&tessera(&["schema", "print"], None));
    for ty in r.body["data"]["__schema"]["types"].as_array().unwrap() {
        let name = ty["name"].as_str().unwrap();
        if name.starts_with("__") || ["String", "Int", "Float", "Boolean", "ID"].contains(&name) {
            continue;
        }
        let keyword = match ty["kind"].as_str().unwrap() {
            "OBJECT" => "type",
            "SCALAR" => "scalar",
            "ENUM" => "enum",
            "INTERFACE" => "interface",
            "INPUT_OBJECT" => "input",
            other => panic!("unexpected kind {other}"),
        };
        assert!(
            printed.contains(&format!("{keyword} {name}")),
            "introspection has {keyword} {name}, print does not"
        );
    }
}

#[tokio::test]
async fn a_new_sdl_field_plus_a_mapping_line_is_served_without_rust_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (schema, providers) = (dir.path().join("schema"), dir.path().join("providers"));
    copy_dir(&repo_path("schema"), &schema);
    copy_dir(&repo_path("providers"), &providers);
    let sdl = std::fs::read_to_string(schema.join("crm.graphql")).unwrap();
    let sdl = sdl.replacen(
        "  firstName: String\n",
        "  firstName: String\n  \"Shouted first name.\"\n  nickname: String\n",
        1,
    );
    std::fs::write(schema.join("crm.graphql"), sdl).unwrap();
    let path = providers.join("hubspot.json");
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    doc["resources"]["contacts"]["fields"]["nickname"] =
        json!("$uppercase(properties.firstname) & '!'");
    std::fs::write(&path, serde_json::to_string(&doc).unwrap()).unwrap();

    let t = TestGateway::start_with(&schema, &providers).await;
    let r = t
        .gql(Some(&t.env_key), "query($a: ID!) { contacts(accountId: $a, first: 3) { edges { node { firstName nickname } } } }", json!({"a": t.account_id}))
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    for edge in r.body["data"]["contacts"]["edges"].as_array().unwrap() {
        let first = edge["node"]["firstName"].as_str().unwrap();
        assert_eq!(
            edge["node"]["nickname"],
            json!(format!("{}!", first.to_uppercase()))
        );
    }
}

#[test]
fn the_committed_provider_json_schema_is_generated_from_the_code() {
    let committed = std::fs::read_to_string(repo_path("providers/provider.schema.json")).unwrap();
    assert_eq!(
        committed,
        tessera::config::provider_json_schema(),
        "providers/provider.schema.json is stale: run `cargo run -- schema providers > providers/provider.schema.json`"
    );
    for entry in std::fs::read_dir(repo_path("providers")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.ends_with(".json") && !name.ends_with(".schema.json") {
            let doc: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            assert_eq!(
                doc["$schema"], "./provider.schema.json",
                "{name} must reference the schema so editors validate it"
            );
        }
    }
}

#[test]
fn check_type_checks_mappings_on_sandbox_samples() {
    let (_dir, out) = broken_copy(|d| {
        d["resources"]["companies"]["fields"]["employees"] = json!("properties.name")
    });
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("hubspot.json: /resources/companies/fields/employees: on sample record 0 (samples/hubspot/companies.json) the value does not fit `Int`"), "{text}");
}

/// Sample files are provider data and are checked as strictly as provider files.
#[test]
fn check_names_the_sample_file_and_place_that_is_wrong() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "hubspot/contacts.json",
            "[{\"id\": 1},\n  oops]",
            "contacts.json: 2:3: invalid JSON",
        ),
        (
            "hubspot/contacts.json",
            "[{\"id\": 1}, 7]",
            "contacts.json: /1: a sample record must be a JSON object",
        ),
        (
            "hubspot/contacts.json",
            "{}",
            "contacts.json: /: must be a JSON array",
        ),
        (
            "hubspot/widgets.json",
            "[{}]",
            "widgets.json: /: provider `hubspot` declares no resource `widgets`",
        ),
        (
            "nosuchvendor/contacts.json",
            "[{}]",
            "nosuchvendor: /: no provider file declares a provider named `nosuchvendor`",
        ),
    ];
    for (file, text, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let providers = dir.path().join("providers");
        copy_dir(&repo_path("providers"), &providers);
        let path = providers.join("samples").join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        let out = tessera(&["check", "--providers", providers.to_str().unwrap()], None);
        assert_eq!(out.status.code(), Some(1), "{file}");
        assert!(stdout(&out).contains(expected), "{file}: {}", stdout(&out));
    }
}

#[test]
fn tessera_map_evaluates_with_the_gateways_engine() {
    let out = tessera(
        &[
            "map",
            "--expr",
            "properties.firstname & ' ' & properties.lastname",
        ],
        Some(r#"{"properties": {"firstname": "Ada", "lastname": "Lovelace"}}"#),
    );
    assert!(out.status.success());
    assert_eq!(stdout(&out).trim(), "\"Ada Lovelace\"");
    let out = tessera(
        &["map", "--expr", "$x * 2", "--bindings", r#"{"x": 21}"#],
        Some(""),
    );
    assert_eq!(stdout(&out).trim(), "42");
    // Expressions that start with `-` are expressions, not flags.
    let out = tessera(&["map", "--expr", "-5 ?: 99"], Some(""));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout(&out).trim(), "-5");
    let out = tessera(&["map", "--expr", "-x"], Some(""));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = tessera(&["map", "--expr", "nothing"], Some("{}"));
    assert!(out.status.success());
    assert_eq!(stdout(&out), "", "undefined prints nothing");
    let out = tessera(&["map", "--expr", "[1,2"], Some("{}"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("S0"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = tessera(&["map", "--expr", "1 + 'a'"], Some(""));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("T2002"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Breaks a copy of `provider`'s file with `edit` and returns `tessera check`'s output.
fn check_broken(provider: &str, edit: impl Fn(&mut serde_json::Value)) -> String {
    let dir = tempfile::tempdir().unwrap();
    let providers = dir.path().join("providers");
    copy_dir(&repo_path("providers"), &providers);
    let path = providers.join(format!("{provider}.json"));
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut doc);
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    let out = tessera(&["check", "--providers", providers.to_str().unwrap()], None);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{provider}: a broken file must fail check"
    );
    stdout(&out)
}

#[test]
fn every_provider_file_broken_three_ways_fails_check_at_the_right_pointer() {
    for entry in std::fs::read_dir(repo_path("providers")).unwrap() {
        let name = entry.unwrap().file_name().to_str().unwrap().to_string();
        let Some(provider) = name
            .strip_suffix(".json")
            .filter(|n| !n.ends_with(".schema"))
        else {
            continue;
        };
        let doc: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(repo_path(&format!("providers/{name}"))).unwrap(),
        )
        .unwrap();

        // The pagination's path to the next page, whatever the strategy calls it.
        let key = [
            "cursorPath",
            "tokenPath",
            "nextUrlPath",
            "pageParam",
            "offsetParam",
            "limitParam",
        ]
        .into_iter()
        .find(|k| doc["pagination"].get(*k).is_some())
        .unwrap_or_else(|| panic!("{provider}: no pagination path to remove"));
        let text = check_broken(provider, |d| {
            d["pagination"].as_object_mut().unwrap().remove(key);
        });
        assert!(
            text.contains(&format!("{name}: /pagination: missing field `{key}`")),
            "{provider}: {text}"
        );

        let (resource, field) = doc["resources"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(r, v)| {
                (
                    r.clone(),
                    v["fields"]
                        .as_object()
                        .unwrap()
                        .keys()
                        .next()
                        .unwrap()
                        .clone(),
                )
            })
            .next()
            .unwrap();
        let text = check_broken(provider, |d| {
            d["resources"][&resource]["fields"][&field] = json!("$substring((")
        });
        assert!(
            text.contains(&format!(
                "{name}: /resources/{resource}/fields/{field}: invalid JSONata: S0"
            )),
            "{provider}: {text}"
        );

        let text = check_broken(provider, |d| d["auth"]["type"] = json!("telepathy"));
        assert!(
            text.contains(&format!("{name}: /auth/type: unknown variant `telepathy`")),
            "{provider}: {text}"
        );
    }
}

#[tokio::test]
async fn every_type_and_field_is_described() {
    let t = TestGateway::start().await;
    let r = t
        .gql(Some(&t.env_key), "{ __schema { types { name kind description fields { name description } inputFields { name description } } } }", json!({}))
        .await;
    let mut missing = Vec::new();
    for ty in r.body["data"]["__schema"]["types"].as_array().unwrap() {
        let name = ty["name"].as_str().unwrap();
        if name.starts_with("__") || ["String", "Int", "Float", "Boolean", "ID"].contains(&name) {
            continue;
        }
        if ty["description"].as_str().is_none_or(str::is_empty) {
            missing.push(name.to_string());
        }
        for list in ["fields", "inputFields"] {
            for f in ty[list].as_array().into_iter().flatten() {
                if f["description"].as_str().is_none_or(str::is_empty) {
                    missing.push(format!("{name}.{}", f["name"].as_str().unwrap()));
                }
            }
        }
    }
    assert!(missing.is_empty(), "undescribed: {}", missing.join(", "));
}

#[test]
fn the_committed_sdl_snapshot_matches_what_is_served() {
    let model = tessera::schema::load_dir(&repo_path("schema")).unwrap();
    let served = tessera::graphql::print_sdl(&model).unwrap();
    let committed =
        std::fs::read_to_string(repo_path("schema/crm.snapshot.graphql")).unwrap_or_default();
    assert!(
        committed == served,
        "the served schema changed: review the difference, then run `cargo run -- schema print > schema/crm.snapshot.graphql` and commit it"
    );
}

#[tokio::test]
async fn depth_limits_answer_bad_user_input_and_introspection_can_be_turned_off() {
    let t = TestGateway::start().await;
    let deep = format!(
        "{{ __schema {{ types {{ fields {{ type {} name {} }} }} }} }}",
        "{ ofType ".repeat(14),
        "} ".repeat(14)
    );
    let deep = deep.as_str();
    let r = t.gql(Some(&t.env_key), deep, json!({})).await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("too deep"),
        "{}",
        r.body
    );

    let dir = tempfile::tempdir().unwrap();
    let gateway = tessera::app::Gateway::build(tessera::app::GatewayConfig {
        database_url: format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display()),
        providers_dir: repo_path("providers"),
        schema_dir: repo_path("schema"),
        upstreams: tessera::upstreams::AllowList::any_private(),
        secret_key: tessera::credentials::SecretKey::generate(),
        playground_key: None,
        introspection: false,
        refresh_every: None,
        public_url: None,
        probe_interval: None,
        watch_interval: None,
    })
    .await
    .unwrap();
    gateway.ensure_environment("e", "env-key").await.unwrap();
    let running = tessera::app::RunningGateway::start(gateway, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let body = json!({"query": "{ __schema { types { name } } }"});
    let r: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/graphql", running.url()))
        .bearer_auth("env-key")
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        r["data"]["__schema"].is_null() && !r["errors"].is_null(),
        "introspection must be refused: {r}"
    );
    let body = json!({"query": "{ linkedAccounts { id } }"});
    let r: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/graphql", running.url()))
        .bearer_auth("env-key")
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["data"]["linkedAccounts"], json!([]), "{r}");
    running.stop().await;
}
