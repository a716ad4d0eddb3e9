//! The sandbox Close over real HTTP: HTTP Basic with the API key, `_skip`/`_limit` paging
//! with `has_more`, leads embedding their contacts, field errors, the `RateLimit` header.

use std::net::SocketAddr;

use base64::Engine as _;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use tessera_sandbox::{CLOSE_DEMO_KEY, Sandbox};

async fn sandbox() -> (Sandbox, Client) {
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    (Sandbox::spawn(listen).await.unwrap(), Client::new())
}

fn basic(key: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
    )
}

async fn call(
    s: &Sandbox,
    http: &Client,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = http
        .request(method, format!("{}/close/api/v1{path}", s.base_url()))
        .header("authorization", basic(CLOSE_DEMO_KEY));
    if let Some(body) = body {
        req = req.json(&body);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    (status, headers, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn contacts_page_with_skip_and_has_more() {
    let (s, http) = sandbox().await;
    let mut seen = 0;
    let mut skip = 0;
    loop {
        let (status, headers, body) = call(
            &s,
            &http,
            Method::GET,
            &format!("/contact/?_skip={skip}&_limit=100"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let rate = headers["ratelimit"].to_str().unwrap();
        assert!(rate.starts_with("limit=100, remaining="), "{rate}");
        let page = body["data"].as_array().unwrap();
        seen += page.len();
        skip += page.len();
        if !body["has_more"].as_bool().unwrap() {
            break;
        }
    }
    assert_eq!(seen, 260);
    let (status, _, body) = call(&s, &http, Method::GET, "/contact/?_limit=101", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["field-errors"]["_limit"].is_string(), "{body}");
    // `_fields` narrows each record; leads embed their contacts and count the total.
    let (_, _, leads) = call(&s, &http, Method::GET, "/lead/?_limit=1", None).await;
    assert_eq!(leads["total_results"], 260);
    let lead = &leads["data"][0];
    assert_eq!(lead["contacts"][0]["lead_id"], lead["id"]);
    let (_, _, narrow) = call(
        &s,
        &http,
        Method::GET,
        "/contact/?_limit=1&_fields=id,name",
        None,
    )
    .await;
    assert_eq!(
        narrow["data"][0]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec!["id", "name"]
    );
}

#[tokio::test]
async fn a_lead_query_on_date_updated_narrows_the_listing_and_others_are_refused() {
    let (s, http) = sandbox().await;
    let (status, _, all) = call(&s, &http, Method::GET, "/lead/?_limit=100&_fields=id,date_updated&query=date_updated%20%3E%20%222024-05-01T00%3A00%3A00Z%22", None).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let total = all["total_results"].as_u64().unwrap();
    assert!(total > 0 && total < 260, "{total}");
    for lead in all["data"].as_array().unwrap() {
        assert!(
            lead["date_updated"].as_str().unwrap() > "2024-05-01",
            "{lead}"
        );
    }
    let (status, _, body) = call(&s, &http, Method::GET, "/lead/?query=name%3Afoo", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["field-errors"]["query"].is_string(), "{body}");
}

#[tokio::test]
async fn the_key_goes_as_the_basic_user_name() {
    let (s, http) = sandbox().await;
    let r = http
        .get(format!("{}/close/api/v1/contact/", s.base_url()))
        .header("authorization", basic("wrong-key"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
}

#[tokio::test]
async fn writes_patch_derive_and_refuse_unknown_fields() {
    let (s, http) = sandbox().await;
    // A contact without a lead gets one of its own.
    let (status, _, c) = call(
        &s,
        &http,
        Method::POST,
        "/contact/",
        Some(json!({"name": "Ada Byron", "emails": [{"type": "office", "email": "Ada@Example.com"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["emails"][0]["email_lower"], "ada@example.com");
    let lead = c["lead_id"].as_str().unwrap();
    let (_, _, l) = call(&s, &http, Method::GET, &format!("/lead/{lead}/"), None).await;
    assert_eq!(l["name"], "Ada Byron");
    // PUT is a patch.
    let id = c["id"].as_str().unwrap();
    let (_, _, put) = call(
        &s,
        &http,
        Method::PUT,
        &format!("/contact/{id}/"),
        Some(json!({"title": "Countess"})),
    )
    .await;
    assert_eq!(put["name"], "Ada Byron");
    assert_eq!(put["title"], "Countess");
    let (status, _, body) = call(
        &s,
        &http,
        Method::POST,
        "/opportunity/",
        Some(json!({"note": "no lead"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field-errors"]["lead_id"], "This field is required.");
    let (status, _, o) = call(
        &s,
        &http,
        Method::POST,
        "/opportunity/",
        Some(json!({"lead_id": lead, "value": 250_050, "value_currency": "USD", "confidence": 40})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{o}");
    assert_eq!(o["value_formatted"], "$2,500.50");
    assert_eq!(o["expected_value"], 100_020);
    assert_eq!(o["status_type"], "active");
    let (status, _, body) = call(
        &s,
        &http,
        Method::POST,
        "/lead/",
        Some(json!({"name": "X", "custom.cf_unknown": 1, "shoe_size": 42})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["field-errors"]["custom.cf_unknown"].is_string(),
        "{body}"
    );
    assert!(body["field-errors"]["shoe_size"].is_string(), "{body}");
    let (status, _, body) = call(&s, &http, Method::DELETE, &format!("/contact/{id}/"), None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    let (status, _, _) = call(&s, &http, Method::GET, &format!("/contact/{id}/"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_spent_window_is_a_429_with_retry_after_and_the_reset_in_the_body() {
    let (s, http) = sandbox().await;
    http.post(format!("{}/_control/ratelimit", s.base_url()))
        .json(&json!({"provider": "close", "max": 1, "intervalMs": 10_000}))
        .send()
        .await
        .unwrap();
    let (first, _, _) = call(&s, &http, Method::GET, "/lead/?_limit=1", None).await;
    assert_eq!(first, StatusCode::OK);
    let (status, headers, body) = call(&s, &http, Method::GET, "/lead/?_limit=1", None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=10).contains(&retry));
    assert!(
        headers["ratelimit"]
            .to_str()
            .unwrap()
            .contains("remaining=0")
    );
    assert!(
        body["error"]["rate_reset"].as_f64().unwrap() > 0.0,
        "{body}"
    );
}
