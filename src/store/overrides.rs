//! Versions of mapping overrides. Rows are only ever inserted: a change is a new version of
//! its scope, a rollback a new version holding an older one's spec, so history is complete.
//! The spec is stored as the JSON text it was validated as; this module does not read it.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::store::entities::override_version as row;
use crate::store::{Store, StoreError};

/// One stored version of an override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideVersion {
    /// Orders every change across scopes (replicas read `seq > last seen`).
    pub seq: i32,
    /// Identifies the scope: level, environment, account, provider and resource.
    pub scope_key: String,
    pub version: i32,
    pub level: String,
    pub environment_id: Option<String>,
    pub account_id: Option<String>,
    pub provider: String,
    pub resource: String,
    /// The override as JSON text.
    pub spec: String,
    /// `set` or `rollback`.
    pub action: String,
    /// For a rollback, the version whose spec it restored.
    pub restored_version: Option<i32>,
    /// `admin` or `environment:<id>`.
    pub author: String,
    pub created_at: DateTime<Utc>,
}

/// A version to append; the store gives it the next version number of its scope.
#[derive(Debug, Clone)]
pub struct NewOverrideVersion {
    pub scope_key: String,
    pub level: String,
    pub environment_id: Option<String>,
    pub account_id: Option<String>,
    pub provider: String,
    pub resource: String,
    pub spec: String,
    pub action: String,
    pub restored_version: Option<i32>,
    pub author: String,
}

/// Which versions a history query returns.
#[derive(Debug, Clone, Default)]
pub struct OverrideQuery {
    /// Only this scope's versions.
    pub scope_key: Option<String>,
    /// Only this environment's overrides (its own level and its accounts'); `None`: all.
    pub environment_id: Option<String>,
    pub provider: Option<String>,
    pub resource: Option<String>,
    pub account_id: Option<String>,
    pub level: Option<String>,
}

impl From<row::Model> for OverrideVersion {
    fn from(m: row::Model) -> Self {
        OverrideVersion {
            seq: m.seq,
            scope_key: m.scope_key,
            version: m.version,
            level: m.level,
            environment_id: m.environment_id,
            account_id: m.account_id,
            provider: m.provider,
            resource: m.resource,
            spec: m.spec,
            action: m.action,
            restored_version: m.restored_version,
            author: m.author,
            created_at: m.created_at,
        }
    }
}

impl Store {
    /// Appends the next version of the scope. Two writers racing on one scope: one wins, the
    /// other gets [`StoreError::Conflict`] and may try again.
    pub async fn append_override_version(
        &self,
        new: NewOverrideVersion,
    ) -> Result<OverrideVersion, StoreError> {
        let latest = row::Entity::find()
            .filter(row::Column::ScopeKey.eq(&new.scope_key))
            .order_by_desc(row::Column::Version)
            .one(&self.db)
            .await
            .map_err(StoreError::db("read the latest override version"))?;
        let version = latest.map_or(1, |r| r.version + 1);
        let created_at = crate::store::now();
        let inserted = row::Entity::insert(row::ActiveModel {
            scope_key: Set(new.scope_key.clone()),
            version: Set(version),
            level: Set(new.level),
            environment_id: Set(new.environment_id),
            account_id: Set(new.account_id),
            provider: Set(new.provider),
            resource: Set(new.resource),
            spec: Set(new.spec),
            action: Set(new.action),
            restored_version: Set(new.restored_version),
            author: Set(new.author),
            created_at: Set(created_at),
            ..Default::default()
        })
        .exec(&self.db)
        .await
        .map_err(StoreError::insert(
            "store an override version",
            "a concurrent change of this override",
            "environment or linked account of the override",
        ))?;
        row::Entity::find_by_id(inserted.last_insert_id)
            .one(&self.db)
            .await
            .map_err(StoreError::db("read back an override version"))?
            .map(Into::into)
            .ok_or_else(|| StoreError::NotFound {
                what: "the override version just written".into(),
            })
    }

    /// Every version with `seq` above `after`, oldest first (replicas catching up).
    pub async fn override_versions_after(
        &self,
        after: i32,
    ) -> Result<Vec<OverrideVersion>, StoreError> {
        Ok(row::Entity::find()
            .filter(row::Column::Seq.gt(after))
            .order_by_asc(row::Column::Seq)
            .all(&self.db)
            .await
            .map_err(StoreError::db("read override versions"))?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// One version of a scope.
    pub async fn override_version(
        &self,
        scope_key: &str,
        version: i32,
    ) -> Result<Option<OverrideVersion>, StoreError> {
        Ok(row::Entity::find()
            .filter(row::Column::ScopeKey.eq(scope_key))
            .filter(row::Column::Version.eq(version))
            .one(&self.db)
            .await
            .map_err(StoreError::db("read an override version"))?
            .map(Into::into))
    }

    /// Versions matching `q`, newest first, at most `limit`.
    pub async fn override_history(
        &self,
        q: &OverrideQuery,
        limit: u64,
    ) -> Result<Vec<OverrideVersion>, StoreError> {
        let mut cond = Condition::all();
        if let Some(k) = &q.scope_key {
            cond = cond.add(row::Column::ScopeKey.eq(k));
        }
        if let Some(env) = &q.environment_id {
            cond = cond.add(row::Column::EnvironmentId.eq(env));
        }
        if let Some(p) = &q.provider {
            cond = cond.add(row::Column::Provider.eq(p));
        }
        if let Some(r) = &q.resource {
            cond = cond.add(row::Column::Resource.eq(r));
        }
        if let Some(a) = &q.account_id {
            cond = cond.add(row::Column::AccountId.eq(a));
        }
        if let Some(l) = &q.level {
            cond = cond.add(row::Column::Level.eq(l));
        }
        Ok(row::Entity::find()
            .filter(cond)
            .order_by_desc(row::Column::Seq)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(StoreError::db("read override history"))?
            .into_iter()
            .map(Into::into)
            .collect())
    }
}
