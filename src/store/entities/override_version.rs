use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "override_versions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub seq: i32,
    pub scope_key: String,
    pub version: i32,
    pub level: String,
    pub environment_id: Option<String>,
    pub account_id: Option<String>,
    pub provider: String,
    pub resource: String,
    pub spec: String,
    pub action: String,
    pub restored_version: Option<i32>,
    pub author: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
