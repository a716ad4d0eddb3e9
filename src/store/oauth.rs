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
        oauth_app::Entity::insert(oauth_app::ActiveModel {
            id: Set(crate::store::new_id()),
            environment_id: Set(app.environment_id.unwrap_or_default()),
            provider: Set(app.provider),
            client_id: Set(app.client_id),
            client_secret: Set(app.client_secret),
            scopes: Set(scopes),
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
            ])
            .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await
        .map_err(StoreError::db("store an OAuth app"))?;
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
        Ok(pick.map(|r| OAuthApp {
            environment_id: (!r.environment_id.is_empty()).then(|| r.environment_id.clone()),
            provider: r.provider.clone(),
            client_id: r.client_id.clone(),
            client_secret: r.client_secret.clone(),
            scopes: serde_json::from_str(&r.scopes).unwrap_or_default(),
        }))
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

    /// Consumes a state: it is deleted by the first caller, so a replayed callback finds
    /// nothing. Expired states are returned as `None` too.
    pub async fn take_oauth_state(&self, state: &str) -> Result<Option<OAuthState>, StoreError> {
        let Some(row) = oauth_state::Entity::find_by_id(state.to_owned())
            .one(&self.db)
            .await
            .map_err(StoreError::db("read an OAuth state"))?
        else {
            return Ok(None);
        };
        let deleted = oauth_state::Entity::delete_many()
            .filter(oauth_state::Column::State.eq(state))
            .exec(&self.db)
            .await
            .map_err(StoreError::db("consume an OAuth state"))?;
        if deleted.rows_affected != 1 || row.expires_at < crate::store::now() {
            return Ok(None);
        }
        Ok(Some(OAuthState {
            state: row.state,
            environment_id: row.environment_id,
            provider: row.provider,
            redirect_uri: row.redirect_uri,
            code_verifier: row.code_verifier,
            settings: serde_json::from_str(&row.settings).unwrap_or_default(),
            expires_at: row.expires_at,
        }))
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
        Ok(rows
            .into_iter()
            .map(|r| OAuthApp {
                environment_id: (!r.environment_id.is_empty()).then(|| r.environment_id.clone()),
                provider: r.provider,
                client_id: r.client_id,
                client_secret: r.client_secret,
                scopes: serde_json::from_str(&r.scopes).unwrap_or_default(),
            })
            .collect())
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
