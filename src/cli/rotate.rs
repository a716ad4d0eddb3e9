//! `tessera secrets rotate`: re-encrypts every stored secret (linked-account credentials,
//! OAuth client secrets) from the old `TESSERA_SECRET_KEY` to a new one, in place.
//! Run it with every replica stopped, then restart them with the new key.

use crate::credentials::{SecretKey, Vault};
use crate::store::{LinkedAccountUpdate, Store};

#[derive(clap::Args, Debug, Clone)]
pub struct RotateArgs {
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://data/tessera.db?mode=rwc"
    )]
    pub database_url: String,
    /// The key the secrets are sealed with now (base64 of 32 bytes).
    #[arg(long, env = "TESSERA_SECRET_KEY", hide_env_values = true)]
    pub old_key: String,
    /// The key to seal them with from now on.
    #[arg(long, env = "TESSERA_NEW_SECRET_KEY", hide_env_values = true)]
    pub new_key: String,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rotated {
    pub accounts: usize,
    pub apps: usize,
    pub idempotent_results: usize,
    pub pending_authorizations_dropped: u64,
}

pub async fn rotate(
    store: &Store,
    old: &SecretKey,
    new: &SecretKey,
) -> Result<Rotated, Box<dyn std::error::Error>> {
    let (from, to) = (Vault::new(old), Vault::new(new));
    let mut done = Rotated::default();
    for account in store.list_linked_accounts(None).await? {
        // Already under the new key (a rerun after an interruption): leave it.
        if to.open(&account.id, &account.credentials).is_ok() {
            continue;
        }
        let creds = from.open(&account.id, &account.credentials)?;
        let update = LinkedAccountUpdate {
            status: account.status.clone(),
            status_reason: account.status_reason.clone(),
            credentials: to.seal(&account.id, &creds),
            expires_at: account.expires_at,
            last_refreshed_at: account.last_refreshed_at,
        };
        if store
            .update_linked_account_cas(&account.id, account.version, update)
            .await?
            .is_none()
        {
            return Err(format!("linked account {} changed during the rotation: stop every replica and run it again", account.id).into());
        }
        done.accounts += 1;
    }
    for mut app in store.list_oauth_apps().await? {
        let context = format!("oauth-app:{}", app.provider);
        if to.open_secret(&context, &app.client_secret).is_ok() {
            continue;
        }
        let secret = from.open_secret(&context, &app.client_secret)?;
        app.client_secret = to.seal_secret(&context, &secret);
        store.set_oauth_app(app).await?;
        done.apps += 1;
    }
    for (environment, key, stored) in store.list_idempotent_results().await? {
        use crate::access::idempotency::{open_result, seal_result};
        if stored.starts_with("sealed:") && open_result(&to, &environment, &key, &stored).is_some()
        {
            continue;
        }
        let Some(clear) = open_result(&from, &environment, &key, &stored) else {
            return Err(format!(
                "the stored result of idempotency key `{key}` cannot be opened with the old key"
            )
            .into());
        };
        store
            .complete_idempotency_key(
                &environment,
                &key,
                &seal_result(&to, &environment, &key, &clear),
            )
            .await?;
        done.idempotent_results += 1;
    }
    done.pending_authorizations_dropped = store.clear_oauth_states().await?;
    Ok(done)
}

pub async fn run(args: RotateArgs) -> Result<(), Box<dyn std::error::Error>> {
    let old = SecretKey::from_base64(&args.old_key)?;
    let new = SecretKey::from_base64(&args.new_key)?;
    let store = Store::connect(&args.database_url).await?;
    let done = rotate(&store, &old, &new).await?;
    println!(
        "re-encrypted {} linked accounts, {} OAuth apps and {} idempotent results; dropped {} pending authorizations. Restart every replica with the new TESSERA_SECRET_KEY.",
        done.accounts, done.apps, done.idempotent_results, done.pending_authorizations_dropped
    );
    Ok(())
}
