//! Which addresses the gateway may call: every outbound client (the engine, the token
//! endpoint client, outbound webhooks) resolves names through [`Resolver`], which refuses
//! loopback, private, link-local and other non-public addresses unless the operator's
//! [`AllowList`] (`serve --allow-upstream`, `TESSERA_ALLOW_UPSTREAMS`) names them. The check
//! runs on the addresses reqwest then connects to, so a name cannot resolve to one address
//! when checked and another when called. reqwest does not resolve IP literals, so every
//! request is also checked with [`AllowList::check_url`] before it is sent.
//!
//! An entry is `HOST[:PORT]` (matched against the URL's host as written, on that port or on
//! any port) or a CIDR block (matched against the address the host is or resolves to).
//! `127.0.0.1:4010` does not name `localhost`, nor `[::ffff:127.0.0.1]`: name each as the
//! URLs write them, or use a CIDR. Redirects are never followed, so a vendor cannot point
//! the gateway elsewhere with a `Location`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// One allow-list entry: a host as URLs write it (optionally on one port), or a CIDR block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Host { host: HostName, port: Option<u16> },
    Net(IpNet),
}

/// A host of an entry: an IP literal or a (lowercased) name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostName {
    Ip(IpAddr),
    Domain(String),
}

/// An entry that is neither `HOST[:PORT]` nor a CIDR block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{entry}` is not an upstream allow-list entry (HOST[:PORT] or CIDR): {reason}")]
pub struct BadEntry {
    pub entry: String,
    pub reason: String,
}

impl std::str::FromStr for Entry {
    type Err = BadEntry;

