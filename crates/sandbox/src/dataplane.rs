//! The loopback data plane: every serving listener of a load balancer whose VIP port has a
//! floating IP listens on floating_ip:protocol_port (TCP, or UDP for UDP listeners) and
//! forwards round robin to the members that may take traffic; health monitors really probe
//! members and feed their operating_status. A reconciler task compares what runs with what
//! the world asks for whenever `sync` is called. It must not know HTTP API shapes: it reads
//! the load-balancer models through their plain accessors.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::octavia::model::{Health, Obj, ACTIVE, NO_MONITOR, ONLINE, PENDING_UPDATE};
use crate::octavia::{codes, net, Kind};
use crate::state::{Shared, World};

/// Where a front end sends its traffic.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PoolRef {
    /// An Octavia / LBaaS v2 listener (stats are kept per listener) and its default pool.
    Octavia {
        listener_id: String,
        pool_id: String,
    },
    /// An LBaaS v1 VIP's pool.
    V1 { pool_id: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Tcp,
    Udp,
}

/// One front end: address, transport and target.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FrontEnd {
    pub addr: SocketAddr,
    pub transport: Transport,
    pub target: PoolRef,
}

/// What a health monitor does; a change restarts its task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonitorSpec {
    pub kind: String,
    pub delay: Duration,
    pub timeout: Duration,
    pub rise: u32,
    pub fall: u32,
    pub http_method: String,
    pub url_path: String,
    pub expected_codes: String,
    pub domain_name: Option<String>,
    /// Octavia: the pool; v1: the pool the monitor is associated with.
    pub pool: MonitorPool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MonitorPool {
    Octavia(String),
    V1(String),
}

/// A member as a probe sees it.
#[derive(Clone, Debug)]
pub struct ProbeTarget {
    pub member_id: String,
    pub addr: SocketAddr,
}

/// A member a front end may forward to.
#[derive(Clone, Debug)]
pub struct Backend {
    pub addr: SocketAddr,
    /// PROXY protocol version to speak first (1 or 2).
    pub proxy: Option<u8>,
    /// Headers an HTTP listener inserts into the request (`insert_headers`), e.g.
    /// X-Forwarded-For; empty for plain TCP forwarding.
    pub insert_headers: Vec<String>,
}

struct Running {
    token: CancellationToken,
}

#[derive(Default)]
struct Inner {
    front_ends: HashMap<FrontEnd, Running>,
    monitors: HashMap<String, (MonitorSpec, Running)>,
}

/// Running forwarders and probes; lives in `Shared`.
#[derive(Default)]
pub struct DataPlane {
    inner: parking_lot::Mutex<Inner>,
    /// Shared with the reconciler, which must not keep `Shared` alive while it waits.
    kick: Arc<Notify>,
    started: AtomicBool,
}

impl std::fmt::Debug for DataPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.lock();
        f.debug_struct("DataPlane")
            .field("front_ends", &inner.front_ends.len())
            .field("monitors", &inner.monitors.len())
            .finish()
    }
}

impl DataPlane {
    pub fn new() -> Self {
        Self::default()
    }

    /// The addresses currently served (for tests and the admin API).
    pub fn front_ends(&self) -> Vec<FrontEnd> {
        self.inner.lock().front_ends.keys().cloned().collect()
    }
}

impl Drop for DataPlane {
    fn drop(&mut self) {
        let inner = self.inner.get_mut();
        for r in inner.front_ends.values() {
            r.token.cancel();
        }
        for (_, r) in inner.monitors.values() {
            r.token.cancel();
        }
    }
}

/// Re-reads the world and starts/stops forwarders and probes to match it. Cheap and safe to
/// call from anywhere, even while holding the world lock: the work happens in a task.
pub fn sync(shared: &Arc<Shared>) {
    if tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    if !shared.dataplane.started.swap(true, Ordering::SeqCst) {
        let weak = Arc::downgrade(shared);
        let token = shared.shutdown.clone();
        tokio::spawn(reconciler(weak, shared.dataplane.kick.clone(), token));
    }
    shared.dataplane.kick.notify_one();
}

