//! Name resolution for upstream calls, so a failed lookup is a typed [`DnsFailure`] in the
//! error's source chain rather than a sentence to match. (reqwest's own resolver reports
//! a lookup failure as an untyped I/O error.) Failures are classified by type in
//! [`classify`]: DNS, TCP connect, TLS handshake (rustls' error), timeout.

use std::net::SocketAddr;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::error::NetworkFailure;

/// A host name that did not resolve.
#[derive(Debug, thiserror::Error)]
#[error("cannot resolve `{host}`")]
pub struct DnsFailure {
    pub host: String,
}

/// Resolves with the system resolver (through tokio), failing with [`DnsFailure`].
#[derive(Debug, Default, Clone, Copy)]
pub struct TypedResolver;

impl Resolve for TypedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((host.as_str(), 0)).await {
                Ok(found) => found.collect(),
                Err(_) => Vec::new(),
            };
            if addrs.is_empty() {
                return Err(
                    Box::new(DnsFailure { host }) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// What kind of network failure an error is, from the types in its source chain.
pub fn classify(err: &(dyn std::error::Error + 'static)) -> NetworkFailure {
    let mut connect = false;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
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
