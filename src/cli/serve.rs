//! `tessera serve`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::app::{Gateway, GatewayConfig, StartError};
use crate::credentials::SecretKey;
use crate::upstreams::{AllowList, Entry};

#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TESSERA_LISTEN", default_value = "127.0.0.1:4000")]
    pub listen: SocketAddr,
    /// `sqlite://path?mode=rwc` (created and migrated on start) or `postgres://...`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://data/tessera.db?mode=rwc"
    )]
    pub database_url: String,
    /// Directory of provider files.
    #[arg(long, default_value = "providers")]
    pub providers: PathBuf,
    /// Directory of the unified SDL.
    #[arg(long, default_value = "schema")]
    pub schema: PathBuf,
    /// A loopback, private or link-local upstream the gateway may call: `HOST[:PORT]` as
    /// URLs write it (`127.0.0.1:4010`, `crm.internal:8443`) or a CIDR block (`10.0.0.0/8`,
    /// `fd00::/8`). Repeatable; `TESSERA_ALLOW_UPSTREAMS` takes a comma-separated list.
    /// Every other such address is refused, after DNS resolution. A named upstream may also
    /// use plain http and a host outside its provider's allowed hosts.
    #[arg(
        long = "allow-upstream",
        value_name = "HOST[:PORT]|CIDR",
        env = "TESSERA_ALLOW_UPSTREAMS",
        value_delimiter = ',',
        value_parser = parse_upstream
    )]
    pub allow_upstream: Vec<UpstreamArg>,
    /// Deprecated and unsafe, for tests only: allow every loopback, private and link-local
    /// address (cloud metadata included) and any host for any account. Use
    /// `--allow-upstream` instead.
    #[arg(long)]
    pub allow_private_upstreams: bool,
    /// Refuse introspection queries (tools like codegen then need the printed SDL).
    #[arg(long)]
    pub disable_introspection: bool,
    /// The base URL vendors and browsers reach this gateway at, e.g.
    /// `https://api.example.com`: webhook URLs and OAuth redirects use it, and signatures
    /// that cover the URL are checked against it. Default: the host each request arrives
    /// with.
    #[arg(long, env = "TESSERA_PUBLIC_URL")]
    pub public_url: Option<url::Url>,
    /// Seconds between health probes of each linked account (jittered; 1 to 86400).
    #[arg(long, env = "TESSERA_PROBE_INTERVAL_SECS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub probe_interval: Option<u64>,
    /// A PEM bundle of certificate authorities to trust beside the public ones on every
    /// upstream call (an on-premise vendor signed by the company's own CA).
    #[arg(long, env = "TESSERA_CA_FILE", value_name = "PEM")]
    pub ca_file: Option<std::path::PathBuf>,
}

/// One `--allow-upstream` value; a blank one (an empty `TESSERA_ALLOW_UPSTREAMS`, `a,,b`)
/// names nothing.
#[derive(Debug, Clone)]
pub struct UpstreamArg(Option<Entry>);

fn parse_upstream(text: &str) -> Result<UpstreamArg, String> {
    if text.trim().is_empty() {
        return Ok(UpstreamArg(None));
    }
    text.parse::<Entry>()
        .map(|e| UpstreamArg(Some(e)))
        .map_err(|e| e.to_string())
}

#[derive(Debug, thiserror::Error)]
pub enum KeySetupError {
    #[error(
        "TESSERA_SECRET_KEY is required with PostgreSQL (base64 of 32 bytes; every replica needs the same key)"
    )]
    MissingForPostgres,
    #[error(transparent)]
    Key(#[from] crate::credentials::KeyError),
}

/// `TESSERA_SECRET_KEY`, or on SQLite a key file beside the database (created 0600).
pub fn secret_key(database_url: &str) -> Result<SecretKey, KeySetupError> {
    if let Ok(text) = std::env::var("TESSERA_SECRET_KEY") {
        return Ok(SecretKey::from_base64(&text)?);
    }
    if !database_url.starts_with("sqlite:") {
        return Err(KeySetupError::MissingForPostgres);
    }
    Ok(SecretKey::load_or_create(
        &sqlite_dir(database_url).join("secret.key"),
    )?)
}

/// The directory of a `sqlite://` database file (`data` for the default URL).
fn sqlite_dir(url: &str) -> PathBuf {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or_default();
    match Path::new(path).parent() {
        Some(p) if !p.as_os_str().is_empty() && path != ":memory:" => p.to_path_buf(),
        _ => PathBuf::from("data"),
    }
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: draining in-flight requests");
}

pub async fn run(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let key = secret_key(&args.database_url)?;
    let mut upstreams = AllowList::new(
        args.allow_upstream
            .iter()
            .filter_map(|a| a.0.clone())
            .collect(),
    )
    .with_any_private(args.allow_private_upstreams);
    if let Some(path) = &args.ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| format!("--ca-file {}: cannot read it: {e}", path.display()))?;
        upstreams = upstreams
            .with_extra_roots(pem)
            .map_err(|e| format!("--ca-file {}: {e}", path.display()))?;
    }
    let gateway = Gateway::build(GatewayConfig {
        database_url: args.database_url.clone(),
        providers_dir: args.providers.clone(),
        schema_dir: args.schema.clone(),
        upstreams,
        secret_key: key,
        playground_key: None,
        introspection: !args.disable_introspection,
        refresh_every: Some(std::time::Duration::from_secs(15)),
        public_url: args.public_url.clone(),
        probe_interval: args.probe_interval.map(std::time::Duration::from_secs),
        watch_interval: None,
    })
    .await?;
    let admin_env = std::env::var("TESSERA_ADMIN_KEY")
        .ok()
        .filter(|k| !k.is_empty());
    if let Some(generated) = gateway.ensure_admin_key(admin_env.as_deref()).await? {
        // Printed once, on the first start: only the hash is kept.
        println!(
            "Admin key (shown once, store it now): {}",
            generated.expose()
        );
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(StartError::Io)?;
    println!(
        "Tessera listening on http://{}/graphql",
        listener.local_addr()?
    );
    gateway.serve(listener, shutdown_signal()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_file_lives_beside_the_sqlite_database() {
        assert_eq!(
            sqlite_dir("sqlite://data/tessera.db?mode=rwc"),
            PathBuf::from("data")
        );
        assert_eq!(
            sqlite_dir("sqlite:///var/lib/t/x.db"),
            PathBuf::from("/var/lib/t")
        );
        assert_eq!(sqlite_dir("sqlite://x.db"), PathBuf::from("data"));
    }
}
