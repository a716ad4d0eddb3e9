//! `basic`: the vendor sends HTTP Basic credentials Tessera generated when it created the
//! subscription (a webhook created with a user and password for it). The subscription's
//! secret is `user:password`.

use base64::Engine as _;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Delivery, Rejection, constant_time_eq};
use crate::secret::Secret;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawBasic {}

#[derive(Debug, Clone)]
pub struct Basic;

impl Basic {
    pub fn check(_raw: RawBasic) -> Result<Basic, Vec<(String, String)>> {
        Ok(Basic)
    }

    pub(super) fn verify(
        &self,
        delivery: &Delivery<'_>,
        keys: &[Secret],
    ) -> Result<usize, Rejection> {
        let bad = |m: &str| Rejection::BadSignature(m.into());
        let header = delivery
            .header("authorization")
            .ok_or_else(|| bad("no Basic credentials"))?;
        let encoded = match header.trim().split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") => rest.trim(),
            _ => return Err(bad("the Authorization header is not Basic")),
        };
        let given = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| bad("the Basic credentials are not base64"))?;
        keys.iter()
            .position(|k| constant_time_eq(k.expose().as_bytes(), &given))
            .ok_or_else(|| bad("the Basic credentials do not match"))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn matches_only_the_generated_credentials() {
        let ok = base64::engine::general_purpose::STANDARD.encode("tessera:pw1");
        for (header, expected) in [
            (format!("Basic {ok}"), Some(0)),
            (format!("basic {ok}"), Some(0)),
            ("Basic dGVzc2VyYTpwdzI=".to_string(), None),
            ("Bearer x".to_string(), None),
            ("Basic !!!".to_string(), None),
        ] {
            let headers = BTreeMap::from([("authorization".to_string(), header)]);
            let d = Delivery {
                method: "POST",
                url: "u",
                headers: &headers,
                body: b"",
                now: chrono::Utc::now(),
            };
            assert_eq!(
                Basic.verify(&d, &[Secret::new("tessera:pw1")]).ok(),
                expected
            );
        }
    }
}
