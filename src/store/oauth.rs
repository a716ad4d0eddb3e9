//! OAuth apps, pending authorization states, account events, and the accounts whose tokens
//! are due for refresh.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::store::entities::{account_event, linked_account, oauth_app, oauth_state};
use crate::store::{LinkedAccount, Store, StoreError};

/// An OAuth app: the client credentials Tessera uses with one provider. The secret is
/// sealed by the caller.
#[derive(Clone)]
pub struct OAuthApp {
    /// `None` for the platform default.
    pub environment_id: Option<String>,
    pub provider: String,
    pub client_id: String,
    pub client_secret: Vec<u8>,
    pub scopes: Vec<String>,
    /// Platform default only: the token and authorization hosts (`host` or `host:port`),
    /// beyond the provider file's own, that the admin lets environments use it with.
    pub allowed_hosts: Vec<String>,
    /// Platform default only: environments may use it for the client-credentials grant.
    pub allow_client_credentials: bool,
}

impl std::fmt::Debug for OAuthApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthApp")
            .field("environment_id", &self.environment_id)
            .field("provider", &self.provider)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &crate::store::Redacted(self.client_secret.len()),
            )
            .field("allowed_hosts", &self.allowed_hosts)
            .field("allow_client_credentials", &self.allow_client_credentials)
            .finish()
    }
}

/// A started authorization: single use, until `expires_at`.
#[derive(Clone)]
pub struct OAuthState {
    pub state: String,
    pub environment_id: String,
    pub provider: String,
    pub redirect_uri: String,
    /// Sealed PKCE verifier, when the provider uses PKCE.
    pub code_verifier: Option<Vec<u8>>,
    pub settings: serde_json::Value,
    pub expires_at: DateTime<Utc>,
    /// The vendor's consent URL, revealed by `GET /oauth/start` to the first browser.
    pub authorize_url: String,
    /// The linked account this authorization renews in place; None links a new one.
    pub account_id: Option<String>,
}

/// What the browser at `GET /oauth/start` gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateClaim {
    /// This browser holds the state now (or already did): send it to the vendor.
    Claimed {
        authorize_url: String,
        expires_at: DateTime<Utc>,
        /// Claimed by this call: the browser needs the new secret. `false`: the browser
        /// came back with the secret it already holds.
        fresh: bool,
    },
    /// Unknown, expired or consumed.
    Unknown,
    /// Another browser opened the link first.
    OtherBrowser,
}

/// What the callback gets for a state and the secret its browser presented.
#[derive(Debug)]
pub enum StateTake {
    /// Consumed: this browser started the flow.
    Taken(Box<OAuthState>),
    /// Unknown, expired or consumed.
    Unknown,
    /// The state exists, but the browser presented no secret or another one: nothing was
    /// consumed, so a forged callback cannot spend the rightful browser's flow.
    OtherBrowser,
}