    fn from_str(text: &str) -> Result<Entry, BadEntry> {
        let s = text.trim();
        let bad = |reason: &str| BadEntry {
            entry: s.to_string(),
            reason: reason.to_string(),
        };
        if s.is_empty() {
            return Err(bad("the entry is empty"));
        }
        if s.contains("://") {
            return Err(bad("give a host or a CIDR block, not a URL"));
        }
        if s.contains('/') {
            let net: IpNet = s.parse().map_err(|_| {
                bad("a CIDR block is an IPv4 or IPv6 address, `/` and a prefix length")
            })?;
            return Ok(Entry::Net(net.trunc()));
        }
        let port = |p: &str| -> Result<u16, BadEntry> {
            match p.parse::<u16>() {
                Ok(0) | Err(_) => Err(bad("the port must be a number from 1 to 65535")),
                Ok(n) => Ok(n),
            }
        };
        // `[v6]`, `[v6]:port`
        if let Some(rest) = s.strip_prefix('[') {
            let (addr, after) = rest
                .split_once(']')
                .ok_or_else(|| bad("an opening `[` without its `]`"))?;
            let ip: Ipv6Addr = addr
                .parse()
                .map_err(|_| bad("the address in brackets is not an IPv6 address"))?;
            let port = match after {
                "" => None,
                p => Some(port(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("only `:PORT` may follow `]`"))?,
                )?),
            };
            return Ok(Entry::Host {
                host: HostName::Ip(IpAddr::V6(ip)),
                port,
            });
        }
        // A bare IPv6 address (no port: write `[v6]:port` for one).
        if s.matches(':').count() > 1 {
            let ip: Ipv6Addr = s.parse().map_err(|_| {
                bad("not an IPv6 address (write `[ADDRESS]:PORT` for an IPv6 address and a port)")
            })?;
            return Ok(Entry::Host {
                host: HostName::Ip(IpAddr::V6(ip)),
                port: None,
            });
        }
        let (host, port) = match s.split_once(':') {
            Some((h, p)) => (h, Some(port(p)?)),
            None => (s, None),
        };
        if let Ok(ip) = host.parse::<Ipv4Addr>() {
            return Ok(Entry::Host {
                host: HostName::Ip(IpAddr::V4(ip)),
                port,
            });
        }
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
            return Err(bad(
                "not a host name (letters, digits, `-` and `.`; no wildcards), an IP address or a CIDR block",
            ));
        }
        // A name made of digits and dots (`127.1`, `2130706433`) is an IPv4 address to a
        // URL parser: refuse it rather than name a host no URL can have.
        if name
            .split('.')
            .all(|l| l.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(bad("not a complete IPv4 address"));
        }
        Ok(Entry::Host {
            host: HostName::Domain(name),
            port,
        })
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entry::Net(n) => write!(f, "{n}"),
            Entry::Host { host, port } => {
                match host {
                    HostName::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
                    HostName::Ip(ip) => write!(f, "{ip}")?,
                    HostName::Domain(d) => write!(f, "{d}")?,
                }
                match port {
                    Some(p) => write!(f, ":{p}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// Why an address may not be called: the range it is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressClass {
    pub name: &'static str,
    /// How an IPv4 address is carried in an IPv6 one (`IPv4-mapped`), if it is.
    pub embedded: Option<&'static str>,
}

impl AddressClass {
    /// `a` or `an`, as the class is read.
    pub fn article(&self) -> &'static str {
        let first = self.embedded.unwrap_or(self.name).chars().next();
        if first.is_some_and(|c| "aeiouAEIOU".contains(c)) {
            "an"
        } else {
            "a"
        }
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.embedded {
            Some(how) => write!(f, "{how} {}", self.name),
            None => f.write_str(self.name),
        }
    }
}

const fn class(name: &'static str) -> Option<AddressClass> {
    Some(AddressClass {
        name,
        embedded: None,
    })
}

/// The non-public range `ip` is in, or `None` for an address of the public Internet.
pub fn class_of(ip: IpAddr) -> Option<AddressClass> {
    match ip {
        IpAddr::V4(v4) => class_of_v4(v4),
        IpAddr::V6(v6) => class_of_v6(v6),
    }
}

fn class_of_v4(ip: Ipv4Addr) -> Option<AddressClass> {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        (0, ..) => class("unspecified"),
        (127, ..) => class("loopback"),
        (10, ..) | (172, 16..=31, _) | (192, 168, _) => class("private"),
        (169, 254, _) => class("link-local"),
        (100, 64..=127, _) => class("shared (carrier-grade NAT)"),
        (192, 0, 0) => class("IETF protocol assignment"),
        (198, 18..=19, _) => class("benchmarking"),
        (224..=239, ..) => class("multicast"),
        (240..=255, ..) => class("reserved"),
        _ => None,
    }
}

fn class_of_v6(ip: Ipv6Addr) -> Option<AddressClass> {
    let s = ip.segments();
    let embedded = |how: &'static str, v4: Ipv4Addr| {
        class_of_v4(v4).map(|c| AddressClass {
            embedded: Some(how),
            ..c
        })
    };
    let low_v4 = Ipv4Addr::new(
        (s[6] >> 8) as u8,
        (s[6] & 0xff) as u8,
        (s[7] >> 8) as u8,
        (s[7] & 0xff) as u8,
    );
    if ip.is_unspecified() {
        return class("unspecified");
    }
    if ip.is_loopback() {
        return class("loopback");
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return embedded("IPv4-mapped", v4);
    }
    match s {
        // ::a.b.c.d, IPv4-compatible (deprecated, never a real destination).
        [0, 0, 0, 0, 0, 0, _, _] => class("reserved (IPv4-compatible)"),
        // 64:ff9b::/96, NAT64 of an IPv4 address.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => embedded("NAT64", low_v4),
        // 64:ff9b:1::/48, local-use NAT64.
        [0x64, 0xff9b, 1, ..] => class("private (local-use NAT64)"),
        // 2002::/16, 6to4 of an IPv4 address.
        [0x2002, hi, lo, ..] => embedded(
            "6to4",
            Ipv4Addr::new(
                (hi >> 8) as u8,
                (hi & 0xff) as u8,
                (lo >> 8) as u8,
                (lo & 0xff) as u8,
            ),
        ),
        [x, ..] if x & 0xfe00 == 0xfc00 => class("private (unique local)"),
        [x, ..] if x & 0xffc0 == 0xfe80 => class("link-local"),
        [x, ..] if x & 0xffc0 == 0xfec0 => class("site-local"),
        [x, ..] if x & 0xff00 == 0xff00 => class("multicast"),
        _ => None,
    }
}

