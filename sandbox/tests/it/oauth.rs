//! The sandbox's OAuth 2.0 endpoints over real HTTP: each test spawns its own server on a
//! free loopback port, drives the authorization-code flow (the authorize endpoint
//! auto-approves, so no browser), the token endpoint and the control switches, and checks
//! that the vendor's API honours what the token endpoint issued.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use reqwest::{Client, Method, StatusCode, redirect};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tessera_sandbox::{
    GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET, GOOGLE_DEMO_TOKEN, HUBSPOT_CLIENT_ID,
    HUBSPOT_CLIENT_SECRET, HUBSPOT_DEMO_TOKEN, MSGRAPH_CLIENT_ID, MSGRAPH_CLIENT_SECRET,
    PIPEDRIVE_CLIENT_ID, PIPEDRIVE_CLIENT_SECRET, SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET,
    SALESFORCE_DEMO_TOKEN, Sandbox, ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET, ZOHO_DEMO_TOKEN,
};
use url::Url;

const REDIRECT: &str = "http://127.0.0.1:9/oauth/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// One simulated vendor as a client sees it.
#[derive(Clone, Copy, Debug)]
struct Vendor {
    provider: &'static str,
    authorize: &'static str,
    token: &'static str,
    client_id: &'static str,
    client_secret: &'static str,
    /// Client authentication by `Authorization: Basic` (Pipedrive).
    basic: bool,
    /// The contacts list.
    list: &'static str,
    /// Authorization scheme on API calls.
    scheme: &'static str,
    /// What the authorization request needs for a refresh token to come back.
    authorize_extra: &'static [(&'static str, &'static str)],
}

const HUBSPOT: Vendor = Vendor {
    provider: "hubspot",
    authorize: "/hubspot/oauth/authorize",
    token: "/hubspot/oauth/v1/token",
    client_id: HUBSPOT_CLIENT_ID,
    client_secret: HUBSPOT_CLIENT_SECRET,
    basic: false,
    list: "/hubspot/crm/v3/objects/contacts",
    scheme: "Bearer",
    authorize_extra: &[("scope", "oauth crm.objects.contacts.read")],
};

const SALESFORCE: Vendor = Vendor {
    provider: "salesforce",
    authorize: "/salesforce/services/oauth2/authorize",
    token: "/salesforce/services/oauth2/token",
    client_id: SALESFORCE_CLIENT_ID,
    client_secret: SALESFORCE_CLIENT_SECRET,
    basic: false,
    list: "/salesforce/services/data/v62.0/query?q=SELECT+Id+FROM+Contact",
    scheme: "Bearer",
    authorize_extra: &[("scope", "api refresh_token")],
};

const PIPEDRIVE: Vendor = Vendor {
    provider: "pipedrive",
    authorize: "/pipedrive/oauth/authorize",
    token: "/pipedrive/oauth/token",
    client_id: PIPEDRIVE_CLIENT_ID,
    client_secret: PIPEDRIVE_CLIENT_SECRET,
    basic: true,
    list: "/pipedrive/api/v2/persons",
    scheme: "Bearer",
    authorize_extra: &[],
};

const GRAPH: Vendor = Vendor {
    provider: "msgraph",
    authorize: "/graph/common/oauth2/v2.0/authorize",
    token: "/graph/common/oauth2/v2.0/token",
    client_id: MSGRAPH_CLIENT_ID,
    client_secret: MSGRAPH_CLIENT_SECRET,
    basic: false,
    list: "/graph/v1.0/me/contacts",
    scheme: "Bearer",
    authorize_extra: &[("scope", "offline_access Contacts.ReadWrite")],
};

const GOOGLE: Vendor = Vendor {
    provider: "google",
    authorize: "/google/o/oauth2/v2/auth",
    token: "/google/token",
    client_id: GOOGLE_CLIENT_ID,
    client_secret: GOOGLE_CLIENT_SECRET,
    basic: false,
    list: "/google/v1/people/me/connections?personFields=names",
    scheme: "Bearer",
    authorize_extra: &[
        ("scope", "https://www.googleapis.com/auth/contacts"),
        ("access_type", "offline"),
    ],
};

const ZOHO: Vendor = Vendor {
    provider: "zoho",
    authorize: "/zoho/oauth/v2/auth",
    token: "/zoho/oauth/v2/token",
    client_id: ZOHO_CLIENT_ID,
    client_secret: ZOHO_CLIENT_SECRET,
    basic: false,
    list: "/zoho/crm/v8/Contacts?fields=Last_Name",
    scheme: "Zoho-oauthtoken",
    authorize_extra: &[("scope", "ZohoCRM.modules.ALL"), ("access_type", "offline")],
};

const ALL: [Vendor; 6] = [HUBSPOT, SALESFORCE, PIPEDRIVE, GRAPH, GOOGLE, ZOHO];

struct Env {
    sandbox: Sandbox,
    http: Client,
}

async fn env() -> Env {
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    Env {
        sandbox: Sandbox::spawn(listen).await.unwrap(),
        http: Client::builder()
            .redirect(redirect::Policy::none())
            .build()
            .unwrap(),
    }
}

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn json_body(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(bytes)))
    }
}

