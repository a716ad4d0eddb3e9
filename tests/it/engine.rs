//! The engine's strategies against a small vendor written here, for the patterns no
//! sandbox vendor uses (RFC 8288 Link headers, offset with a has-more flag, paging in a
//! JSON body, stop on a short page) and for every auth placement.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tessera::config::ProviderModel;
use tessera::engine::{AccountHandle, Engine, EngineError, EngineOptions};

use crate::common::repo_path;

const TOTAL: usize = 23;

fn record(i: usize) -> Value {
    json!({"id": format!("r{i}"), "name": format!("Name {i}")})
}

#[derive(Clone)]
struct Vendor {
    base: String,
}

async fn link(State(v): State<Vendor>, Query(q): Query<HashMap<String, String>>) -> Response {
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(5);
    let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(0);
    let items: Vec<Value> = (page * limit..((page + 1) * limit).min(TOTAL))
        .map(record)
        .collect();
    let mut headers = HeaderMap::new();
    if (page + 1) * limit < TOTAL {
        let next = format!(
            "<{}/link?limit={limit}&page={}>; rel=\"next\", <{}/link?page=0>; rel=\"first\"",
            v.base,
            page + 1,
            v.base
        );
        headers.insert("link", HeaderValue::from_str(&next).unwrap());
    }
    (headers, Json(Value::Array(items))).into_response()
}

/// Offset paging in a JSON body; `has_more` only when asked for with `flag`.
async fn offset_body(
    Query(q): Query<HashMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    let (Some(offset), Some(limit)) = (body["offset"].as_u64(), body["limit"].as_u64()) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "offset and limit are required in the body"})),
        )
            .into_response();
    };
    let (offset, limit) = (offset as usize, limit as usize);
    let items: Vec<Value> = (offset..(offset + limit).min(TOTAL)).map(record).collect();
    let mut out = json!({"data": items});
    if q.contains_key("flag") {
        out["has_more"] = json!(offset + limit < TOTAL);
    }
    Json(out).into_response()
}

/// A search endpoint in the style of HubSpot's: POST, the term and the cursor in the body.
async fn search(Json(body): Json<Value>) -> Response {
    let Some(term) = body["query"].as_str() else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "query is required"})),
        )
            .into_response();
    };
    let after: usize = body["after"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    let limit = body["limit"].as_u64().unwrap_or(2) as usize;
    let hits: Vec<Value> = (0..TOTAL)
        .map(record)
        .filter(|r| r["name"].as_str().unwrap().contains(term))
        .collect();
    let page: Vec<Value> = hits.iter().skip(after).take(limit).cloned().collect();
    let mut out = json!({"results": page, "sort": body["sort"].clone()});
    if after + limit < hits.len() {
        out["paging"] = json!({"next": {"after": (after + limit).to_string()}});
    }
    Json(out).into_response()
}

/// A vendor that never ends: every page has a new cursor and a new record.
async fn endless(Query(q): Query<HashMap<String, String>>) -> Json<Value> {
    let n: usize = q.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
    Json(json!({"items": [record(n)], "next": (n + 1).to_string()}))
}

async fn foreign_next() -> Json<Value> {
    Json(json!({"items": [record(0)], "next": "http://elsewhere.invalid/steal"}))
}