async fn reconciler(weak: Weak<Shared>, kick: Arc<Notify>, token: CancellationToken) {
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            _ = kick.notified() => {}
        }
        let Some(shared) = weak.upgrade() else { return };
        reconcile(&shared).await;
    }
    if let Some(shared) = weak.upgrade() {
        stop_all(&shared);
    }
}

fn stop_all(shared: &Shared) {
    let mut inner = shared.dataplane.inner.lock();
    for (_, r) in inner.front_ends.drain() {
        r.token.cancel();
    }
    for (_, (_, r)) in inner.monitors.drain() {
        r.token.cancel();
    }
}

fn serving(o: &Obj) -> bool {
    matches!(o.provisioning(), ACTIVE | PENDING_UPDATE) && o.admin_up()
}

fn int(o: &Obj, key: &str) -> i64 {
    o.attrs.get(key).and_then(Value::as_i64).unwrap_or_default()
}

/// Front ends and monitors the world asks for now.
fn desired(world: &World) -> (Vec<FrontEnd>, Vec<(String, MonitorSpec)>) {
    let mut fronts = Vec::new();
    let mut monitors = Vec::new();
    let oct = &world.octavia;
    for lb in oct
        .all(Kind::LoadBalancer)
        .into_iter()
        .filter(|lb| serving(lb))
    {
        let Some(fip) = lb
            .str("vip_port_id")
            .and_then(|p| net::floating_ip_of_port(&world.neutron, p))
        else {
            continue;
        };
        for l in oct.listeners_of(&lb.id).into_iter().filter(|l| serving(l)) {
            let Some(pool_id) = l.str("default_pool_id") else {
                continue;
            };
            let transport = match l.str("protocol") {
                Some("UDP") => Transport::Udp,
                // SCTP has no portable user-space socket; it is not forwarded.
                Some("SCTP") => continue,
                _ => Transport::Tcp,
            };
            let Ok(port) = u16::try_from(int(l, "protocol_port")) else {
                continue;
            };
            fronts.push(FrontEnd {
                addr: SocketAddr::new(IpAddr::V4(fip), port),
                transport,
                target: PoolRef::Octavia {
                    listener_id: l.id.clone(),
                    pool_id: pool_id.to_string(),
                },
            });
        }
    }
    for hm in oct
        .all(Kind::HealthMonitor)
        .into_iter()
        .filter(|h| serving(h))
    {
        let Some(pool_id) = hm.pool_id.clone() else {
            continue;
        };
        let text = |k: &str, d: &str| hm.str(k).unwrap_or(d).to_string();
        monitors.push((
            hm.id.clone(),
            MonitorSpec {
                kind: text("type", "TCP"),
                delay: Duration::from_secs(u64::try_from(int(hm, "delay")).unwrap_or(1)),
                timeout: Duration::from_secs(u64::try_from(int(hm, "timeout")).unwrap_or(1)),
                rise: u32::try_from(int(hm, "max_retries")).unwrap_or(1).max(1),
                fall: u32::try_from(int(hm, "max_retries_down"))
                    .unwrap_or(3)
                    .max(1),
                http_method: text("http_method", "GET"),
                url_path: text("url_path", "/"),
                expected_codes: text("expected_codes", "200"),
                domain_name: hm.str("domain_name").map(str::to_string),
                pool: MonitorPool::Octavia(pool_id),
            },
        ));
    }
    let (v1_fronts, v1_monitors) = world.lbaas_v1.dataplane_wants(&world.neutron);
    fronts.extend(v1_fronts);
    monitors.extend(v1_monitors);
    (fronts, monitors)
}

