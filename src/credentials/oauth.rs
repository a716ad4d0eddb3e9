//! The vendor's token endpoint: authorization-code, refresh and client-credentials grants,
//! with the provider file's rules for reading the answer (lifetimes, extra values such as
//! `instance_url`, which answers mean the grant is dead for good).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use url::Url;

use crate::bounds::{MAX_TOKEN_LIFETIME_SECS, secs_from_f64, utc_after};
use crate::config::OAuthConfig;
use crate::mapping::Vars;
use crate::secret::Secret;
use crate::upstreams::AllowList;

/// The client credentials of an OAuth app.
#[derive(Debug, Clone)]
pub struct ClientApp {
    pub client_id: String,
    pub client_secret: Secret,
    pub scopes: Vec<String>,
}

pub enum Grant<'a> {
    Code {
        code: &'a str,
        redirect_uri: &'a str,
        verifier: Option<&'a str>,
    },
    Refresh {
        refresh_token: &'a Secret,
    },
    ClientCredentials,
}

impl Grant<'_> {
    pub fn name(&self) -> &'static str {
        match self {
            Grant::Code { .. } => "authorization_code",
            Grant::Refresh { .. } => "refresh_token",
            Grant::ClientCredentials => "client_credentials",
        }
    }
}

/// What a token endpoint gave.
#[derive(Debug, Clone)]
pub struct TokenSet {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Token-response values the provider keeps as settings (`instanceUrl`).
    pub settings: Map<String, Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The grant (refresh token, code) is dead: only the user can fix it.
    #[error("the vendor refused the grant: {reason}")]
    InvalidGrant { reason: String },
    /// Worth retrying: 5xx, 429, timeout, connection failure.
    #[error("the token endpoint failed: {reason}")]
    Transient { reason: String },
    /// Anything else (a malformed answer, a refused client).
    #[error("the token endpoint refused the request: {reason}")]
    Rejected { reason: String },
    /// The token endpoint is an address the upstream allow list does not name: nothing
    /// was sent.
    #[error("the token endpoint cannot be called: {0}")]
    Refused(crate::upstreams::Refused),
}

/// Vendors' token answers are small; anything this large is not one.
pub(super) const MAX_TOKEN_BODY: usize = 64 * 1024;

#[derive(Clone, Debug)]
pub struct TokenClient {
    pub(super) http: reqwest::Client,
    pub(super) upstreams: Arc<AllowList>,
}

impl TokenClient {
    /// A client for token endpoints on the public Internet and the non-public upstreams
    /// `upstreams` names (redirects are never followed).
    pub fn new(
        timeout: Duration,
        upstreams: Arc<AllowList>,
    ) -> Result<TokenClient, reqwest::Error> {
        let http = crate::upstreams::client(&upstreams)
            .timeout(timeout)
            .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(TokenClient { http, upstreams })
    }

