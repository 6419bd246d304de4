//! Address text as the cloud reports it, made comparable. Its own module because both the
//! load-balancer diff and the floating-IP steps need it, and neither should depend on the other.

/// Canonical text of an address (`::0001` and `::1` are the same member).
pub(crate) fn normalize_ip(s: &str) -> String {
    s.trim()
        .parse::<std::net::IpAddr>()
        .map(|ip| ip.to_string())
        .unwrap_or_else(|_| s.trim().to_string())
}