impl Env {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.base_url())
    }

    /// GET on the authorization endpoint; returns (status, Location).
    async fn authorize_raw(&self, v: Vendor, params: &[(&str, &str)]) -> (StatusCode, Option<Url>) {
        let mut url = Url::parse(&self.url(v.authorize)).unwrap();
        url.query_pairs_mut().extend_pairs(params);
        let resp = self.http.get(url).send().await.unwrap();
        let location = resp
            .headers()
            .get("location")
            .map(|l| Url::parse(l.to_str().unwrap()).unwrap());
        (resp.status(), location)
    }

    /// Authorizes with state (and PKCE S256 when `verifier` is given) and returns the code,
    /// checking the redirect.
    async fn code(&self, v: Vendor, verifier: Option<&str>, extra: &[(&str, &str)]) -> String {
        let challenge = verifier.map(challenge);
        let mut params = vec![
            ("client_id", v.client_id),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("state", "xyz-state-42"),
        ];
        params.extend_from_slice(v.authorize_extra);
        params.extend_from_slice(extra);
        if let Some(challenge) = &challenge {
            params.push(("code_challenge", challenge));
            params.push(("code_challenge_method", "S256"));
        }
        let (status, location) = self.authorize_raw(v, &params).await;
        assert_eq!(status, StatusCode::FOUND, "{}: authorize", v.provider);
        let location = location.expect("a Location header");
        assert!(
            location.as_str().starts_with(REDIRECT),
            "{}: redirected to {location}",
            v.provider
        );
        let pairs: Vec<(String, String)> = location.query_pairs().into_owned().collect();
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(
            get("state").as_deref(),
            Some("xyz-state-42"),
            "{}",
            v.provider
        );
        get("code").expect("a code in the redirect")
    }

    /// POST to the token endpoint with the vendor's client authentication.
    async fn token(&self, v: Vendor, params: &[(&str, &str)]) -> (StatusCode, Value) {
        self.token_as(v, v.client_id, v.client_secret, params).await
    }

    async fn token_as(
        &self,
        v: Vendor,
        client_id: &str,
        secret: &str,
        params: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut form: Vec<(&str, &str)> = params.to_vec();
        let mut req = self.http.post(self.url(v.token));
        if v.basic {
            req = req.basic_auth(client_id, Some(secret));
        } else {
            form.push(("client_id", client_id));
            form.push(("client_secret", secret));
        }
        let resp = req.form(&form).send().await.unwrap();
        let status = resp.status();
        (status, json_body(&resp.bytes().await.unwrap()))
    }

    async fn exchange(&self, v: Vendor, code: &str, verifier: Option<&str>) -> (StatusCode, Value) {
        let mut params = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
        ];
        if let Some(verifier) = verifier {
            params.push(("code_verifier", verifier));
        }
        self.token(v, &params).await
    }

    async fn refresh(&self, v: Vendor, refresh_token: &str) -> (StatusCode, Value) {
        self.token(
            v,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }

    /// The contacts list with `token`.
    async fn api(&self, v: Vendor, token: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .get(self.url(v.list))
            .header("authorization", format!("{} {token}", v.scheme))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, json_body(&resp.bytes().await.unwrap()))
    }

    async fn control(&self, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
        let resp = self
            .http
            .request(method, self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, json_body(&resp.bytes().await.unwrap()))
    }

    async fn switch(&self, body: Value) -> Value {
        let (status, out) = self.control(Method::POST, "/_control/oauth", body).await;
        assert_eq!(status, StatusCode::OK, "{out}");
        out
    }

    /// A linked account without the browser flow.
    async fn grant(&self, v: Vendor, lifetime: Option<i64>) -> Value {
        let mut body = json!({ "provider": v.provider });
        if let Some(lifetime) = lifetime {
            body["accessTokenLifetimeSeconds"] = json!(lifetime);
        }
        let (status, out) = self
            .control(Method::POST, "/_control/oauth/grant", body)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{out}");
        out
    }

    async fn revoke(&self, v: Vendor, refresh_token: &str) -> Value {
        let body = json!({ "provider": v.provider, "refreshToken": refresh_token });
        let (status, out) = self
            .control(Method::POST, "/_control/oauth/revoke", body)
            .await;
        assert_eq!(status, StatusCode::OK, "{out}");
        out
    }

    async fn oauth_stats(&self, v: Vendor) -> Value {
        let resp = self
            .http
            .get(self.url("/_control/stats"))
            .send()
            .await
            .unwrap();
        let stats: Value = json_body(&resp.bytes().await.unwrap());
        stats["oauth"][v.provider].clone()
    }
}

fn text(value: &Value, key: &str) -> String {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {value}"))
        .to_owned()
}

/// The vendor's answer to a refresh token it no longer honours.
fn assert_bad_refresh(v: Vendor, status: StatusCode, body: &Value) {
    match v.provider {
        "hubspot" => {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(body["status"], "BAD_REFRESH_TOKEN", "{body}");
            assert_eq!(body["message"], "missing or invalid refresh token");
        }
        "salesforce" => {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(
                body,
                &json!({"error": "invalid_grant", "error_description": "expired access/refresh token"})
            );
        }
        "pipedrive" => {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(body["success"], false);
            assert_eq!(body["message"], "Invalid grant: refresh_token is invalid");
        }
        "msgraph" => {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(body["error"], "invalid_grant");
            assert_eq!(body["error_codes"], json!([70008]));
            assert!(
                text(body, "error_description").starts_with("AADSTS70008:"),
                "{body}"
            );
            assert!(body["trace_id"].is_string() && body["correlation_id"].is_string());
        }
        "google" => {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(
                body,
                &json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
            );
        }
        "zoho" => {
            assert_eq!(
                status,
                StatusCode::OK,
                "Zoho errors come with HTTP 200: {body}"
            );
            assert_eq!(body, &json!({ "error": "invalid_code" }));
        }
        other => panic!("unknown vendor {other}"),
    }
}

/// The vendor's refusal of a bad code or PKCE verifier.
fn assert_bad_code(v: Vendor, status: StatusCode, body: &Value) {
    if v.provider == "zoho" {
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, &json!({ "error": "invalid_code" }));
        return;
    }
    assert_eq!(status, StatusCode::BAD_REQUEST, "{}: {body}", v.provider);
    assert!(body.get("access_token").is_none(), "{body}");
    match v.provider {
        "hubspot" => assert_eq!(body["status"], "BAD_AUTH_CODE", "{body}"),
        "pipedrive" => assert_eq!(body["error"], "invalid_grant", "{body}"),
        _ => assert_eq!(body["error"], "invalid_grant", "{body}"),
    }
}

/// The vendor's 401 for an expired access token.
fn assert_expired_401(v: Vendor, status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{}: {body}", v.provider);
    match v.provider {
        "hubspot" => {
            assert_eq!(body["category"], "EXPIRED_AUTHENTICATION", "{body}");
            assert!(
                text(body, "message").starts_with("The OAuth token used to make this call expired")
            );
        }
        "salesforce" => assert_eq!(body[0]["errorCode"], "INVALID_SESSION_ID", "{body}"),
        "pipedrive" => assert_eq!(body["error"], "unauthorized access", "{body}"),
        "msgraph" => {
            assert_eq!(
                body["error"]["code"], "InvalidAuthenticationToken",
                "{body}"
            );
            assert_eq!(
                body["error"]["message"],
                "Access token has expired or is not yet valid."
            );
        }
        "google" => assert_eq!(
            body["error"]["details"][0]["reason"], "ACCESS_TOKEN_EXPIRED",
            "{body}"
        ),
        "zoho" => assert_eq!(body["code"], "INVALID_TOKEN", "{body}"),
        other => panic!("unknown vendor {other}"),
    }
}

