//! `token`: the vendor echoes, in every notification, a token Tessera gave it when it
//! created the subscription (a `clientState` or `token` field). The token sits in the
//! body, per notification, so the check runs once the provider's `events` expression has
//! read each event's `secret` and the subscription it names.

use schemars::JsonSchema;
use serde::Deserialize;

use super::constant_time_eq;
use crate::secret::Secret;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawToken {}

#[derive(Debug, Clone)]
pub struct Token;

impl Token {
    pub fn check(_raw: RawToken) -> Result<Token, Vec<(String, String)>> {
        Ok(Token)
    }

    /// Whether the echoed token is the subscription's.
    pub fn matches(&self, expected: &Secret, echoed: Option<&str>) -> bool {
        echoed.is_some_and(|e| constant_time_eq(expected.expose().as_bytes(), e.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_different_token_does_not_match() {
        let s = Secret::new("state-123");
        assert!(Token.matches(&s, Some("state-123")));
        assert!(!Token.matches(&s, Some("state-124")));
        assert!(!Token.matches(&s, None));
    }
}