async fn reconcile(shared: &Arc<Shared>) {
    let (fronts, monitors) = desired(&shared.world.lock());
    let mut to_start = Vec::new();
    let mut monitors_to_start = Vec::new();
    {
        let mut inner = shared.dataplane.inner.lock();
        inner.front_ends.retain(|fe, r| {
            let keep = fronts.contains(fe);
            if !keep {
                r.token.cancel();
            }
            keep
        });
        for fe in fronts {
            if !inner.front_ends.contains_key(&fe) {
                to_start.push(fe);
            }
        }
        inner.monitors.retain(|id, (spec, r)| {
            let keep = monitors.iter().any(|(mid, s)| mid == id && s == spec);
            if !keep {
                r.token.cancel();
            }
            keep
        });
        for (id, spec) in monitors {
            if !inner.monitors.contains_key(&id) {
                monitors_to_start.push((id, spec));
            }
        }
    }
    for fe in to_start {
        // A front end being replaced (same address, new target) must release its socket
        // before the new one binds; a short bounded retry covers the hand-over.
        let token = shared.shutdown.child_token();
        let started = match fe.transport {
            Transport::Tcp => bind_tcp(fe.addr).await.map(|l| {
                tokio::spawn(serve_tcp(
                    Arc::downgrade(shared),
                    l,
                    fe.clone(),
                    token.clone(),
                ));
            }),
            Transport::Udp => bind_udp(fe.addr).await.map(|s| {
                tokio::spawn(serve_udp(
                    Arc::downgrade(shared),
                    s,
                    fe.clone(),
                    token.clone(),
                ));
            }),
        };
        match started {
            Ok(()) => {
                shared
                    .dataplane
                    .inner
                    .lock()
                    .front_ends
                    .insert(fe, Running { token });
            }
            Err(err) => tracing::warn!(addr = %fe.addr, %err, "data plane cannot listen"),
        }
    }
    for (id, spec) in monitors_to_start {
        let token = shared.shutdown.child_token();
        tokio::spawn(run_monitor(
            Arc::downgrade(shared),
            id.clone(),
            spec.clone(),
            token.clone(),
        ));
        shared
            .dataplane
            .inner
            .lock()
            .monitors
            .insert(id, (spec, Running { token }));
    }
}

async fn bind_tcp(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let mut last = None;
    for _ in 0..20 {
        match TcpListener::bind(addr).await {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("bind failed")))
}

async fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let mut last = None;
    for _ in 0..20 {
        match UdpSocket::bind(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("bind failed")))
}