    pub async fn request(
        &self,
        cfg: &OAuthConfig,
        token_url: &Url,
        app: &ClientApp,
        grant: Grant<'_>,
    ) -> Result<TokenSet, TokenError> {
        // An IP literal is connected to without the resolver: check it here.
        self.upstreams
            .check_url(token_url)
            .map_err(TokenError::Refused)?;
        let mut form: Vec<(&str, String)> = vec![("grant_type", grant.name().to_string())];
        match &grant {
            Grant::Code {
                code,
                redirect_uri,
                verifier,
            } => {
                form.push(("code", code.to_string()));
                form.push(("redirect_uri", redirect_uri.to_string()));
                if let Some(v) = verifier {
                    form.push(("code_verifier", v.to_string()));
                }
            }
            Grant::Refresh { refresh_token } => {
                form.push(("refresh_token", refresh_token.expose().to_string()))
            }
            Grant::ClientCredentials => {
                let scopes = if app.scopes.is_empty() {
                    &cfg.scopes
                } else {
                    &app.scopes
                };
                if !scopes.is_empty() {
                    form.push(("scope", scopes.join(" ")));
                }
            }
        }
        let mut request = self
            .http
            .post(token_url.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        if cfg.basic_client_auth {
            request = request.basic_auth(&app.client_id, Some(app.client_secret.expose()));
        } else {
            form.push(("client_id", app.client_id.clone()));
            form.push(("client_secret", app.client_secret.expose().to_string()));
        }
        let response =
            request
                .form(&form)
                .send()
                .await
                .map_err(|e| match crate::upstreams::refusal(&e) {
                    Some(refused) => TokenError::Refused(refused.clone()),
                    None => TokenError::Transient {
                        reason: if e.is_timeout() {
                            "timed out".into()
                        } else {
                            "cannot reach the token endpoint".into()
                        },
                    },
                })?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|_| TokenError::Transient {
            reason: "the answer was cut off".into(),
        })?;
        if bytes.len() > MAX_TOKEN_BODY {
            return Err(TokenError::Rejected {
                reason: "the answer is too large to be a token response".into(),
            });
        }
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let secrets: Vec<&str> = match &grant {
            Grant::Refresh { refresh_token } => vec![refresh_token.expose()],
            Grant::Code { code, .. } => vec![*code],
            Grant::ClientCredentials => vec![],
        };
        let reason = summary(&body, status, &secrets, app.client_secret.expose());
        if matches!(
            cfg.invalid_grant.evaluate(
                Some(&json!({"status": status, "body": body})),
                &Vars::none()
            ),
            Ok(Some(Value::Bool(true)))
        ) {
            return Err(TokenError::InvalidGrant { reason });
        }
        if status >= 500 || status == 429 {
            return Err(TokenError::Transient { reason });
        }
        let access = body
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let Some(access) = access.filter(|_| (200..300).contains(&status)) else {
            return Err(TokenError::Rejected { reason });
        };
        let expires_in = lifetime(body.get("expires_in")).or(cfg.default_lifetime);
        let settings = cfg
            .token_settings
            .iter()
            .filter_map(|(name, pointer)| {
                // Settings are text; vendors send ids as numbers too (a portal's id).
                let value = match body.pointer(pointer)? {
                    Value::String(s) => Value::String(s.clone()),
                    Value::Number(n) => Value::String(n.to_string()),
                    _ => return None,
                };
                Some((name.clone(), value))
            })
            .collect();
        Ok(TokenSet {
            access_token: Secret::new(access),
            refresh_token: body
                .get("refresh_token")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(Secret::new),
            expires_at: expires_in.map(|d| utc_after(Utc::now(), d.as_secs())),
            settings,
        })
    }
}

/// A token response's `expires_in`: vendors send a number, a string, sometimes a float, and
/// any of it can be absurd; held to [`MAX_TOKEN_LIFETIME_SECS`].
fn lifetime(value: Option<&Value>) -> Option<Duration> {
    let secs = match value? {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().and_then(secs_from_f64)),
        Value::String(s) => s
            .trim()
            .parse::<u64>()
            .ok()
            .or_else(|| s.trim().parse::<f64>().ok().and_then(secs_from_f64)),
        _ => None,
    }?;
    Some(Duration::from_secs(secs.min(MAX_TOKEN_LIFETIME_SECS)))
}

/// A short reason from an error answer, with every secret of the exchange scrubbed.
pub(super) fn summary(body: &Value, status: u16, secrets: &[&str], client_secret: &str) -> String {
    let pick = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    let mut text = match (pick("error"), pick("error_description").or(pick("message"))) {
        (Some(e), Some(d)) => format!("{e}: {d}"),
        (Some(e), None) => e,
        (None, Some(d)) => d,
        (None, None) => pick("status").unwrap_or_else(|| format!("HTTP {status}")),
    };
    let all: Vec<&str> = secrets.iter().copied().chain([client_secret]).collect();
    text = crate::secret::redact(&text, &all);
    text.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_token_lifetimes_are_held_to_the_maximum() {
        let max = Duration::from_secs(MAX_TOKEN_LIFETIME_SECS);
        for v in [
            json!(1e15),
            json!(1_000_000_000_000_000u64),
            json!("1e300"),
            json!(u64::MAX),
        ] {
            assert_eq!(lifetime(Some(&v)), Some(max), "{v}");
            let at = utc_after(Utc::now(), lifetime(Some(&v)).unwrap_or_default().as_secs());
            assert!(at < Utc::now() + chrono::Duration::days(367), "{v}");
        }
        assert_eq!(
            lifetime(Some(&json!(3600))),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            lifetime(Some(&json!("3599"))),
            Some(Duration::from_secs(3599))
        );
        assert_eq!(lifetime(Some(&json!(-5))), None);
        assert_eq!(lifetime(Some(&json!("soon"))), None);
        assert_eq!(lifetime(None), None);
    }

    #[test]
    fn a_short_client_secret_does_not_garble_the_reason() {
        let body =
            json!({"error": "invalid_grant", "error_description": "refresh token is invalid"});
        assert_eq!(
            summary(&body, 400, &["rt-123"], "s"),
            "invalid_grant: refresh token is invalid"
        );
        let echoed =
            json!({"error": "invalid_client", "error_description": "client s3cr3t unknown"});
        assert_eq!(
            summary(&echoed, 401, &[], "s3cr3t"),
            "invalid_client: client *** unknown"
        );
    }
}
