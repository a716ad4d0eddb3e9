//! `hmac`: the header carries HMAC-SHA256(key, message), the message being parts of the
//! request. One vendor signs `method + url + body + timestamp` (base64, with a 5-minute
//! timestamp window), another the body alone (hex), a third `timestamp + body` with a hex
//! key: each is this scheme with other parts (see the provider files).

use ::hmac::{Hmac as HmacImpl, Mac};
use schemars::JsonSchema;
use serde::Deserialize;
use sha2::Sha256;

use super::message::{self, MessagePart, RawMessagePart};
use super::{
    Delivery, DigestEncoding, KeyEncoding, KeySource, RawWhen, Rejection, check_header, check_when,
    when_holds,
};
use crate::secret::Secret;

/// The most a timestamp window may be: a day. Wider is no protection against replays.
const MAX_TOLERANCE_SECS: u64 = 86_400;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawHmac {
    /// The header carrying the signature, e.g. `X-Vendor-Signature-v3`.
    pub header: String,
    /// Text before the digest in the header (`sha256=`), removed before comparing.
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub key: KeySource,
    #[serde(default)]
    pub key_encoding: KeyEncoding,
    /// The signed message, part by part: `method`, `url`, `body`, `header:<name>`.
    pub message: Vec<RawMessagePart>,
    /// Put between parts (default: nothing).
    #[serde(default)]
    pub separator: String,
    /// How the digest is written (default `hex`).
    #[serde(default)]
    pub encoding: DigestEncoding,
    /// A signed timestamp that must be recent: refuses replays of an old delivery.
    #[serde(default)]
    pub timestamp: Option<RawTimestamp>,
    #[serde(default)]
    pub when: Option<RawWhen>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawTimestamp {
    /// The header carrying the timestamp (it should also be a part of the message).
    pub header: String,
    /// `seconds` or `milliseconds` since the Unix epoch.
    #[serde(default)]
    pub unit: TimestampUnit,
    /// How far the timestamp may be from now, either way (typically 300).
    pub tolerance_seconds: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum TimestampUnit {
    #[default]
    Seconds,
    Milliseconds,
}

#[derive(Debug, Clone)]
pub struct Hmac {
    pub header: String,
    prefix: Option<String>,
    pub key: KeySource,
    key_encoding: KeyEncoding,
    parts: Vec<MessagePart>,
    separator: String,
    encoding: DigestEncoding,
    timestamp: Option<RawTimestamp>,
    when: Option<RawWhen>,
}

impl Hmac {
    pub fn check(raw: RawHmac) -> Result<Hmac, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let header = check_header(&raw.header, "/header", &mut problems);
        let parts = message::check_parts(&raw.message, false, &mut problems);
        let when = check_when(&raw.when, &mut problems);
        let timestamp = raw.timestamp.map(|t| {
            if t.tolerance_seconds == 0 || t.tolerance_seconds > MAX_TOLERANCE_SECS {
                problems.push((
                    "/timestamp/toleranceSeconds".into(),
                    format!("must be between 1 and {MAX_TOLERANCE_SECS}"),
                ));
            }
            RawTimestamp {
                header: check_header(&t.header, "/timestamp/header", &mut problems),
                ..t
            }
        });
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Hmac {
            header,
            prefix: raw.prefix,
            key: raw.key,
            key_encoding: raw.key_encoding,
            parts,
            separator: raw.separator,
            encoding: raw.encoding,
            timestamp,
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
        let given = match &self.prefix {
            Some(p) => given.trim().strip_prefix(p.as_str()).ok_or_else(|| {
                bad(format!(
                    "the `{}` header does not start with `{p}`",
                    self.header
                ))
            })?,
            None => given.trim(),
        };
        let given = self
            .encoding
            .decode(given)
            .ok_or_else(|| bad(format!("the `{}` header is not a digest", self.header)))?;
        let message = message::build(&self.parts, &self.separator, delivery, None).map_err(bad)?;
        for (i, secret) in keys.iter().enumerate() {
            let Some(key) = self.key_encoding.key_bytes(secret) else {
                continue;
            };
            let Ok(mut mac) = HmacImpl::<Sha256>::new_from_slice(&key) else {
                continue;
            };
            mac.update(&message);
            if mac.verify_slice(&given).is_ok() {
                // Only a signed timestamp says anything: check it after the signature, so
                // an unsigned delivery is "bad signature", never "replayed".
                if let Some(t) = &self.timestamp {
                    check_window(t, delivery)?;
                }
                return Ok(i);
            }
        }
        Err(bad(format!(
            "the `{}` signature does not match",
            self.header
        )))
    }
}

fn check_window(t: &RawTimestamp, delivery: &Delivery<'_>) -> Result<(), Rejection> {
    let text = delivery
        .header(&t.header)
        .ok_or_else(|| Rejection::BadSignature(format!("the `{}` header is missing", t.header)))?;
    let value: i64 = text.trim().parse().map_err(|_| {
        Rejection::BadSignature(format!("the `{}` header is not a number", t.header))
    })?;
    let now_ms = delivery.now.timestamp_millis();
    let sent_ms = match t.unit {
        TimestampUnit::Seconds => value.saturating_mul(1000),
        TimestampUnit::Milliseconds => value,
    };
    let skew_secs = now_ms.saturating_sub(sent_ms) / 1000;
    let tolerance = i64::try_from(t.tolerance_seconds).unwrap_or(i64::MAX);
    if skew_secs > tolerance {
        return Err(Rejection::Replayed(format!(
            "signed {skew_secs} s ago; deliveries older than {tolerance} s are refused"
        )));
    }
    if skew_secs < -tolerance {
        return Err(Rejection::Replayed(format!(
            "signed {} s in the future; the window is {tolerance} s",
            -skew_secs
        )));
    }
    Ok(())
}

/// HMAC-SHA256 of `message` under `key`: the signer's side, for Tessera's own outbound
/// signature and for tests.
pub fn sign(key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match HmacImpl::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return Vec::new(),
    };
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use base64::Engine as _;
    use chrono::{TimeZone, Utc};

    use super::*;

    fn v3() -> Hmac {
        Hmac::check(RawHmac {
            header: "X-Vendor-Signature-v3".into(),
            prefix: None,
            key: KeySource::ClientSecret,
            key_encoding: KeyEncoding::Utf8,
            message: ["method", "url", "body", "header:x-vendor-request-timestamp"]
                .iter()
                .map(|p| RawMessagePart(p.to_string()))
                .collect(),
            separator: String::new(),
            encoding: DigestEncoding::Base64,
            timestamp: Some(RawTimestamp {
                header: "x-vendor-request-timestamp".into(),
                unit: TimestampUnit::Milliseconds,
                tolerance_seconds: 300,
            }),
            when: None,
        })
        .unwrap()
    }

    fn signed(secret: &str, ts_ms: i64, body: &str) -> BTreeMap<String, String> {
        let msg = format!("POSThttps://gw.example/webhooks/vendor{body}{ts_ms}");
        let sig = base64::engine::general_purpose::STANDARD
            .encode(sign(secret.as_bytes(), msg.as_bytes()));
        BTreeMap::from([
            ("x-vendor-signature-v3".to_string(), sig),
            ("x-vendor-request-timestamp".to_string(), ts_ms.to_string()),
        ])
    }

    #[test]
    fn v3_accepts_the_right_key_and_refuses_tampering_and_old_timestamps() {
        let scheme = v3();
        let now = Utc.timestamp_millis_opt(1_750_000_000_000).unwrap();
        let body = r#"[{"eventId":1}]"#;
        let keys = [Secret::new("other"), Secret::new("s3cret")];
        let headers = signed("s3cret", now.timestamp_millis() - 1000, body);
        let d = |body: &'static str, headers: &'static BTreeMap<String, String>| Delivery {
            method: "POST",
            url: "https://gw.example/webhooks/vendor",
            headers,
            body: body.as_bytes(),
            now,
        };
        let headers: &'static _ = Box::leak(Box::new(headers));
        assert_eq!(scheme.verify(&d(body, headers), &keys), Ok(1));
        assert!(matches!(
            scheme.verify(&d(r#"[{"eventId":2}]"#, headers), &keys),
            Err(Rejection::BadSignature(_))
        ));
        let old: &'static _ = Box::leak(Box::new(signed(
            "s3cret",
            now.timestamp_millis() - 301_000,
            body,
        )));
        assert!(matches!(
            scheme.verify(&d(body, old), &keys),
            Err(Rejection::Replayed(_))
        ));
        let future: &'static _ = Box::leak(Box::new(signed(
            "s3cret",
            now.timestamp_millis() + 400_000,
            body,
        )));
        assert!(matches!(
            scheme.verify(&d(body, future), &keys),
            Err(Rejection::Replayed(_))
        ));
        // A forged old delivery is a bad signature, not a replay.
        let forged: &'static _ = Box::leak(Box::new(signed(
            "guess",
            now.timestamp_millis() - 301_000,
            body,
        )));
        assert!(matches!(
            scheme.verify(&d(body, forged), &keys),
            Err(Rejection::BadSignature(_))
        ));
    }

    #[test]
    fn an_absurd_timestamp_is_an_answer_not_a_panic() {
        let scheme = v3();
        let now = Utc::now();
        for ts in [i64::MAX, i64::MIN, 0] {
            let headers: &'static _ = Box::leak(Box::new(signed("k", ts, "{}")));
            let d = Delivery {
                method: "POST",
                url: "https://gw.example/webhooks/vendor",
                headers,
                body: b"{}",
                now,
            };
            assert!(matches!(
                scheme.verify(&d, &[Secret::new("k")]),
                Err(Rejection::Replayed(_))
            ));
        }
    }

    #[test]
    fn check_names_the_wrong_part_and_window() {
        let err = Hmac::check(RawHmac {
            header: "bad header".into(),
            prefix: None,
            key: KeySource::ClientSecret,
            key_encoding: KeyEncoding::Utf8,
            message: vec![
                RawMessagePart("secret".into()),
                RawMessagePart("bodyy".into()),
            ],
            separator: String::new(),
            encoding: DigestEncoding::Hex,
            timestamp: Some(RawTimestamp {
                header: "t".into(),
                unit: TimestampUnit::Seconds,
                tolerance_seconds: 0,
            }),
            when: None,
        })
        .unwrap_err();
        let at: Vec<&str> = err.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            at,
            [
                "/header",
                "/message/0",
                "/message/1",
                "/timestamp/toleranceSeconds"
            ]
        );
    }
}
