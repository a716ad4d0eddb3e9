//! The sandbox Attio over real HTTP: offset paging in a POST body, typed value arrays,
//! Attio's error envelope and quirks, its 429 with an HTTP-date `Retry-After`.

use std::net::SocketAddr;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tessera_sandbox::{ATTIO_DEMO_TOKEN, Sandbox};

async fn sandbox() -> (Sandbox, Client) {
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    (Sandbox::spawn(listen).await.unwrap(), Client::new())
}

async fn post(s: &Sandbox, http: &Client, path: &str, body: Value) -> (StatusCode, Value) {
    let r = http
        .post(format!("{}/attio/v2{path}", s.base_url()))
        .bearer_auth(ATTIO_DEMO_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn people_page_by_offset_until_a_short_page() {
    let (s, http) = sandbox().await;
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let (status, body) = post(
            &s,
            &http,
            "/objects/people/records/query",
            json!({"limit": 100, "offset": offset}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body.as_object().unwrap().keys().collect::<Vec<_>>(),
            vec!["data"],
            "no cursor, no has-more flag"
        );
        let page = body["data"].as_array().unwrap();
        seen.extend(page.iter().map(|r| r["id"]["record_id"].clone()));
        offset += page.len();
        if page.len() < 100 {
            break;
        }
    }
    assert_eq!(seen.len(), 260);
    // Objects are addressed by id as well as by slug.
    let person = &post(
        &s,
        &http,
        "/objects/people/records/query",
        json!({"limit": 1}),
    )
    .await
    .1["data"][0];
    let by_id = post(
        &s,
        &http,
        &format!(
            "/objects/{}/records/query",
            person["id"]["object_id"].as_str().unwrap()
        ),
        json!({"limit": 1}),
    )
    .await;
    assert_eq!(&by_id.1["data"][0], person);
    // Every value is an array of typed value objects.
    let name = &person["values"]["name"][0];
    assert_eq!(name["attribute_type"], "personal-name");
    assert!(name["active_until"].is_null() && name["active_from"].is_string());
    assert_eq!(
        person["values"]["customer_tier"][0]["option"]["title"],
        "Gold"
    );
    assert_eq!(person["values"]["description"], json!([]), "empty: []");
}

#[tokio::test]
async fn quirks_and_errors_are_attios() {
    let (s, http) = sandbox().await;
    // GET on the query path: 404, not 405.
    let r = http
        .get(format!(
            "{}/attio/v2/objects/people/records/query",
            s.base_url()
        ))
        .bearer_auth(ATTIO_DEMO_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], "invalid_request_error");
    assert_eq!(body["code"], "not_found");
    assert_eq!(body["status_code"], 404);

    let (status, body) = post(
        &s,
        &http,
        "/objects/people/records/query",
        json!({"limit": 501}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "validation_type", "{body}");
    let (status, body) = post(
        &s,
        &http,
        "/objects/people/records/query",
        json!({"filter": {"shoe_size": 42}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "filter_error", "{body}");
    let (status, body) = post(&s, &http, "/objects/spaceships/records/query", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let r = http
        .post(format!(
            "{}/attio/v2/objects/people/records/query",
            s.base_url()
        ))
        .bearer_auth("not-a-key")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], "auth_error");
}

#[tokio::test]
async fn writes_take_plain_values_and_patch_appends_while_put_overwrites() {
    let (s, http) = sandbox().await;
    let (status, created) = post(
        &s,
        &http,
        "/objects/people/records",
        json!({"data": {"values": {"name": [{"first_name": "Ada", "last_name": "Byron"}],
            "email_addresses": ["Ada@Example.com"], "customer_tier": "Silver"}}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let v = &created["data"]["values"];
    assert_eq!(v["name"][0]["full_name"], "Ada Byron");
    assert_eq!(v["email_addresses"][0]["email_address"], "ada@example.com");
    assert_eq!(
        v["email_addresses"][0]["created_by_actor"]["type"],
        "api-token"
    );
    let id = created["data"]["id"]["record_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = format!("{}/attio/v2/objects/people/records/{id}", s.base_url());
    let write = |method: reqwest::Method, body: Value| {
        http.request(method, &url)
            .bearer_auth(ATTIO_DEMO_TOKEN)
            .json(&body)
            .send()
    };
    let more = json!({"data": {"values": {"email_addresses": ["second@example.com"]}}});
    let patched: Value = write(reqwest::Method::PATCH, more)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        patched["data"]["values"]["email_addresses"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "PATCH appends"
    );
    assert_eq!(
        patched["data"]["values"]["name"][0]["last_name"], "Byron",
        "untouched"
    );
    let only = json!({"data": {"values": {"email_addresses": ["only@example.com"]}}});
    let put: Value = write(reqwest::Method::PUT, only)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        put["data"]["values"]["email_addresses"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "PUT overwrites"
    );
    let r = write(reqwest::Method::DELETE, json!({})).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = http
        .get(&url)
        .bearer_auth(ATTIO_DEMO_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let (status, body) = post(
        &s,
        &http,
        "/objects/people/records",
        json!({"data": {"values": {"customer_tier": "Platinum"}}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().unwrap().contains("Platinum"),
        "{body}"
    );
}

#[tokio::test]
async fn a_spent_window_is_a_429_with_an_http_date_and_no_rate_headers() {
    let (s, http) = sandbox().await;
    let r = http
        .post(format!("{}/_control/ratelimit", s.base_url()))
        .json(&json!({"provider": "attio", "max": 1, "intervalMs": 60_000}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let (first, _) = post(&s, &http, "/objects/deals/records/query", json!({})).await;
    assert_eq!(first, StatusCode::OK);
    let r = http
        .post(format!(
            "{}/attio/v2/objects/deals/records/query",
            s.base_url()
        ))
        .bearer_auth(ATTIO_DEMO_TOKEN)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry = r.headers()["retry-after"].to_str().unwrap().to_owned();
    assert!(retry.ends_with(" GMT"), "an HTTP date: {retry}");
    assert!(r.headers().get("x-ratelimit-remaining").is_none());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], "rate_limit_error");
    assert_eq!(body["code"], "rate_limit_exceeded");
}
