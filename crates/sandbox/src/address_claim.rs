//! Floating addresses shared by every sandbox on the machine. Floating ranges are loopback
//! addresses that any sandbox (another demo, another test run, another checkout) may also
//! use, and a data plane can only serve an address nobody else listens on. So before a
//! floating IP is handed out, its address is (1) skipped when any socket in this network
//! namespace already listens on it, and (2) claimed with an abstract Unix socket named after
//! it, held while the floating IP exists: a second sandbox that allocated the same address
//! before either data plane listened would otherwise get it too. Abstract sockets need no
//! file, vanish with the process (even on SIGKILL) and are scoped to the network namespace,
//! exactly like the loopback addresses they protect. Must not know Neutron objects.

use std::collections::HashSet;
use std::net::IpAddr;

/// Proof that this process holds an address; dropping it releases the address.
#[derive(Debug)]
pub struct AddressClaim {
    /// None where no claim could be taken (not Linux, or AF_UNIX unavailable): the listen
    /// check is then the only protection.
    #[cfg(target_os = "linux")]
    _socket: Option<std::os::unix::net::UnixListener>,
}

impl AddressClaim {
    fn unclaimed() -> Self {
        AddressClaim {
            #[cfg(target_os = "linux")]
            _socket: None,
        }
    }
}

/// The abstract socket name for `ip`, the same in every sandbox version that claims.
pub fn claim_name(ip: IpAddr) -> String {
    format!("openstack-lb-controller/sandbox/floating-ip/{ip}")
}

/// Claims `ip` for this process; None when another process (or another sandbox of this
/// process) holds it.
#[cfg(target_os = "linux")]
pub fn claim(ip: IpAddr) -> Option<AddressClaim> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixListener};
    let addr = match SocketAddr::from_abstract_name(claim_name(ip).as_bytes()) {
        Ok(a) => a,
        Err(err) => {
            tracing::warn!(%ip, %err, "cannot form the claim name of a floating address");
            return Some(AddressClaim::unclaimed());
        }
    };
    match UnixListener::bind_addr(&addr) {
        Ok(socket) => Some(AddressClaim {
            _socket: Some(socket),
        }),
        Err(err) if err.kind() == std::io::ErrorKind::AddrInUse => None,
        Err(err) => {
            // e.g. a seccomp policy without AF_UNIX: the listen check still protects.
            tracing::warn!(%ip, %err, "cannot claim a floating address; relying on the listen check");
            Some(AddressClaim::unclaimed())
        }
    }
}

/// Other systems have no abstract sockets: only the listen check protects there.
#[cfg(not(target_os = "linux"))]
pub fn claim(_ip: IpAddr) -> Option<AddressClaim> {
    Some(AddressClaim::unclaimed())
}

/// Local IPv4 addresses some socket of this network namespace listens on (TCP LISTEN, or
/// any bound UDP socket), from /proc/net/{tcp,udp}. Empty where /proc is not available.
pub fn listened_addresses() -> HashSet<IpAddr> {
    let mut out = HashSet::new();
    for (file, listen_only) in [("/proc/net/tcp", true), ("/proc/net/udp", false)] {
        if let Ok(text) = std::fs::read_to_string(file) {
            out.extend(parse_proc_net(&text, listen_only));
        }
    }
    out
}

/// TCP state 0A is LISTEN; UDP sockets have no listen state, every bound one counts.
fn parse_proc_net(text: &str, listen_only: bool) -> Vec<IpAddr> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut cols = line.split_whitespace();
            let local = cols.nth(1)?;
            let state = cols.nth(1)?;
            if listen_only && state != "0A" {
                return None;
            }
            let (hex, _port) = local.split_once(':')?;
            let raw = u32::from_str_radix(hex, 16).ok()?;
            // The kernel prints the network-order address as a host-order integer.
            Some(IpAddr::from(raw.to_ne_bytes()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_lines_give_listening_addresses() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0300C87F:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n\
   1: 0100007F:9C40 0100007F:0050 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0\n";
        let want: IpAddr = if cfg!(target_endian = "little") {
            "127.200.0.3".parse().unwrap()
        } else {
            "3.0.200.127".parse().unwrap()
        };
        assert_eq!(parse_proc_net(text, true), vec![want]);
        assert_eq!(parse_proc_net(text, false).len(), 2);
    }

    #[test]
    fn a_listening_socket_is_seen() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        if std::path::Path::new("/proc/net/tcp").exists() {
            assert!(listened_addresses().contains(&l.local_addr().unwrap().ip()));
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_claim_is_exclusive_until_dropped() {
        // A documentation address: no sandbox ever allocates it.
        let ip: IpAddr = "192.0.2.77".parse().unwrap();
        let first = claim(ip).expect("free");
        assert!(claim(ip).is_none(), "held by the first claim");
        drop(first);
        assert!(claim(ip).is_some(), "released on drop");
    }
}