/// authorize -> 302 with code and state -> exchange (PKCE) -> the access token lists
/// contacts -> refresh -> the new access token lists contacts. Returns (code response,
/// refresh response).
async fn full_flow(e: &Env, v: Vendor) -> (Value, Value) {
    let code = e.code(v, Some(VERIFIER), &[]).await;
    let (status, issued) = e.exchange(v, &code, Some(VERIFIER)).await;
    assert_eq!(status, StatusCode::OK, "{}: {issued}", v.provider);
    let access = text(&issued, "access_token");
    let refresh = text(&issued, "refresh_token");
    assert_ne!(access, refresh);

    let (status, body) = e.api(v, &access).await;
    assert_eq!(status, StatusCode::OK, "{}: {body}", v.provider);
    let (status, _) = e.api(v, "not-a-token-this-vendor-issued").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{}", v.provider);

    let (status, refreshed) = e.refresh(v, &refresh).await;
    assert_eq!(status, StatusCode::OK, "{}: {refreshed}", v.provider);
    let access2 = text(&refreshed, "access_token");
    assert_ne!(
        access, access2,
        "{}: a refresh mints a new access token",
        v.provider
    );
    let (status, body) = e.api(v, &access2).await;
    assert_eq!(status, StatusCode::OK, "{}: {body}", v.provider);
    // The older access token is still valid until it expires.
    assert_eq!(e.api(v, &access).await.0, StatusCode::OK, "{}", v.provider);
    (issued, refreshed)
}

// ---------------------------------------------------------------------------------------
// The full flow, per vendor, with each vendor's response shape

