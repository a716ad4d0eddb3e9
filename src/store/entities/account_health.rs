use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "account_health")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub account_id: String,
    pub state: String,
    pub last_probe_at: Option<DateTimeUtc>,
    pub last_ok_at: Option<DateTimeUtc>,
    pub failure_class: Option<String>,
    pub failure_message: Option<String>,
    pub failure_status: Option<i32>,
    pub consecutive_failures: i32,
    pub next_probe_at: DateTimeUtc,
    pub claim: Option<String>,
    pub claimed_until: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
