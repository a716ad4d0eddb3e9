use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oauth_apps")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub environment_id: String,
    pub provider: String,
    pub client_id: String,
    pub client_secret: Vec<u8>,
    pub scopes: String,
    /// JSON array of `host` or `host:port`.
    pub allowed_hosts: String,
    pub allow_client_credentials: bool,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