/// An upstream the gateway will not call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The host is, or resolves to, an address outside the public Internet that the allow
    /// list does not name.
    #[error(
        "the upstream host `{host}` {} {address}, {} {class} address; the gateway calls such addresses only when --allow-upstream (TESSERA_ALLOW_UPSTREAMS) names them",
        if *.resolved { "resolves to" } else { "is" },
        class.article()
    )]
    Address {
        host: String,
        address: IpAddr,
        class: AddressClass,
        /// Whether `host` is a name that resolved to `address` (else an IP literal).
        resolved: bool,
    },
    /// The host is named by the allow list, but on other ports.
    #[error(
        "the upstream host `{host}` is allowed only on port {}, not {port} (--allow-upstream)",
        ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
    )]
    Port {
        host: String,
        port: u16,
        ports: Vec<u16>,
    },
}

/// The operator's list of non-public upstreams the gateway may call. Empty by default: then
/// only addresses of the public Internet are called.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<Entry>,
    /// `--allow-private-upstreams` (deprecated, unsafe): every address, any host.
    any_private: bool,
    /// Certificate authorities trusted beside the public ones, as a PEM bundle
    /// (`TESSERA_CA_FILE`): an on-premise vendor signed by the company's own CA.
    extra_roots: Option<Vec<u8>>,
}

/// A PEM bundle that holds no certificate, or one that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadRoots(String);

impl AllowList {
    /// Only public addresses.
    pub fn none() -> AllowList {
        AllowList::default()
    }

    /// Every address, and any host beyond a provider's allowed hosts: what the deprecated
    /// `--allow-private-upstreams` means. Unsafe: any environment key can then make the
    /// gateway call its own host and network (cloud metadata included). Tests only.
    pub fn any_private() -> AllowList {
        AllowList {
            entries: Vec::new(),
            any_private: true,
            extra_roots: None,
        }
    }

    pub fn new(entries: Vec<Entry>) -> AllowList {
        AllowList {
            entries,
            any_private: false,
            extra_roots: None,
        }
    }