/// Echoes what credentials arrived with, as one record.
async fn echo(headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Json<Value> {
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Json(json!({"items": [{
        "id": "echo",
        "name": json!({
            "authorization": h("authorization"),
            "x-pw-accesstoken": h("x-pw-accesstoken"),
            "x-pw-application": h("x-pw-application"),
            "x-pw-useremail": h("x-pw-useremail"),
            "api_token": q.get("api_token"),
        }).to_string(),
    }]}))
}

async fn start_vendor() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/link", get(link))
        .route("/offset", post(offset_body))
        .route("/search", post(search))
        .route(
            "/empty-null",
            get(|| async { Json(json!({"data": null, "success": true})) }),
        )
        .route("/endless", get(endless))
        .route("/foreign", get(foreign_next))
        .route("/echo", get(echo))
        .with_state(Vendor { base: base.clone() });
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// A provider file for the test vendor with `pagination`, `auth` and a list operation.
fn provider(name: &str, pagination: Value, auth: Value, list: Value) -> Arc<ProviderModel> {
    provider_with(name, pagination, auth, json!({ "list": list }))
}

fn provider_with(
    name: &str,
    pagination: Value,
    auth: Value,
    operations: Value,
) -> Arc<ProviderModel> {
    let doc = json!({
        "name": name,
        "displayName": name,
        "settings": {"email": {"default": "owner@example.com"}},
        "baseUrl": "https://api.example.com",
        "auth": auth,
        "pagination": pagination,
        "resources": {"contacts": {"fields": {"firstName": "name"}, "operations": operations}}
    });
    let model = tessera::schema::load_dir(&repo_path("schema")).unwrap();
    let engine = tessera::mapping::default_engine();
    let p = tessera::config::load_file_text(
        std::path::Path::new(&format!("{name}.json")),
        &doc.to_string(),
        &model,
        engine.as_ref(),
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    Arc::new(p)
}

fn account(base: &str, provider: Arc<ProviderModel>) -> AccountHandle {
    AccountHandle {
        id: "acc".into(),
        base_url: url::Url::parse(base).unwrap(),
        provider,
        token: tessera::secret::Secret::new("tok-123"),
        settings: json!({}),
        spend: Default::default(),
    }
}

fn engine() -> Engine {
    // The tests' vendors listen on loopback.
    let upstreams = tessera::upstreams::AllowList::parse(["127.0.0.1/32"]).unwrap();
    Engine::new(
        [9; 32],
        EngineOptions::default(),
        std::sync::Arc::new(upstreams),
    )
    .unwrap()
}

/// Every record, `first` at a time, through the engine's cursors.
async fn walk(
    engine: &Engine,
    acc: &AccountHandle,
    first: usize,
) -> Result<Vec<String>, EngineError> {
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = engine
            .list(
                acc,
                "contacts",
                first,
                after.as_deref(),
                &Default::default(),
            )
            .await?;
        ids.extend(page.edges.iter().map(|e| e.record.remote_id.clone()));
        if !page.has_next_page {
            return Ok(ids);
        }
        after = page.edges.last().map(|e| e.cursor.clone());
    }
}

fn expected() -> Vec<String> {
    (0..TOTAL).map(|i| format!("r{i}")).collect()
}

#[tokio::test]
async fn link_header_pagination_follows_rel_next() {
    let base = start_vendor().await;
    let p = provider(
        "links",
        json!({"type": "link_header", "limitParam": "limit", "maxPageSize": 5}),
        json!({"type": "bearer"}),
        json!({"path": "/link", "recordsPath": ""}),
    );
    let acc = account(&base, p);
    let e = engine();
    for first in [3, 5, 7, 100] {
        assert_eq!(
            walk(&e, &acc, first).await.unwrap(),
            expected(),
            "first={first}"
        );
    }
}

#[tokio::test]
async fn offset_in_a_json_body_with_a_has_more_flag_or_a_short_page() {
    let base = start_vendor().await;
    let e = engine();
    for (name, query, has_more) in [
        ("flagged", json!({"flag": "1"}), Some("/has_more")),
        ("short", json!({}), None),
    ] {
        let mut pagination = json!({"type": "offset", "offsetParam": "offset", "limitParam": "limit", "maxPageSize": 10, "placement": "json_body"});
        if let Some(p) = has_more {
            pagination["hasMorePath"] = json!(p);
        }
        let p = provider(
            name,
            pagination,
            json!({"type": "bearer"}),
            json!({"method": "POST", "path": "/offset", "query": query, "body": {"filter": {}}, "recordsPath": "/data"}),
        );
        let acc = account(&base, p);
        for first in [4, 10, 23, 50] {
            assert_eq!(
                walk(&e, &acc, first).await.unwrap(),
                expected(),
                "{name} first={first}"
            );
        }
    }
}

#[tokio::test]
async fn an_endless_listing_stops_at_the_page_cap() {
    let base = start_vendor().await;
    let p = provider(
        "endless",
        json!({"type": "cursor", "cursorPath": "/next", "cursorParam": "cursor", "limitParam": "limit", "maxPageSize": 1}),
        json!({"type": "bearer"}),
        json!({"path": "/endless", "recordsPath": "/items"}),
    );
    let err = engine()
        .list(
            &account(&base, p),
            "contacts",
            1000,
            None,
            &Default::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::PageCap { pages: 50 }), "{err}");
}

#[tokio::test]
async fn a_next_url_on_another_host_is_refused() {
    let base = start_vendor().await;
    let p = provider(
        "foreign",
        json!({"type": "next_url", "nextUrlPath": "/next", "maxPageSize": 10}),
        json!({"type": "bearer"}),
        json!({"path": "/foreign", "recordsPath": "/items"}),
    );
    let err = engine()
        .list(&account(&base, p), "contacts", 5, None, &Default::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("another host"), "{err}");
}

