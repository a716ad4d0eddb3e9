//! Webhook signature schemes (`tessera::signing`): what a provider file declares and what
//! anyone on the internet may post to a webhook URL.
//!
//! Input, one field a line, then the body after the first empty line after the headers:
//!
//! ```text
//! signatures: a JSON array of schemes, as a provider file's `webhooks.signatures`
//! the secret the delivery is signed with (W)
//! another secret (S)
//! method
//! url
//! now, in ms since the Unix epoch
//! name: value            (headers, any number)
//!
//! body
//! ```
//!
//! The schemes are checked as the loader checks them; the delivery is verified as intake
//! verifies it (the first scheme that applies decides). Checks, besides "no panic":
//! - soundness, against a signer written here from the scheme's description, apart from
//!   the verifier: whatever is accepted carries the signature of the key that accepted it
//!   (HMAC or SHA-256 of the message parts, or the Basic credentials), inside the signed
//!   timestamp window when there is one;
//! - the delivery re-signed here with W is accepted with W (when nothing in the input makes
//!   that impossible, e.g. the signature header also being a signed part), refused with any
//!   secret that is not W (nor an equivalent HMAC key), and refused as a replay once the
//!   clock is moved past the window;
//! - a `token` scheme matches the echoed token exactly.
#![no_main]

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tessera::secret::Secret;
use tessera::signing::token::Token;
use tessera::signing::{Delivery, RawSignature, Rejection, Signature};

const DEFAULT_NOW_MS: i64 = 1_750_000_000_000;

struct Input<'a> {
    schemes: Vec<(Value, Signature)>,
    signer: String,
    other: String,
    method: String,
    url: String,
    now: DateTime<Utc>,
    headers: BTreeMap<String, String>,
    body: &'a [u8],
}

/// The next line of `rest`, which moves past it.
fn take_line(rest: &mut &[u8]) -> String {
    let end = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
    let text = String::from_utf8_lossy(&rest[..end]).into_owned();
    *rest = rest.get(end + 1..).unwrap_or_default();
    text
}

fn parse(data: &[u8]) -> Option<Input<'_>> {
    let mut rest = data;
    let line = &mut rest;
    let config = take_line(line);
    let raw: Vec<Value> = match serde_json::from_str::<Value>(&config).ok()? {
        Value::Array(list) => list,
        one => vec![one],
    };
    let mut schemes = Vec::new();
    for r in raw {
        // The loader's own check: a scheme it refuses is never used.
        let checked: RawSignature = serde_json::from_value(r.clone()).ok()?;
        schemes.push((r, Signature::check(checked).ok()?));
    }
    let signer = take_line(line);
    let other = take_line(line);
    let method = take_line(line);
    let url = take_line(line);
    let now_line = take_line(line);
    let now = now_line
        .trim()
        .parse::<i64>()
        .ok()
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
        .unwrap_or_else(|| Utc.timestamp_millis_opt(DEFAULT_NOW_MS).unwrap());
    let mut headers = BTreeMap::new();
    loop {
        if line.is_empty() {
            break;
        }
        let header = take_line(line);
        if header.is_empty() {
            break;
        }
        // HTTP header names reach intake in lower case; values as sent, without the
        // surrounding blanks HTTP drops.
        let (name, value) = header.split_once(':').unwrap_or((&header, ""));
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    Some(Input {
        schemes,
        signer,
        other,
        method,
        url,
        now,
        headers,
        body: *line,
    })
}