    /// Parses entries (CLI values, or the comma-separated list of the environment
    /// variable): the first bad one is the error.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<AllowList, BadEntry> {
        let entries = entries
            .into_iter()
            .flat_map(|e| e.split(','))
            .filter(|e| !e.trim().is_empty())
            .map(str::parse)
            .collect::<Result<Vec<Entry>, _>>()?;
        Ok(AllowList::new(entries))
    }

    /// Trusts the certificate authorities of a PEM bundle too, on every upstream call
    /// (engine, token endpoints, outbound webhooks).
    pub fn with_extra_roots(mut self, pem: Vec<u8>) -> Result<AllowList, BadRoots> {
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| BadRoots(format!("the CA bundle does not parse: {e}")))?;
        if certs.is_empty() {
            return Err(BadRoots("the CA bundle holds no certificate".into()));
        }
        self.extra_roots = Some(pem);
        Ok(self)
    }

    /// The deprecated alias on top of these entries.
    pub fn with_any_private(mut self, yes: bool) -> AllowList {
        self.any_private |= yes;
        self
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn allows_any_private(&self) -> bool {
        self.any_private
    }

    /// Whether the allow list names `url`'s host (and port) as written, or contains it
    /// when it is an IP literal. A named upstream is the operator's: it may use a host
    /// outside the provider's allowed hosts, and plain http.
    pub fn names(&self, url: &Url) -> bool {
        if self.any_private {
            return true;
        }
        let port = url.port_or_known_default();
        match url.host() {
            Some(Host::Ipv4(ip)) => self.names_ip(IpAddr::V4(ip), port),
            Some(Host::Ipv6(ip)) => self.names_ip(IpAddr::V6(ip), port),
            Some(Host::Domain(d)) => self.host_entries(d).any(|p| p.is_none() || p == port),
            None => false,
        }
    }

    fn names_ip(&self, ip: IpAddr, port: Option<u16>) -> bool {
        self.entries.iter().any(|e| match e {
            Entry::Net(net) => net.contains(&ip),
            Entry::Host {
                host: HostName::Ip(h),
                port: p,
            } => *h == ip && (p.is_none() || *p == port),
            Entry::Host { .. } => false,
        })
    }

    /// The ports of the entries naming the domain `host` (`None`: any port).
    fn host_entries<'a>(&'a self, host: &'a str) -> impl Iterator<Item = Option<u16>> + 'a {
        let host = host.trim_end_matches('.');
        self.entries.iter().filter_map(move |e| match e {
            Entry::Host {
                host: HostName::Domain(d),
                port,
            } if d.eq_ignore_ascii_case(host) => Some(*port),
            _ => None,
        })
    }

    /// The check before a request leaves: an IP-literal host (which reqwest connects to
    /// without asking the resolver) must be public or named; a host named only on other
    /// ports is refused on this one. Names are checked again, on their addresses, by
    /// [`Resolver`].
    pub fn check_url(&self, url: &Url) -> Result<(), Refused> {
        if self.any_private {
            return Ok(());
        }
        let port = url.port_or_known_default();
        let ip = match url.host() {
            Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(Host::Domain(d)) => {
                let ports: Vec<Option<u16>> = self.host_entries(d).collect();
                if ports.is_empty() || ports.contains(&None) || ports.contains(&port) {
                    return Ok(());
                }
                return Err(Refused::Port {
                    host: d.to_string(),
                    port: port.unwrap_or_default(),
                    ports: ports.into_iter().flatten().collect(),
                });
            }
            None => return Ok(()),
        };
        match class_of(ip) {
            Some(class) if !self.names_ip(ip, port) => Err(Refused::Address {
                host: url.host_str().unwrap_or_default().to_string(),
                address: ip,
                class,
                resolved: false,
            }),
            _ => Ok(()),
        }
    }

    /// The addresses `host` resolved to that may be called: public ones, those in a CIDR
    /// entry, and all of them when an entry names `host`. None left is a refusal naming
    /// the first address refused.
    pub fn admit(&self, host: &str, addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, Refused> {
        if self.any_private || self.host_entries(host).next().is_some() {
            return Ok(addrs);
        }
        let mut refused = None;
        let admitted: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| match class_of(a.ip()) {
                None => true,
                Some(_) if self.in_net(a.ip()) => true,
                Some(class) => {
                    refused.get_or_insert((a.ip(), class));
                    false
                }
            })
            .collect();
        match (admitted.is_empty(), refused) {
            (true, Some((address, class))) => Err(Refused::Address {
                host: host.to_string(),
                address,
                class,
                resolved: true,
            }),
            _ => Ok(admitted),
        }
    }

    fn in_net(&self, ip: IpAddr) -> bool {
        self.entries
            .iter()
            .any(|e| matches!(e, Entry::Net(net) if net.contains(&ip)))
    }

    /// [`check_url`](Self::check_url), then the addresses the host resolves to now: for a
    /// refusal when an upstream is configured (connecting an account, adding an endpoint)
    /// rather than on its first call. A name that does not resolve is not refused here (the
    /// call will say why it fails); every call is checked again anyway.
    pub async fn check_resolved(&self, url: &Url) -> Result<(), Refused> {
        self.check_url(url)?;
        if self.any_private {
            return Ok(());
        }
        if let Some(Host::Domain(d)) = url.host()
            && let Ok(addrs) = lookup(d).await
        {
            self.admit(d, addrs)?;
        }
        Ok(())
    }
}

