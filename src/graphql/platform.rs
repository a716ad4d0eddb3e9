//! The gateway's own types and operations: providers, environments, linked accounts.

use async_graphql::Value as GqlValue;
use async_graphql::dynamic::{Enum, Field, FieldFuture, FieldValue, InputValue, Object, TypeRef};
use chrono::{DateTime, Utc};

use super::context::{caller, services};
use super::errors::{coded, from_code};
use crate::access::Caller;
use crate::access::visible_account;
use crate::config::ProviderModel;
use crate::credentials::Credentials;
use crate::error::{ErrorCode, HasCode};
use crate::store::{AccountEvent, Environment, LinkedAccount, NewLinkedAccount};

pub const ACCOUNT_STATUSES: &[&str] = &[
    "ACTIVE",
    "REFRESHING",
    "NEEDS_REAUTH",
    "REVOKED",
    "ERROR",
    "DISABLED",
];

pub(super) fn time(t: &Option<DateTime<Utc>>) -> Option<FieldValue<'static>> {
    t.map(|t| FieldValue::value(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
}

/// A field of a parent of type `T` computed synchronously.
pub(super) fn getter<T: 'static + Send + Sync>(
    name: &str,
    description: &str,
    ty: TypeRef,
    get: impl Fn(&T) -> Option<FieldValue<'static>> + Send + Sync + 'static,
) -> Field {
    Field::new(name, ty, move |ctx| {
        let value = ctx.parent_value.try_downcast_ref::<T>().map(&get);
        match value {
            Ok(v) => FieldFuture::Value(v),
            // A parent of the wrong type is a schema-building bug; report it, do not hide it.
            Err(e) => FieldFuture::new(async move { Err::<Option<FieldValue<'_>>, _>(e) }),
        }
    })
    .description(description)
}

pub fn types() -> (Vec<Object>, Vec<Enum>) {
    let status = Enum::new("LinkedAccountStatus")
        .description("Where a linked account stands in its credential lifecycle.")
        .items(ACCOUNT_STATUSES.iter().copied());
    let account = Object::new("LinkedAccount")
        .description("One customer's connection to one vendor account (one CRM portal or org).")
        .field(getter::<LinkedAccount>(
            "id",
            "The linked account's id (pass it as `accountId`).",
            TypeRef::named_nn(TypeRef::ID),
            |a| Some(FieldValue::value(a.id.clone())),
        ))
        .field(getter::<LinkedAccount>(
            "provider",
            "The name of the provider file (without `.json`).",
            TypeRef::named_nn(TypeRef::STRING),
            |a| Some(FieldValue::value(a.provider.clone())),
        ))
        .field(getter::<LinkedAccount>(
            "status",
            "Where the account stands; anything but ACTIVE needs attention.",
            TypeRef::named_nn("LinkedAccountStatus"),
            |a| {
                Some(FieldValue::value(GqlValue::Enum(async_graphql::Name::new(
                    &a.status,
                ))))
            },
        ))
        .field(getter::<LinkedAccount>(
            "statusReason",
            "Why the status is what it is, in words, when not ACTIVE.",
            TypeRef::named(TypeRef::STRING),
            |a| a.status_reason.clone().map(FieldValue::value),
        ))
        .field(getter::<LinkedAccount>(
            "settings",
            "The account's settings (`baseUrl`, `instanceUrl`...); never secrets.",
            TypeRef::named("JSON"),
            |a| {
                GqlValue::from_json(a.settings.clone())
                    .ok()
                    .map(FieldValue::value)
            },
        ))
        .field(getter::<LinkedAccount>(
            "expiresAt",
            "When the current access token expires, if the vendor said.",
            TypeRef::named("DateTime"),
            |a| time(&a.expires_at),
        ))
        .field(getter::<LinkedAccount>(
            "lastRefreshedAt",
            "When the access token was last refreshed.",
            TypeRef::named("DateTime"),
            |a| time(&a.last_refreshed_at),
        ))
        .field(getter::<LinkedAccount>(
            "createdAt",
            "When the account was linked.",
            TypeRef::named_nn("DateTime"),
            |a| time(&Some(a.created_at)),
        ));
    let provider = Object::new("Provider")
        .description("A vendor Tessera can talk to, declared by a file in providers/.")
        .field(getter::<std::sync::Arc<ProviderModel>>(
            "name",
            "The provider's id, as in `connectAccount(provider:)`.",
            TypeRef::named_nn(TypeRef::STRING),
            |p| Some(FieldValue::value(p.name.clone())),
        ))
        .field(getter::<std::sync::Arc<ProviderModel>>(
            "displayName",
            "The vendor's name for people.",
            TypeRef::named_nn(TypeRef::STRING),
            |p| Some(FieldValue::value(p.display_name.clone())),
        ))
        .field(getter::<std::sync::Arc<ProviderModel>>(
            "resources",
            "The unified resources this provider serves (`contacts`, `companies`).",
            TypeRef::named_nn_list_nn(TypeRef::STRING),
            |p| {
                Some(FieldValue::list(
                    p.resources.keys().map(|k| FieldValue::value(k.clone())),
                ))
            },
        ));
    let environment = Object::new("Environment")
        .description("One customer's workspace: its API keys, linked accounts and overrides.")
        .field(getter::<Environment>(
            "id",
            "The environment's id.",
            TypeRef::named_nn(TypeRef::ID),
            |e| Some(FieldValue::value(e.id.clone())),
        ))
        .field(getter::<Environment>(
            "name",
            "The environment's unique name.",
            TypeRef::named_nn(TypeRef::STRING),
            |e| Some(FieldValue::value(e.name.clone())),
        ))
        .field(getter::<Environment>(
            "createdAt",
            "When the environment was created.",
            TypeRef::named_nn("DateTime"),
            |e| time(&Some(e.created_at)),
        ));
    let created = Object::new("CreateEnvironmentPayload")
        .description("A new environment and its first API key.")
        .field(getter::<(Environment, String)>(
            "environment",
            "The new environment.",
            TypeRef::named_nn("Environment"),
            |(e, _)| Some(FieldValue::owned_any(e.clone())),
        ))
        .field(
            getter::<(Environment, String)>(
                "apiKey",
                "The environment's API key. Shown once: only its hash is stored.",
                TypeRef::named_nn(TypeRef::STRING),
                |(_, k)| Some(FieldValue::value(k.clone())),
            )
            .description("The environment's API key. Shown once: only its hash is stored."),
        );
    let account = account.field(
        Field::new("events", TypeRef::named_nn_list_nn("AccountEvent"), |ctx| {
            FieldFuture::new(async move {
                let services = services(&ctx)?;
                let a = ctx.parent_value.try_downcast_ref::<LinkedAccount>()?;
                let limit = match ctx.args.get("last") {
                    Some(v) if !v.is_null() => v.u64()?.clamp(1, 500),
                    _ => 50,
                };
                let events = services.store.list_account_events(&a.id, limit).await.map_err(|e| from_code(&e))?;
                Ok(Some(FieldValue::list(events.into_iter().map(FieldValue::owned_any))))
            })
        })
        .argument(InputValue::new("last", TypeRef::named(TypeRef::INT)).description("How many, newest first (default 50, at most 500)."))
        .description("What happened to the account's credentials (connected, refreshed, refresh refused), newest first."),
    );
    let account = super::monitoring::account_fields()
        .into_iter()
        .chain(super::events::account_fields())
        .fold(account, |a, f| a.field(f));
    let event = Object::new("AccountEvent")
        .description("One event in a linked account's credential lifecycle.")
        .field(getter::<AccountEvent>(
            "kind",
            "CONNECTED, TOKEN_REFRESHED, TOKEN_REFRESH_FAILED or NEEDS_REAUTH.",
            TypeRef::named_nn(TypeRef::STRING),
            |e| Some(FieldValue::value(e.kind.clone())),
        ))
        .field(getter::<AccountEvent>(
            "message",
            "What happened, in words.",
            TypeRef::named_nn(TypeRef::STRING),
            |e| Some(FieldValue::value(e.message.clone())),
        ))
        .field(getter::<AccountEvent>(
            "at",
            "When it happened.",
            TypeRef::named_nn("DateTime"),
            |e| time(&Some(e.created_at)),
        ));
    let start = Object::new("OAuthStart")
        .description("A started OAuth authorization: send the user to `authorizationUrl`.")
        .field(getter::<crate::credentials::refresh::AuthorizationStart>(
            "authorizationUrl",
            "Where to send the user's browser: this gateway's /oauth/start link, which works in the first browser that opens it (a cookie binds the flow to it) and redirects to the vendor's consent page.",
            TypeRef::named_nn(TypeRef::STRING),
            |s| Some(FieldValue::value(s.url.to_string())),
        ))
        .field(getter::<crate::credentials::refresh::AuthorizationStart>(
            "state",
            "The single-use state the vendor sends back to /oauth/callback.",
            TypeRef::named_nn(TypeRef::STRING),
            |s| Some(FieldValue::value(s.state.clone())),
        ))
        .field(getter::<crate::credentials::refresh::AuthorizationStart>(
            "expiresAt",
            "When the state stops being accepted.",
            TypeRef::named_nn("DateTime"),
            |s| time(&Some(s.expires_at)),
        ));
    let app = Object::new("OAuthApp")
        .description(
            "The OAuth client Tessera uses with a provider (the secret is never returned).",
        )
        .field(getter::<AppView>(
            "provider",
            "The provider.",
            TypeRef::named_nn(TypeRef::STRING),
            |a| Some(FieldValue::value(a.0.clone())),
        ))
        .field(getter::<AppView>(
            "clientId",
            "The client id.",
            TypeRef::named_nn(TypeRef::STRING),
            |a| Some(FieldValue::value(a.1.clone())),
        ))
        .field(getter::<AppView>(
            "scopes",
            "Scopes asked for (empty: the provider's defaults).",
            TypeRef::named_nn_list_nn(TypeRef::STRING),
            |a| {
                Some(FieldValue::list(
                    a.2.iter().map(|s| FieldValue::value(s.clone())),
                ))
            },
        ))
        .field(getter::<AppView>(
            "allowedHosts",
            "Platform default only: the token and authorization hosts, beyond the provider file's own, that environments may use it with.",
            TypeRef::named_nn_list_nn(TypeRef::STRING),
            |a| {
                Some(FieldValue::list(
                    a.3.iter().map(|s| FieldValue::value(s.clone())),
                ))
            },
        ))
        .field(getter::<AppView>(
            "allowClientCredentials",
            "Platform default only: environments may use it for the client-credentials grant.",
            TypeRef::named_nn(TypeRef::BOOLEAN),
            |a| Some(FieldValue::value(a.4)),
        ));
    (
        vec![account, provider, environment, created, event, start, app],
        vec![status],
    )
}

pub fn query_fields() -> Vec<Field> {
    vec![
        Field::new("providers", TypeRef::named_nn_list_nn("Provider"), |ctx| {
            FieldFuture::new(async move {
                let services = services(&ctx)?;
                caller(&ctx)?;
                Ok(Some(FieldValue::list(
                    services
                        .providers
                        .iter()
                        .map(|p| FieldValue::owned_any(p.clone())),
                )))
            })
        })
        .description("Every provider the gateway has loaded."),
        Field::new(
            "linkedAccounts",
            TypeRef::named_nn_list_nn("LinkedAccount"),
            |ctx| {
                FieldFuture::new(async move {
                    let services = services(&ctx)?;
                    let caller = caller(&ctx)?;
                    let rows = services
                        .store
                        .list_linked_accounts(caller.environment())
                        .await
                        .map_err(|e| from_code(&e))?;
                    Ok(Some(FieldValue::list(
                        rows.into_iter().map(FieldValue::owned_any),
                    )))
                })
            },
        )
        .description("The caller's linked accounts (every account, for the admin key)."),
        Field::new("linkedAccount", TypeRef::named("LinkedAccount"), |ctx| {
            FieldFuture::new(async move {
                let services = services(&ctx)?;
                let caller = caller(&ctx)?;
                let id = ctx.args.try_get("id")?.string()?.to_string();
                Ok(Some(FieldValue::owned_any(
                    visible_account(&services, &caller, &id)
                        .await
                        .map_err(|e| from_code(&e))?,
                )))
            })
        })
        .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
        .description("One of the caller's linked accounts, by id."),
    ]
}

/// What `setOAuthApp` returns: provider, client id, scopes, allowed hosts, whether the
/// client-credentials grant is allowed.
type AppView = (String, String, Vec<String>, Vec<String>, bool);

fn oauth_mutations() -> Vec<Field> {
    vec![
        Field::new("setOAuthApp", TypeRef::named_nn("OAuthApp"), |ctx| {
            FieldFuture::new(async move {
                let services = services(&ctx)?;
                let caller = caller(&ctx)?;
                let provider = ctx.args.try_get("provider")?.string()?.to_string();
                if services.providers.get(&provider).and_then(|p| p.oauth.as_ref()).is_none() {
                    return Err(coded(ErrorCode::BadUserInput, format!("provider `{provider}` is unknown or does not use OAuth")));
                }
                let client_id = ctx.args.try_get("clientId")?.string()?.to_string();
                let secret = crate::secret::Secret::new(ctx.args.try_get("clientSecret")?.string()?);
                if client_id.is_empty() || secret.expose().is_empty() {
                    return Err(coded(ErrorCode::BadUserInput, "`clientId` and `clientSecret` must not be empty"));
                }
                let scopes: Vec<String> = match ctx.args.get("scopes") {
                    Some(v) if !v.is_null() => v.list()?.iter().map(|s| s.string().map(str::to_string)).collect::<Result<_, _>>()?,
                    _ => Vec::new(),
                };
                let hosts: Option<Vec<String>> = match ctx.args.get("allowedHosts") {
                    Some(v) if !v.is_null() => Some(v.list()?.iter().map(|s| s.string().and_then(|h| crate::credentials::apps::normalize_allowed_host(h).map_err(|e| coded(ErrorCode::BadUserInput, format!("allowedHosts: {e}"))))).collect::<Result<_, _>>()?),
                    _ => None,
                };
                let client_credentials = match ctx.args.get("allowClientCredentials") {
                    Some(v) if !v.is_null() => Some(v.boolean()?),
                    _ => None,
                };
                if caller.environment().is_some() && (hosts.is_some() || client_credentials.is_some()) {
                    return Err(coded(ErrorCode::BadUserInput, "`allowedHosts` and `allowClientCredentials` govern the platform's default app (admin key); an environment's own app is used wherever the environment sends it"));
                }
                let (hosts, client_credentials) = (hosts.unwrap_or_default(), client_credentials.unwrap_or(false));
                services
                    .store
                    .set_oauth_app(crate::store::OAuthApp {
                        environment_id: caller.environment().map(str::to_string),
                        provider: provider.clone(),
                        client_id: client_id.clone(),
                        client_secret: services.vault.seal_secret(&format!("oauth-app:{provider}"), &secret),
                        scopes: scopes.clone(),
                        allowed_hosts: hosts.clone(),
                        allow_client_credentials: client_credentials,
                    })
                    .await
                    .map_err(|e| from_code(&e))?;
                Ok(Some(FieldValue::owned_any::<AppView>((provider, client_id, scopes, hosts, client_credentials))))
            })
        })
        .argument(InputValue::new("provider", TypeRef::named_nn(TypeRef::STRING)))
        .argument(InputValue::new("clientId", TypeRef::named_nn(TypeRef::STRING)))
        .argument(InputValue::new("clientSecret", TypeRef::named_nn(TypeRef::STRING)))
        .argument(InputValue::new("scopes", TypeRef::named_list(TypeRef::STRING)))
        .argument(InputValue::new("allowedHosts", TypeRef::named_list(TypeRef::STRING)).description("Admin key only: token and authorization hosts (`host` or `host:port`), beyond the provider file's own, where environments may use the platform default (a vendor's sandbox login host, an on-premise vendor). Replaced on every call; default none."))
        .argument(InputValue::new("allowClientCredentials", TypeRef::named(TypeRef::BOOLEAN)).description("Admin key only: environments may use the platform default for the client-credentials grant (it acts as the platform's own identity). Default false."))
        .description("Sets the caller's OAuth app for a provider; with the admin key, the platform default that environments without their own fall back to, used only with the provider file's own OAuth endpoints and the `allowedHosts` the admin names."),
        Field::new("startOAuth", TypeRef::named_nn("OAuthStart"), |ctx| {
            FieldFuture::new(async move {
                let services = services(&ctx)?;
                let Caller::Environment { id: environment } = caller(&ctx)? else {
                    return Err(coded(ErrorCode::Forbidden, "start OAuth with an environment's API key: the account will belong to that environment"));
                };
                let provider = ctx.args.try_get("provider")?.string()?.to_string();
                let redirect_uri = ctx.args.try_get("redirectUri")?.string()?.to_string();
                let settings = match ctx.args.get("settings") {
                    Some(v) if !v.is_null() => v.as_value().clone().into_json().map_err(|e| coded(ErrorCode::BadUserInput, e.to_string()))?,
                    _ => serde_json::Value::Object(Default::default()),
                };
                if !settings.is_object() {
                    return Err(coded(ErrorCode::BadUserInput, "`settings` must be a JSON object"));
                }
                let renew = match ctx.args.get("accountId") {
                    Some(v) if !v.is_null() => {
                        let id = v.string()?.to_string();
                        Some(visible_account(&services, &Caller::Environment { id: environment.clone() }, &id).await.map_err(|e| from_code(&e))?)
                    }
                    _ => None,
                };
                let start = services
                    .tokens
                    .start_authorization(&environment, &provider, &redirect_uri, settings, &services.base_url(), renew.as_ref())
                    .await
                    .map_err(|e| if e.code() == ErrorCode::ConfigError || matches!(e, crate::credentials::RefreshError::Refused { .. }) { coded(ErrorCode::BadUserInput, e.to_string()) } else { from_code(&e) })?;
                Ok(Some(FieldValue::owned_any(start)))
            })
        })
        .argument(InputValue::new("provider", TypeRef::named_nn(TypeRef::STRING)))
        .argument(InputValue::new("redirectUri", TypeRef::named_nn(TypeRef::STRING)).description("Tessera's `/oauth/callback` URL as the vendor must call it."))
        .argument(InputValue::new("settings", TypeRef::named("JSON")).description("Settings for the new account (`authorizeUrl`, `tokenUrl`, template values)."))
        .argument(InputValue::new("accountId", TypeRef::named(TypeRef::ID)).description("Re-authorize this linked account in place instead of linking a new one: same id, same overrides and webhooks; NEEDS_REAUTH becomes ACTIVE. Its settings are kept, `settings` adds to them. A grant for another vendor account is refused."))
        .description("Starts the OAuth authorization-code flow. Send the user's browser to `authorizationUrl` (this gateway's /oauth/start, which binds the flow to that browser with a cookie and redirects to the vendor); the account is created when the vendor redirects that browser to /oauth/callback."),
    ]
}

pub fn mutation_fields() -> Vec<Field> {
    let mut fields = oauth_mutations();
    fields.extend(mutation_fields_core());
    fields
}

fn mutation_fields_core() -> Vec<Field> {
    vec![
        Field::new("createEnvironment", TypeRef::named_nn("CreateEnvironmentPayload"), |ctx| {
            FieldFuture::new(async move {
                let services = services(&ctx)?;
                if caller(&ctx)? != Caller::Admin {
                    return Err(coded(ErrorCode::Forbidden, "only the admin key can create environments"));
                }
                let name = ctx.args.try_get("name")?.string()?.trim().to_string();
                if name.is_empty() || name.len() > 100 {
                    return Err(coded(ErrorCode::BadUserInput, "`name` must be 1 to 100 characters"));
                }
                let env = services.store.create_environment(&name).await.map_err(|e| from_code(&e))?;
                let key = crate::access::keys::generate();
                services
                    .store
                    .insert_api_key(Some(&env.id), &crate::access::keys::hash(key.expose()), &crate::access::keys::prefix(key.expose()))
                    .await
                    .map_err(|e| from_code(&e))?;
                Ok(Some(FieldValue::owned_any((env, key.expose().to_string()))))
            })
        })
        .argument(InputValue::new("name", TypeRef::named_nn(TypeRef::STRING)))
        .description("Creates an environment and its first API key (admin key only)."),
        Field::new("connectAccount", TypeRef::named_nn("LinkedAccount"), |ctx| {
            FieldFuture::new(async move {
                let services = services(&ctx)?;
                let Caller::Environment { id: environment_id } = caller(&ctx)? else {
                    return Err(coded(ErrorCode::Forbidden, "connect accounts with an environment's API key: a linked account belongs to an environment"));
                };
                let provider_name = ctx.args.try_get("provider")?.string()?.to_string();
                let provider = services.providers.get(&provider_name).cloned().ok_or_else(|| {
                    let known: Vec<&str> = services.providers.iter().map(|p| p.name.as_str()).collect();
                    coded(ErrorCode::BadUserInput, format!("unknown provider `{provider_name}` (known: {})", known.join(", ")))
                })?;
                let credentials = ctx.args.try_get("credentials")?.as_value().clone().into_json().map_err(|e| coded(ErrorCode::BadUserInput, e.to_string()))?;
                let settings = match ctx.args.get("settings") {
                    Some(v) if !v.is_null() => v.as_value().clone().into_json().map_err(|e| coded(ErrorCode::BadUserInput, e.to_string()))?,
                    _ => serde_json::Value::Object(Default::default()),
                };
                if !settings.is_object() {
                    return Err(coded(ErrorCode::BadUserInput, "`settings` must be a JSON object"));
                }
                // `{grant: "client_credentials"}`: the environment's OAuth app gets the token.
                if credentials.get("grant").and_then(|g| g.as_str()) == Some("client_credentials") && credentials.as_object().is_some_and(|o| o.len() == 1) {
                    let row = services
                        .tokens
                        .connect_client_credentials(&environment_id, &provider.name, settings)
                        .await
                        .map_err(|e| if e.code() == ErrorCode::ConfigError || matches!(e, crate::credentials::RefreshError::Refused { .. }) { coded(ErrorCode::BadUserInput, e.to_string()) } else { from_code(&e) })?;
                    crate::webhooks::on_account_linked(&services, &row).await;
                    return Ok(Some(FieldValue::owned_any(row)));
                }
                let credentials = Credentials::from_input(&credentials).map_err(|e| from_code(&e))?;
                let base_url = provider.resolve_base_url(&settings, &services.upstreams).map_err(|e| coded(ErrorCode::BadUserInput, e.to_string()))?;
                // The addresses the host resolves to now: refused here rather than on the first call.
                services.upstreams.check_resolved(&base_url).await.map_err(|r| coded(ErrorCode::BadUserInput, r.to_string()))?;
                // A token endpoint of the account's own (`settings.tokenUrl`) is where refreshes go.
                if let (Some(oauth), Some(_)) = (&provider.oauth, settings.get("tokenUrl")) {
                    let token_url = provider.resolve_oauth_url(&oauth.token_url, "tokenUrl", &settings, &services.upstreams).map_err(|e| coded(ErrorCode::BadUserInput, e.to_string()))?;
                    services.upstreams.check_resolved(&token_url).await.map_err(|r| coded(ErrorCode::BadUserInput, r.to_string()))?;
                }
                // Tokens that will be refreshed: the app the refreshes would use must be allowed
                // at the account's token endpoint (the platform's app is not, at a host of the
                // tenant's choosing).
                if credentials.refresh_token.is_some() {
                    services
                        .tokens
                        .check_refresh_app(&environment_id, &provider, &settings)
                        .await
                        .map_err(|e| if e.code() == ErrorCode::ConfigError || matches!(e, crate::credentials::RefreshError::Refused { .. }) { coded(ErrorCode::BadUserInput, e.to_string()) } else { from_code(&e) })?;
                }
                let id = uuid::Uuid::new_v4().to_string();
                let row = services
                    .store
                    .insert_linked_account(NewLinkedAccount {
                        id: id.clone(),
                        environment_id,
                        provider: provider.name.clone(),
                        status: "ACTIVE".into(),
                        credentials: services.vault.seal(&id, &credentials),
                        settings,
                        expires_at: credentials.expires_at,
                    })
                    .await
                    .map_err(|e| from_code(&e))?;
                crate::webhooks::on_account_linked(&services, &row).await;
                Ok(Some(FieldValue::owned_any(row)))
            })
        })
        .argument(InputValue::new("provider", TypeRef::named_nn(TypeRef::STRING)))
        .argument(InputValue::new("credentials", TypeRef::named_nn("JSON")).description("`{accessToken, refreshToken, expiresAt}`, `{apiKey}`, or `{grant: \"client_credentials\"}` (the environment's OAuth app gets the token)."))
        .argument(InputValue::new("settings", TypeRef::named("JSON")).description("`baseUrl` and the provider's own template values."))
        .description("Links a vendor account to the caller's environment."),
    ]
}