impl std::fmt::Debug for OAuthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthState")
            .field("provider", &self.provider)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountEvent {
    pub id: String,
    pub account_id: String,
    pub kind: String,
    pub message: String,
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// Creates or replaces the app of (environment, provider).
    pub async fn set_oauth_app(&self, app: OAuthApp) -> Result<(), StoreError> {
        let scopes = serde_json::to_string(&app.scopes).unwrap_or_else(|_| "[]".into());
        let hosts = serde_json::to_string(&app.allowed_hosts).unwrap_or_else(|_| "[]".into());
        oauth_app::Entity::insert(oauth_app::ActiveModel {
            id: Set(crate::store::new_id()),
            environment_id: Set(app.environment_id.unwrap_or_default()),
            provider: Set(app.provider),
            client_id: Set(app.client_id),
            client_secret: Set(app.client_secret),
            scopes: Set(scopes),
            allowed_hosts: Set(hosts),
            allow_client_credentials: Set(app.allow_client_credentials),
            created_at: Set(crate::store::now()),
        })
        .on_conflict(
            OnConflict::columns([
                oauth_app::Column::EnvironmentId,
                oauth_app::Column::Provider,
            ])
            .update_columns([
                oauth_app::Column::ClientId,
                oauth_app::Column::ClientSecret,
                oauth_app::Column::Scopes,
                oauth_app::Column::AllowedHosts,
                oauth_app::Column::AllowClientCredentials,
            ])
            .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await
        .map_err(StoreError::db("store an OAuth app"))?;
        self.recent.oauth_apps.forget_all();
        Ok(())
    }

    /// The environment's app for the provider, else the platform default.
    pub async fn find_oauth_app(
        &self,
        environment_id: &str,
        provider: &str,
    ) -> Result<Option<OAuthApp>, StoreError> {
        let rows = oauth_app::Entity::find()
            .filter(oauth_app::Column::Provider.eq(provider))
            .filter(oauth_app::Column::EnvironmentId.is_in([environment_id, ""]))
            .all(&self.db)
            .await
            .map_err(StoreError::db("read OAuth apps"))?;
        let pick = rows
            .iter()
            .find(|r| r.environment_id == environment_id)
            .or_else(|| rows.iter().find(|r| r.environment_id.is_empty()));
        Ok(pick.cloned().map(app_from_row))
    }

    pub async fn insert_oauth_state(&self, s: OAuthState) -> Result<(), StoreError> {
        oauth_state::Entity::insert(oauth_state::ActiveModel {
            state: Set(s.state),
            environment_id: Set(s.environment_id),
            provider: Set(s.provider),
            redirect_uri: Set(s.redirect_uri),
            code_verifier: Set(s.code_verifier),
            settings: Set(s.settings.to_string()),
            expires_at: Set(crate::store::stored_time(s.expires_at)),
            authorize_url: Set(Some(s.authorize_url)),
            browser_hash: Set(None),
            account_id: Set(s.account_id),
        })
        .exec_without_returning(&self.db)
        .await
        .map_err(StoreError::insert(
            "store an OAuth state",
            "this OAuth state",
            "environment",
        ))?;
        Ok(())
    }

    /// Binds a started authorization to the browser that opens its link first: the state
    /// takes `browser_hash` (the SHA-256 of the secret that browser gets as a cookie) when
    /// it has none. The same browser coming back (`presented_hash` matches) is sent on
    /// again; any other browser is refused.
    pub async fn claim_oauth_state(
        &self,
        state: &str,
        browser_hash: &str,
        presented_hash: Option<&str>,
    ) -> Result<StateClaim, StoreError> {
        let now = crate::store::now();
        let claimed = oauth_state::Entity::update_many()
            .col_expr(
                oauth_state::Column::BrowserHash,
                sea_orm::sea_query::Expr::value(browser_hash.to_owned()),
            )
            .filter(oauth_state::Column::State.eq(state))
            .filter(oauth_state::Column::BrowserHash.is_null())
            .filter(oauth_state::Column::ExpiresAt.gt(now))
            .exec(&self.db)
            .await
            .map_err(StoreError::db("claim an OAuth state"))?;
        let Some(row) = oauth_state::Entity::find_by_id(state.to_owned())
            .one(&self.db)
            .await
            .map_err(StoreError::db("read an OAuth state"))?
        else {
            return Ok(StateClaim::Unknown);
        };
        let Some(authorize_url) = row.authorize_url.filter(|_| row.expires_at > now) else {
            // Expired, or started before authorizations were bound to browsers.
            return Ok(StateClaim::Unknown);
        };
        let fresh = claimed.rows_affected == 1;
        let mine = fresh
            || presented_hash
                .zip(row.browser_hash.as_deref())
                .is_some_and(|(a, b)| crate::signing::constant_time_eq(a.as_bytes(), b.as_bytes()));
        Ok(if mine {
            StateClaim::Claimed {
                authorize_url,
                expires_at: row.expires_at,
                fresh,
            }
        } else {
            StateClaim::OtherBrowser
        })
    }

    /// Consumes a state for the browser that claimed it: deleted by the first caller that
    /// presents its browser's secret, so a replayed callback finds nothing. A caller
    /// without it consumes nothing. Expired states are `Unknown` (and deleted).
    pub async fn take_oauth_state(
        &self,
        state: &str,
        presented_hash: Option<&str>,
    ) -> Result<StateTake, StoreError> {
        let Some(row) = oauth_state::Entity::find_by_id(state.to_owned())
            .one(&self.db)
            .await
            .map_err(StoreError::db("read an OAuth state"))?
        else {
            return Ok(StateTake::Unknown);
        };
        let expired = row.expires_at < crate::store::now();
        if !expired {
            let Some((presented, bound)) = presented_hash.zip(row.browser_hash.as_deref()) else {
                return Ok(StateTake::OtherBrowser);
            };
            if !crate::signing::constant_time_eq(presented.as_bytes(), bound.as_bytes()) {
                return Ok(StateTake::OtherBrowser);
            }
        }
        let deleted = oauth_state::Entity::delete_many()
            .filter(oauth_state::Column::State.eq(state))
            .exec(&self.db)
            .await
            .map_err(StoreError::db("consume an OAuth state"))?;
        if deleted.rows_affected != 1 || expired {
            return Ok(StateTake::Unknown);
        }
        Ok(StateTake::Taken(Box::new(OAuthState {
            state: row.state,
            environment_id: row.environment_id,
            provider: row.provider,
            redirect_uri: row.redirect_uri,
            code_verifier: row.code_verifier,
            settings: serde_json::from_str(&row.settings).unwrap_or_default(),
            expires_at: row.expires_at,
            authorize_url: row.authorize_url.unwrap_or_default(),
            account_id: row.account_id,
        })))
    }

    pub async fn insert_account_event(
        &self,
        account_id: &str,
        kind: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        account_event::Entity::insert(account_event::ActiveModel {
            id: Set(crate::store::new_id()),
            account_id: Set(account_id.to_owned()),
            kind: Set(kind.to_owned()),
            message: Set(message.to_owned()),
            created_at: Set(crate::store::now()),
        })
        .exec_without_returning(&self.db)
        .await
        .map_err(StoreError::db("record an account event"))?;
        Ok(())
    }

    /// Newest first.
    pub async fn list_account_events(
        &self,
        account_id: &str,
        limit: u64,
    ) -> Result<Vec<AccountEvent>, StoreError> {
        let rows = account_event::Entity::find()
            .filter(account_event::Column::AccountId.eq(account_id))
            .order_by_desc(account_event::Column::CreatedAt)
            .order_by_desc(account_event::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(StoreError::db("read account events"))?;
        Ok(rows
            .into_iter()
            .map(|r| AccountEvent {
                id: r.id,
                account_id: r.account_id,
                kind: r.kind,
                message: r.message,
                created_at: r.created_at,
            })
            .collect())
    }

    /// Accounts whose token expires before `before` and that are not parked: the refresh
    /// scheduler's work list, read through the index on `expires_at` so its cost follows the
    /// number of accounts due, not the number of accounts.
    /// One page of the accounts whose token expires before `before`, in (expiry, id) order,
    /// starting after `after` (the last row of the previous page): the refresher walks
    /// every page, so accounts it cannot help never hide the ones behind them.
    pub async fn list_accounts_due(
        &self,
        before: DateTime<Utc>,
        after: Option<(DateTime<Utc>, String)>,
        limit: u64,
    ) -> Result<Vec<LinkedAccount>, StoreError> {
        use sea_orm::Condition;
        let mut q = linked_account::Entity::find()
            .filter(linked_account::Column::ExpiresAt.lt(before))
            .filter(linked_account::Column::Status.is_in(["ACTIVE", "REFRESHING"]));
        if let Some((at, id)) = after {
            let at = crate::store::stored_time(at);
            q = q.filter(
                Condition::any()
                    .add(linked_account::Column::ExpiresAt.gt(at))
                    .add(
                        Condition::all()
                            .add(linked_account::Column::ExpiresAt.eq(at))
                            .add(linked_account::Column::Id.gt(id)),
                    ),
            );
        }
        let rows = q
            .order_by_asc(linked_account::Column::ExpiresAt)
            .order_by_asc(linked_account::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(StoreError::db("read accounts due for refresh"))?;
        rows.into_iter().map(LinkedAccount::try_from).collect()
    }
}

impl Store {
    /// Every OAuth app (for re-encrypting their secrets under a new key).
    pub async fn list_oauth_apps(&self) -> Result<Vec<OAuthApp>, StoreError> {
        let rows = oauth_app::Entity::find()
            .all(&self.db)
            .await
            .map_err(StoreError::db("read OAuth apps"))?;
        Ok(rows.into_iter().map(app_from_row).collect())
    }

    /// As [`Self::list_oauth_apps`], possibly up to a second old (the intake's read of the
    /// signing secrets on every delivery; an app set through this store is seen at once).
    pub async fn recent_oauth_apps(&self) -> Result<Vec<OAuthApp>, StoreError> {
        self.recent
            .oauth_apps
            .read_through((), self.list_oauth_apps())
            .await
    }

    /// Drops pending authorizations: their sealed verifiers do not survive a key change,
    /// and a user only has to start again.
    pub async fn clear_oauth_states(&self) -> Result<u64, StoreError> {
        let r = oauth_state::Entity::delete_many()
            .exec(&self.db)
            .await
            .map_err(StoreError::db("clear OAuth states"))?;
        Ok(r.rows_affected)
    }
}

fn app_from_row(r: oauth_app::Model) -> OAuthApp {
    OAuthApp {
        environment_id: (!r.environment_id.is_empty()).then(|| r.environment_id.clone()),
        provider: r.provider,
        client_id: r.client_id,
        client_secret: r.client_secret,
        scopes: serde_json::from_str(&r.scopes).unwrap_or_default(),
        allowed_hosts: serde_json::from_str(&r.allowed_hosts).unwrap_or_default(),
        allow_client_credentials: r.allow_client_credentials,
    }
}