/// Candidate backends for a client, best first: round robin, or a hash of the client for
/// SOURCE_IP / SOURCE_IP_PORT pools and SOURCE_IP session persistence. Empty when the
/// listener's allowed_cidrs do not admit the client.
fn pick(shared: &Shared, target: &PoolRef, peer: SocketAddr) -> Vec<Backend> {
    let mut world = shared.world.lock();
    match target {
        PoolRef::Octavia {
            pool_id,
            listener_id,
        } => {
            let oct = &world.octavia;
            let Some(listener) = oct.get(listener_id).filter(|l| admits(l, peer.ip())) else {
                return Vec::new();
            };
            let insert_headers = http_headers(listener, peer);
            let Some(pool) = oct.get(pool_id) else {
                return Vec::new();
            };
            if !pool.admin_up() {
                return Vec::new();
            }
            let proxy = match pool.str("protocol") {
                Some("PROXY") => Some(1),
                Some("PROXYV2") => Some(2),
                _ => None,
            };
            let persistence = pool
                .attrs
                .get("session_persistence")
                .and_then(|p| p.get("type"))
                .and_then(Value::as_str);
            // An amphora has no SOURCE_IP_PORT: its haproxy template falls back to round
            // robin, which is what a fully-populated create (never refused) gets there.
            let amphora = oct.get(&pool.lb_id).is_some_and(|lb| {
                matches!(
                    lb.str("provider"),
                    None | Some("amphora" | "octavia" | "amphorav2")
                )
            });
            let sticky = match (pool.str("lb_algorithm"), persistence) {
                (Some("SOURCE_IP_PORT"), _) if !amphora => Some(hash(&peer)),
                (Some("SOURCE_IP"), _) | (_, Some("SOURCE_IP")) => Some(hash(&peer.ip())),
                _ => None,
            };
            let eligible: Vec<&Obj> = oct
                .members_of(pool_id)
                .into_iter()
                .filter(|m| {
                    m.admin_up()
                        && matches!(m.str("operating_status"), Some(ONLINE) | Some(NO_MONITOR))
                })
                .filter(|m| int(m, "weight") > 0)
                .collect();
            // Backup members take traffic only when no regular member can.
            let is_backup = |m: &Obj| m.attrs.get("backup").and_then(Value::as_bool) == Some(true);
            let has_regular = eligible.iter().any(|m| !is_backup(m));
            let weighted: Vec<(Backend, u64)> = eligible
                .into_iter()
                .filter(|m| !has_regular || !is_backup(m))
                .filter_map(|m| {
                    let ip: IpAddr = m.str("address")?.parse().ok()?;
                    let port = u16::try_from(int(m, "protocol_port")).ok()?;
                    let backend = Backend {
                        addr: SocketAddr::new(ip, port),
                        proxy,
                        insert_headers: insert_headers.clone(),
                    };
                    Some((backend, u64::try_from(int(m, "weight")).unwrap_or(1)))
                })
                .collect();
            match sticky {
                Some(h) if !weighted.is_empty() => {
                    let mut members: Vec<Backend> = weighted.into_iter().map(|(b, _)| b).collect();
                    let start = usize::try_from(h % members.len() as u64).unwrap_or(0);
                    members.rotate_left(start);
                    members
                }
                _ => {
                    let cursor = world.octavia.cursors.entry(pool_id.clone()).or_default();
                    dedup(rotate(cursor, expand(weighted)))
                }
            }
        }
        PoolRef::V1 { pool_id } => {
            let members = world.lbaas_v1.backends(pool_id);
            rotate(
                world.lbaas_v1.cursors.entry(pool_id.clone()).or_default(),
                members,
            )
        }
    }
}

/// The request headers an HTTP listener adds, from its `insert_headers` switches.
fn http_headers(listener: &Obj, peer: SocketAddr) -> Vec<String> {
    if !matches!(
        listener.str("protocol"),
        Some("HTTP") | Some("TERMINATED_HTTPS")
    ) {
        return Vec::new();
    }
    let on = |key: &str| {
        listener
            .attrs
            .get("insert_headers")
            .and_then(|h| h.get(key))
            .and_then(Value::as_str)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    };
    let mut out = Vec::new();
    if on("X-Forwarded-For") {
        out.push(format!("X-Forwarded-For: {}", peer.ip()));
    }
    if on("X-Forwarded-Port") {
        out.push(format!(
            "X-Forwarded-Port: {}",
            int(listener, "protocol_port")
        ));
    }
    if on("X-Forwarded-Proto") {
        let proto = if listener.str("protocol") == Some("HTTP") {
            "http"
        } else {
            "https"
        };
        out.push(format!("X-Forwarded-Proto: {proto}"));
    }
    out
}

/// Whether the listener's allowed_cidrs (none = everyone) admit `ip`.
fn admits(listener: &Obj, ip: IpAddr) -> bool {
    match listener
        .attrs
        .get("allowed_cidrs")
        .and_then(Value::as_array)
    {
        Some(cidrs) if !cidrs.is_empty() => cidrs
            .iter()
            .filter_map(Value::as_str)
            .filter_map(|c| c.parse::<ipnet::IpNet>().ok())
            .any(|net| net.contains(&ip)),
        _ => true,
    }
}

