//! The way to the vendor broken below HTTP: a host name that does not resolve, and local
//! TLS servers with an expired certificate, one for another host, and one that refuses the
//! protocol version. Each is classified by its type, with the layer's reason.

use serde_json::json;

use crate::common::TestGateway;
use crate::health::{connect_at, probe};

/// A caller reading through an account whose host does not resolve gets
/// `UPSTREAM_UNAVAILABLE` with `failure: DNS` at once (a name that does not resolve now
/// will not in the next milliseconds: no retries), and the probe says DNS too.
#[tokio::test]
async fn an_unresolvable_host_is_a_dns_failure_for_callers_and_probes() {
    let t = TestGateway::start_allowing(|sandbox| {
        tessera::upstreams::AllowList::parse([sandbox, "no-such-host.invalid"]).unwrap()
    })
    .await;
    let account = connect_at(&t, "http://no-such-host.invalid").await;
    let r = t
        .gql(
            Some(&t.env_key),
            super::upstream::LIST,
            json!({"a": account}),
        )
        .await;
    assert_eq!(r.code(), Some("UPSTREAM_UNAVAILABLE"), "{}", r.body);
    assert_eq!(
        r.body["errors"][0]["extensions"]["failure"], "DNS",
        "{}",
        r.body
    );
    let log = super::request_log(&t, &account).await;
    assert_eq!(log.len(), 1, "not retried: {log:?}");
    assert_eq!(log[0]["errorClass"], "dns", "{log:?}");
    let found = probe(&t, &account).await;
    assert_eq!(found.failure_class.as_deref(), Some("DNS"), "{found:?}");
}

/// A test certificate authority, a certificate it signs for `names` valid from `from` to
/// `to` (years), and a TLS server on 127.0.0.1 presenting it that answers any request with
/// a one-record listing. Returns the CA (PEM) and the server's port.
async fn tls_vendor(
    ca: &(rcgen::Certificate, rcgen::KeyPair),
    names: &[&str],
    from: i32,
    to: i32,
) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls;
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    params.not_before = rcgen::date_time_ymd(from, 1, 1);
    params.not_after = rcgen::date_time_ymd(to, 1, 1);
    let cert = params.signed_by(&key, &ca.0, &ca.1).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = [0u8; 4096];
                let _ = tls.read(&mut buf).await;
                let body = r#"{"results":[{"id":"1","properties":{"firstname":"Ada"}}]}"#;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(reply.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

/// TLS failures against real local TLS servers whose certificates the gateway's CA bundle
/// trusts: an expired certificate, one for another host, and a vendor that refuses the
/// protocol version are all TLS, with the reason; the same CA's valid certificate works (so
/// the failures are for those reasons, not an unknown issuer).
#[tokio::test]
async fn expired_and_wrong_host_certificates_are_tls_failures_with_their_reason() {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Tessera test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca_pem = ca_cert.pem().into_bytes();
    let ca = (ca_cert, ca_key);
    let this_year = chrono::Datelike::year(&chrono::Utc::now());
    let good = tls_vendor(&ca, &["127.0.0.1"], this_year - 1, this_year + 1).await;
    let expired = tls_vendor(&ca, &["127.0.0.1"], this_year - 3, this_year - 2).await;
    let wrong_host = tls_vendor(&ca, &["vendor.example"], this_year - 1, this_year + 1).await;
    let t = TestGateway::start_allowing(|sandbox| {
        tessera::upstreams::AllowList::parse([sandbox, "127.0.0.0/8"])
            .unwrap()
            .with_extra_roots(ca_pem.clone())
            .unwrap()
    })
    .await;
    let ok = connect_at(&t, &format!("https://127.0.0.1:{good}")).await;
    let found = probe(&t, &ok).await;
    assert_eq!(
        found.state, "HEALTHY",
        "the CA bundle is trusted: {found:?}"
    );
    // A vendor that refuses the protocol version the gateway offers answers its hello
    // with the TLS alert `protocol_version`.
    let refuses_version = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut hello = [0u8; 2048];
                let _ = s.read(&mut hello).await;
                // Record type alert, TLS 1.2, length 2, level fatal, description 70.
                let _ = s
                    .write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46])
                    .await;
            }
        });
        port
    };
    for (port, reason) in [
        (expired, "certificate expired"),
        (wrong_host, "not valid for name"),
        (refuses_version, "protocolversion"),
    ] {
        let account = connect_at(&t, &format!("https://127.0.0.1:{port}")).await;
        let found = probe(&t, &account).await;
        assert_eq!(found.failure_class.as_deref(), Some("TLS"), "{found:?}");
        let message = found.failure_message.clone().unwrap_or_default();
        assert!(
            message.to_lowercase().contains(reason),
            "{reason}: {message}"
        );
    }
}
