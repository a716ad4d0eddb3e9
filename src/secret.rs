//! `Secret`: a string that never prints. Tokens, client secrets and API keys travel as this
//! type; reading the value takes an explicit `expose()`, and there is no `Serialize`, so a
//! secret cannot slip into a log line, an error message or `remoteData` by accident.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The plaintext. Call it only where the value leaves the process on purpose (an
    /// upstream request header, the encrypted credential blob).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

/// Characters a token is made of (base64, base64url, JWT and the usual vendor prefixes).
/// `=` is left out: it pads the end of a token, and it is what comes before one in a query
/// string (`access_token=...`).
fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~+/".contains(c)
}

/// `text` with every whole occurrence of each secret replaced by `***`. An occurrence counts
/// only where it stands as a token of its own (nothing token-like right before or after):
/// a short secret such as `s` must not garble "refresh token is invalid" into
/// "refre***h token i*** invalid", and a vendor echoing the token inside a sentence, a
/// query string or JSON is still masked.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        let mut masked = String::with_capacity(out.len());
        let mut rest = out.as_str();
        let mut before: Option<char> = None;
        while let Some(at) = rest.find(secret) {
            let prev = rest[..at].chars().next_back().or(before);
            let next = rest[at + secret.len()..].chars().next();
            let whole = !prev.is_some_and(token_char) && !next.is_some_and(token_char);
            masked.push_str(&rest[..at]);
            if whole {
                masked.push_str("***");
            } else {
                masked.push_str(secret);
            }
            before = secret.chars().next_back();
            rest = &rest[at + secret.len()..];
        }
        masked.push_str(rest);
        out = masked;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_masks_whole_tokens_only() {
        assert_eq!(
            redact("refresh token is invalid", &["s"]),
            "refresh token is invalid"
        );
        assert_eq!(
            redact("token abc.def-123 was revoked", &["abc.def-123"]),
            "token *** was revoked"
        );
        assert_eq!(
            redact("{\"t\":\"xyz\"}&x=xyz", &["xyz"]),
            "{\"t\":\"***\"}&x=***"
        );
        assert_eq!(redact("xyzxyz", &["xyz"]), "xyzxyz");
        assert_eq!(redact("a", &[""]), "a");
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("pat-na1-very-secret");
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
        assert_eq!(s.expose(), "pat-na1-very-secret");
    }
}
