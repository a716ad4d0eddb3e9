//! A linked account's lifecycle, as its environment runs it: `disableAccount`,
//! `enableAccount` and `deleteLinkedAccount` (re-authorization in place is `startOAuth`'s
//! `accountId`). Each acts on an account the caller can see; another environment's reads
//! exactly like a missing one.

use async_graphql::dynamic::{Field, FieldFuture, FieldValue, InputValue, Object, TypeRef};

use super::context::{caller, services};
use super::errors::from_code;
use super::platform::getter;
use crate::access::{Caller, visible_account};
use crate::services::Services;

/// What `deleteLinkedAccount` did, at the vendor and here.
pub struct Deletion {
    pub id: String,
    pub token_revoked: bool,
    pub revocation: String,
    pub subscriptions_deleted: usize,
    pub warnings: Vec<String>,
}

/// Deletes the account: its vendor subscriptions first and its grant revoked (while its
/// token still works), then every row kept about it. The vendor's side is best effort and
/// reported; the deletion here happens whatever the vendor answers.
pub async fn delete_account(
    services: &Services,
    caller: &Caller,
    id: &str,
) -> Result<Deletion, async_graphql::Error> {
    let account = visible_account(services, caller, id)
        .await
        .map_err(|e| from_code(&e))?;
    // Disabled first, after any refresh in flight (on any replica) has written its token
    // set: from here nothing refreshes or rotates the grant, so the credentials read next
    // are the ones the vendor knows, and those are revoked.
    let account = services
        .tokens
        .set_disabled(&account.id, true)
        .await
        .map_err(|e| from_code(&e))?;
    let (subscriptions_deleted, mut warnings) =
        crate::webhooks::subscriptions::delete_for_account(services, &account).await;
    let revoked = services.tokens.revoke_at_vendor(&account).await;
    if !revoked.is_dead() {
        warnings.push(revoked.describe());
    }
    // The request log of the calls just made is written before the rows it refers to go.
    services.monitor.flush().await;
    services
        .store
        .delete_linked_account(&account.id)
        .await
        .map_err(|e| from_code(&e))?;
    tracing::info!(account = %account.id, provider = %account.provider, token_revoked = revoked.is_dead(), subscriptions_deleted, "linked account deleted");
    Ok(Deletion {
        id: account.id,
        token_revoked: revoked.is_dead(),
        revocation: revoked.describe(),
        subscriptions_deleted,
        warnings,
    })
}

pub fn types() -> Vec<Object> {
    vec![
        Object::new("LinkedAccountDeletion")
            .description("What `deleteLinkedAccount` did. The account and everything kept about it are gone whatever the vendor answered; the rest says what happened at the vendor.")
            .field(getter::<Deletion>("id", "The deleted account's id.", TypeRef::named_nn(TypeRef::ID), |d| Some(FieldValue::value(d.id.clone()))))
            .field(getter::<Deletion>("tokenRevoked", "Whether the grant is dead at the vendor too (revoked now, or the vendor said it already was).", TypeRef::named_nn(TypeRef::BOOLEAN), |d| Some(FieldValue::value(d.token_revoked))))
            .field(getter::<Deletion>("revocation", "What the vendor said to the revocation, in words.", TypeRef::named_nn(TypeRef::STRING), |d| Some(FieldValue::value(d.revocation.clone()))))
            .field(getter::<Deletion>("subscriptionsDeleted", "Webhook subscriptions deleted at the vendor.", TypeRef::named_nn(TypeRef::INT), |d| Some(FieldValue::value(i32::try_from(d.subscriptions_deleted).unwrap_or(i32::MAX)))))
            .field(getter::<Deletion>("warnings", "What could not be done at the vendor, and what to do about it.", TypeRef::named_nn_list_nn(TypeRef::STRING), |d| Some(FieldValue::list(d.warnings.iter().map(|w| FieldValue::value(w.clone())))))),
    ]
}

pub fn mutation_fields() -> Vec<Field> {
    vec![
        toggle("disableAccount", true, "Disables a linked account: no upstream call, no token refresh, no probe, no webhook-subscription renewal until `enableAccount`; callers get FORBIDDEN. Its tokens and overrides are kept."),
        toggle("enableAccount", false, "Enables a disabled account again (ACTIVE). Credentials that died meanwhile are found out by the first refresh or call, which sets NEEDS_REAUTH with the vendor's reason."),
        Field::new("deleteLinkedAccount", TypeRef::named_nn("LinkedAccountDeletion"), |ctx| {
            FieldFuture::new(async move {
                let services = services(&ctx)?;
                let caller = caller(&ctx)?;
                let id = ctx.args.try_get("id")?.string()?.to_string();
                let deletion = delete_account(&services, &caller, &id).await?;
                Ok(Some(FieldValue::owned_any(deletion)))
            })
        })
        .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
        .description("Deletes a linked account: its webhook subscriptions are deleted at the vendor and its grant revoked there where the provider file says how, then its secrets, overrides, subscriptions, events, request log, health and alerts are deleted here. Not undoable."),
    ]
}

fn toggle(name: &'static str, disabled: bool, description: &'static str) -> Field {
    Field::new(name, TypeRef::named_nn("LinkedAccount"), move |ctx| {
        FieldFuture::new(async move {
            let services = services(&ctx)?;
            let caller = caller(&ctx)?;
            let id = ctx.args.try_get("id")?.string()?.to_string();
            let account = visible_account(&services, &caller, &id)
                .await
                .map_err(|e| from_code(&e))?;
            let row = services
                .tokens
                .set_disabled(&account.id, disabled)
                .await
                .map_err(|e| from_code(&e))?;
            if !disabled
                && let Err(e) =
                    crate::webhooks::subscriptions::renew_account_now(&services, &row.id).await
            {
                tracing::warn!(account = %row.id, error = %e, "cannot schedule the enabled account's subscription renewals");
            }
            Ok(Some(FieldValue::owned_any(row)))
        })
    })
    .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
    .description(description)
}
