use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::store::entities::environment;
use crate::store::{Store, StoreError};

/// A customer's workspace: its API keys, linked accounts and overrides belong to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl From<environment::Model> for Environment {
    fn from(m: environment::Model) -> Self {
        Environment {
            id: m.id,
            name: m.name,
            created_at: m.created_at,
        }
    }
}

impl Store {
    /// Fails with [`StoreError::Conflict`] when the name is taken.
    pub async fn create_environment(&self, name: &str) -> Result<Environment, StoreError> {
        let row = Environment {
            id: crate::store::new_id(),
            name: name.to_owned(),
            created_at: crate::store::now(),
        };
        environment::Entity::insert(environment::ActiveModel {
            id: Set(row.id.clone()),
            name: Set(row.name.clone()),
            created_at: Set(row.created_at),
        })
        .exec_without_returning(&self.db)
        .await
        .map_err(StoreError::insert(
            "create an environment",
            "an environment with this name",
            "environment",
        ))?;
        Ok(row)
    }

    pub async fn get_environment(&self, id: &str) -> Result<Option<Environment>, StoreError> {
        let found = environment::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .map_err(StoreError::db("read an environment"))?;
        Ok(found.map(Environment::from))
    }

    pub async fn find_environment_by_name(
        &self,
        name: &str,
    ) -> Result<Option<Environment>, StoreError> {
        let found = environment::Entity::find()
            .filter(environment::Column::Name.eq(name))
            .one(&self.db)
            .await
            .map_err(StoreError::db("find an environment by name"))?;
        Ok(found.map(Environment::from))
    }

    /// Every environment, by name.
    pub async fn list_environments(&self) -> Result<Vec<Environment>, StoreError> {
        let rows = environment::Entity::find()
            .order_by_asc(environment::Column::Name)
            .all(&self.db)
            .await
            .map_err(StoreError::db("list environments"))?;
        Ok(rows.into_iter().map(Environment::from).collect())
    }
}
