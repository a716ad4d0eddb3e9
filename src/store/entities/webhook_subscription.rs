use sea_orm::entity::prelude::*;

// Debug by hand: the secret never prints.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_subscriptions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: String,
    pub remote_id: Option<String>,
    pub state: String,
    #[sea_orm(column_type = "Blob", nullable)]
    pub secret: Option<Vec<u8>>,
    pub expires_at: Option<DateTimeUtc>,
    pub renew_at: Option<DateTimeUtc>,
    pub last_renewed_at: Option<DateTimeUtc>,
    pub last_delivery_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub failures: i32,
    pub last_error: Option<String>,
    pub claim: Option<String>,
    pub claimed_until: Option<DateTimeUtc>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("webhook_subscription::Model")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("remote_id", &self.remote_id)
            .field("state", &self.state)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