impl fmt::Display for AllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.any_private {
            return f.write_str("every address (--allow-private-upstreams)");
        }
        if self.entries.is_empty() {
            return f.write_str("public addresses only");
        }
        let entries: Vec<String> = self.entries.iter().map(Entry::to_string).collect();
        write!(f, "public addresses and {}", entries.join(", "))
    }
}

/// A host name that did not resolve.
#[derive(Debug, thiserror::Error)]
#[error("cannot resolve `{host}`")]
pub struct DnsFailure {
    pub host: String,
}

/// The system resolver (through tokio): every address of `host`, or [`DnsFailure`].
pub async fn lookup(host: &str) -> Result<Vec<SocketAddr>, DnsFailure> {
    let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((host, 0)).await {
        Ok(found) => found.collect(),
        Err(_) => Vec::new(),
    };
    if addrs.is_empty() {
        return Err(DnsFailure {
            host: host.to_owned(),
        });
    }
    Ok(addrs)
}

/// reqwest's name resolution for every outbound client: the system resolver, failing with
/// [`DnsFailure`] (reqwest's own reports an untyped I/O error), then [`AllowList::admit`],
/// failing with [`Refused`]. Both errors are in the request error's source chain.
#[derive(Debug, Clone, Default)]
pub struct Resolver {
    allow: Arc<AllowList>,
}

impl Resolver {
    pub fn new(allow: Arc<AllowList>) -> Resolver {
        Resolver { allow }
    }
}

impl Resolve for Resolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs = lookup(&host)
                .await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            let admitted = allow
                .admit(&host, addrs)
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            Ok(Box::new(admitted.into_iter()) as Addrs)
        })
    }
}

/// A client builder for calls the allow list governs: names resolved through [`Resolver`],
/// redirects never followed.
pub fn client(allow: &Arc<AllowList>) -> reqwest::ClientBuilder {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(Resolver::new(allow.clone())));
    // Checked when the list was made (`with_extra_roots`).
    let roots = allow
        .extra_roots
        .as_deref()
        .and_then(|pem| reqwest::Certificate::from_pem_bundle(pem).ok())
        .unwrap_or_default();
    for root in roots {
        builder = builder.add_root_certificate(root);
    }
    builder
}

