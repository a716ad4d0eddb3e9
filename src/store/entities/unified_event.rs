use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "unified_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub seq: i32,
    pub id: String,
    pub environment_id: String,
    pub account_id: String,
    #[sea_orm(column_name = "type")]
    pub kind: String,
    pub resource: String,
    pub remote_id: String,
    pub record_id: String,
    pub occurred_at: DateTimeUtc,
    pub received_at: DateTimeUtc,
    pub source: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub record: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
