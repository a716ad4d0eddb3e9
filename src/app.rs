//! The composition root: loads the schema and providers, opens the store, builds the
//! engine and the GraphQL schema, and serves the router. `main` and the tests both start
//! the gateway through here, so they run the same wiring.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::Providers;
use crate::credentials::oauth::TokenClient;
use crate::credentials::{SecretKey, TokenManager, Vault, run_scheduler};
use crate::engine::{Engine, EngineOptions};
use crate::graphql::build_schema_limited;
use crate::graphql::cost::CostLimit;
use crate::http::{AppState, router};
use crate::jobs::Supervisor;
use crate::monitor::{Monitor, run_log_writer};
use crate::overrides::OverrideRegistry;
use crate::problem::Problems;
use crate::secret::Secret;
use crate::services::{Services, SharedServices};
use crate::store::{Environment, Store, StoreError};
use crate::upstreams::AllowList;

/// How often a replica reads override changes and used-up rate-limit windows made by the
/// others.
pub const OVERRIDE_POLL_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub database_url: String,
    pub providers_dir: PathBuf,
    pub schema_dir: PathBuf,
    /// The loopback, private and link-local upstreams accounts and webhook endpoints may
    /// use (`--allow-upstream`); every other such address is refused.
    pub upstreams: AllowList,
    pub secret_key: SecretKey,
    /// Pre-filled in GraphiQL (demo only).
    pub playground_key: Option<String>,
    /// Serve introspection (`__schema`, `__type`); off in locked-down production.
    pub introspection: bool,
    /// How often the proactive refresher looks for tokens about to expire; `None` turns it
    /// off (tests that drive refreshes by requests).
    pub refresh_every: Option<std::time::Duration>,
    /// The base URL vendors and browsers reach this gateway at (`--public-url`); `None`
    /// uses the host each request arrives with.
    pub public_url: Option<url::Url>,
    /// How often each linked account is probed (`--probe-interval`); `None` reads
    /// `TESSERA_PROBE_INTERVAL_SECS` (default 300).
    pub probe_interval: Option<std::time::Duration>,
    /// How often the watcher turns evidence into alerts; `None` reads
    /// `TESSERA_WATCH_INTERVAL_SECS` (default 30).
    pub watch_interval: Option<std::time::Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the schema has problems:\n{0}")]
    Schema(Problems),
    #[error("provider files have problems:\n{0}")]
    Providers(Problems),
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("the GraphQL schema cannot be built: {0}")]
    GraphQl(String),
    #[error("cannot create the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("environment variable {name}: {message}")]
    Setting { name: &'static str, message: String },
}

/// The engine's options, with `TESSERA_UPSTREAM_DEADLINE_SECS` (one upstream call's time
/// limit, retries included; default 10), `TESSERA_MAX_UPSTREAM_CALLS` (one request's
/// upstream calls, default 400), `TESSERA_MAX_CONCURRENT_CALLS_PER_ACCOUNT` (default 8),
/// `TESSERA_MAPPING_THREADS` (threads evaluating tenant mappings; default: the cores) and
/// `TESSERA_MAPPING_BUDGET_MS` (CPU one request may spend on mappings; default 1000) from
/// the environment.
pub fn engine_options() -> Result<EngineOptions, StartError> {
    let mut options = EngineOptions::default();
    const NAME: &str = "TESSERA_UPSTREAM_DEADLINE_SECS";
    if let Ok(text) = std::env::var(NAME) {
        let secs: f64 = text.trim().parse().map_err(|_| StartError::Setting {
            name: NAME,
            message: format!("`{text}` is not a number of seconds"),
        })?;
        if !(0.1..=300.0).contains(&secs) {
            return Err(StartError::Setting {
                name: NAME,
                message: format!("{secs} is outside 0.1 to 300 seconds"),
            });
        }
        options.deadline = std::time::Duration::from_secs_f64(secs);
        options.request_timeout = options.request_timeout.min(options.deadline);
    }
    if let Some(n) = whole_setting("TESSERA_MAX_UPSTREAM_CALLS", 1, 100_000)? {
        options.max_calls_per_request = n;
    }
    if let Some(n) = whole_setting("TESSERA_MAX_CONCURRENT_CALLS_PER_ACCOUNT", 1, 1024)? {
        options.max_concurrent_per_account = usize::try_from(n).unwrap_or(1024);
    }
    if let Some(n) = whole_setting("TESSERA_MAPPING_THREADS", 1, 256)? {
        options.mapping_threads = usize::try_from(n).unwrap_or(256);
    }
    if let Some(ms) = whole_setting("TESSERA_MAPPING_BUDGET_MS", 10, 600_000)? {
        options.mapping_budget = crate::mapping::MappingBudget {
            per_request: std::time::Duration::from_millis(ms),
        };
    }
    Ok(options)
}

