//! The signed message of `hmac` and `digest`: parts of the request, concatenated.

use schemars::JsonSchema;
use serde::Deserialize;

use super::Delivery;
use crate::secret::Secret;

/// One part as a provider file writes it: `method`, `url`, `body`, `secret` (digest
/// schemes that hash the secret with the message) or `header:<name>`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct RawMessagePart(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessagePart {
    Method,
    Url,
    Body,
    Secret,
    Header(String),
}

impl MessagePart {
    pub fn parse(raw: &RawMessagePart) -> Result<MessagePart, String> {
        let text = raw.0.trim();
        Ok(match text {
            "method" => MessagePart::Method,
            "url" => MessagePart::Url,
            "body" => MessagePart::Body,
            "secret" => MessagePart::Secret,
            _ => match text.strip_prefix("header:") {
                Some(name) if !name.trim().is_empty() => {
                    MessagePart::Header(name.trim().to_ascii_lowercase())
                }
                _ => {
                    return Err(format!(
                        "`{text}` is not a message part (method, url, body, secret or header:<name>)"
                    ));
                }
            },
        })
    }
}

/// Checks a list of parts; problems point at `/message/<i>`.
pub(super) fn check_parts(
    raw: &[RawMessagePart],
    secret_allowed: bool,
    problems: &mut Vec<(String, String)>,
) -> Vec<MessagePart> {
    if raw.is_empty() {
        problems.push(("/message".into(), "name at least one part".into()));
    }
    let mut parts = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        match MessagePart::parse(r) {
            Ok(MessagePart::Secret) if !secret_allowed => problems.push((
                format!("/message/{i}"),
                "an HMAC is keyed by the secret; it is not part of the message".into(),
            )),
            Ok(p) => parts.push(p),
            Err(m) => problems.push((format!("/message/{i}"), m)),
        }
    }
    parts
}

/// The message bytes, or the header a part needs and the delivery lacks.
pub(super) fn build(
    parts: &[MessagePart],
    separator: &str,
    delivery: &Delivery<'_>,
    secret: Option<&Secret>,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(delivery.body.len() + 256);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(separator.as_bytes());
        }
        match part {
            MessagePart::Method => out.extend_from_slice(delivery.method.as_bytes()),
            MessagePart::Url => out.extend_from_slice(delivery.url.as_bytes()),
            MessagePart::Body => out.extend_from_slice(delivery.body),
            MessagePart::Secret => {
                if let Some(s) = secret {
                    out.extend_from_slice(s.expose().as_bytes());
                }
            }
            MessagePart::Header(name) => match delivery.header(name) {
                Some(v) => out.extend_from_slice(v.as_bytes()),
                None => return Err(format!("the `{name}` header is missing")),
            },
        }
    }
    Ok(out)
}