#[tokio::test]
async fn hubspot_code_flow_refresh_and_shape() {
    let e = env().await;
    let (issued, refreshed) = full_flow(&e, HUBSPOT).await;
    for body in [&issued, &refreshed] {
        assert_eq!(body["expires_in"], 1800);
        assert_eq!(body["token_type"], "bearer");
        assert!(
            body["hub_id"].is_u64() && body["user_id"].is_u64(),
            "{body}"
        );
        assert_eq!(
            body["scopes"],
            json!(["oauth", "crm.objects.contacts.read"])
        );
    }
    // HubSpot does not rotate: the refresh answer repeats the same refresh token, which
    // keeps working.
    assert_eq!(refreshed["refresh_token"], issued["refresh_token"]);
    let (status, _) = e.refresh(HUBSPOT, &text(&issued, "refresh_token")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn salesforce_code_flow_refresh_and_shape() {
    let e = env().await;
    let (issued, refreshed) = full_flow(&e, SALESFORCE).await;
    let instance = format!("{}/salesforce", e.sandbox.base_url());
    for body in [&issued, &refreshed] {
        assert!(
            body.get("expires_in").is_none(),
            "Salesforce sends no expires_in: {body}"
        );
        assert_eq!(body["instance_url"], json!(instance));
        assert_eq!(body["token_type"], "Bearer");
        let id = text(body, "id");
        assert!(id.starts_with(&format!("{instance}/id/00D")), "{id}");
        let issued_at = text(body, "issued_at");
        assert!(
            issued_at.parse::<i64>().unwrap() > 1_600_000_000_000,
            "epoch millis string"
        );
        // signature = base64 HMAC-SHA256(consumer secret, id + issued_at)
        let mut mac = Hmac::<Sha256>::new_from_slice(SALESFORCE_CLIENT_SECRET.as_bytes()).unwrap();
        mac.update(format!("{id}{issued_at}").as_bytes());
        assert_eq!(
            text(body, "signature"),
            STANDARD.encode(mac.finalize().into_bytes())
        );
    }
    assert_eq!(issued["scope"], "api refresh_token");
    // Without rotation a Salesforce refresh answer carries no refresh token.
    assert!(refreshed.get("refresh_token").is_none(), "{refreshed}");
    // The instance's API works at instance_url with the issued token.
    let resp = e
        .http
        .get(format!(
            "{instance}/services/data/v62.0/query?q=SELECT+Id+FROM+Account"
        ))
        .bearer_auth(text(&refreshed, "access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn pipedrive_code_flow_refresh_and_shape() {
    let e = env().await;
    let (issued, refreshed) = full_flow(&e, PIPEDRIVE).await;
    for body in [&issued, &refreshed] {
        assert_eq!(body["expires_in"], 3600);
        assert_eq!(body["token_type"], "Bearer");
        assert!(text(body, "scope").ends_with(",base"), "{body}");
        assert_eq!(
            body["api_domain"],
            json!(format!("{}/pipedrive", e.sandbox.base_url()))
        );
    }
    assert_eq!(
        refreshed["refresh_token"], issued["refresh_token"],
        "same refresh token"
    );
}

#[tokio::test]
async fn graph_code_flow_refresh_and_shape() {
    let e = env().await;
    let (issued, refreshed) = full_flow(&e, GRAPH).await;
    for body in [&issued, &refreshed] {
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 3599);
        assert_eq!(body["ext_expires_in"], 3599);
        assert_eq!(body["scope"], "Contacts.ReadWrite");
    }
    assert_ne!(
        refreshed["refresh_token"], issued["refresh_token"],
        "Graph rotates"
    );
}

#[tokio::test]
async fn google_code_flow_refresh_and_shape() {
    let e = env().await;
    let (issued, refreshed) = full_flow(&e, GOOGLE).await;
    assert_eq!(issued["expires_in"], 3599);
    assert_eq!(issued["token_type"], "Bearer");
    assert_eq!(issued["scope"], "https://www.googleapis.com/auth/contacts");
    assert!(text(&issued, "access_token").starts_with("ya29."));
    assert!(
        issued.get("id_token").is_none(),
        "no openid scope, no id_token"
    );
    assert!(refreshed.get("refresh_token").is_none(), "{refreshed}");
    assert_eq!(refreshed["expires_in"], 3599);
}

#[tokio::test]
async fn zoho_code_flow_refresh_and_shape() {
    let e = env().await;
    let (issued, refreshed) = full_flow(&e, ZOHO).await;
    let api_domain = json!(format!("{}/zoho", e.sandbox.base_url()));
    for body in [&issued, &refreshed] {
        assert_eq!(body["api_domain"], api_domain);
        assert_eq!(body["expires_in"], 3600);
        assert_eq!(body["token_type"], "Bearer");
    }
    assert!(
        refreshed.get("refresh_token").is_none(),
        "Zoho refreshes carry none: {refreshed}"
    );
    // Bearer is not Zoho's scheme, even with a valid token.
    let resp = e
        .http
        .get(e.url(ZOHO.list))
        .bearer_auth(text(&issued, "access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

// ---------------------------------------------------------------------------------------
// Codes and PKCE

#[tokio::test]
async fn pkce_wrong_or_missing_verifier_is_refused_and_the_code_is_spent() {
    let e = env().await;
    let other = "Z".repeat(43);
    for v in ALL {
        let code = e.code(v, Some(VERIFIER), &[]).await;
        let (status, body) = e.exchange(v, &code, Some(&other)).await;
        assert_bad_code(v, status, &body);
        // The failed attempt spent the code: the right verifier no longer helps.
        let (status, body) = e.exchange(v, &code, Some(VERIFIER)).await;
        assert_bad_code(v, status, &body);

        let code = e.code(v, Some(VERIFIER), &[]).await;
        let (status, body) = e.exchange(v, &code, None).await;
        assert_bad_code(v, status, &body);

        let code = e.code(v, Some(VERIFIER), &[]).await;
        let (status, body) = e.exchange(v, &code, Some(VERIFIER)).await;
        assert_eq!(status, StatusCode::OK, "{}: {body}", v.provider);
        assert!(body["access_token"].is_string());
    }
}

#[tokio::test]
async fn a_code_is_single_use() {
    let e = env().await;
    for v in ALL {
        let code = e.code(v, None, &[]).await;
        let (status, first) = e.exchange(v, &code, None).await;
        assert_eq!(status, StatusCode::OK, "{}: {first}", v.provider);
        let (status, second) = e.exchange(v, &code, None).await;
        assert_bad_code(v, status, &second);
    }
    // Graph says why.
    let code = e.code(GRAPH, None, &[]).await;
    e.exchange(GRAPH, &code, None).await;
    let (_, again) = e.exchange(GRAPH, &code, None).await;
    assert_eq!(again["error_codes"], json!([54005]));
}

#[tokio::test]
async fn a_code_needs_its_own_redirect_uri_and_client() {
    let e = env().await;
    let code = e.code(SALESFORCE, None, &[]).await;
    let (status, body) = e
        .token(
            SALESFORCE,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1:9/elsewhere"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "redirect_uri_mismatch");

    let code = e.code(HUBSPOT, None, &[]).await;
    let (status, body) = e
        .token_as(
            HUBSPOT,
            HUBSPOT_CLIENT_ID,
            "wrong-secret",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["status"], "BAD_CLIENT_SECRET", "{body}");
    // A wrong secret does not spend the code.
    let (status, _) = e.exchange(HUBSPOT, &code, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn authorize_refuses_unknown_clients_and_redirects_without_redirecting() {
    let e = env().await;
    for v in ALL {
        let (status, location) = e
            .authorize_raw(
                v,
                &[
                    ("client_id", "nobody"),
                    ("redirect_uri", REDIRECT),
                    ("response_type", "code"),
                    ("state", "s"),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{}", v.provider);
        assert!(location.is_none(), "{}", v.provider);

        let (status, location) = e
            .authorize_raw(
                v,
                &[
                    ("client_id", v.client_id),
                    ("redirect_uri", "https://attacker.example/cb"),
                    ("response_type", "code"),
                    ("state", "s"),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{}", v.provider);
        assert!(location.is_none(), "{}", v.provider);

        // Once client and redirect URI are fine, errors go back to the client.
        let (status, location) = e
            .authorize_raw(
                v,
                &[
                    ("client_id", v.client_id),
                    ("redirect_uri", REDIRECT),
                    ("response_type", "token"),
                    ("state", "s1"),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::FOUND, "{}", v.provider);
        let location = location.unwrap();
        let pairs: Vec<(String, String)> = location.query_pairs().into_owned().collect();
        assert!(pairs.contains(&("error".into(), "unsupported_response_type".into())));
        assert!(pairs.contains(&("state".into(), "s1".into())));
        assert!(!pairs.iter().any(|(k, _)| k == "code"));
    }
    let (_, body) = {
        let resp = e
            .http
            .get(e.url("/salesforce/services/oauth2/authorize?client_id=nobody&redirect_uri=http://127.0.0.1/x&response_type=code"))
            .send()
            .await
            .unwrap();
        (resp.status(), resp.text().await.unwrap())
    };
    assert!(body.starts_with("error=invalid_client_id"), "{body}");
}

#[tokio::test]
async fn registered_clients_get_exact_redirect_uris() {
    let e = env().await;
    let (status, out) = e
        .control(
            Method::POST,
            "/_control/oauth/clients",
            json!({
                "provider": "hubspot",
                "clientId": "my-app",
                "clientSecret": "my-secret",
                "redirectUris": ["https://app.example.com/oauth/hubspot"],
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{out}");
    let (status, location) = e
        .authorize_raw(
            HUBSPOT,
            &[
                ("client_id", "my-app"),
                ("redirect_uri", "https://app.example.com/oauth/hubspot"),
                ("response_type", "code"),
                ("state", "abc"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::FOUND);
    let location = location.unwrap();
    assert_eq!(location.host_str(), Some("app.example.com"));
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    // Loopback is not on this client's list.
    let (status, _) = e
        .authorize_raw(
            HUBSPOT,
            &[
                ("client_id", "my-app"),
                ("redirect_uri", REDIRECT),
                ("response_type", "code"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The demo client cannot spend my-app's code; my-app can.
    let params = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "https://app.example.com/oauth/hubspot"),
    ];
    let (status, body) = e.token(HUBSPOT, &params).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["status"], "BAD_AUTH_CODE");
    let (status, body) = e.token_as(HUBSPOT, "my-app", "my-secret", &params).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        e.api(HUBSPOT, &text(&body, "access_token")).await.0,
        StatusCode::OK
    );
}

// ---------------------------------------------------------------------------------------
// Rotation

#[tokio::test]
async fn graph_rotates_and_the_old_refresh_token_dies() {
    let e = env().await;
    let grant = e.grant(GRAPH, None).await;
    let first = text(&grant, "refresh_token");
    let (status, one) = e.refresh(GRAPH, &first).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    let second = text(&one, "refresh_token");
    assert_ne!(first, second);

    let (status, body) = e.refresh(GRAPH, &first).await;
    assert_bad_refresh(GRAPH, status, &body);
    let (status, two) = e.refresh(GRAPH, &second).await;
    assert_eq!(status, StatusCode::OK, "{two}");
    assert_ne!(two["refresh_token"], one["refresh_token"]);

    // Graph cannot be told to stop rotating.
    let (status, _) = e
        .control(
            Method::POST,
            "/_control/oauth",
            json!({ "provider": "msgraph", "rotateRefreshTokens": false }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn rotation_switch_makes_salesforce_refresh_tokens_single_use() {
    let e = env().await;
    let grant = e.grant(SALESFORCE, None).await;
    let rt = text(&grant, "refresh_token");
    // Default: static refresh token, usable again and again, never repeated.
    for _ in 0..2 {
        let (status, body) = e.refresh(SALESFORCE, &rt).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.get("refresh_token").is_none());
    }
    let settings = e
        .switch(json!({ "provider": "salesforce", "rotateRefreshTokens": true }))
        .await;
    assert_eq!(settings["rotateRefreshTokens"], true);
    let (status, body) = e.refresh(SALESFORCE, &rt).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rt2 = text(&body, "refresh_token");
    assert_ne!(rt, rt2);
    let (status, body) = e.refresh(SALESFORCE, &rt).await;
    assert_bad_refresh(SALESFORCE, status, &body);
    let (status, body) = e.refresh(SALESFORCE, &rt2).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Five concurrent refreshes with one single-use refresh token: exactly one wins, which
/// is what a gateway without single-flight refresh runs into.
#[tokio::test]
async fn concurrent_refreshes_of_a_rotating_token_leave_one_winner() {
    let e = env().await;
    e.switch(json!({ "provider": "msgraph", "tokenDelayMs": 100 }))
        .await;
    let rt = text(&e.grant(GRAPH, None).await, "refresh_token");
    let (a, b, c, d, f) = tokio::join!(
        e.refresh(GRAPH, &rt),
        e.refresh(GRAPH, &rt),
        e.refresh(GRAPH, &rt),
        e.refresh(GRAPH, &rt),
        e.refresh(GRAPH, &rt),
    );
    let results = [a, b, c, d, f];
    let ok = results.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    assert_eq!(ok, 1, "{results:?}");
    for (status, body) in results.iter().filter(|(s, _)| *s != StatusCode::OK) {
        assert_bad_refresh(GRAPH, *status, body);
    }
    let stats = e.oauth_stats(GRAPH).await;
    assert_eq!(stats["refresh_token"], 5);
    assert_eq!(stats["failed"], 4);
}

// ---------------------------------------------------------------------------------------
// Revocation and expiry

#[tokio::test]
async fn revocation_answers_invalid_grant_in_each_vendors_shape() {
    let e = env().await;
    for v in ALL {
        let grant = e.grant(v, None).await;
        let access = text(&grant, "access_token");
        let refresh = text(&grant, "refresh_token");
        assert_eq!(e.api(v, &access).await.0, StatusCode::OK, "{}", v.provider);

        let out = e.revoke(v, &refresh).await;
        assert_eq!(out["accessTokensRevoked"], 1, "{}: {out}", v.provider);
        let (status, body) = e.refresh(v, &refresh).await;
        assert_bad_refresh(v, status, &body);
        // Forever after.
        let (status, body) = e.refresh(v, &refresh).await;
        assert_bad_refresh(v, status, &body);
        // The access token issued from it is dead too.
        assert_eq!(
            e.api(v, &access).await.0,
            StatusCode::UNAUTHORIZED,
            "{}",
            v.provider
        );
    }
    let (status, _) = e
        .control(
            Method::POST,
            "/_control/oauth/revoke",
            json!({ "provider": "hubspot", "refreshToken": "never-issued" }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn revoking_a_rotated_away_token_kills_its_whole_grant() {
    let e = env().await;
    let first = text(&e.grant(GRAPH, None).await, "refresh_token");
    let (_, one) = e.refresh(GRAPH, &first).await;
    let current = text(&one, "refresh_token");
    e.revoke(GRAPH, &first).await;
    let (status, body) = e.refresh(GRAPH, &current).await;
    assert_bad_refresh(GRAPH, status, &body);
    assert_eq!(
        e.api(GRAPH, &text(&one, "access_token")).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn vendor_revoke_endpoints() {
    let e = env().await;

    // Salesforce: revoking the refresh token takes its access tokens along.
    let grant = e.grant(SALESFORCE, None).await;
    let resp = e
        .http
        .post(e.url("/salesforce/services/oauth2/revoke"))
        .form(&[("token", text(&grant, "refresh_token"))])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (status, body) = e.refresh(SALESFORCE, &text(&grant, "refresh_token")).await;
    assert_bad_refresh(SALESFORCE, status, &body);
    assert_eq!(
        e.api(SALESFORCE, &text(&grant, "access_token")).await.0,
        StatusCode::UNAUTHORIZED
    );
    let resp = e
        .http
        .get(e.url("/salesforce/services/oauth2/revoke?token=bogus"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    // HubSpot: DELETE kills the refresh token; its access tokens live on (per the spec).
    let grant = e.grant(HUBSPOT, None).await;
    let url = e.url(&format!(
        "/hubspot/oauth/v1/refresh-tokens/{}",
        text(&grant, "refresh_token")
    ));
    let resp = e.http.delete(&url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (status, body) = e.refresh(HUBSPOT, &text(&grant, "refresh_token")).await;
    assert_bad_refresh(HUBSPOT, status, &body);
    assert_eq!(
        e.api(HUBSPOT, &text(&grant, "access_token")).await.0,
        StatusCode::OK
    );
    let resp = e
        .http
        .delete(e.url("/hubspot/oauth/v1/refresh-tokens/bogus"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // Google: revoking the access token revokes the refresh token too.
    let grant = e.grant(GOOGLE, None).await;
    let resp = e
        .http
        .post(e.url("/google/revoke"))
        .form(&[("token", text(&grant, "access_token"))])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (status, body) = e.refresh(GOOGLE, &text(&grant, "refresh_token")).await;
    assert_bad_refresh(GOOGLE, status, &body);

    // Zoho: the token in the query; its answers are HTTP 200 either way.
    let grant = e.grant(ZOHO, None).await;
    let revoke = |token: String| {
        e.http
            .post(e.url("/zoho/oauth/v2/token/revoke"))
            .query(&[("token", token)])
            .send()
    };
    let resp = revoke(text(&grant, "refresh_token")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(json_body(&resp.bytes().await.unwrap())["status"], "success");
    let (status, body) = e.refresh(ZOHO, &text(&grant, "refresh_token")).await;
    assert_bad_refresh(ZOHO, status, &body);
    let resp = revoke("bogus".into()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        json_body(&resp.bytes().await.unwrap())["error"],
        "invalid_token"
    );

    // Pipedrive: the app authenticates with HTTP Basic; the refresh token ends the grant.
    let grant = e.grant(PIPEDRIVE, None).await;
    let send = |user: &str, secret: &str| {
        e.http
            .post(e.url("/pipedrive/oauth/revoke"))
            .basic_auth(user, Some(secret))
            .form(&[
                ("token", text(&grant, "refresh_token")),
                ("token_type_hint", "refresh_token".into()),
            ])
            .send()
    };
    let resp = send(PIPEDRIVE.client_id, "wrong").await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = send(PIPEDRIVE.client_id, PIPEDRIVE.client_secret)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (status, body) = e.refresh(PIPEDRIVE, &text(&grant, "refresh_token")).await;
    assert_bad_refresh(PIPEDRIVE, status, &body);
}

#[tokio::test]
async fn expired_access_tokens_get_each_vendors_401() {
    let e = env().await;
    for v in ALL {
        let grant = e.grant(v, Some(-5)).await;
        if v.provider != "salesforce" {
            assert_eq!(grant["expires_in"], 0, "{}: {grant}", v.provider);
        }
        let (status, body) = e.api(v, &text(&grant, "access_token")).await;
        assert_expired_401(v, status, &body);
        // The refresh token still works and its access token is fresh.
        let (status, refreshed) = e.refresh(v, &text(&grant, "refresh_token")).await;
        assert_eq!(status, StatusCode::OK, "{}: {refreshed}", v.provider);
        assert_eq!(
            e.api(v, &text(&refreshed, "access_token")).await.0,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn a_token_from_the_token_endpoint_expires_after_its_lifetime() {
    let e = env().await;
    let settings = e
        .switch(json!({ "provider": "hubspot", "accessTokenLifetimeSeconds": 1 }))
        .await;
    assert_eq!(settings["accessTokenLifetimeSeconds"], 1);
    let code = e.code(HUBSPOT, None, &[]).await;
    let (status, issued) = e.exchange(HUBSPOT, &code, None).await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    assert_eq!(issued["expires_in"], 1);
    let access = text(&issued, "access_token");
    assert_eq!(e.api(HUBSPOT, &access).await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = e.api(HUBSPOT, &access).await;
    assert_expired_401(HUBSPOT, status, &body);
}

// ---------------------------------------------------------------------------------------
// Token-endpoint switches

#[tokio::test]
async fn token_failures_then_recovery() {
    let e = env().await;
    let grant = e.grant(HUBSPOT, None).await;
    let rt = text(&grant, "refresh_token");
    let settings = e
        .switch(json!({ "provider": "hubspot", "tokenFailures": { "status": 503, "times": 2 } }))
        .await;
    assert_eq!(
        settings["tokenFailures"],
        json!({ "status": 503, "times": 2 })
    );
    for _ in 0..2 {
        let (status, _) = e.refresh(HUBSPOT, &rt).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }
    let (status, body) = e.refresh(HUBSPOT, &rt).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stats = e.oauth_stats(HUBSPOT).await;
    assert_eq!(
        stats,
        json!({ "authorization_code": 0, "refresh_token": 3, "client_credentials": 0, "failed": 2, "overlapping_refreshes": 0 })
    );
    // Zoho's 5xx are real statuses, not its HTTP-200 errors.
    e.switch(json!({ "provider": "zoho", "tokenFailures": { "status": 502 } }))
        .await;
    let zrt = text(&e.grant(ZOHO, None).await, "refresh_token");
    assert_eq!(e.refresh(ZOHO, &zrt).await.0, StatusCode::BAD_GATEWAY);
    assert_eq!(e.refresh(ZOHO, &zrt).await.0, StatusCode::OK);
}

#[tokio::test]
async fn token_delay_slows_the_token_endpoint_only() {
    let e = env().await;
    let grant = e.grant(PIPEDRIVE, None).await;
    e.switch(json!({ "provider": "pipedrive", "tokenDelayMs": 400 }))
        .await;
    let started = Instant::now();
    let (status, _) = e.refresh(PIPEDRIVE, &text(&grant, "refresh_token")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    let started = Instant::now();
    assert_eq!(
        e.api(PIPEDRIVE, &text(&grant, "access_token")).await.0,
        StatusCode::OK
    );
    assert!(started.elapsed() < Duration::from_millis(400));
    e.switch(json!({ "provider": "pipedrive", "tokenDelayMs": 0 }))
        .await;
    let started = Instant::now();
    e.refresh(PIPEDRIVE, &text(&grant, "refresh_token")).await;
    assert!(started.elapsed() < Duration::from_millis(400));
}

/// Two refreshes presenting one refresh token at once (two replicas refreshing one grant)
/// are counted; one after the other are not.
#[tokio::test]
async fn refreshes_of_one_token_at_once_are_counted_as_overlapping() {
    let e = env().await;
    let refresh = text(&e.grant(PIPEDRIVE, None).await, "refresh_token");
    e.refresh(PIPEDRIVE, &refresh).await;
    assert_eq!(e.oauth_stats(PIPEDRIVE).await["overlapping_refreshes"], 0);
    e.switch(json!({ "provider": "pipedrive", "tokenDelayMs": 300 }))
        .await;
    let (a, b) = tokio::join!(
        e.refresh(PIPEDRIVE, &refresh),
        e.refresh(PIPEDRIVE, &refresh)
    );
    assert_eq!((a.0, b.0), (StatusCode::OK, StatusCode::OK));
    assert_eq!(e.oauth_stats(PIPEDRIVE).await["overlapping_refreshes"], 1);
}

/// Vendors limit per account: a refreshed access token is charged to the same window.
#[tokio::test]
async fn a_refresh_does_not_reset_the_rate_limit_window() {
    let e = env().await;
    let (status, _) = e
        .control(
            Method::POST,
            "/_control/ratelimit",
            json!({ "provider": "hubspot", "max": 2, "intervalMs": 60000 }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let grant = e.grant(HUBSPOT, None).await;
    let first = text(&grant, "access_token");
    assert_eq!(e.api(HUBSPOT, &first).await.0, StatusCode::OK);
    assert_eq!(e.api(HUBSPOT, &first).await.0, StatusCode::OK);
    assert_eq!(
        e.api(HUBSPOT, &first).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    let (_, refreshed) = e.refresh(HUBSPOT, &text(&grant, "refresh_token")).await;
    let (status, body) = e.api(HUBSPOT, &text(&refreshed, "access_token")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    // Another linked account has its own window.
    let other = e.grant(HUBSPOT, None).await;
    assert_eq!(
        e.api(HUBSPOT, &text(&other, "access_token")).await.0,
        StatusCode::OK
    );
}

// ---------------------------------------------------------------------------------------
// Vendor specifics

#[tokio::test]
async fn google_refresh_token_only_offline_and_on_first_consent() {
    let e = env().await;
    let online = [("access_type", "online")];
    // access_type=online: no refresh token.
    let mut v = GOOGLE;
    v.authorize_extra = &[(
        "scope",
        "openid email https://www.googleapis.com/auth/contacts",
    )];
    let code = e.code(v, None, &online).await;
    let (status, body) = e.exchange(v, &code, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    // openid -> an id_token with three parts.
    assert_eq!(text(&body, "id_token").split('.').count(), 3);

    // First offline consent: a refresh token.
    let code = e.code(GOOGLE, None, &[]).await;
    let (_, first) = e.exchange(GOOGLE, &code, None).await;
    let rt = text(&first, "refresh_token");
    // Again offline, no prompt=consent: none.
    let code = e.code(GOOGLE, None, &[]).await;
    let (_, second) = e.exchange(GOOGLE, &code, None).await;
    assert!(second.get("refresh_token").is_none(), "{second}");
    // prompt=consent: a new one.
    let code = e.code(GOOGLE, None, &[("prompt", "consent")]).await;
    let (_, third) = e.exchange(GOOGLE, &code, None).await;
    assert_ne!(text(&third, "refresh_token"), rt);
    // Both are live (Google does not rotate).
    assert_eq!(e.refresh(GOOGLE, &rt).await.0, StatusCode::OK);
}

#[tokio::test]
async fn refresh_tokens_depend_on_what_was_asked_for() {
    let e = env().await;
    // Graph without offline_access.
    let mut graph = GRAPH;
    graph.authorize_extra = &[("scope", "Contacts.Read")];
    let code = e.code(graph, None, &[]).await;
    let (_, body) = e.exchange(graph, &code, None).await;
    assert!(
        body["access_token"].is_string() && body.get("refresh_token").is_none(),
        "{body}"
    );
    // Zoho without access_type=offline.
    let mut zoho = ZOHO;
    zoho.authorize_extra = &[("scope", "ZohoCRM.modules.ALL")];
    let code = e.code(zoho, None, &[]).await;
    let (_, body) = e.exchange(zoho, &code, None).await;
    assert!(
        body["access_token"].is_string() && body.get("refresh_token").is_none(),
        "{body}"
    );
    // Salesforce with a scope lacking refresh_token.
    let mut sf = SALESFORCE;
    sf.authorize_extra = &[("scope", "api")];
    let code = e.code(sf, None, &[]).await;
    let (_, body) = e.exchange(sf, &code, None).await;
    assert!(
        body["access_token"].is_string() && body.get("refresh_token").is_none(),
        "{body}"
    );
}

#[tokio::test]
async fn client_credentials_where_vendors_offer_it() {
    let e = env().await;
    for v in [HUBSPOT, SALESFORCE, GRAPH] {
        let (status, body) = e.token(v, &[("grant_type", "client_credentials")]).await;
        assert_eq!(status, StatusCode::OK, "{}: {body}", v.provider);
        assert!(body.get("refresh_token").is_none(), "{body}");
        assert_eq!(
            e.api(v, &text(&body, "access_token")).await.0,
            StatusCode::OK
        );
        assert_eq!(e.oauth_stats(v).await["client_credentials"], 1);
    }
    let (status, body) = e
        .token(HUBSPOT, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(
        (status, &body["token_use"]),
        (StatusCode::OK, &json!("client_credentials"))
    );
    let (_, body) = e
        .token(SALESFORCE, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(body["api_instance_url"], body["instance_url"]);

    let (status, body) = e
        .token(GOOGLE, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unsupported_grant_type");
    let (status, body) = e.token(ZOHO, &[("grant_type", "client_credentials")]).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({ "error": "unsupported_grant_type" }))
    );
}

#[tokio::test]
async fn pipedrive_client_authentication() {
    let e = env().await;
    let rt = text(&e.grant(PIPEDRIVE, None).await, "refresh_token");
    // Body credentials are allowed too.
    let resp = e
        .http
        .post(e.url(PIPEDRIVE.token))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
            ("client_id", PIPEDRIVE_CLIENT_ID),
            ("client_secret", PIPEDRIVE_CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // No credentials at all.
    let resp = e
        .http
        .post(e.url(PIPEDRIVE.token))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body = json_body(&resp.bytes().await.unwrap());
    assert_eq!(
        body["message"],
        "Invalid client: cannot retrieve client credentials"
    );
    // Wrong secret in Basic.
    let (status, body) = e
        .token_as(
            PIPEDRIVE,
            PIPEDRIVE_CLIENT_ID,
            "nope",
            &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["message"], "Invalid client: client is invalid");
    // JSON is not accepted.
    let resp = e
        .http
        .post(e.url(PIPEDRIVE.token))
        .basic_auth(PIPEDRIVE_CLIENT_ID, Some(PIPEDRIVE_CLIENT_SECRET))
        .header("content-type", "application/json")
        .body(json!({ "grant_type": "refresh_token", "refresh_token": rt }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body = json_body(&resp.bytes().await.unwrap());
    assert_eq!(
        body["message"],
        "Invalid request: content must be application/x-www-form-urlencoded"
    );
}

#[tokio::test]
async fn zoho_query_string_params_callback_and_http_200_errors() {
    let e = env().await;
    let (status, location) = e
        .authorize_raw(
            ZOHO,
            &[
                ("client_id", ZOHO_CLIENT_ID),
                ("redirect_uri", REDIRECT),
                ("response_type", "code"),
                ("access_type", "offline"),
                ("scope", "ZohoCRM.modules.ALL"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::FOUND);
    let pairs: Vec<(String, String)> = location.unwrap().query_pairs().into_owned().collect();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("location").as_deref(), Some("us"));
    assert_eq!(
        get("accounts-server"),
        Some(format!("{}/zoho", e.sandbox.base_url()))
    );
    let code = get("code").unwrap();

    // Everything in the query string, Zoho's documented style.
    let mut url = Url::parse(&e.url(ZOHO.token)).unwrap();
    url.query_pairs_mut().extend_pairs([
        ("grant_type", "authorization_code"),
        ("client_id", ZOHO_CLIENT_ID),
        ("client_secret", ZOHO_CLIENT_SECRET),
        ("redirect_uri", REDIRECT),
        ("code", code.as_str()),
    ]);
    let resp = e.http.post(url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = json_body(&resp.bytes().await.unwrap());
    assert!(body["refresh_token"].is_string(), "{body}");

    let (status, body) = e
        .token_as(
            ZOHO,
            ZOHO_CLIENT_ID,
            "wrong",
            &[("grant_type", "refresh_token"), ("refresh_token", "x")],
        )
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({ "error": "invalid_client_secret" }))
    );
    let (status, body) = e.exchange(ZOHO, "1000.bogus", None).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({ "error": "invalid_code" }))
    );
}

// ---------------------------------------------------------------------------------------
// Counters, reset, and what must not change

#[tokio::test]
async fn stats_count_token_calls_per_grant_and_reset_clears_everything() {
    let e = env().await;
    let before = e.oauth_stats(ZOHO).await;
    assert_eq!(
        before,
        json!({ "authorization_code": 0, "refresh_token": 0, "client_credentials": 0, "failed": 0, "overlapping_refreshes": 0 })
    );
    let code = e.code(ZOHO, None, &[]).await;
    let (_, issued) = e.exchange(ZOHO, &code, None).await;
    let rt = text(&issued, "refresh_token");
    e.refresh(ZOHO, &rt).await;
    e.refresh(ZOHO, &rt).await;
    e.refresh(ZOHO, "1000.unknown").await;
    e.exchange(ZOHO, &code, None).await; // spent
    e.token(ZOHO, &[("grant_type", "password")]).await;
    assert_eq!(
        e.oauth_stats(ZOHO).await,
        json!({ "authorization_code": 2, "refresh_token": 3, "client_credentials": 0, "failed": 3, "overlapping_refreshes": 0 })
    );
    // OAuth calls are not API requests.
    let resp = e.http.get(e.url("/_control/stats")).send().await.unwrap();
    let stats = json_body(&resp.bytes().await.unwrap());
    assert_eq!(stats["byProvider"]["zoho"], 0, "{stats}");
    for p in [
        "hubspot",
        "salesforce",
        "pipedrive",
        "msgraph",
        "google",
        "zoho",
    ] {
        assert!(stats["oauth"][p].is_object(), "{p} in {stats}");
    }

    e.switch(json!({ "provider": "zoho", "accessTokenLifetimeSeconds": 5 }))
        .await;
    let (status, _) = e.control(Method::POST, "/_control/reset", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(e.oauth_stats(ZOHO).await, before);
    // Issued tokens are gone, switches are back to defaults, the demo client still works.
    let (status, body) = e.refresh(ZOHO, &rt).await;
    assert_bad_refresh(ZOHO, status, &body);
    assert_eq!(
        e.api(ZOHO, &text(&issued, "access_token")).await.0,
        StatusCode::UNAUTHORIZED
    );
    let code = e.code(ZOHO, None, &[]).await;
    let (_, again) = e.exchange(ZOHO, &code, None).await;
    assert_eq!(again["expires_in"], 3600);
    assert_eq!(
        e.api(ZOHO, &text(&again, "access_token")).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn demo_tokens_and_accounts_are_unchanged() {
    let e = env().await;
    assert_eq!(e.api(HUBSPOT, HUBSPOT_DEMO_TOKEN).await.0, StatusCode::OK);
    assert_eq!(
        e.api(SALESFORCE, SALESFORCE_DEMO_TOKEN).await.0,
        StatusCode::OK
    );
    assert_eq!(e.api(GOOGLE, GOOGLE_DEMO_TOKEN).await.0, StatusCode::OK);
    assert_eq!(e.api(ZOHO, ZOHO_DEMO_TOKEN).await.0, StatusCode::OK);
    let accounts = e.sandbox.demo_accounts();
    assert_eq!(accounts.len(), 9);
    let attio = accounts.iter().find(|a| a.provider == "attio").unwrap();
    assert_eq!(
        attio.credentials,
        json!({ "apiKey": tessera_sandbox::ATTIO_DEMO_TOKEN }),
        "Attio has API keys that never expire"
    );
    let hubspot = accounts.iter().find(|a| a.provider == "hubspot").unwrap();
    assert_eq!(
        hubspot.credentials,
        json!({ "accessToken": HUBSPOT_DEMO_TOKEN })
    );
    // Unknown control input is refused, not ignored.
    let (status, _) = e
        .control(
            Method::POST,
            "/_control/oauth",
            json!({ "provider": "hubspot", "bogus": 1 }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = e
        .control(
            Method::POST,
            "/_control/oauth",
            json!({ "provider": "nope" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