/// A stable hash (SipHash with fixed keys) so a client keeps its member across connections.
fn hash(value: &impl std::hash::Hash) -> u64 {
    use std::hash::Hasher;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// Repeats each backend in proportion to its weight (reduced by the weights' gcd, so equal
/// weights give plain round robin).
fn expand(weighted: Vec<(Backend, u64)>) -> Vec<Backend> {
    fn gcd(a: u64, b: u64) -> u64 {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    let g = weighted.iter().fold(0, |g, (_, w)| gcd(g, *w)).max(1);
    weighted
        .into_iter()
        .flat_map(|(b, w)| std::iter::repeat_n(b, usize::try_from(w / g).unwrap_or(1)))
        .collect()
}

/// Keeps the first occurrence of each backend: the fallback order after the chosen one.
fn dedup(backends: Vec<Backend>) -> Vec<Backend> {
    let mut seen = std::collections::HashSet::new();
    backends
        .into_iter()
        .filter(|b| seen.insert(b.addr))
        .collect()
}

fn rotate(cursor: &mut usize, mut members: Vec<Backend>) -> Vec<Backend> {
    if members.is_empty() {
        return members;
    }
    let start = *cursor % members.len();
    *cursor = cursor.wrapping_add(1);
    members.rotate_left(start);
    members
}

fn with_stats(
    shared: &Shared,
    target: &PoolRef,
    f: impl FnOnce(&mut crate::octavia::model::Stats),
) {
    if let PoolRef::Octavia { listener_id, .. } = target {
        let mut world = shared.world.lock();
        f(world.octavia.stats.entry(listener_id.clone()).or_default());
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

async fn serve_tcp(
    weak: Weak<Shared>,
    listener: TcpListener,
    fe: FrontEnd,
    token: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = token.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((client, peer)) = accepted else {
            continue;
        };
        let Some(shared) = weak.upgrade() else { return };
        let backends = pick(&shared, &fe.target, peer);
        with_stats(&shared, &fe.target, |s| {
            s.total_connections += 1;
            s.active_connections += 1;
        });
        drop(shared);
        let weak = weak.clone();
        let token = token.clone();
        let fe = fe.clone();
        tokio::spawn(async move {
            let (bytes_in, bytes_out, ok) = tokio::select! {
                _ = token.cancelled() => (0, 0, true),
                r = forward_tcp(client, peer, fe.addr, backends) => r,
            };
            if let Some(shared) = weak.upgrade() {
                with_stats(&shared, &fe.target, |s| {
                    s.active_connections = s.active_connections.saturating_sub(1);
                    s.bytes_in += bytes_in;
                    s.bytes_out += bytes_out;
                    if !ok {
                        s.request_errors += 1;
                    }
                });
            }
        });
    }
}

/// Connects to the first backend that answers and splices the two streams.
async fn forward_tcp(
    mut client: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    backends: Vec<Backend>,
) -> (u64, u64, bool) {
    // HTTP listeners that insert headers rewrite the first request's head (later requests on a
    // kept-alive connection pass unchanged: enough for tests that check the header).
    let mut head = Vec::new();
    if backends
        .first()
        .is_some_and(|b| !b.insert_headers.is_empty())
    {
        head = read_head(&mut client).await;
        if let Some(b) = backends.first() {
            head = insert_headers(&head, &b.insert_headers);
        }
    }
    for b in backends {
        let Ok(Ok(mut upstream)) =
            tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(b.addr)).await
        else {
            continue;
        };
        if let Some(v) = b.proxy {
            let header = proxy_header(v, peer, local);
            if upstream.write_all(&header).await.is_err() {
                continue;
            }
        }
        if !head.is_empty() && upstream.write_all(&head).await.is_err() {
            continue;
        }
        let sent = head.len() as u64;
        return match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            Ok((a, b)) => (a + sent, b, true),
            Err(_) => (sent, 0, true),
        };
    }
    (0, 0, false)
}

/// Reads up to the end of an HTTP request head (bounded in size and time).
async fn read_head(client: &mut TcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while head.len() < 65_536 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout(Duration::from_secs(10), client.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => head.extend_from_slice(buf.get(..n).unwrap_or_default()),
            _ => break,
        }
    }
    head
}