/// A whole-number setting from the environment, within `min..=max`; `None` when unset.
fn whole_setting(name: &'static str, min: u64, max: u64) -> Result<Option<u64>, StartError> {
    let Ok(text) = std::env::var(name) else {
        return Ok(None);
    };
    let n: u64 = text.trim().parse().map_err(|_| StartError::Setting {
        name,
        message: format!("`{text}` is not a whole number"),
    })?;
    if !(min..=max).contains(&n) {
        return Err(StartError::Setting {
            name,
            message: format!("{n} is outside {min} to {max}"),
        });
    }
    Ok(Some(n))
}

/// Loads and checks the SDL and every provider file, as `serve` and `check` both need.
pub fn load_configuration(
    schema_dir: &std::path::Path,
    providers_dir: &std::path::Path,
) -> Result<(crate::schema::UnifiedModel, Providers), StartError> {
    let model = crate::schema::load_dir(schema_dir).map_err(StartError::Schema)?;
    let engine = crate::mapping::default_engine();
    let providers = crate::config::load_dir(providers_dir, &model, engine.as_ref())
        .map_err(StartError::Providers)?;
    Ok((model, providers))
}

pub struct Gateway {
    pub state: AppState,
    refresh_every: Option<std::time::Duration>,
}

impl Gateway {
    pub async fn build(cfg: GatewayConfig) -> Result<Gateway, StartError> {
        let (model, providers) = load_configuration(&cfg.schema_dir, &cfg.providers_dir)?;
        let store = Store::connect(&cfg.database_url).await?;
        let (monitor, log_queue) = Monitor::new();
        let vault = Vault::new(&cfg.secret_key);
        let upstreams = Arc::new(cfg.upstreams.clone());
        if upstreams.allows_any_private() {
            tracing::warn!(
                "--allow-private-upstreams is deprecated and unsafe: any environment key can make the gateway call this host and its network (cloud metadata included); name the upstreams with --allow-upstream"
            );
        }
        tracing::info!(upstreams = %upstreams, "upstreams the gateway may call");
        let tokens = Arc::new(TokenManager::new(
            store.clone(),
            vault.clone(),
            providers.clone(),
            TokenClient::new(std::time::Duration::from_secs(15), upstreams.clone())?,
            upstreams.clone(),
        ));
        let options = engine_options()?;
        let mapping_budget = options.mapping_budget;
        let engine = Engine::new(
            cfg.secret_key.derive("relay-cursor"),
            options,
            upstreams.clone(),
        )?
        .with_observer(monitor.clone())
        .with_refusals(Arc::new(RefusalsSetAccountState(tokens.clone())));
        let tasks = Arc::new(Supervisor::default());
        // The writer ends when the last sender (the monitor) is dropped with the services;
        // nothing else stops it, so its stop signal never fires.
        let (_never, no_stop) = tokio::sync::watch::channel(false);
        let log_queue = Arc::new(tokio::sync::Mutex::new(log_queue));
        {
            let store = store.clone();
            tasks.spawn("request-log-writer", no_stop, move |_| {
                Box::pin(run_log_writer(
                    store.clone(),
                    log_queue.clone(),
                    std::time::Duration::from_secs(3600),
                ))
            });
        }
        let overrides = Arc::new(
            OverrideRegistry::new(
                providers.clone(),
                model.clone(),
                crate::mapping::default_engine(),
            )
            .with_budget(mapping_budget),
        );
        overrides.refresh(&store).await?;
        let services = Arc::new(Services {
            tasks,
            monitor,
            overrides,
            store,
            engine,
            providers,
            vault,
            tokens,
            upstreams,
            model: model.clone(),
            events: Arc::new(crate::services::EventSignals::default()),
            public_url: cfg.public_url.clone(),
            listen_url: std::sync::OnceLock::new(),
            probe_interval: cfg
                .probe_interval
                .unwrap_or_else(crate::health::probes::interval),
            watch_interval: cfg
                .watch_interval
                .unwrap_or_else(crate::health::watch::interval),
        });
        let limit = CostLimit::from_env().map_err(|message| StartError::Setting {
            name: "TESSERA_MAX_QUERY_COST",
            message,
        })?;
        let schema = build_schema_limited(&model, Some(services.clone()), cfg.introspection, limit)
            .map_err(|e| StartError::GraphQl(e.to_string()))?;
        Ok(Gateway {
            refresh_every: cfg.refresh_every,
            state: AppState {
                planner: Arc::new(crate::graphql::Planner::new(&services.model, limit)),
                services,
                schema,
                playground_key: cfg.playground_key.map(Into::into),
                metrics_token: std::env::var("TESSERA_METRICS_TOKEN")
                    .ok()
                    .filter(|t| !t.trim().is_empty())
                    .map(|t| crate::access::keys::hash(t.trim()).into()),
            },
        })
    }

