use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "listing_observations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub account_id: String,
    pub resource: String,
    pub outcome: String,
    pub records: Option<i32>,
    pub complete: bool,
    pub counted: bool,
    #[sea_orm(column_type = "Text", nullable)]
    pub shape: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
