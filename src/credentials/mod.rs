//! Credentials of linked accounts: parsed from `connectAccount`, encrypted at rest with
//! AES-256-GCM under the server's secret key, decrypted only to place them on a request.
//!
//! OAuth flows and refresh land here later; the engine only ever sees the resulting token.

pub mod apps;
mod key;
mod lifecycle;
pub mod oauth;
pub mod refresh;
mod revoke;
mod vault;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::error::{ErrorCode, HasCode};
use crate::secret::Secret;

pub use key::{KeyError, SecretKey};
pub use refresh::{RefreshError, TokenManager, run_scheduler};
pub use revoke::Revoked;
pub use vault::Vault;

/// A linked account's credentials. Debug prints no secret.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub access_token: Option<Secret>,
    pub refresh_token: Option<Secret>,
    pub api_key: Option<Secret>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Obtained with the client-credentials grant: renewed by asking again, not by a
    /// refresh token.
    pub client_credentials: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("credentials: {0}")]
    Invalid(String),
    #[error(
        "the stored credentials cannot be decrypted (wrong TESSERA_SECRET_KEY, or the row was altered)"
    )]
    Undecryptable,
}

impl HasCode for CredentialsError {
    fn code(&self) -> ErrorCode {
        match self {
            CredentialsError::Invalid(_) => ErrorCode::BadUserInput,
            CredentialsError::Undecryptable => ErrorCode::Internal,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CredentialsInput {
    access_token: Option<String>,
    refresh_token: Option<String>,
    api_key: Option<String>,
    expires_at: Option<String>,
}

impl Credentials {
    /// Reads the `credentials` argument of `connectAccount`: `{accessToken, refreshToken,
    /// expiresAt}` or `{apiKey}`. Error messages name fields, never values.
    pub fn from_input(value: &Value) -> Result<Credentials, CredentialsError> {
        let input: CredentialsInput = serde_json::from_value(value.clone()).map_err(|e| {
            // serde's message quotes unknown field names and types, not the values.
            CredentialsError::Invalid(e.to_string())
        })?;
        let expires_at = match input.expires_at {
            Some(text) => Some(
                DateTime::parse_from_rfc3339(&text)
                    .map_err(|_| {
                        CredentialsError::Invalid(
                            "`expiresAt` must be an RFC 3339 timestamp".into(),
                        )
                    })?
                    .with_timezone(&Utc),
            ),
            None => None,
        };
        let nonempty =
            |name: &str, v: Option<String>| -> Result<Option<Secret>, CredentialsError> {
                match v {
                    Some(s) if s.trim().is_empty() => {
                        Err(CredentialsError::Invalid(format!("`{name}` is empty")))
                    }
                    Some(s) => Ok(Some(Secret::new(s))),
                    None => Ok(None),
                }
            };
        let creds = Credentials {
            access_token: nonempty("accessToken", input.access_token)?,
            refresh_token: nonempty("refreshToken", input.refresh_token)?,
            api_key: nonempty("apiKey", input.api_key)?,
            expires_at,
            client_credentials: false,
        };
        if creds.access_token.is_none() && creds.api_key.is_none() {
            return Err(CredentialsError::Invalid(
                "give `accessToken` (with optional `refreshToken`, `expiresAt`) or `apiKey`".into(),
            ));
        }
        Ok(creds)
    }

    /// The secret placed on upstream requests: the access token, else the API key.
    pub fn request_token(&self) -> Option<&Secret> {
        self.access_token.as_ref().or(self.api_key.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_tokens_and_rejects_unknown_or_empty_fields_without_echoing_values() {
        let c = Credentials::from_input(
            &json!({"accessToken": "tok-123", "expiresAt": "2030-01-01T00:00:00Z"}),
        )
        .unwrap();
        assert_eq!(c.request_token().unwrap().expose(), "tok-123");
        assert!(!format!("{c:?}").contains("tok-123"));
        let err = Credentials::from_input(&json!({"acessToken": "tok-456"}))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("acessToken") && !err.contains("tok-456"),
            "{err}"
        );
        assert!(Credentials::from_input(&json!({})).is_err());
        assert!(Credentials::from_input(&json!({"apiKey": " "})).is_err());
    }
}