    pub fn store(&self) -> &Store {
        &self.state.services.store
    }

    /// Makes sure an admin key exists. With `key` (`TESSERA_ADMIN_KEY`), that key is the
    /// admin key: registered if new, and every other admin key revoked, so changing the
    /// variable and restarting retires the old key. Without, one is generated on first
    /// start and returned so it can be shown once.
    pub async fn ensure_admin_key(&self, key: Option<&str>) -> Result<Option<Secret>, StartError> {
        let store = self.store();
        match key {
            Some(key) => {
                let hash = crate::access::keys::hash(key);
                if store.find_api_key(&hash).await?.is_none() {
                    store
                        .insert_api_key(None, &hash, &crate::access::keys::prefix(key))
                        .await?;
                }
                let retired = store.revoke_admin_keys_except(&hash).await?;
                if retired > 0 {
                    tracing::info!(
                        retired,
                        "TESSERA_ADMIN_KEY changed: the old admin key no longer works"
                    );
                }
                Ok(None)
            }
            None if store.has_admin_key().await? => Ok(None),
            None => {
                let key = crate::access::keys::generate();
                store
                    .insert_api_key(
                        None,
                        &crate::access::keys::hash(key.expose()),
                        &crate::access::keys::prefix(key.expose()),
                    )
                    .await?;
                Ok(Some(key))
            }
        }
    }

    /// Finds or creates the named environment and makes sure `key` is one of its keys.
    pub async fn ensure_environment(
        &self,
        name: &str,
        key: &str,
    ) -> Result<Environment, StartError> {
        let store = self.store();
        let env = match store.find_environment_by_name(name).await? {
            Some(env) => env,
            None => store.create_environment(name).await?,
        };
        let hash = crate::access::keys::hash(key);
        match store.find_api_key(&hash).await? {
            Some(k) if k.environment_id.as_deref() == Some(env.id.as_str()) => {}
            Some(_) => {
                return Err(StartError::Store(StoreError::Conflict {
                    what: "that API key already belongs to another environment or the admin".into(),
                }));
            }
            None => {
                store
                    .insert_api_key(Some(&env.id), &hash, &crate::access::keys::prefix(key))
                    .await?;
            }
        }
        Ok(env)
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests. The proactive token
    /// refresher runs beside the server and stops with it.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        if let Ok(addr) = listener.local_addr() {
            let _ = self.state.services.listen_url.set(format!("http://{addr}"));
        }
        let supervisor = self.state.services.tasks.clone();
        let scheduler = self.refresh_every.map(|every| {
            let tokens = self.state.services.tokens.clone();
            supervisor.spawn("token-refresher", stop_rx.clone(), move |mut stop| {
                Box::pin(run_scheduler(tokens.clone(), every, async move {
                    let _ = stop.changed().await;
                }))
            })
        });
        let poller = {
            let services = self.state.services.clone();
            supervisor.spawn("override-and-budget-poll", stop_rx.clone(), move |stop| {
                Box::pin(poll_changes(services.clone(), stop))
            })
        };
        let sweeper = {
            let store = self.state.services.store.clone();
            supervisor.spawn("retention-sweep", stop_rx.clone(), move |stop| {
                Box::pin(sweep_retained(store.clone(), stop))
            })
        };
        let processor = {
            let services = self.state.services.clone();
            supervisor.spawn("webhook-processor", stop_rx.clone(), move |stop| {
                Box::pin(crate::webhooks::process::run(services.clone(), stop))
            })
        };
        let feed = {
            let services = self.state.services.clone();
            supervisor.spawn("event-feed", stop_rx.clone(), move |stop| {
                Box::pin(crate::webhooks::feed::run(services.clone(), stop))
            })
        };
        let deliverer = {
            let services = self.state.services.clone();
            supervisor.spawn("webhook-deliverer", stop_rx.clone(), move |stop| {
                Box::pin(crate::webhooks::outbound::run(services.clone(), stop))
            })
        };
        let reconciler = {
            let services = self.state.services.clone();
            supervisor.spawn("reconciliation", stop_rx.clone(), move |stop| {
                Box::pin(crate::webhooks::reconcile::run(services.clone(), stop))
            })
        };
        let prober = {
            let services = self.state.services.clone();
            supervisor.spawn("health-probes", stop_rx.clone(), move |stop| {
                Box::pin(crate::health::probes::run(services.clone(), stop))
            })
        };
        let watcher = {
            let services = self.state.services.clone();
            supervisor.spawn("watcher", stop_rx.clone(), move |stop| {
                Box::pin(crate::health::watch::run(services.clone(), stop))
            })
        };
        let renewer = {
            let services = self.state.services.clone();
            supervisor.spawn("webhook-subscriptions", stop_rx.clone(), move |stop| {
                Box::pin(crate::webhooks::subscriptions::run(services.clone(), stop))
            })
        };
        let result = axum::serve(listener, router(self.state))
            .with_graceful_shutdown(shutdown)
            .await;
        let _ = stop_tx.send(true);
        let _ = poller.await;
        let _ = sweeper.await;
        let _ = processor.await;
        let _ = feed.await;
        let _ = renewer.await;
        let _ = watcher.await;
        let _ = deliverer.await;
        let _ = reconciler.await;
        let _ = prober.await;
        if let Some(task) = scheduler {
            let _ = task.await;
        }
        result
    }
}