/// The refusal in an error's source chain, if the resolver refused the address.
pub fn refusal<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let mut source = Some(err);
    while let Some(e) = source {
        if let Some(r) = e.downcast_ref::<Refused>() {
            return Some(r);
        }
        source = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowList {
        AllowList::parse(entries.iter().copied()).unwrap()
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn sock(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 0)
    }

    #[test]
    fn entries_parse_as_hosts_ports_and_cidr_blocks() {
        let host = |h: HostName, port| Entry::Host { host: h, port };
        let ip = |s: &str| HostName::Ip(s.parse().unwrap());
        for (text, want) in [
            ("127.0.0.1:4010", host(ip("127.0.0.1"), Some(4010))),
            ("10.0.0.7", host(ip("10.0.0.7"), None)),
            ("[::1]:8080", host(ip("::1"), Some(8080))),
            ("[fd00::1]", host(ip("fd00::1"), None)),
            ("fd00::1", host(ip("fd00::1"), None)),
            (
                "CRM.internal.:8443",
                host(HostName::Domain("crm.internal".into()), Some(8443)),
            ),
            (
                " localhost ",
                host(HostName::Domain("localhost".into()), None),
            ),
            ("10.0.0.0/8", Entry::Net("10.0.0.0/8".parse().unwrap())),
            ("10.1.2.3/8", Entry::Net("10.0.0.0/8".parse().unwrap())),
            ("fd00::/8", Entry::Net("fd00::/8".parse().unwrap())),
        ] {
            assert_eq!(text.parse::<Entry>().unwrap(), want, "{text}");
        }
        assert_eq!(
            "[::1]:8080".parse::<Entry>().unwrap().to_string(),
            "[::1]:8080"
        );
    }

    #[test]
    fn bad_entries_are_named_in_the_error() {
        for bad in [
            "",
            "http://127.0.0.1:4010",
            "127.0.0.1:0",
            "127.0.0.1:99999",
            "127.0.0.1:port",
            "10.0.0.0/33",
            "10.0.0/8",
            "fd00::/129",
            "[::1",
            "[::1]8080",
            "[127.0.0.1]:80",
            "::1:80:zz",
            "*.example.com",
            "exa_mple.com",
            "-bad.example",
            "127.1",
            "2130706433",
            "a:b:c",
        ] {
            let err = bad.parse::<Entry>().unwrap_err();
            assert_eq!(err.entry, bad);
            assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
        }
        let err = AllowList::parse(["127.0.0.1:4010", "nope:", "10.0.0.0/8"]).unwrap_err();
        assert_eq!(err.entry, "nope:");
        // The environment variable's comma-separated form; blanks are skipped.
        let l = AllowList::parse(["127.0.0.1:4010, 10.0.0.0/8,"]).unwrap();
        assert_eq!(l.entries().len(), 2);
    }

    #[test]
    fn address_classes() {
        for (ip, name) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("100.64.0.1", "shared (carrier-grade NAT)"),
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "unspecified"),
            ("192.0.0.170", "IETF protocol assignment"),
            ("198.18.0.1", "benchmarking"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "reserved"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fd00::1", "private (unique local)"),
            ("fc00::1", "private (unique local)"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
            ("::127.0.0.1", "reserved (IPv4-compatible)"),
            ("64:ff9b:1::1", "private (local-use NAT64)"),
        ] {
            let c = class_of(ip.parse().unwrap()).unwrap_or_else(|| panic!("{ip}"));
            assert_eq!((c.name, c.embedded), (name, None), "{ip}");
        }
        for (ip, name, how) in [
            ("::ffff:127.0.0.1", "loopback", "IPv4-mapped"),
            ("::ffff:169.254.169.254", "link-local", "IPv4-mapped"),
            ("::ffff:10.0.0.1", "private", "IPv4-mapped"),
            ("64:ff9b::a9fe:a9fe", "link-local", "NAT64"),
            ("2002:7f00:1::", "loopback", "6to4"),
        ] {
            let c = class_of(ip.parse().unwrap()).unwrap_or_else(|| panic!("{ip}"));
            assert_eq!((c.name, c.embedded), (name, Some(how)), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "169.255.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::",
        ] {
            assert_eq!(class_of(ip.parse().unwrap()), None, "{ip}");
        }
    }

    #[test]
    fn without_a_list_only_public_addresses_pass() {
        let none = AllowList::none();
        for u in [
            "http://169.254.169.254/latest/meta-data/",
            "http://127.0.0.1:4010/x",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://0/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://127.0.0.1./",
            "http://10.0.0.1/",
            "http://[fe80::1]/",
        ] {
            assert!(
                matches!(none.check_url(&url(u)), Err(Refused::Address { .. })),
                "{u}"
            );
            assert!(!none.names(&url(u)), "{u}");
        }
        assert!(none.check_url(&url("https://8.8.8.8/")).is_ok());
        assert!(none.check_url(&url("https://api.example.com/")).is_ok());
        let err = none
            .check_url(&url("http://169.254.169.254/latest"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the upstream host `169.254.169.254` is 169.254.169.254, a link-local address; the gateway calls such addresses only when --allow-upstream (TESSERA_ALLOW_UPSTREAMS) names them"
        );
        let err = none
            .admit("localhost", vec![sock("::1"), sock("127.0.0.1")])
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("the upstream host `localhost` resolves to ::1, a loopback address"),
            "{err}"
        );
        assert!(
            none.admit("api.example.com", vec![sock("93.184.215.14")])
                .is_ok()
        );
    }

    #[test]
    fn a_host_entry_names_the_host_as_written_and_its_port() {
        let l = list(&["127.0.0.1:4010", "crm.internal:8443", "localhost"]);
        assert!(l.check_url(&url("http://127.0.0.1:4010/x")).is_ok());
        assert!(l.names(&url("http://127.0.0.1:4010/x")));
        // Another port of the same address, or another spelling of it.
        for u in [
            "http://127.0.0.1:5432/",
            "http://127.0.0.1/",
            "http://[::ffff:127.0.0.1]:4010/",
            "http://127.0.0.2:4010/",
        ] {
            assert!(l.check_url(&url(u)).is_err(), "{u}");
            assert!(!l.names(&url(u)), "{u}");
        }
        // A named host: any address it resolves to, on its port only.
        assert!(l.names(&url("https://crm.internal:8443/")));
        assert!(l.check_url(&url("https://crm.internal:8443/")).is_ok());
        assert_eq!(
            l.check_url(&url("https://crm.internal/")),
            Err(Refused::Port {
                host: "crm.internal".into(),
                port: 443,
                ports: vec![8443]
            })
        );
        assert!(!l.names(&url("https://crm.internal/")));
        assert!(l.admit("crm.internal", vec![sock("10.1.2.3")]).is_ok());
        assert!(l.admit("localhost", vec![sock("127.0.0.1")]).is_ok());
        assert!(l.names(&url("http://LOCALHOST:1234/")));
        // The address entry does not name the names that resolve to it.
        assert!(l.admit("other.internal", vec![sock("127.0.0.1")]).is_err());
    }

    #[test]
    fn a_cidr_entry_names_the_addresses_in_it() {
        let l = list(&["10.0.0.0/8", "fd00::/8"]);
        assert!(l.check_url(&url("http://10.9.8.7:8080/")).is_ok());
        assert!(l.names(&url("http://10.9.8.7:8080/")));
        assert!(l.check_url(&url("http://[fd12::1]/")).is_ok());
        assert!(l.check_url(&url("http://127.0.0.1/")).is_err());
        // The IPv4 block does not contain the IPv4-mapped IPv6 form.
        assert!(l.check_url(&url("http://[::ffff:10.0.0.1]/")).is_err());
        // A name is admitted for its addresses in the block; the others are dropped.
        assert_eq!(
            l.admit("crm.internal", vec![sock("10.0.0.5"), sock("127.0.0.1")])
                .unwrap(),
            vec![sock("10.0.0.5")]
        );
        assert!(
            l.admit("crm.internal", vec![sock("169.254.169.254")])
                .is_err()
        );
        // A name outside the list is not named, whatever it resolves to.
        assert!(!l.names(&url("http://crm.internal/")));
    }

    #[test]
    fn the_deprecated_alias_allows_everything() {
        let l = AllowList::any_private();
        assert!(l.check_url(&url("http://169.254.169.254/")).is_ok());
        assert!(l.names(&url("http://anything.example/")));
        assert!(l.admit("localhost", vec![sock("127.0.0.1")]).is_ok());
        assert_eq!(
            AllowList::none().to_string(),
            "public addresses only".to_string()
        );
        assert_eq!(
            list(&["127.0.0.1:4010", "10.0.0.0/8"]).to_string(),
            "public addresses and 127.0.0.1:4010, 10.0.0.0/8"
        );
    }

    #[tokio::test]
    async fn the_resolver_refuses_what_the_list_does_not_name() {
        let strict = Resolver::new(Arc::new(AllowList::none()));
        let name: Name = "localhost".parse().unwrap();
        let err = match strict.resolve(name).await {
            Ok(_) => panic!("localhost was admitted"),
            Err(e) => e,
        };
        let refused = refusal(err.as_ref()).expect("a refusal");
        assert!(matches!(refused, Refused::Address { resolved: true, .. }));
        let named = Resolver::new(Arc::new(list(&["localhost"])));
        assert!(named.resolve("localhost".parse().unwrap()).await.is_ok());
    }
}
