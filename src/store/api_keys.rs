use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, SelectExt, sea_query::Expr,
};

use crate::store::entities::api_key;
use crate::store::{Store, StoreError};

/// An API key as the gateway sees it: never the key, nor its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    /// None for the platform admin key.
    pub environment_id: Option<String>,
    /// The first characters of the key, to tell keys apart in a listing.
    pub key_prefix: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<api_key::Model> for ApiKey {
    fn from(m: api_key::Model) -> Self {
        ApiKey {
            id: m.id,
            environment_id: m.environment_id,
            key_prefix: m.key_prefix,
            created_at: m.created_at,
            revoked_at: m.revoked_at,
        }
    }
}

impl Store {
    /// Stores a key by its hash (hex SHA-256, computed by the caller). `environment_id` None
    /// makes it a platform admin key. A hash already stored, even revoked, is a
    /// [`StoreError::Conflict`]; an unknown environment is [`StoreError::NotFound`].
    pub async fn insert_api_key(
        &self,
        environment_id: Option<&str>,
        key_hash: &str,
        key_prefix: &str,
    ) -> Result<ApiKey, StoreError> {
        let row = ApiKey {
            id: crate::store::new_id(),
            environment_id: environment_id.map(str::to_owned),
            key_prefix: key_prefix.to_owned(),
            created_at: crate::store::now(),
            revoked_at: None,
        };
        api_key::Entity::insert(api_key::ActiveModel {
            id: Set(row.id.clone()),
            environment_id: Set(row.environment_id.clone()),
            key_hash: Set(key_hash.to_owned()),
            key_prefix: Set(row.key_prefix.clone()),
            created_at: Set(row.created_at),
            revoked_at: Set(None),
        })
        .exec_without_returning(&self.db)
        .await
        .map_err(StoreError::insert(
            "store an API key",
            "an API key with this hash",
            "environment",
        ))?;
        Ok(row)
    }

    /// The non-revoked key with this hash.
    pub async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let found = api_key::Entity::find()
            .filter(api_key::Column::KeyHash.eq(key_hash))
            .filter(api_key::Column::RevokedAt.is_null())
            .one(&self.db)
            .await
            .map_err(StoreError::db("look up an API key"))?;
        Ok(found.map(ApiKey::from))
    }

    /// As [`Self::find_api_key`], possibly up to a second old (every request's read): a
    /// key revoked through this store is refused at once, one revoked on another replica
    /// within a second.
    pub async fn recent_api_key(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        self.recent
            .api_keys
            .read_through_found(key_hash.to_owned(), self.find_api_key(key_hash))
            .await
    }

    /// Whether a non-revoked platform admin key exists (`serve` generates one when not).
    pub async fn has_admin_key(&self) -> Result<bool, StoreError> {
        api_key::Entity::find()
            .filter(api_key::Column::EnvironmentId.is_null())
            .filter(api_key::Column::RevokedAt.is_null())
            .exists(&self.db)
            .await
            .map_err(StoreError::db("look for an admin key"))
    }

    /// Every key (revoked ones too) of an environment, or every key for `None`; oldest first.
    pub async fn list_api_keys(
        &self,
        environment_id: Option<&str>,
    ) -> Result<Vec<ApiKey>, StoreError> {
        let mut q = api_key::Entity::find();
        if let Some(env) = environment_id {
            q = q.filter(api_key::Column::EnvironmentId.eq(env));
        }
        Ok(q.order_by_asc(api_key::Column::CreatedAt)
            .order_by_asc(api_key::Column::Id)
            .all(&self.db)
            .await
            .map_err(StoreError::db("list API keys"))?
            .into_iter()
            .map(ApiKey::from)
            .collect())
    }

    /// Revokes every platform admin key but the one with `keep_hash`; returns how many.
    pub async fn revoke_admin_keys_except(&self, keep_hash: &str) -> Result<u64, StoreError> {
        let result = api_key::Entity::update_many()
            .col_expr(api_key::Column::RevokedAt, Expr::value(crate::store::now()))
            .filter(api_key::Column::EnvironmentId.is_null())
            .filter(api_key::Column::RevokedAt.is_null())
            .filter(api_key::Column::KeyHash.ne(keep_hash))
            .exec(&self.db)
            .await
            .map_err(StoreError::db("revoke old admin keys"))?;
        self.recent.api_keys.forget_all();
        Ok(result.rows_affected)
    }

    /// One key by id, revoked or not.
    pub async fn get_api_key(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        Ok(api_key::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .map_err(StoreError::db("read an API key"))?
            .map(ApiKey::from))
    }

    /// Revokes a key. False when no such key exists or it was already revoked; the first
    /// revocation time is kept.
    pub async fn revoke_api_key(&self, id: &str) -> Result<bool, StoreError> {
        let result = api_key::Entity::update_many()
            .col_expr(api_key::Column::RevokedAt, Expr::value(crate::store::now()))
            .filter(api_key::Column::Id.eq(id))
            .filter(api_key::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await
            .map_err(StoreError::db("revoke an API key"))?;
        // By id, and the cache is keyed by hash.
        self.recent.api_keys.forget_all();
        Ok(result.rows_affected > 0)
    }
}