/// A vendor's 401 goes to the token manager, which owns account state: a reactive refresh
/// and one retry, or NEEDS_REAUTH set before the caller hears it.
struct RefusalsSetAccountState(Arc<TokenManager>);

impl crate::engine::TokenRefusals for RefusalsSetAccountState {
    fn refused<'a>(
        &'a self,
        account_id: &'a str,
        refused: &'a Secret,
        reason: &'a str,
        retried: bool,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = crate::engine::Refusal> + Send + 'a>>
    {
        Box::pin(async move {
            match self
                .0
                .after_refusal(account_id, refused, reason, retried)
                .await
            {
                Ok(Some(token)) => crate::engine::Refusal::Retry(token),
                Ok(None) => crate::engine::Refusal::Parked,
                Err(e) => crate::engine::Refusal::Unsettled(e.to_string()),
            }
        })
    }
}

/// How long account events (refreshes, reauthorizations) are kept.
const EVENT_RETENTION_DAYS: i64 = 90;

/// How long unified events, processed inbox rows (the deduplication window) and the
/// webhook delivery log are kept, unless `TESSERA_EVENT_RETENTION_DAYS` says otherwise.
const WEBHOOK_RETENTION_DAYS: i64 = 7;

fn webhook_retention() -> chrono::Duration {
    let days = std::env::var("TESSERA_EVENT_RETENTION_DAYS")
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|d| (1..=3650).contains(d))
        .unwrap_or(WEBHOOK_RETENTION_DAYS);
    chrono::Duration::days(days)
}

/// Every hour: idempotency keys past their 24 h window, expired OAuth states, account events
/// and resolved alerts older than [`EVENT_RETENTION_DAYS`]. (The request log sweeps itself.) Any replica may run
/// it; the deletes are idempotent.
async fn sweep_retained(store: Store, stop: tokio::sync::watch::Receiver<bool>) {
    crate::jobs::run_every(std::time::Duration::from_secs(3600), stop, || async {
        let before = chrono::Utc::now() - chrono::Duration::days(EVENT_RETENTION_DAYS);
        match store.sweep_expired(before).await {
            Ok(n) if n > 0 => tracing::info!(rows = n, "retention sweep"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention sweep failed; will retry"),
        }
        match store
            .sweep_webhooks(chrono::Utc::now() - webhook_retention())
            .await
        {
            Ok(n) if n > 0 => tracing::info!(rows = n, "webhook retention sweep"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "webhook retention sweep failed; will retry"),
        }
        // Resolved alerts are kept as long as account events: they are the history
        // support reads.
        match store.sweep_alerts(before).await {
            Ok(n) if n > 0 => tracing::info!(rows = n, "alert retention sweep"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "alert retention sweep failed; will retry"),
        }
    })
    .await
}

/// Reads override changes and rate-limit windows other replicas saw used up, each second.
async fn poll_changes(services: SharedServices, stop: tokio::sync::watch::Receiver<bool>) {
    crate::jobs::run_every(OVERRIDE_POLL_EVERY, stop, || async {
        if let Err(e) = services.overrides.refresh(&services.store).await {
            tracing::warn!(error = %e, "reading override changes failed; will retry");
        }
        if let Err(e) = services
            .monitor
            .sync_budgets(&services.store, &services.engine)
            .await
        {
            tracing::warn!(error = %e, "reading shared rate-limit windows failed; will retry");
        }
    })
    .await
}

/// A gateway serving in the background (tests, demo).
pub struct RunningGateway {
    pub addr: SocketAddr,
    pub services: SharedServices,
    /// The planned execution path (switched off by the tests that compare it with
    /// async-graphql).
    pub planner: Arc<crate::graphql::Planner>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningGateway {
    pub async fn start(gateway: Gateway, listen: SocketAddr) -> Result<RunningGateway, StartError> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let services = gateway.state.services.clone();
        let planner = gateway.state.planner.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(gateway.serve(listener, async move {
            let _ = rx.await;
        }));
        Ok(RunningGateway {
            addr,
            services,
            planner,
            stop: Some(tx),
            task,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}
