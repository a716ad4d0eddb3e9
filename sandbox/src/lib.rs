//! The vendor sandbox: imitations of the SaaS CRM APIs Tessera integrates with, served over
//! real HTTP on loopback for the integration tests, the demo (`tessera sandbox`) and the
//! benchmarks.
//!
//! This folder owns every simulated vendor (one file each with its data in a `_data.rs`
//! sibling, e.g. `hubspot.rs` and `hubspot_data.rs`) and the shared `/_control` plane in
//! `control.rs`: request counters, fault injection, the access-token registry and
//! rate-limit windows. Vendor behaviour follows `/work/shared/vendors.md`, which is the
//! source of truth, not the gateway's provider configs.
//!
//! The sandbox does not depend on the gateway crate at all. It is
//! the independent witness the gateway is tested against; if both shared code, a bug in
//! that code would be reproduced on both sides of the wire and the tests would still pass.
//!
//! This is its own crate (`tessera-sandbox`): the gateway's server path never links it. The
//! `tessera` binary takes it only for `tessera demo` and `tessera sandbox` (the default
//! `sandbox` feature); tests and benchmarks take it as a dev-dependency.
//!
//! Adding a vendor: write `<vendor>.rs` implementing `control::Vendor`, list it in
//! `vendors()`, answer for it in [`sample_records`], and write the provider's sample files
//! (`tests/it/samples.rs` says how). A vendor that pushes record changes also implements
//! `webhooks::WebhookDialect` (in a `<vendor>_webhooks.rs` child module) and reports every
//! create, update and delete to `control.webhooks`.
//!
//! OAuth 2.0 (`oauth.rs`): every vendor also serves its authorization and token endpoints
//! under its prefix, outside the API gate, for the seeded demo client below
//! (`<VENDOR>_CLIENT_ID` / `<VENDOR>_CLIENT_SECRET`, any loopback redirect URI) and for
//! clients registered through `POST /_control/oauth/clients`. The control plane adds
//! `POST /_control/oauth` (token lifetime, rotation, slow or failing token endpoint),
//! `/_control/oauth/revoke`, `/_control/oauth/grant` (a linked account without the
//! browser) and `stats.oauth`.
//!
//! Webhooks (`webhooks.rs`, with each vendor's wire format in `<vendor>_webhooks.rs`):
//! HubSpot (app-level, signed v1/v2/v3), Microsoft Graph (subscriptions with the
//! validation handshake and lifecycle events), Pipedrive (webhooks with Basic auth) and
//! Zoho (watch channels with a token), Attio (webhooks signed with a hex HMAC of the
//! body) and Close (hex HMAC of timestamp and body under a hex key) POST every change made through their API to their
//! subscribers, asynchronously, in order per vendor, retried with backoff. Salesforce and
//! Google push nothing. The control plane adds `/_control/webhooks/{provider}` (`PUT`
//! configuration, `GET` configuration, subscriptions and the log of everything sent),
//! `.../touch` (a change made in the vendor's own UI), `.../faults` (wrong signature,
//! dropped deliveries, failing renewal or validation), `.../expire` and, for Graph,
//! `.../lifecycle`; `/_control/reset` clears all of it.
//!
//! A vendor's own knobs live under `/_control/{provider}/` (`Vendor::control_router`):
//! Google's sync tokens (`/_control/google/sync-tokens`: counts, a lifetime, and
//! `.../expire`, which expires every token issued so far).

mod attio;
mod attio_data;
mod close;
mod close_data;
mod control;
mod copper;
mod copper_data;
mod google;
mod google_data;
mod hubspot;
mod hubspot_data;
mod msgraph;
mod msgraph_data;
mod oauth;
mod pipedrive;
mod pipedrive_data;
mod salesforce;
mod salesforce_data;
pub mod simulation;
mod webhooks;
mod wire;
mod zoho;
mod zoho_data;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use control::{Control, Vendor};

/// A vendor's app-level webhooks: the provider and the OAuth app whose secret signs them.
#[derive(Debug, Clone, Copy)]
pub struct AppWebhook {
    pub provider: &'static str,
    pub client_id: &'static str,
    pub client_secret: &'static str,
}

/// The static access token the sandbox HubSpot accepts out of the box.
pub const HUBSPOT_DEMO_TOKEN: &str = "sandbox-hubspot-token";

