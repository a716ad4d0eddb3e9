//! Which OAuth app may be used where. An environment's own app goes wherever its
//! environment sends it. The platform's default app (the admin's) carries the platform's
//! identity and secret, so it is sent only to the provider file's own token and
//! authorization hosts and to the hosts the admin names, and it serves the
//! client-credentials grant only when the admin allows that.

use url::Url;

use crate::config::{PathSegment, Template};

/// The scheme, host and port of an endpoint template whose host is written out in the
/// provider file (`https://login.example.com/{tenant}/token`); `None` when a setting
/// fills any part of the host (`{instanceUrl}/token`, `https://accounts.{dc}/token`).
pub fn declared_origin(template: &Template) -> Option<(String, String, u16)> {
    let url = match template.literal() {
        Some(whole) => Url::parse(whole).ok()?,
        None => {
            let Some(PathSegment::Literal(first)) = template.segments.first() else {
                return None;
            };
            let after_scheme = first.find("://")? + 3;
            // The authority must end inside the literal, or a setting could extend the host.
            let end = first[after_scheme..].find(['/', '?', '#'])? + after_scheme;
            Url::parse(&first[..end]).ok()?
        }
    };
    Some((
        url.scheme().to_string(),
        url.host_str()?.to_string(),
        url.port_or_known_default()?,
    ))
}

/// A host the admin names for the platform app: `host` (the scheme's default port) or
/// `host:port`, lower case, nothing else.
pub fn normalize_allowed_host(entry: &str) -> Result<String, String> {
    let trimmed = entry.trim().to_ascii_lowercase();
    let bad = || format!("`{entry}` is not a host or host:port (no scheme, path or wildcard)");
    if trimmed.is_empty() || trimmed.contains(['/', '?', '#', '@', '*']) {
        return Err(bad());
    }
    let url = Url::parse(&format!("https://{trimmed}")).map_err(|_| bad())?;
    let host = url.host_str().ok_or_else(bad)?;
    let normal = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None if trimmed.ends_with(":443") => format!("{host}:443"),
        None => host.to_string(),
    };
    Ok(normal)
}

/// Whether the platform's app may be sent to `url`, an endpoint of the account rendered
/// from `template` or given by the account's settings.
pub fn platform_allows(template: &Template, url: &Url, allowed_hosts: &[String]) -> bool {
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return false;
    };
    if let Some((scheme, declared_host, declared_port)) = declared_origin(template)
        && scheme == url.scheme()
        && declared_host == host
        && declared_port == port
    {
        return true;
    }
    allowed_hosts
        .iter()
        .any(|entry| match entry.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() => h == host && p.parse() == Ok(port),
            _ => entry == host && url.port().is_none(),
        })
}

/// The host of `url` as a message names it (`host` or `host:port`).
pub fn shown_host(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => url.as_str().chars().take(100).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> Template {
        Template::parse(text).unwrap()
    }

    fn u(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn only_the_declared_host_and_the_admins_hosts_take_the_platform_app() {
        let tenant = t("https://login.example.com/{tenant}/oauth2/token");
        assert!(platform_allows(
            &tenant,
            &u("https://login.example.com/abc/oauth2/token"),
            &[]
        ));
        assert!(platform_allows(
            &tenant,
            &u("https://login.example.com:443/x"),
            &[]
        ));
        assert!(!platform_allows(
            &tenant,
            &u("https://login.example.com:8443/x"),
            &[]
        ));
        assert!(!platform_allows(
            &tenant,
            &u("http://login.example.com/x"),
            &[]
        ));
        assert!(!platform_allows(
            &tenant,
            &u("https://evil.example.net/token"),
            &[]
        ));
        assert!(!platform_allows(
            &tenant,
            &u("https://login.example.com.evil.net/t"),
            &[]
        ));
        // A setting that fills part of the host: nothing is the provider's own.
        for open in [
            "{instanceUrl}/token",
            "https://accounts.{dc}/token",
            "https://login.example.com{path}",
        ] {
            assert_eq!(declared_origin(&t(open)), None, "{open}");
            assert!(
                !platform_allows(&t(open), &u("https://login.example.com/token"), &[]),
                "{open}"
            );
        }
        let admin = vec!["127.0.0.1:4010".to_string(), "test.example.com".to_string()];
        assert!(platform_allows(
            &tenant,
            &u("http://127.0.0.1:4010/t"),
            &admin
        ));
        assert!(!platform_allows(
            &tenant,
            &u("http://127.0.0.1:4011/t"),
            &admin
        ));
        assert!(platform_allows(
            &tenant,
            &u("https://test.example.com/t"),
            &admin
        ));
        assert!(!platform_allows(
            &tenant,
            &u("https://test.example.com:444/t"),
            &admin
        ));
    }

    #[test]
    fn admin_hosts_are_hosts_or_host_and_port() {
        assert_eq!(
            normalize_allowed_host("Test.Example.com").unwrap(),
            "test.example.com"
        );
        assert_eq!(
            normalize_allowed_host("127.0.0.1:4010").unwrap(),
            "127.0.0.1:4010"
        );
        for bad in [
            "",
            "https://x.com",
            "x.com/path",
            "*.x.com",
            "u@x.com",
            "x.com:99999",
        ] {
            assert!(normalize_allowed_host(bad).is_err(), "{bad}");
        }
    }
}