/// Adds header lines right after the request line.
fn insert_headers(head: &[u8], headers: &[String]) -> Vec<u8> {
    let Some(eol) = head.windows(2).position(|w| w == b"\r\n") else {
        return head.to_vec();
    };
    let (first, rest) = head.split_at(eol + 2);
    let mut out = first.to_vec();
    for h in headers {
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(rest);
    out
}

/// A PROXY protocol header (v1 text or v2 binary) describing the client connection.
pub fn proxy_header(version: u8, src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    if version == 1 {
        let fam = if src.is_ipv4() { "TCP4" } else { "TCP6" };
        return format!(
            "PROXY {fam} {} {} {} {}\r\n",
            src.ip(),
            dst.ip(),
            src.port(),
            dst.port()
        )
        .into_bytes();
    }
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(0x21); // version 2, PROXY command
    match (src, dst) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            h.push(0x11); // TCP over IPv4
            h.extend_from_slice(&12u16.to_be_bytes());
            h.extend_from_slice(&s.ip().octets());
            h.extend_from_slice(&d.ip().octets());
            h.extend_from_slice(&s.port().to_be_bytes());
            h.extend_from_slice(&d.port().to_be_bytes());
        }
        (s, d) => {
            let v6 = |a: SocketAddr| match a.ip() {
                IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
                IpAddr::V6(v6) => v6.octets(),
            };
            h.push(0x21); // TCP over IPv6
            h.extend_from_slice(&36u16.to_be_bytes());
            h.extend_from_slice(&v6(s));
            h.extend_from_slice(&v6(d));
            h.extend_from_slice(&s.port().to_be_bytes());
            h.extend_from_slice(&d.port().to_be_bytes());
        }
    }
    h
}

/// How long a UDP client "session" (its backend socket) lives without traffic.
const UDP_IDLE: Duration = Duration::from_secs(30);

async fn serve_udp(weak: Weak<Shared>, socket: UdpSocket, fe: FrontEnd, token: CancellationToken) {
    let socket = Arc::new(socket);
    let sessions: Arc<parking_lot::Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>> = Arc::default();
    let mut buf = vec![0u8; 65_535];
    loop {
        let received = tokio::select! {
            _ = token.cancelled() => return,
            r = socket.recv_from(&mut buf) => r,
        };
        let Ok((n, peer)) = received else { continue };
        let existing = sessions.lock().get(&peer).cloned();
        let upstream = match existing {
            Some(u) => u,
            None => {
                let Some(shared) = weak.upgrade() else { return };
                let Some(backend) = pick(&shared, &fe.target, peer).into_iter().next() else {
                    continue;
                };
                drop(shared);
                let Ok(u) = UdpSocket::bind(SocketAddr::new(backend.addr.ip(), 0)).await else {
                    continue;
                };
                if u.connect(backend.addr).await.is_err() {
                    continue;
                }
                let u = Arc::new(u);
                sessions.lock().insert(peer, u.clone());
                tokio::spawn(udp_replies(
                    u.clone(),
                    socket.clone(),
                    peer,
                    sessions.clone(),
                    token.clone(),
                ));
                u
            }
        };
        if let Some(slice) = buf.get(..n) {
            let _ = upstream.send(slice).await;
        }
    }
}