/// A scheme as its JSON describes it, read here independently of `tessera::signing`.
struct Spec {
    scheme: String,
    header: String,
    prefix: String,
    hex_key: bool,
    parts: Vec<String>,
    separator: String,
    base64: bool,
    /// Header, milliseconds (else seconds), tolerance in seconds.
    timestamp: Option<(String, bool, i128)>,
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

impl Spec {
    fn of(v: &Value) -> Spec {
        Spec {
            scheme: text(v, "scheme"),
            header: text(v, "header").trim().to_ascii_lowercase(),
            prefix: text(v, "prefix"),
            hex_key: text(v, "keyEncoding") == "hex",
            parts: v
                .get("message")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|p| p.as_str().unwrap_or_default().trim().to_string())
                        .collect()
                })
                .unwrap_or_default(),
            separator: text(v, "separator"),
            base64: text(v, "encoding") == "base64",
            timestamp: v.get("timestamp").filter(|t| t.is_object()).map(|t| {
                (
                    text(t, "header").trim().to_ascii_lowercase(),
                    text(t, "unit") == "milliseconds",
                    i128::from(
                        t.get("toleranceSeconds")
                            .and_then(Value::as_u64)
                            .unwrap_or(0),
                    ),
                )
            }),
        }
    }

    /// The headers the signed message reads.
    fn signed_headers(&self) -> Vec<String> {
        self.parts
            .iter()
            .filter_map(|p| p.strip_prefix("header:"))
            .map(|n| n.trim().to_ascii_lowercase())
            .collect()
    }

    fn message(&self, d: &Delivery<'_>, secret: &str) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        for (i, part) in self.parts.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(self.separator.as_bytes());
            }
            match part.as_str() {
                "method" => out.extend_from_slice(d.method.as_bytes()),
                "url" => out.extend_from_slice(d.url.as_bytes()),
                "body" => out.extend_from_slice(d.body),
                "secret" => out.extend_from_slice(secret.as_bytes()),
                other => {
                    let name = other.strip_prefix("header:")?.trim().to_ascii_lowercase();
                    out.extend_from_slice(d.headers.get(&name)?.as_bytes());
                }
            }
        }
        Some(out)
    }

    fn key(&self, secret: &str) -> Option<Vec<u8>> {
        if !self.hex_key {
            return Some(secret.as_bytes().to_vec());
        }
        let t = secret.trim();
        if t.len() % 2 != 0 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        (0..t.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&t[i..i + 2], 16).ok())
            .collect()
    }

    /// The raw signature `secret` makes for `d`.
    fn sign(&self, d: &Delivery<'_>, secret: &str) -> Option<Vec<u8>> {
        match self.scheme.as_str() {
            "hmac" => {
                let mut mac = Hmac::<Sha256>::new_from_slice(&self.key(secret)?).ok()?;
                mac.update(&self.message(d, "")?);
                Some(mac.finalize().into_bytes().to_vec())
            }
            "digest" => Some(Sha256::digest(self.message(d, secret)?).to_vec()),
            _ => None,
        }
    }

    fn encode(&self, raw: &[u8]) -> String {
        if self.base64 {
            STANDARD.encode(raw)
        } else {
            raw.iter().map(|b| format!("{b:02x}")).collect()
        }
    }

    /// Whether `d` carries `secret`'s signature: the soundness oracle.
    fn carries(&self, d: &Delivery<'_>, secret: &str) -> bool {
        match self.scheme.as_str() {
            "basic" => d
                .headers
                .get("authorization")
                .is_some_and(|v| v.contains(&STANDARD.encode(secret))),
            "hmac" | "digest" => {
                let Some(given) = d.headers.get(&self.header) else {
                    return false;
                };
                let Some(expected) = self.sign(d, secret).map(|raw| self.encode(&raw)) else {
                    return false;
                };
                let signed = if self.base64 {
                    given.contains(&expected)
                } else {
                    given.to_ascii_lowercase().contains(&expected)
                };
                signed && self.in_window(d)
            }
            _ => false,
        }
    }

    fn in_window(&self, d: &Delivery<'_>) -> bool {
        let Some((header, ms, tolerance)) = &self.timestamp else {
            return true;
        };
        let Some(sent) = d
            .headers
            .get(header)
            .and_then(|v| v.trim().parse::<i64>().ok())
        else {
            return false;
        };
        let sent_ms = if *ms {
            i128::from(sent)
        } else {
            i128::from(sent) * 1000
        };
        (i128::from(d.now.timestamp_millis()) - sent_ms).abs() < (tolerance + 1) * 1000
    }
}

/// HMAC keys that differ as bytes yet are the same key: one longer than the block is its
/// SHA-256, and a shorter one is padded with zeros.
fn same_hmac_key(a: &[u8], b: &[u8]) -> bool {
    let block = |k: &[u8]| {
        let mut k = if k.len() > 64 {
            Sha256::digest(k).to_vec()
        } else {
            k.to_vec()
        };
        k.resize(64, 0);
        k
    };
    block(a) == block(b)
}

fn equivalent(spec: &Spec, a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match spec.scheme.as_str() {
        "hmac" => match (spec.key(a), spec.key(b)) {
            (Some(x), Some(y)) => same_hmac_key(&x, &y),
            _ => false,
        },
        _ => false,
    }
}

