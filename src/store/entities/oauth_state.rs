use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oauth_states")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub state: String,
    pub environment_id: String,
    pub provider: String,
    pub redirect_uri: String,
    pub code_verifier: Option<Vec<u8>>,
    pub settings: String,
    pub expires_at: DateTimeUtc,
    pub authorize_url: Option<String>,
    pub browser_hash: Option<String>,
    pub account_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
