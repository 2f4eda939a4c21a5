//! The SSRF guard for URLs that users give us (webhooks, `audio_url`):
//! https only by default, and every address the host resolves to must be
//! public. The caller connects to the addresses that were checked, never
//! resolving again, so a DNS answer that changes between the check and the
//! connection (rebinding) cannot reach an internal address. Operators can
//! allow internal receivers by network.
//!
//! [`Checked::client`] is the only way to build a client for such a URL: it
//! never uses a proxy (a proxy would resolve the name again, out of our
//! sight), so `HTTP(S)_PROXY`, `ALL_PROXY` and the like are ignored here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use url::{Host, Url};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    #[error("not a valid absolute URL: {0}")]
    Invalid(String),
    #[error("only https URLs are accepted")]
    Scheme,
    #[error("URLs with credentials are not accepted")]
    Credentials,
    #[error("the host does not resolve: {0}")]
    Unresolved(String),
    #[error(
        "the host resolves to {0}, a private, loopback, link-local or otherwise internal address"
    )]
    Internal(IpAddr),
}

/// How long a name may take to resolve; a resolver that never answers must
/// not hold a request (or a worker's job) open.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// What the operator allows beyond public https.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    /// Networks that may be reached although internal (e.g. a receiver in
    /// the same cluster).
    pub allow: Vec<IpNet>,
    /// Accept plain http too.
    pub allow_http: bool,
}

/// Networks allowed from configuration (comma-separated in the
/// environment).
#[derive(Debug, Clone, Default)]
pub struct AllowList(pub Vec<IpNet>);

pub fn parse_allow_list(value: &str) -> Result<AllowList, String> {
    Guard::parse_allow(value).map(AllowList)
}

impl AllowList {
    /// The guard for URLs checked against this list.
    pub fn guard(&self, allow_http: bool) -> Guard {
        Guard {
            allow: self.0.clone(),
            allow_http,
        }
    }
}

/// Where `audio_url` inputs may be fetched from; the API checks at submit,
/// the worker again when it fetches.
#[derive(Debug, Clone, clap::Args)]
pub struct FetchConfig {
    /// Internal networks `audio_url` may point at anyway (comma-separated
    /// CIDRs or addresses); everything internal is refused otherwise.
    #[arg(id = "fetch_allow", long = "fetch-allow", env = "VOXQ_FETCH_ALLOW", default_value = "", value_parser = parse_allow_list)]
    pub allow: AllowList,

    /// Accept plain-http `audio_url`s (https only by default).
    #[arg(id = "fetch_allow_http", long = "fetch-allow-http", env = "VOXQ_FETCH_ALLOW_HTTP", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_http: bool,
}

impl FetchConfig {
    pub fn guard(&self) -> Guard {
        self.allow.guard(self.allow_http)
    }
}

/// A URL that passed, with the addresses to connect to.
#[derive(Debug, Clone)]
pub struct Checked {
    pub url: Url,
    /// The host as the URL names it (for TLS and the `Host` header).
    pub host: String,
    pub addrs: Vec<SocketAddr>,
}

impl Guard {
    /// Parses a comma-separated list of networks (`10.0.0.0/8`) or
    /// addresses (`127.0.0.1`).
    pub fn parse_allow(value: &str) -> Result<Vec<IpNet>, String> {
        value
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse::<IpNet>()
                    .or_else(|_| v.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("not a network or address: {v:?}"))
            })
            .collect()
    }

    fn allowed(&self, ip: IpAddr) -> bool {
        !is_internal(ip) || self.allow.iter().any(|net| net.contains(&ip))
    }

    /// Checks the URL's form only (scheme, credentials, literal addresses);
    /// [`Self::resolve`] checks where it leads.
    pub fn parse(&self, raw: &str) -> Result<Url, Refused> {
        // The WHATWG parser turns `0x7f000001`, `2130706433` and `127.1`
        // into 127.0.0.1, so no spelling of an address slips through.
        let url = Url::parse(raw).map_err(|e| Refused::Invalid(e.to_string()))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            _ => return Err(Refused::Scheme),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refused::Credentials);
        }
        match url.host() {
            Some(Host::Ipv4(ip)) if !self.allowed(IpAddr::V4(ip)) => {
                Err(Refused::Internal(IpAddr::V4(ip)))
            }
            Some(Host::Ipv6(ip)) if !self.allowed(IpAddr::V6(ip)) => {
                Err(Refused::Internal(IpAddr::V6(ip)))
            }
            Some(_) => Ok(url),
            None => Err(Refused::Invalid("no host".into())),
        }
    }

    /// Parses, resolves, and checks every address the host resolves to.
    pub async fn resolve(&self, raw: &str) -> Result<Checked, Refused> {
        let url = self.parse(raw)?;
        let port = url
            .port_or_known_default()
            .ok_or_else(|| Refused::Invalid("no port".into()))?;
        let host = match url.host() {
            Some(Host::Domain(d)) => d.to_owned(),
            Some(Host::Ipv4(ip)) => ip.to_string(),
            Some(Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(Refused::Invalid("no host".into())),
        };
        let addrs: Vec<SocketAddr> = match url.host() {
            Some(Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
            Some(Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
            _ => tokio::time::timeout(
                LOOKUP_TIMEOUT,
                tokio::net::lookup_host((host.as_str(), port)),
            )
            .await
            .map_err(|_| Refused::Unresolved("the lookup timed out".into()))?
            .map_err(|e| Refused::Unresolved(e.to_string()))?
            .collect(),
        };
        if addrs.is_empty() {
            return Err(Refused::Unresolved("no addresses".into()));
        }
        // Every address: a client may use any of them.
        if let Some(bad) = addrs.iter().find(|a| !self.allowed(a.ip())) {
            return Err(Refused::Internal(bad.ip()));
        }
        Ok(Checked { url, host, addrs })
    }
}

impl Checked {
    /// A client that connects only to the checked addresses: no proxy, no
    /// redirects, `timeout` for the whole exchange.
    pub fn client(&self, timeout: Duration, user_agent: &str) -> reqwest::Result<reqwest::Client> {
        reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .resolve_to_addrs(&self.host, &self.addrs)
            .user_agent(user_agent)
            .build()
    }
}

/// Whether `ip` is anything but a public unicast address: private,
/// loopback, link-local (cloud metadata included), CGNAT, multicast,
/// unspecified, reserved, documentation, unique-local, and IPv6 forms that
/// embed such an IPv4 address.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => internal_v6(v6),
    }
}

