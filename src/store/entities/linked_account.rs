use sea_orm::entity::prelude::*;

// Debug is written by hand below so that a stray `{:?}` never prints the credentials.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "linked_accounts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub environment_id: String,
    pub provider: String,
    pub status: String,
    pub status_reason: Option<String>,
    #[sea_orm(column_type = "Blob")]
    pub credentials: Vec<u8>,
    #[sea_orm(column_type = "Text")]
    pub settings: String,
    pub expires_at: Option<DateTimeUtc>,
    pub last_refreshed_at: Option<DateTimeUtc>,
    pub version: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("linked_account::Model")
            .field("id", &self.id)
            .field("environment_id", &self.environment_id)
            .field("provider", &self.provider)
            .field("status", &self.status)
            .field("status_reason", &self.status_reason)
            .field(
                "credentials",
                &crate::store::Redacted(self.credentials.len()),
            )
            .field("settings", &self.settings)
            .field("expires_at", &self.expires_at)
            .field("last_refreshed_at", &self.last_refreshed_at)
            .field("version", &self.version)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::environment::Entity",
        from = "Column::EnvironmentId",
        to = "super::environment::Column::Id",
        on_delete = "Cascade"
    )]
    Environment,
}

impl Related<super::environment::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Environment.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
