use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "probe_results")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub account_id: String,
    pub at: DateTimeUtc,
    pub ok: bool,
    pub class: Option<String>,
    pub http_status: Option<i32>,
    pub latency_ms: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
