//! The sandbox Copper over real HTTP: its three authentication headers, search paging in
//! a POST body answered as a bare array with `X-PW-TOTAL`, writes, errors and 429s.

use std::net::SocketAddr;

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use tessera_sandbox::{COPPER_DEMO_KEY, Sandbox};

const OWNER: &str = "kadri.lepik@sandbox-copper.example";

async fn sandbox() -> (Sandbox, Client) {
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    (Sandbox::spawn(listen).await.unwrap(), Client::new())
}

async fn call(
    s: &Sandbox,
    http: &Client,
    method: Method,
    path: &str,
    email: &str,
    body: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = http
        .request(
            method,
            format!("{}/copper/developer_api/v1{path}", s.base_url()),
        )
        .header("X-PW-AccessToken", COPPER_DEMO_KEY)
        .header("X-PW-Application", "developer_api")
        .header("X-PW-UserEmail", email);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    (status, headers, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn search_pages_are_bare_arrays_with_the_total_in_a_header() {
    let (s, http) = sandbox().await;
    let mut seen = 0;
    for page in 1.. {
        let (status, headers, body) = call(
            &s,
            &http,
            Method::POST,
            "/companies/search",
            OWNER,
            Some(json!({"page_number": page, "page_size": 100, "sort_by": "date_created"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["x-pw-total"], "260");
        let list = body.as_array().expect("a bare array");
        seen += list.len();
        if list.len() < 100 {
            break;
        }
    }
    assert_eq!(seen, 260);
    // The default page is 20; more than 200 is refused.
    let (_, _, body) = call(
        &s,
        &http,
        Method::POST,
        "/people/search",
        OWNER,
        Some(json!({})),
    )
    .await;
    assert_eq!(body.as_array().unwrap().len(), 20);
    let (status, _, body) = call(
        &s,
        &http,
        Method::POST,
        "/people/search",
        OWNER,
        Some(json!({"page_size": 201})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["success"], false);
    // By id, and by email.
    let (_, _, body) = call(
        &s,
        &http,
        Method::POST,
        "/people/search",
        OWNER,
        Some(json!({"ids": [78_757_050, 1]})),
    )
    .await;
    assert_eq!(body.as_array().unwrap().len(), 1);
    let (_, _, body) = call(
        &s,
        &http,
        Method::POST,
        "/people/search",
        OWNER,
        Some(json!({"emails": ["ADA.LOVELACE1@acme-corp.example"]})),
    )
    .await;
    assert_eq!(body[0]["id"], 78_757_050);
}

#[tokio::test]
async fn the_three_headers_are_needed_and_the_email_must_be_the_owners() {
    let (s, http) = sandbox().await;
    let (status, _, body) = call(
        &s,
        &http,
        Method::GET,
        "/people/78757050",
        "x@y.example",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["status"], 401);
    let r = http
        .get(format!(
            "{}/copper/developer_api/v1/people/78757050",
            s.base_url()
        ))
        .header("X-PW-AccessToken", COPPER_DEMO_KEY)
        .header("X-PW-UserEmail", OWNER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "no X-PW-Application");
    let (status, _, person) = call(&s, &http, Method::GET, "/people/78757050", OWNER, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(person["date_created"].is_i64(), "unix seconds");
}

#[tokio::test]
async fn put_changes_only_what_it_names_and_delete_says_so() {
    let (s, http) = sandbox().await;
    let (status, _, created) = call(
        &s,
        &http,
        Method::POST,
        "/people",
        OWNER,
        Some(json!({"name": "Ada Byron", "emails": [{"email": "ada@example.com", "category": "work"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["first_name"], "Ada");
    assert_eq!(created["last_name"], "Byron");
    let id = created["id"].as_i64().unwrap();
    let (_, _, put) = call(
        &s,
        &http,
        Method::PUT,
        &format!("/people/{id}"),
        OWNER,
        Some(json!({"title": "Countess", "custom_fields": [{"custom_field_definition_id": 100_764, "value": "Gold"}]})),
    )
    .await;
    assert_eq!(put["name"], "Ada Byron");
    assert_eq!(put["title"], "Countess");
    assert_eq!(put["emails"][0]["email"], "ada@example.com");
    let (status, _, _) = call(
        &s,
        &http,
        Method::PUT,
        &format!("/people/{id}"),
        OWNER,
        Some(json!({"custom_fields": [{"custom_field_definition_id": 1, "value": "x"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _, body) = call(
        &s,
        &http,
        Method::DELETE,
        &format!("/people/{id}"),
        OWNER,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"id": id, "is_deleted": true}));
    let (status, _, body) = call(
        &s,
        &http,
        Method::GET,
        &format!("/people/{id}"),
        OWNER,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["message"], "Resource not found");
}

#[tokio::test]
async fn a_spent_minute_is_a_429_with_no_rate_headers() {
    let (s, http) = sandbox().await;
    http.post(format!("{}/_control/ratelimit", s.base_url()))
        .json(&json!({"provider": "copper", "max": 1, "intervalMs": 60_000}))
        .send()
        .await
        .unwrap();
    let (first, _, _) = call(
        &s,
        &http,
        Method::POST,
        "/people/search",
        OWNER,
        Some(json!({})),
    )
    .await;
    assert_eq!(first, StatusCode::OK);
    let (status, headers, body) = call(
        &s,
        &http,
        Method::POST,
        "/people/search",
        OWNER,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.get("retry-after").is_none());
    assert!(headers.keys().all(|k| !k.as_str().contains("ratelimit")));
    assert_eq!(body["status"], 429);
}
