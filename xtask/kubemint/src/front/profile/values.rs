//! Typed profile values: IP address, CIDR, port range, duration, absolute path, names.
//!
//! Each parser returns a message fit to follow "file: key: ", lowercase, no trailing period.

use serde::Serialize;
use std::fmt;
use std::net::IpAddr;

/// An IP network in CIDR notation whose host bits are zero, e.g. `10.254.0.0/22`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = s.split_once('/').ok_or_else(|| {
            format!("{s:?} is not a CIDR: expected ADDRESS/PREFIX, e.g. 10.254.0.0/22")
        })?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not a CIDR: {addr:?} is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("{s:?} is not a CIDR: prefix length must be 0..={max}"))?;
        let cidr = Cidr { addr, prefix };
        if cidr.network() != addr {
            return Err(format!(
                "{s:?} has host bits set: the network is {}/{prefix}",
                cidr.network()
            ));
        }
        Ok(cidr)
    }

    /// The address with every host bit cleared.
    pub fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
        }
    }

    /// Whether `ip` lies inside this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4()
            && Cidr {
                addr: ip,
                prefix: self.prefix,
            }
            .network()
                == self.addr
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An inclusive TCP/UDP port range, e.g. `8400-9400`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub fn parse(s: &str) -> Result<PortRange, String> {
        let bad = || {
            format!(
                "{s:?} is not a port range: expected FIRST-LAST within 1-65535, e.g. 30000-32767"
            )
        };
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let port = |p: &str| p.parse::<u16>().ok().filter(|p| *p > 0);
        let (first, last) = (port(a).ok_or_else(bad)?, port(b).ok_or_else(bad)?);
        if first > last {
            return Err(format!(
                "{s:?} is not a port range: {first} is above {last}"
            ));
        }
        Ok(PortRange { first, last })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

/// A duration in Go's `time.ParseDuration` syntax, as Kubernetes flags take it (`168h`, `1m30s`).
pub fn check_duration(s: &str) -> Result<(), String> {
    let bad = || {
        format!("{s:?} is not a duration: expected e.g. 10s, 1m30s, 168h (units ns us ms s m h)")
    };
    if s == "0" {
        return Ok(());
    }
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let number = &rest[..digits];
        if number.is_empty() || number.parse::<f64>().is_err() {
            return Err(bad());
        }
        rest = &rest[digits..];
        let unit = ["ns", "us", "µs", "ms", "s", "m", "h"]
            .iter()
            .filter(|u| rest.starts_with(**u))
            .max_by_key(|u| u.len())
            .ok_or_else(bad)?;
        rest = &rest[unit.len()..];
    }
    Ok(())
}

/// An absolute, normalized path: starts with `/`, no empty, `.` or `..` components, no
/// whitespace or control characters, no trailing slash.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct AbsPath(String);

impl AbsPath {
    pub fn parse(s: &str) -> Result<AbsPath, String> {
        if !s.starts_with('/') {
            return Err(format!("{s:?} is not an absolute path"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("{s:?} contains whitespace or a control character"));
        }
        if s != "/"
            && s[1..]
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(format!(
                "{s:?} is not normalized (empty, '.' or '..' component, or trailing '/')"
            ));
        }
        Ok(AbsPath(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this path is `dir` or lies below it.
    pub fn is_within(&self, dir: &str) -> bool {
        self.0 == dir
            || (self.0.starts_with(dir) && self.0.as_bytes().get(dir.len()) == Some(&b'/'))
    }
}

impl fmt::Display for AbsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A host name label (RFC 1123): lowercase letters, digits and '-', 1 to 63 characters.
pub fn check_hostname(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    ok.then_some(()).ok_or_else(|| {
        format!("{s:?} is not a host name: use 1-63 lowercase letters, digits and '-'")
    })
}

/// A system user name as sysusers.d accepts it.
pub fn check_user_name(s: &str) -> Result<(), String> {
    let mut bytes = s.bytes();
    let ok = matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && s.len() <= 31;
    ok.then_some(()).ok_or_else(|| {
        format!(
            "{s:?} is not a user name: start with a-z or '_', then a-z, 0-9, '_' or '-', at most 31"
        )
    })
}

/// An etcd client URL: `https://HOST:PORT` (or http), host an IP address or a DNS name.
pub fn check_endpoint(s: &str) -> Result<(), String> {
    let bad =
        |why: &str| format!("{s:?} is not an etcd endpoint: {why}, e.g. https://10.10.10.22:2379");
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .ok_or_else(|| bad("scheme must be https:// or http://"))?;
    let (host, port) = rest.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    port.parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| bad("bad port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.parse::<IpAddr>().is_err()
        && (host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
    {
        return Err(bad("bad host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr() {
        assert_eq!(
            Cidr::parse("10.254.0.0/22").unwrap().to_string(),
            "10.254.0.0/22"
        );
        assert!(
            Cidr::parse("10.254.0.1/22")
                .unwrap_err()
                .contains("host bits")
        );
        assert!(
            Cidr::parse("10.254.0.0/33")
                .unwrap_err()
                .contains("prefix length")
        );
        assert!(Cidr::parse("10.254.0.0").is_err());
        assert!(Cidr::parse("fd00::/64").is_ok());
        let c = Cidr::parse("10.254.0.0/22").unwrap();
        assert!(c.contains("10.254.3.255".parse().unwrap()));
        assert!(!c.contains("10.254.4.0".parse().unwrap()));
    }

    #[test]
    fn port_range() {
        assert_eq!(
            PortRange::parse("8400-9400").unwrap(),
            PortRange {
                first: 8400,
                last: 9400
            }
        );
        assert!(PortRange::parse("9400-8400").is_err());
        assert!(PortRange::parse("0-10").is_err());
        assert!(PortRange::parse("8400").is_err());
        assert!(PortRange::parse("1-65536").is_err());
    }

    #[test]
    fn durations() {
        for ok in ["168h", "10s", "1m30s", "1.5h", "0", "300ms"] {
            check_duration(ok).unwrap();
        }
        for bad in ["", "10", "h", "10x", "-1s", "1d"] {
            assert!(check_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_and_names() {
        assert!(AbsPath::parse("/etc/k8s/ssl").is_ok());
        for bad in ["etc", "/etc/", "/etc//x", "/etc/../x", "/a b", "/a\nb"] {
            assert!(AbsPath::parse(bad).is_err(), "{bad}");
        }
        assert!(AbsPath::parse("/opt/k8s").unwrap().is_within("/opt"));
        assert!(!AbsPath::parse("/optional").unwrap().is_within("/opt"));
        check_hostname("master-1").unwrap();
        assert!(check_hostname("Master_1").is_err());
        check_user_name("k8s").unwrap();
        assert!(check_user_name("1k8s").is_err());
        check_endpoint("https://10.10.10.22:2379").unwrap();
        check_endpoint("https://etcd-0.example:2379").unwrap();
        assert!(check_endpoint("10.10.10.22:2379").is_err());
        assert!(check_endpoint("https://10.10.10.22").is_err());
    }
}