/// The static token the sandbox Pipedrive accepts out of the box, as an OAuth bearer
/// token or as an `x-api-token` API token.
pub const PIPEDRIVE_DEMO_TOKEN: &str = "sandbox-pipedrive-token";

/// The static access token the sandbox Microsoft Graph accepts out of the box.
pub const MSGRAPH_DEMO_TOKEN: &str = "sandbox-msgraph-token";

/// The static access token the sandbox Google People API accepts out of the box.
pub const GOOGLE_DEMO_TOKEN: &str = "sandbox-google-token";

/// The static access token the sandbox Salesforce accepts out of the box.
pub const SALESFORCE_DEMO_TOKEN: &str = "sandbox-salesforce-token";

/// The static access token the sandbox Zoho CRM accepts out of the box (sent as
/// `Authorization: Zoho-oauthtoken <token>`).
pub const ZOHO_DEMO_TOKEN: &str = "sandbox-zoho-token";

/// The workspace API key the sandbox Attio accepts out of the box (`Authorization: Bearer`).
pub const ATTIO_DEMO_TOKEN: &str = "sandbox-attio-key";

/// The API key the sandbox Close accepts out of the box (the HTTP Basic user name, with an
/// empty password).
pub const CLOSE_DEMO_KEY: &str = "sandbox-close-api-key";

/// The API key the sandbox Copper accepts out of the box (`X-PW-AccessToken`, with
/// `X-PW-Application: developer_api` and `X-PW-UserEmail` naming the key owner).
pub const COPPER_DEMO_KEY: &str = "sandbox-copper-api-key";

/// The OAuth client seeded for the sandbox HubSpot (any loopback redirect URI).
pub const HUBSPOT_CLIENT_ID: &str = "sandbox-hubspot-client";
pub const HUBSPOT_CLIENT_SECRET: &str = "sandbox-hubspot-secret";

/// The OAuth client seeded for the sandbox Pipedrive; its token endpoint takes the pair as
/// `Authorization: Basic base64(id:secret)` (body parameters also work).
pub const PIPEDRIVE_CLIENT_ID: &str = "sandbox-pipedrive-client";
pub const PIPEDRIVE_CLIENT_SECRET: &str = "sandbox-pipedrive-secret";

/// The OAuth client (application) seeded for the sandbox Microsoft identity platform.
pub const MSGRAPH_CLIENT_ID: &str = "sandbox-msgraph-client";
pub const MSGRAPH_CLIENT_SECRET: &str = "sandbox-msgraph-secret";

/// The OAuth client seeded for the sandbox Google.
pub const GOOGLE_CLIENT_ID: &str = "sandbox-google-client";
pub const GOOGLE_CLIENT_SECRET: &str = "sandbox-google-secret";

/// The connected app (consumer key and secret) seeded for the sandbox Salesforce.
pub const SALESFORCE_CLIENT_ID: &str = "sandbox-salesforce-client";
pub const SALESFORCE_CLIENT_SECRET: &str = "sandbox-salesforce-secret";

/// The OAuth client seeded for the sandbox Zoho accounts server.
pub const ZOHO_CLIENT_ID: &str = "sandbox-zoho-client";
pub const ZOHO_CLIENT_SECRET: &str = "sandbox-zoho-secret";

/// What a linked account to one simulated provider needs.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoAccount {
    /// Provider file name, e.g. `"hubspot"`.
    pub provider: &'static str,
    /// e.g. `{"accessToken": "..."}`.
    pub credentials: Value,
    /// e.g. `{"baseUrl": "http://127.0.0.1:PORT/hubspot"}`.
    pub settings: Value,
}

/// A running sandbox. Dropping it stops the server.
pub struct Sandbox {
    addr: SocketAddr,
    vendors: Vec<Arc<dyn Vendor>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").field("addr", &self.addr).finish()
    }
}

fn vendors(control: &Arc<Control>, base_url: &str) -> Vec<Arc<dyn Vendor>> {
    vec![
        Arc::new(hubspot::HubSpot::new(control.clone(), base_url)),
        Arc::new(pipedrive::Pipedrive::new(control.clone())),
        Arc::new(msgraph::MsGraph::new(control.clone(), base_url)),
        Arc::new(google::Google::new(control.clone())),
        Arc::new(salesforce::Salesforce::new(control.clone())),
        Arc::new(zoho::Zoho::new(control.clone())),
        Arc::new(attio::Attio::new(control.clone())),
        Arc::new(close::Close::new(control.clone())),
        Arc::new(copper::Copper::new(control.clone())),
    ]
}

