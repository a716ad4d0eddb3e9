//! `digest`: the header carries SHA-256 of the secret followed by parts of the request, in
//! hex: older app-level signatures (`secret + body`, or `secret + method + url + body`),
//! which old apps still receive. No timestamp: a replay cannot be told from a retry, so
//! these deliveries rely on event-id deduplication alone.

use schemars::JsonSchema;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::message::{self, MessagePart, RawMessagePart};
use super::{
    Delivery, DigestEncoding, KeySource, RawWhen, Rejection, check_header, check_when,
    constant_time_eq, when_holds,
};
use crate::secret::Secret;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawDigest {
    /// The header carrying the digest, e.g. `X-Vendor-Signature`.
    pub header: String,
    #[serde(default)]
    pub key: KeySource,
    /// The hashed text, part by part: `secret`, `method`, `url`, `body`, `header:<name>`.
    pub message: Vec<RawMessagePart>,
    #[serde(default)]
    pub separator: String,
    #[serde(default)]
    pub encoding: DigestEncoding,
    #[serde(default)]
    pub when: Option<RawWhen>,
}

#[derive(Debug, Clone)]
pub struct Digest {
    pub header: String,
    pub key: KeySource,
    parts: Vec<MessagePart>,
    separator: String,
    encoding: DigestEncoding,
    when: Option<RawWhen>,
}

impl Digest {
    pub fn check(raw: RawDigest) -> Result<Digest, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let header = check_header(&raw.header, "/header", &mut problems);
        let parts = message::check_parts(&raw.message, true, &mut problems);
        if !parts.contains(&MessagePart::Secret) && problems.is_empty() {
            problems.push((
                "/message".into(),
                "a digest without `secret` in its message proves nothing".into(),
            ));
        }
        let when = check_when(&raw.when, &mut problems);
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Digest {
            header,
            key: raw.key,
            parts,
            separator: raw.separator,
            encoding: raw.encoding,
            when,
        })
    }

    pub(super) fn applies(&self, delivery: &Delivery<'_>) -> bool {
        delivery.header(&self.header).is_some() && when_holds(&self.when, delivery)
    }

    pub(super) fn verify(
        &self,
        delivery: &Delivery<'_>,
        keys: &[Secret],
    ) -> Result<usize, Rejection> {
        let bad = |m: String| Rejection::BadSignature(m);
        let given = delivery
            .header(&self.header)
            .ok_or_else(|| bad(format!("the `{}` header is missing", self.header)))?;
        let given = self
            .encoding
            .decode(given)
            .ok_or_else(|| bad(format!("the `{}` header is not a digest", self.header)))?;
        for (i, secret) in keys.iter().enumerate() {
            let text = message::build(&self.parts, &self.separator, delivery, Some(secret))
                .map_err(bad)?;
            if constant_time_eq(&Sha256::digest(&text), &given) {
                return Ok(i);
            }
        }
        Err(bad(format!(
            "the `{}` signature does not match",
            self.header
        )))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn a_documented_secret_plus_body_sample_verifies() {
        // A vendor's documented example of a `secret + body` digest.
        let scheme = Digest::check(RawDigest {
            header: "X-Vendor-Signature".into(),
            key: KeySource::ClientSecret,
            message: vec![
                RawMessagePart("secret".into()),
                RawMessagePart("body".into()),
            ],
            separator: String::new(),
            encoding: DigestEncoding::Hex,
            when: None,
        })
        .unwrap();
        let body = br#"[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]"#;
        let secret = Secret::new("yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy");
        let mut expected = Sha256::new();
        expected.update(secret.expose().as_bytes());
        expected.update(body);
        let headers = BTreeMap::from([(
            "x-vendor-signature".to_string(),
            super::super::hex(&expected.finalize()),
        )]);
        let d = Delivery {
            method: "POST",
            url: "https://x/y",
            headers: &headers,
            body,
            now: chrono::Utc::now(),
        };
        assert_eq!(scheme.verify(&d, &[Secret::new("wrong"), secret]), Ok(1));
        let tampered = Delivery { body: b"[]", ..d };
        assert!(scheme.verify(&tampered, &[Secret::new("wrong")]).is_err());
    }

    #[test]
    fn a_digest_must_hash_the_secret() {
        let err = Digest::check(RawDigest {
            header: "x-sig".into(),
            key: KeySource::ClientSecret,
            message: vec![RawMessagePart("body".into())],
            separator: String::new(),
            encoding: DigestEncoding::Hex,
            when: None,
        })
        .unwrap_err();
        assert_eq!(err[0].0, "/message");
    }
}