#[tokio::test]
async fn every_auth_placement_puts_the_credential_where_the_file_says() {
    let base = start_vendor().await;
    let e = engine();
    let cases = [
        (
            json!({"type": "bearer"}),
            json!({"authorization": "Bearer tok-123"}),
        ),
        (
            json!({"type": "api_key_header", "header": "Authorization", "prefix": "Zoho-oauthtoken"}),
            json!({"authorization": "Zoho-oauthtoken tok-123"}),
        ),
        (
            json!({"type": "api_key_query", "param": "api_token"}),
            json!({"api_token": "tok-123", "authorization": null}),
        ),
        (
            json!({"type": "basic"}),
            json!({"authorization": "Basic dG9rLTEyMzo="}),
        ),
        (
            json!({"type": "headers", "headers": {"X-PW-AccessToken": "{token}", "X-PW-Application": "developer_api", "X-PW-UserEmail": "{email}"}}),
            json!({"x-pw-accesstoken": "tok-123", "x-pw-application": "developer_api", "x-pw-useremail": "owner@example.com", "authorization": null}),
        ),
    ];
    for (i, (auth, expect)) in cases.into_iter().enumerate() {
        let p = provider(
            &format!("auth{i}"),
            json!({"type": "none"}),
            auth.clone(),
            json!({"path": "/echo", "recordsPath": "/items"}),
        );
        let page = e
            .list(&account(&base, p), "contacts", 1, None, &Default::default())
            .await
            .unwrap();
        let seen: Value = serde_json::from_str(
            page.edges[0].record.mapped.as_ref().unwrap()["firstName"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        for (k, v) in expect.as_object().unwrap() {
            assert_eq!(&seen[k], v, "auth {auth}: `{k}` in {seen}");
        }
    }
}

#[tokio::test]
async fn a_filtered_listing_goes_to_the_search_operation_with_its_own_pagination() {
    let base = start_vendor().await;
    let p = provider_with(
        "searching",
        json!({"type": "link_header", "limitParam": "limit", "maxPageSize": 5}),
        json!({"type": "bearer"}),
        json!({
            "list": {"path": "/link", "recordsPath": ""},
            "search": {
                "method": "POST",
                "path": "/search",
                "body": {"sort": "name"},
                "recordsPath": "/results",
                "filters": ["search"],
                "filterBody": "{ 'query': $filter.search }",
                "pagination": {"type": "cursor", "cursorPath": "/paging/next/after", "cursorParam": "after", "limitParam": "limit", "maxPageSize": 2, "placement": "json_body"}
            }
        }),
    );
    let acc = account(&base, p);
    let e = engine();
    // Unfiltered: the plain listing, every record.
    assert_eq!(walk(&e, &acc, 7).await.unwrap(), expected());
    // Filtered: names containing "1" are 1, 10..19 and 21: 12 records over 6 search pages.
    let filter: serde_json::Map<String, Value> =
        json!({"search": "1"}).as_object().unwrap().clone();
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = e
            .list(&acc, "contacts", 5, after.as_deref(), &filter)
            .await
            .unwrap();
        ids.extend(page.edges.iter().map(|e| e.record.remote_id.clone()));
        if !page.has_next_page {
            break;
        }
        after = page.edges.last().map(|e| e.cursor.clone());
    }
    let want: Vec<String> = [1, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 21]
        .iter()
        .map(|i| format!("r{i}"))
        .collect();
    assert_eq!(ids, want);
    // A filter the search operation does not declare is refused by name.
    let bad: serde_json::Map<String, Value> =
        json!({"email": "a@b.c"}).as_object().unwrap().clone();
    let err = e.list(&acc, "contacts", 5, None, &bad).await.unwrap_err();
    assert!(
        matches!(&err, EngineError::UnsupportedFilter { filter, .. } if filter == "email"),
        "{err}"
    );
}

#[tokio::test]
async fn a_null_where_the_records_go_is_an_empty_listing() {
    let base = start_vendor().await;
    let p = provider(
        "nullish",
        json!({"type": "none"}),
        json!({"type": "bearer"}),
        json!({"path": "/empty-null", "recordsPath": "/data"}),
    );
    let page = engine()
        .list(&account(&base, p), "contacts", 5, None, &Default::default())
        .await
        .unwrap();
    assert!(page.edges.is_empty() && !page.has_next_page);
}