fn delivery<'a>(input: &'a Input<'_>, headers: &'a BTreeMap<String, String>) -> Delivery<'a> {
    Delivery {
        method: &input.method,
        url: &input.url,
        headers,
        body: input.body,
        now: input.now,
    }
}

/// Intake's choice and verdict; asserts soundness of an acceptance.
fn verify(
    input: &Input<'_>,
    d: &Delivery<'_>,
    secrets: &[&str],
) -> Option<(usize, Result<usize, Rejection>)> {
    let chosen = input.schemes.iter().position(|(_, s)| s.applies(d))?;
    let (json, scheme) = &input.schemes[chosen];
    let _ = scheme.describe();
    let keys: Vec<Secret> = secrets.iter().map(|s| Secret::new(*s)).collect();
    let verdict = scheme.verify(d, &keys);
    if let Ok(i) = verdict {
        assert!(i < keys.len());
        let spec = Spec::of(json);
        assert!(
            spec.carries(d, secrets[i]),
            "scheme {chosen} accepted a delivery that does not carry key {i}'s signature"
        );
    }
    Some((chosen, verdict))
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = parse(data) else {
        return;
    };
    let signer = input.signer.as_str();
    let other = input.other.as_str();

    // The delivery as posted.
    let as_posted = delivery(&input, &input.headers);
    verify(&input, &as_posted, &[other]);
    verify(&input, &as_posted, &[signer, other]);

    // Token schemes compare the echoed token, exactly.
    assert!(Token.matches(&Secret::new(signer), Some(signer)));
    assert_eq!(
        Token.matches(&Secret::new(other), Some(signer)),
        other == signer
    );

    // Re-signed here with the signer's secret, for the first scheme.
    let Some((json, _)) = input.schemes.first() else {
        return;
    };
    let spec = Spec::of(json);
    let mut headers = input.headers.clone();
    let mut clean = true;
    match spec.scheme.as_str() {
        "hmac" | "digest" => {
            if let Some((header, ms, _)) = &spec.timestamp {
                let now = input.now.timestamp_millis();
                let value = if *ms { now } else { now.div_euclid(1000) };
                headers.insert(header.clone(), value.to_string());
                clean &= *header != spec.header;
            }
            clean &= !spec.signed_headers().contains(&spec.header);
            let unsigned = delivery(&input, &headers);
            let Some(raw) = spec.sign(&unsigned, signer) else {
                return;
            };
            let value = format!("{}{}", spec.prefix, spec.encode(&raw));
            // HTTP drops the blanks around a value, so a prefix that starts with one is
            // not what a vendor can send.
            clean &= spec.prefix.trim_start() == spec.prefix;
            headers.insert(spec.header.clone(), value);
        }
        "basic" => {
            // Tessera generates the credentials: they are never empty.
            clean &= !signer.is_empty();
            let value = format!("Basic {}", STANDARD.encode(signer));
            headers.insert("authorization".into(), value);
        }
        _ => return,
    }
    let signed = delivery(&input, &headers);
    let Some((chosen, verdict)) = verify(&input, &signed, &[signer]) else {
        // Only a `when` that does not hold keeps the first scheme from applying.
        assert!(
            json.get("when").is_some(),
            "a re-signed delivery applies to no scheme"
        );
        return;
    };
    if chosen != 0 {
        return;
    }
    if clean {
        assert_eq!(verdict, Ok(0), "refused what was signed with its key");
    }
    if !equivalent(&spec, signer, other)
        && let Some((_, Ok(_))) = verify(&input, &signed, &[other])
    {
        panic!("accepted a signature made with another secret");
    }
    if let (Some((_, _, tolerance)), Ok(_)) = (&spec.timestamp, &verdict) {
        let later = i64::try_from(*tolerance + 2).unwrap_or(i64::MAX);
        let Some(now) = input
            .now
            .checked_add_signed(chrono::TimeDelta::seconds(later))
        else {
            return;
        };
        let late = Delivery {
            now,
            ..delivery(&input, &headers)
        };
        if let Some((0, v)) = verify(&input, &late, &[signer]) {
            assert!(
                matches!(v, Err(Rejection::Replayed(_))),
                "a delivery past its window was not refused as a replay: {v:?}"
            );
        }
    }
});
