//! How an upstream call failed to connect, from the types in its error's source chain rather
//! than a sentence to match: names are resolved by [`crate::upstreams::Resolver`], which
//! fails with a typed [`DnsFailure`] (reqwest's own resolver reports a lookup failure as an
//! untyped I/O error) or a typed [`Refused`] (an address the allow list does not name).
//! [`classify`] tells DNS, TCP connect, TLS handshake (rustls' error) and refused apart.

pub use crate::upstreams::DnsFailure;
use crate::upstreams::Refused;

use super::error::NetworkFailure;

/// The TLS layer's own words for a failed handshake ("invalid peer certificate: Expired"),
/// from the source chain (a certificate's contents are not in them).
pub fn tls_reason(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            let mut inner: Option<&std::io::Error> = Some(io);
            while let Some(io) = inner {
                let wrapped = io.get_ref();
                if let Some(tls) = wrapped.and_then(|w| w.downcast_ref::<rustls::Error>()) {
                    return Some(tls.to_string());
                }
                inner = wrapped.and_then(|w| w.downcast_ref::<std::io::Error>());
            }
        }
        source = e.source();
    }
    None
}

/// What kind of network failure an error is, from the types in its source chain.
pub fn classify(err: &(dyn std::error::Error + 'static)) -> NetworkFailure {
    let mut connect = false;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if e.is::<Refused>() {
            return NetworkFailure::Refused;
        }
        if e.is::<DnsFailure>() {
            return NetworkFailure::Dns;
        }
        if e.is::<rustls::Error>() {
            return NetworkFailure::Tls;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            // An I/O error's `source` skips the error it wraps, and the TLS layer reports a
            // handshake failure as I/O errors around rustls' own: look inside.
            let mut inner: Option<&std::io::Error> = Some(io);
            while let Some(io) = inner {
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::ConnectionRefused
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::HostUnreachable
                        | std::io::ErrorKind::NetworkUnreachable
                        | std::io::ErrorKind::AddrNotAvailable
                ) {
                    connect = true;
                }
                let wrapped = io.get_ref();
                if wrapped.is_some_and(|w| w.is::<rustls::Error>()) {
                    return NetworkFailure::Tls;
                }
                inner = wrapped.and_then(|w| w.downcast_ref::<std::io::Error>());
            }
        }
        source = e.source();
    }
    if connect {
        NetworkFailure::Connect
    } else {
        NetworkFailure::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_address_is_not_a_dns_failure() {
        #[derive(Debug, thiserror::Error)]
        #[error("dns error")]
        struct Wrapper(#[source] Box<dyn std::error::Error + Send + Sync>);
        let refused = crate::upstreams::AllowList::none()
            .check_url(&url::Url::parse("http://169.254.169.254/").unwrap())
            .unwrap_err();
        assert_eq!(
            classify(&Wrapper(Box::new(refused))),
            NetworkFailure::Refused
        );
        let dns = DnsFailure {
            host: "nowhere.invalid".into(),
        };
        assert_eq!(classify(&Wrapper(Box::new(dns))), NetworkFailure::Dns);
    }
}