async fn udp_replies(
    upstream: Arc<UdpSocket>,
    front: Arc<UdpSocket>,
    peer: SocketAddr,
    sessions: Arc<parking_lot::Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>>,
    token: CancellationToken,
) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let r = tokio::select! {
            _ = token.cancelled() => break,
            r = tokio::time::timeout(UDP_IDLE, upstream.recv(&mut buf)) => r,
        };
        match r {
            Ok(Ok(n)) => {
                if let Some(slice) = buf.get(..n) {
                    let _ = front.send_to(slice, peer).await;
                }
            }
            _ => break,
        }
    }
    sessions.lock().remove(&peer);
}

/// Probes the pool's members every `delay` and records rise/fall verdicts.
async fn run_monitor(weak: Weak<Shared>, id: String, spec: MonitorSpec, token: CancellationToken) {
    // Per member: (consecutive successes, consecutive failures, current verdict).
    let mut state: HashMap<String, (u32, u32, Option<Health>)> = HashMap::new();
    let interval = spec.delay.max(Duration::from_millis(200));
    let timeout = spec
        .timeout
        .clamp(Duration::from_millis(200), Duration::from_secs(30));
    loop {
        let targets = {
            let Some(shared) = weak.upgrade() else { return };
            let world = shared.world.lock();
            probe_targets(&world, &spec.pool)
        };
        let probes = targets.iter().map(|t| probe(&spec, t.addr, timeout));
        let results = tokio::select! {
            _ = token.cancelled() => return,
            r = futures::future::join_all(probes) => r,
        };
        let mut verdicts = Vec::new();
        for (t, ok) in targets.iter().zip(results) {
            let entry = state.entry(t.member_id.clone()).or_insert((0, 0, None));
            if ok {
                entry.0 += 1;
                entry.1 = 0;
            } else {
                entry.1 += 1;
                entry.0 = 0;
            }
            // The first probe decides at once (haproxy starts servers in a known state); later
            // changes need max_retries successes / max_retries_down failures in a row.
            entry.2 = match entry.2 {
                None => Some(if ok { Health::Online } else { Health::Error }),
                Some(Health::Error) if entry.0 >= spec.rise => Some(Health::Online),
                Some(Health::Online) if entry.1 >= spec.fall => Some(Health::Error),
                keep => keep,
            };
            if let Some(h) = entry.2 {
                verdicts.push((t.member_id.clone(), h));
            }
        }
        state.retain(|m, _| targets.iter().any(|t| t.member_id == *m));
        {
            let Some(shared) = weak.upgrade() else { return };
            let mut world = shared.world.lock();
            record_health(&mut world, &spec.pool, &verdicts);
        }
        tracing::trace!(monitor = %id, members = targets.len(), "health round");
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

fn probe_targets(world: &World, pool: &MonitorPool) -> Vec<ProbeTarget> {
    match pool {
        MonitorPool::Octavia(pool_id) => world
            .octavia
            .members_of(pool_id)
            .into_iter()
            .filter(|m| m.admin_up())
            .filter_map(|m| {
                let address = m.str("monitor_address").or(m.str("address"))?;
                let ip: IpAddr = address.parse().ok()?;
                let port = m
                    .attrs
                    .get("monitor_port")
                    .and_then(Value::as_i64)
                    .unwrap_or_else(|| int(m, "protocol_port"));
                Some(ProbeTarget {
                    member_id: m.id.clone(),
                    addr: SocketAddr::new(ip, u16::try_from(port).ok()?),
                })
            })
            .collect(),
        MonitorPool::V1(pool_id) => world.lbaas_v1.probe_targets(pool_id),
    }
}

fn record_health(world: &mut World, pool: &MonitorPool, verdicts: &[(String, Health)]) {
    match pool {
        MonitorPool::Octavia(pool_id) => {
            for (member, h) in verdicts {
                if world.octavia.get(member).is_some() {
                    world.octavia.health.insert(member.clone(), *h);
                }
            }
            // Also run without changes: new members show OFFLINE until their first verdict.
            if let Some(lb) = world.octavia.get(pool_id).map(|p| p.lb_id.clone()) {
                world.octavia.refresh_operating(&lb);
            }
        }
        MonitorPool::V1(_) => world.lbaas_v1.record_health(verdicts),
    }
}

/// One probe of one member.
async fn probe(spec: &MonitorSpec, addr: SocketAddr, timeout: Duration) -> bool {
    let attempt = async {
        match spec.kind.as_str() {
            "HTTP" => http_probe(spec, addr).await,
            "UDP-CONNECT" => udp_probe(addr, timeout).await,
            // A ping to a loopback address always answers; TLS-HELLO, HTTPS and SCTP are
            // approximated by a TCP connect.
            "PING" => true,
            _ => TcpStream::connect(addr).await.is_ok(),
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or(false)
}

async fn http_probe(spec: &MonitorSpec, addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return false;
    };
    let host = spec
        .domain_name
        .clone()
        .unwrap_or_else(|| addr.ip().to_string());
    let req = format!(
        "{} {} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: octavia-sandbox-health-check\r\nConnection: close\r\n\r\n",
        spec.http_method, spec.url_path
    );
    if s.write_all(req.as_bytes()).await.is_err() {
        return false;
    }
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    // The status line fits in the first few hundred bytes; stop once it is complete.
    while buf.len() < 4096 && !buf.contains(&b'\n') {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
        }
    }
    let line = String::from_utf8_lossy(&buf);
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok());
    match (status, codes::parse(&spec.expected_codes)) {
        (Some(code), Some(ranges)) => codes::matches(&ranges, code),
        _ => false,
    }
}

/// UDP-CONNECT: a datagram to a closed port draws an ICMP port-unreachable, which a connected
/// socket reports as ConnectionRefused; silence counts as up (as in Octavia).
async fn udp_probe(addr: SocketAddr, timeout: Duration) -> bool {
    let local = SocketAddr::new(addr.ip(), 0);
    let Ok(s) = UdpSocket::bind(local).await else {
        return false;
    };
    if s.connect(addr).await.is_err() || s.send(b"").await.is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    let wait = timeout.min(Duration::from_millis(500));
    match tokio::time::timeout(wait, s.recv(&mut buf)).await {
        Ok(Ok(_)) => true,
        Ok(Err(e)) => e.kind() != std::io::ErrorKind::ConnectionRefused,
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_v1_and_v2_headers() {
        let src: SocketAddr = "127.0.0.5:40000".parse().unwrap();
        let dst: SocketAddr = "127.200.0.9:80".parse().unwrap();
        assert_eq!(
            proxy_header(1, src, dst),
            b"PROXY TCP4 127.0.0.5 127.200.0.9 40000 80\r\n".to_vec()
        );
        let v2 = proxy_header(2, src, dst);
        assert_eq!(&v2[..12], b"\r\n\r\n\0\r\nQUIT\n");
        assert_eq!(v2[12], 0x21);
        assert_eq!(v2[13], 0x11);
        assert_eq!(v2.len(), 16 + 12);
    }

    #[test]
    fn rotation_is_round_robin() {
        let b = |p| Backend {
            addr: SocketAddr::new(IpAddr::from([127, 0, 0, 1]), p),
            proxy: None,
            insert_headers: Vec::new(),
        };
        let weighted = vec![(b(1), 2), (b(2), 1)];
        let mut cursor = 0;
        let picks: Vec<u16> = (0..6)
            .map(|_| {
                dedup(rotate(&mut cursor, expand(weighted.clone())))[0]
                    .addr
                    .port()
            })
            .collect();
        assert_eq!(
            picks,
            vec![1, 1, 2, 1, 1, 2],
            "weight 2 gets twice the turns"
        );
        let mut cursor = 0;
        let first: Vec<u16> = (0..4)
            .map(|_| rotate(&mut cursor, vec![b(1), b(2)])[0].addr.port())
            .collect();
        assert_eq!(first, vec![1, 2, 1, 2]);
    }
}
