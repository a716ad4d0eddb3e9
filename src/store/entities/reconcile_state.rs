use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reconcile_state")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub account_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub resource: String,
    pub watermark: DateTimeUtc,
    pub next_run_at: DateTimeUtc,
    pub claim: Option<String>,
    pub claimed_until: Option<DateTimeUtc>,
    pub sync_token: Option<String>,
    pub sync_request: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