fn internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0 // "this network", 0.0.0.0 included
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

fn internal_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        return internal_v4(v4);
    }
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local fc00::/7 (fd00:ec2::254 too)
        || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
        || (first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
        || (first == 0x2001 && ip.segments()[1] == 0) // Teredo 2001::/32: embeds an obfuscated IPv4
        || (first == 0x0064 && ip.segments()[1] == 0xff9b && ip.segments()[2] == 1) // local NAT64 64:ff9b:1::/48
        || (first == 0x0100 && ip.segments()[1..4] == [0, 0, 0]) // discard 100::/64
}

/// The IPv4 address inside IPv4-mapped (`::ffff:a.b.c.d`), IPv4-translated
/// (`::ffff:0:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), NAT64
/// (`64:ff9b::/96`) and 6to4 (`2002::/16`) addresses. (Local-use NAT64,
/// `64:ff9b:1::/48`, may place the IPv4 address anywhere; it is refused
/// whole.)
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    if s[..6] == [0, 0, 0, 0, 0xffff, 0] {
        return Some(tail());
    }
    if s[..6] == [0, 0, 0, 0, 0, 0] && !ip.is_loopback() && !ip.is_unspecified() {
        return Some(tail());
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return Some(tail());
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> Guard {
        Guard {
            allow: Vec::new(),
            allow_http: true,
        }
    }

    #[test]
    fn every_spelling_of_an_internal_address_is_refused() {
        let guard = strict();
        for url in [
            "http://127.0.0.1/",
            "http://10.1.2.3/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://0x7f000001/",
            "http://2130706433/",
            "http://127.1/",
            "http://0.0.0.0/",
            "http://100.64.0.1/",
            "http://192.168.1.1/",
            "http://172.16.0.1/",
            "http://[fd00:ec2::254]/",
            "http://[fe80::1]/",
            "http://[64:ff9b::7f00:1]/",
            "http://[64:ff9b:1::0808:0808]/",
            "http://[64:ff9b:1:7f00:1::]/",
            "http://[::ffff:0:7f00:1]/",
            "http://[::ffff:0:a00:1]/",
            "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
            "http://[2002:7f00:1::]/",
            "http://224.0.0.1/",
        ] {
            assert!(
                matches!(guard.parse(url), Err(Refused::Internal(_))),
                "{url}: {:?}",
                guard.parse(url)
            );
        }
    }

    #[test]
    fn public_addresses_pass_and_form_rules_hold() {
        let guard = strict();
        assert!(guard.parse("http://93.184.215.14/hook").is_ok());
        assert!(guard.parse("https://[2606:4700::1]/").is_ok());
        let https_only = Guard::default();
        assert_eq!(
            https_only
                .parse("http://93.184.215.14/")
                .expect_err("refused"),
            Refused::Scheme
        );
        assert_eq!(
            guard
                .parse("https://user:pw@example.com/")
                .expect_err("refused"),
            Refused::Credentials
        );
        assert_eq!(
            guard.parse("ftp://example.com/").expect_err("refused"),
            Refused::Scheme
        );
        assert!(matches!(guard.parse("not a url"), Err(Refused::Invalid(_))));
    }

    #[test]
    fn the_allow_list_opens_exactly_its_networks() {
        let guard = Guard {
            allow: Guard::parse_allow("127.0.0.1, 10.0.0.0/8").expect("valid"),
            allow_http: true,
        };
        assert!(guard.parse("http://127.0.0.1:8080/").is_ok());
        assert!(guard.parse("http://10.9.9.9/").is_ok());
        assert!(guard.parse("http://127.0.0.2/").is_err());
        assert!(guard.parse("http://[::1]/").is_err());
        assert!(Guard::parse_allow("nonsense").is_err());
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused() {
        let guard = Guard {
            allow: Guard::parse_allow("127.0.0.1").expect("valid"),
            allow_http: true,
        };
        // localhost resolves to 127.0.0.1 and often ::1 as well; with only
        // 127.0.0.1 allowed, a strict guard must refuse it either way.
        assert!(matches!(
            strict().resolve("http://localhost/").await,
            Err(Refused::Internal(_))
        ));
        let checked = guard
            .resolve("http://127.0.0.1:9/x")
            .await
            .expect("allowed");
        assert_eq!(checked.addrs, vec!["127.0.0.1:9".parse().expect("addr")]);
    }
}
