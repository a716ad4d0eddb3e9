//! Environments and their API keys: an environment manages its own keys (create, rotate,
//! revoke) and cannot see or touch another's; a revoked or rotated key stops working at once.

use serde_json::{Value, json};

use crate::common::{ADMIN_KEY, TestGateway};

const ME: &str = "{ environments { id name } }";

async fn works(t: &TestGateway, key: &str) -> bool {
    let r = t.gql(Some(key), ME, json!({})).await;
    match r.status.as_u16() {
        200 => true,
        401 => false,
        other => panic!("unexpected {other}: {}", r.body),
    }
}

fn made(r: &crate::common::Reply, field: &str) -> (String, String) {
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let m = &r.body["data"][field];
    (
        m["key"]["id"].as_str().unwrap().to_string(),
        m["apiKey"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn an_environment_creates_rotates_and_revokes_its_own_keys() {
    let t = TestGateway::start().await;
    let r = t.gql(Some(&t.env_key), ME, json!({})).await;
    assert_eq!(r.body["data"]["environments"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["data"]["environments"][0]["name"], "acme");

    let r = t
        .gql(
            Some(&t.env_key),
            "mutation { createApiKey { key { id prefix revokedAt } apiKey } }",
            json!({}),
        )
        .await;
    let (second_id, second) = made(&r, "createApiKey");
    assert!(
        second.starts_with(
            r.body["data"]["createApiKey"]["key"]["prefix"]
                .as_str()
                .unwrap()
        )
    );
    assert!(works(&t, &second).await);

    let r = t
        .gql(Some(&t.env_key), "{ apiKeys { id revokedAt } }", json!({}))
        .await;
    let keys = r.body["data"]["apiKeys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let first_id = keys.iter().find(|k| k["id"] != json!(second_id)).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Rotation: a new key that works, and the old one refused from the next request.
    let r = t
        .gql(
            Some(&second),
            "mutation($id: ID!) { rotateApiKey(id: $id) { key { id } apiKey } }",
            json!({"id": first_id}),
        )
        .await;
    let (_, rotated) = made(&r, "rotateApiKey");
    assert!(works(&t, &rotated).await);
    assert!(!works(&t, &t.env_key).await, "the rotated key still works");

    let r = t
        .gql(
            Some(&rotated),
            "mutation($id: ID!) { revokeApiKey(id: $id) { id revokedAt } }",
            json!({"id": second_id}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    assert!(r.body["data"]["revokeApiKey"]["revokedAt"].is_string());
    assert!(!works(&t, &second).await, "the revoked key still works");
    let r = t
        .gql(Some(&rotated), "{ apiKeys { revokedAt } }", json!({}))
        .await;
    let revoked = r.body["data"]["apiKeys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["revokedAt"].is_string())
        .count();
    assert_eq!(revoked, 2);
}

#[tokio::test]
async fn another_environment_cannot_see_or_touch_the_keys() {
    let t = TestGateway::start().await;
    let other = t.create_environment("globex").await;
    let r = t
        .gql(
            Some(&t.env_key),
            "{ apiKeys { id environmentId } }",
            json!({}),
        )
        .await;
    let acme_key = r.body["data"]["apiKeys"][0].clone();
    let acme_env = acme_key["environmentId"].as_str().unwrap();

    let r = t
        .gql(Some(&other), "{ apiKeys { id environmentId } }", json!({}))
        .await;
    let theirs = r.body["data"]["apiKeys"].as_array().unwrap();
    assert_eq!(theirs.len(), 1);
    assert_ne!(theirs[0]["environmentId"], json!(acme_env));
    let r = t.gql(Some(&other), ME, json!({})).await;
    assert_eq!(r.body["data"]["environments"][0]["name"], "globex");

    for (query, vars) in [
        (
            "query($e: ID) { apiKeys(environmentId: $e) { id } }",
            json!({"e": acme_env}),
        ),
        (
            "mutation($e: ID) { createApiKey(environmentId: $e) { apiKey } }",
            json!({"e": acme_env}),
        ),
        (
            "mutation($id: ID!) { rotateApiKey(id: $id) { apiKey } }",
            json!({"id": acme_key["id"]}),
        ),
        (
            "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
            json!({"id": acme_key["id"]}),
        ),
    ] {
        let r = t.gql(Some(&other), query, vars).await;
        assert_eq!(r.code(), Some("NOT_FOUND"), "{query}: {}", r.body);
    }
    assert!(works(&t, &t.env_key).await, "acme's key must still work");

    // The admin sees every environment and can make a key for any of them.
    let r = t.gql(Some(ADMIN_KEY), ME, json!({})).await;
    let names: Vec<&Value> = r.body["data"]["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["name"])
        .collect();
    assert_eq!(names.len(), 2);
    let r = t
        .gql(
            Some(ADMIN_KEY),
            "mutation($e: ID) { createApiKey(environmentId: $e) { key { id } apiKey } }",
            json!({"e": acme_env}),
        )
        .await;
    let (_, by_admin) = made(&r, "createApiKey");
    let r = t.gql(Some(&by_admin), ME, json!({})).await;
    assert_eq!(r.body["data"]["environments"][0]["name"], "acme");
}
