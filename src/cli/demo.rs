//! `tessera demo`: the gateway plus the sandbox vendors in one process, a `demo`
//! environment and one linked account per sandbox provider.

use std::net::SocketAddr;

use crate::app::{Gateway, GatewayConfig, StartError};
use crate::credentials::Credentials;
use crate::store::NewLinkedAccount;
use tessera_sandbox::Sandbox;

#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    #[arg(long, env = "TESSERA_LISTEN", default_value = "127.0.0.1:4000")]
    pub listen: SocketAddr,
    /// The demo keeps its own database, apart from `serve`'s.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://data/demo.db?mode=rwc"
    )]
    pub database_url: String,
    /// Where the sandbox vendors listen (a fixed port keeps demo accounts valid across runs).
    #[arg(long, default_value = "127.0.0.1:4010")]
    pub sandbox_listen: SocketAddr,
    /// The demo environment's API key.
    #[arg(long, default_value = "demo-key")]
    pub demo_key: String,
    #[arg(long, default_value = "providers")]
    pub providers: std::path::PathBuf,
    #[arg(long, default_value = "schema")]
    pub schema: std::path::PathBuf,
}

/// Points the sandbox vendors' app-level webhooks at the demo gateway, signed with the
/// sandbox apps' client secrets, which the demo sets as the platform's apps. Returns the
/// providers set up.
async fn demo_webhooks(
    gateway: &Gateway,
    sandbox: &Sandbox,
    listen: SocketAddr,
) -> Result<Vec<&'static str>, Box<dyn std::error::Error>> {
    let services = &gateway.state.services;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let mut providers = Vec::new();
    for hook in sandbox.app_webhooks() {
        let secret = crate::secret::Secret::new(hook.client_secret);
        services
            .store
            .set_oauth_app(crate::store::OAuthApp {
                environment_id: None,
                provider: hook.provider.into(),
                client_id: hook.client_id.into(),
                client_secret: services
                    .vault
                    .seal_secret(&format!("oauth-app:{}", hook.provider), &secret),
                scopes: Vec::new(),
                // The demo's accounts get tokens from the sandbox on loopback.
                allowed_hosts: vec![sandbox.base_url().trim_start_matches("http://").to_string()],
                allow_client_credentials: false,
            })
            .await?;
        let reply = http
            .put(format!(
                "{}/_control/webhooks/{}",
                sandbox.base_url(),
                hook.provider
            ))
            .header("content-type", "application/json")
            .body(
                serde_json::json!({
                    "targetUrl": format!("http://{listen}/webhooks/{}", hook.provider),
                    "secret": secret.expose(),
                })
                .to_string(),
            )
            .send()
            .await?;
        if !reply.status().is_success() {
            return Err(format!("the sandbox answered HTTP {}", reply.status()).into());
        }
        providers.push(hook.provider);
    }
    Ok(providers)
}

pub async fn run(args: DemoArgs) -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = Sandbox::spawn(args.sandbox_listen).await?;
    // The sandbox is the only non-public upstream the demo calls.
    let base = sandbox.base_url();
    let sandbox_address = base.trim_start_matches("http://");
    let gateway = Gateway::build(GatewayConfig {
        database_url: args.database_url.clone(),
        providers_dir: args.providers.clone(),
        schema_dir: args.schema.clone(),
        upstreams: crate::upstreams::AllowList::parse([sandbox_address])?,
        secret_key: super::serve::secret_key(&args.database_url)?,
        playground_key: Some(args.demo_key.clone()),
        introspection: true,
        refresh_every: Some(std::time::Duration::from_secs(15)),
        // Vendors reach the demo where it listens (webhook subscriptions point here).
        public_url: url::Url::parse(&format!("http://{}", args.listen)).ok(),
        probe_interval: None,
        watch_interval: None,
    })
    .await?;
    let admin_env = std::env::var("TESSERA_ADMIN_KEY")
        .ok()
        .filter(|k| !k.is_empty());
    let generated_admin = gateway.ensure_admin_key(admin_env.as_deref()).await?;
    let env = gateway.ensure_environment("demo", &args.demo_key).await?;
    let mut accounts = Vec::new();
    let existing = gateway.store().list_linked_accounts(Some(&env.id)).await?;
    for demo in sandbox.demo_accounts() {
        if gateway
            .state
            .services
            .providers
            .get(demo.provider)
            .is_none()
        {
            continue;
        }
        // Reuse the account from an earlier run when it points at the same sandbox.
        if let Some(a) = existing.iter().find(|a| {
            a.provider == demo.provider && a.settings == demo.settings && a.status == "ACTIVE"
        }) {
            accounts.push((a.id.clone(), demo.provider));
            continue;
        }
        let creds = Credentials::from_input(&demo.credentials)
            .map_err(|e| StartError::GraphQl(e.to_string()))?;
        let id = uuid::Uuid::new_v4().to_string();
        let row = gateway
            .store()
            .insert_linked_account(NewLinkedAccount {
                credentials: gateway.state.services.vault.seal(&id, &creds),
                id,
                environment_id: env.id.clone(),
                provider: demo.provider.to_string(),
                status: "ACTIVE".into(),
                settings: demo.settings.clone(),
                expires_at: creds.expires_at,
            })
            .await?;
        crate::webhooks::on_account_linked(&gateway.state.services, &row).await;
        accounts.push((row.id, demo.provider));
    }
    let webhooks = demo_webhooks(&gateway, &sandbox, args.listen).await;
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let url = format!("http://{}/graphql", listener.local_addr()?);
    println!("Tessera demo");
    println!("  playground:  {url}  (GraphiQL, Authorization header pre-filled)");
    println!("  API key:     {}", args.demo_key);
    if let Some(admin) = generated_admin {
        println!("  admin key:   {} (shown once)", admin.expose());
    }
    println!("  sandbox:     {}", sandbox.base_url());
    for (id, provider) in &accounts {
        println!("  linked account ({provider}): {id}");
    }
    match webhooks {
        Ok(providers) => {
            for p in providers {
                println!(
                    "  webhooks:    the sandbox {p} posts its changes here; make one with\n               curl -X POST {}/_control/webhooks/{p}/touch -d '{{\"resource\":\"contacts\",\"action\":\"updated\"}}'\n               and read it with {{ events {{ edges {{ node {{ type remoteId source record }} }} }} }}",
                    sandbox.base_url()
                );
            }
        }
        Err(e) => println!("  webhooks:    not set up ({e})"),
    }
    if let Some((id, _)) = accounts.first() {
        println!();
        println!("Try:");
        println!(
            "  {{ linkedAccounts {{ id provider status }} contacts(accountId: \"{id}\", first: 5) {{ edges {{ cursor node {{ id remoteId firstName lastName emails {{ address }} customFields remoteData }} }} pageInfo {{ hasNextPage endCursor }} }} }}"
        );
    }
    gateway
        .serve(listener, super::serve::shutdown_signal())
        .await?;
    sandbox.shutdown();
    Ok(())
}
