//! Revoking a grant at the vendor when its linked account is deleted, as the provider
//! file's `oauth.revoke` says (RFC 7009 and the vendors' variants: the token in a form
//! field, a query parameter or the URL's path; the OAuth app authenticated or not).
//!
//! Revocation is best effort and says what happened: the account is deleted whatever the
//! vendor answers (a customer who disconnects must not be kept connected by a vendor
//! outage), and the caller learns whether the grant is dead at the vendor too.

use serde_json::{Value, json};
use url::Url;

use super::TokenManager;
use super::oauth::{ClientApp, MAX_TOKEN_BODY, TokenClient, summary};
use super::refresh::Endpoint;
use crate::config::{Revocation, RevokeClientAuth, RevokeToken, TokenIn};
use crate::mapping::Vars;
use crate::secret::Secret;
use crate::store::LinkedAccount;

/// What became of the account's grant at the vendor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    /// The vendor revoked it.
    AtVendor,
    /// The vendor said it was dead already (revoked elsewhere, expired).
    AlreadyDead,
    /// The provider file declares no revocation endpoint.
    NotDeclared,
    /// There is no token the vendor could revoke (an API key, say).
    NothingToRevoke(String),
    /// The vendor could not be asked, or refused.
    Failed(String),
}

impl Revoked {
    /// Whether the grant is known to be dead at the vendor.
    pub fn is_dead(&self) -> bool {
        matches!(self, Revoked::AtVendor | Revoked::AlreadyDead)
    }

    pub fn describe(&self) -> String {
        match self {
            Revoked::AtVendor => "the vendor revoked the grant".into(),
            Revoked::AlreadyDead => "the vendor said the grant was already revoked or expired".into(),
            Revoked::NotDeclared => "the provider file declares no way to revoke a grant (oauth.revoke): revoke the app's access in the vendor's settings if it must end there too".into(),
            Revoked::NothingToRevoke(why) => why.clone(),
            Revoked::Failed(why) => format!("the grant could not be revoked at the vendor: {why}; revoke the app's access in the vendor's settings"),
        }
    }
}

impl TokenManager {
    /// Asks the vendor to revoke the account's grant, as its provider file says.
    pub async fn revoke_at_vendor(&self, row: &LinkedAccount) -> Revoked {
        let Some(model) = self.providers.get(&row.provider).cloned() else {
            return Revoked::Failed(format!("provider `{}` is not loaded", row.provider));
        };
        let Some(cfg) = model.oauth.as_ref().and_then(|o| o.revoke.as_ref()) else {
            return Revoked::NotDeclared;
        };
        let creds = match self.open(row) {
            Ok(c) => c,
            Err(e) => return Revoked::Failed(e.to_string()),
        };
        let token = match cfg.token {
            RevokeToken::Refresh => creds.refresh_token.or(creds.access_token),
            RevokeToken::Access => creds.access_token,
        };
        let Some(token) = token else {
            return Revoked::NothingToRevoke(if creds.api_key.is_some() {
                "the account holds an API key, which only the vendor's settings can revoke".into()
            } else {
                "the account holds no token the vendor could revoke".into()
            });
        };
        let url =
            match model.resolve_oauth_url(&cfg.url, "revokeUrl", &row.settings, &self.upstreams) {
                Ok(u) => u,
                Err(e) => return Revoked::Failed(e.to_string()),
            };
        if let Err(refused) = self.upstreams.check_resolved(&url).await {
            return Revoked::Failed(refused.to_string());
        }
        let app = match cfg.client_auth {
            RevokeClientAuth::None => None,
            RevokeClientAuth::Body | RevokeClientAuth::Basic => match self
                .app_for(
                    &row.id,
                    &row.environment_id,
                    &model,
                    &[(Endpoint::Revoke, &cfg.url, &url)],
                    false,
                )
                .await
            {
                Ok(app) => Some(app),
                Err(e) => return Revoked::Failed(e.to_string()),
            },
        };
        match self.client.revoke(cfg, url, &token, app.as_ref()).await {
            Ok(outcome) => outcome,
            Err(why) => Revoked::Failed(why),
        }
    }
}

impl TokenClient {
    /// One revocation request; the answer judged by status and `alreadyRevoked`.
    async fn revoke(
        &self,
        cfg: &Revocation,
        mut url: Url,
        token: &Secret,
        app: Option<&ClientApp>,
    ) -> Result<Revoked, String> {
        let mut fields: Vec<(String, String)> = cfg.params.clone();
        match cfg.token_in {
            TokenIn::Form | TokenIn::Query => {
                fields.push((cfg.param.clone(), token.expose().to_string()));
            }
            TokenIn::Path => {
                url.path_segments_mut()
                    .map_err(|()| "the revocation URL cannot take a path".to_string())?
                    .pop_if_empty()
                    .push(token.expose());
            }
        }
        if let (RevokeClientAuth::Body, Some(app)) = (cfg.client_auth, app) {
            fields.push(("client_id".into(), app.client_id.clone()));
            fields.push((
                "client_secret".into(),
                app.client_secret.expose().to_string(),
            ));
        }
        if cfg.token_in == TokenIn::Query {
            url.query_pairs_mut().extend_pairs(fields.drain(..));
        }
        // An IP literal is connected to without the resolver: check it here.
        self.upstreams
            .check_url(&url)
            .map_err(|refused| refused.to_string())?;
        let mut request = self
            .http
            .request(cfg.method.clone(), url)
            .header(reqwest::header::ACCEPT, "application/json");
        if let (RevokeClientAuth::Basic, Some(app)) = (cfg.client_auth, app) {
            request = request.basic_auth(&app.client_id, Some(app.client_secret.expose()));
        }
        if !fields.is_empty() {
            request = request.form(&fields);
        }
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                "the revocation endpoint timed out".to_string()
            } else {
                "cannot reach the revocation endpoint".to_string()
            }
        })?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|_| "the revocation answer was cut off".to_string())?;
        let body: Value = if bytes.len() > MAX_TOKEN_BODY {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        let client_secret = app.map_or("", |a| a.client_secret.expose());
        let answer = json!({"status": status, "body": body});
        let holds = |expr: &crate::mapping::Expr| {
            matches!(
                expr.evaluate(Some(&answer), &Vars::none()),
                Ok(Some(Value::Bool(true)))
            )
        };
        if cfg.already_revoked.as_ref().is_some_and(holds) {
            return Ok(Revoked::AlreadyDead);
        }
        let revoked = match &cfg.ok {
            Some(expr) => holds(expr),
            None => (200..300).contains(&status),
        };
        if revoked {
            return Ok(Revoked::AtVendor);
        }
        Err(summary(&body, status, &[token.expose()], client_secret))
    }
}