/// Links must be usable by clients even when the server listens on every interface.
fn reachable_base_url(addr: SocketAddr) -> String {
    let host = match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => format!("127.0.0.1:{}", a.port()),
        SocketAddr::V6(a) if a.ip().is_unspecified() => format!("[::1]:{}", a.port()),
        other => other.to_string(),
    };
    format!("http://{host}")
}

impl Sandbox {
    /// Binds `listen` (use 127.0.0.1:0 for a free port) and serves every simulated vendor
    /// plus /_control in a background tokio task.
    pub async fn spawn(listen: SocketAddr) -> std::io::Result<Sandbox> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let control = Arc::new(Control::default());
        let base_url = reachable_base_url(addr);
        control.oauth.set_base_url(&base_url);
        let vendors = vendors(&control, &base_url);

        let mut app = Router::new();
        for vendor in &vendors {
            control.register(vendor.as_ref());
            if let Some(dialect) = vendor.clone().webhooks() {
                control.webhooks.register(vendor.provider(), &dialect);
            }
            let routes = vendor.clone().router().merge(vendor.clone().oauth_router());
            app = app.nest(&vendor.mount(), routes);
        }
        let app = app
            .nest("/_control", control::router(control, vendors.clone()))
            .fallback(|| async {
                let body = json!({ "error": "no simulated vendor is served at this path" });
                (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
            });

        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let server = axum::serve(listener, app).with_graceful_shutdown(async {
                // An error means the Sandbox was dropped: stop as well.
                let _ = stopped.await;
            });
            if let Err(error) = server.await {
                tracing::warn!(%error, "sandbox server stopped with an error");
            }
        });
        Ok(Sandbox {
            addr,
            vendors,
            stop: Some(stop),
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// e.g. "http://127.0.0.1:4010"
    pub fn base_url(&self) -> String {
        reachable_base_url(self.addr)
    }

    /// One entry per simulated provider, for the demo: what a linked account to it needs.
    pub fn demo_accounts(&self) -> Vec<DemoAccount> {
        let base = self.base_url();
        self.vendors.iter().map(|v| v.demo_account(&base)).collect()
    }

    /// The vendors that send app-level webhooks (one target URL for every account of an
    /// OAuth app, signed with the app's secret), for the demo to point at the gateway with
    /// `PUT /_control/webhooks/{provider}`.
    pub fn app_webhooks(&self) -> Vec<AppWebhook> {
        vec![AppWebhook {
            provider: "hubspot",
            client_id: HUBSPOT_CLIENT_ID,
            client_secret: HUBSPOT_CLIENT_SECRET,
        }]
    }

    /// Stops the server (dropping the Sandbox does the same).
    pub fn shutdown(mut self) {
        self.signal_stop();
    }

    fn signal_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Stops and waits (bounded) for in-flight requests to finish.
    async fn stop_and_wait(mut self) {
        self.signal_stop();
        if let Some(task) = self.task.take() {
            // Keep-alive connections from stubborn clients must not hold the process.
            let aborter = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                aborter.abort();
            }
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.signal_stop();
    }
}

/// Serve until ctrl-c (for `tessera sandbox --listen`). Prints nothing itself; returns when
/// stopped.
pub async fn serve(listen: SocketAddr) -> std::io::Result<()> {
    let sandbox = Sandbox::spawn(listen).await?;
    let signal = tokio::signal::ctrl_c().await;
    sandbox.stop_and_wait().await;
    signal
}

/// Sample upstream records (raw vendor JSON, as the list endpoint returns one record) for a
/// provider/resource, e.g. ("hubspot","contacts"). The product reads the same records from
/// `providers/samples/` (kept equal by `tests/it/samples.rs`). None if unknown.
pub fn sample_records(provider: &str, resource: &str) -> Option<Vec<Value>> {
    match provider {
        hubspot::PROVIDER => hubspot::sample_records(resource),
        pipedrive::PROVIDER => pipedrive::sample_records(resource),
        msgraph::PROVIDER => msgraph::sample_records(resource),
        google::PROVIDER => google::sample_records(resource),
        salesforce::PROVIDER => salesforce::sample_records(resource),
        zoho::PROVIDER => zoho::sample_records(resource),
        attio::PROVIDER => attio::sample_records(resource),
        close::PROVIDER => close::sample_records(resource),
        copper::PROVIDER => copper::sample_records(resource),
        _ => None,
    }
}
