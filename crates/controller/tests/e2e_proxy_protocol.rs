//! End to end: `loadbalancer.openstack.org/proxy-protocol` switched on, to v2 and off again on
//! a live 2-port Service (docs/annotations.md "proxy-protocol"). Octavia cannot change a
//! pool's protocol, so the model replaces each pool on its listener: per port one DELETE pool,
//! one POST pool and one batch PUT of its members — nothing else, the LB and listeners stay
//! (counted from the sandbox's request log). The ingress keeps its IP and its ipMode follows
//! (Proxy / VIP); a PROXY-aware backend on the NodePorts reports the header it received
//! through the floating IP (v1 text, v2 binary, or none). Its own world: floating range
//! 127.245.0.0/24, nodes 127.100.45.x.

mod common;
mod harness;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::wait_for;
use harness::{http_get, node_ports, sandbox_config, Env, LIMIT};
use k8s_openapi::api::core::v1::Service;
use kube::api::DeleteParams;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const FAST: Duration = Duration::from_millis(300);
const PROXY: &str = "loadbalancer.openstack.org/proxy-protocol";
const NODES: [(&str, &str); 2] = [("pp-1", "127.100.45.11"), ("pp-2", "127.100.45.12")];
const LB_NAME: &str = "kube_service_kubernetes_proxy_web";
const PORTS: [u16; 2] = [80, 8080];
/// What `Builder::update_listener` plans for a pool whose protocol changes: DeletePool,
/// CreatePool, BatchUpdateMembers (the sandbox offers batch member updates).
const WRITES_PER_PORT: usize = 3;

/// What a backend saw in front of the HTTP request.
fn describe_preamble(pre: &[u8]) -> String {
    const V2_SIG: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";
    if pre.is_empty() {
        return "proxy=none".into();
    }
    if let Some(line) = pre.strip_prefix(b"PROXY ") {
        // v1: "PROXY TCP4 <src> <dst> <sport> <dport>\r\n"
        let text = String::from_utf8_lossy(line);
        let f: Vec<&str> = text.trim_end().split(' ').collect();
        if f.len() == 5 {
            return format!("proxy=v1 src={} dst={} dport={}", f[1], f[2], f[4]);
        }
        return format!("proxy=v1-malformed {text:?}");
    }
    if pre.starts_with(V2_SIG) && pre.len() >= 16 + 12 && pre[13] == 0x11 {
        // v2, TCP over IPv4: src(4) dst(4) sport(2) dport(2) after the 16-byte header.
        let a = &pre[16..28];
        let src = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
        let dst = Ipv4Addr::new(a[4], a[5], a[6], a[7]);
        let dport = u16::from_be_bytes([a[10], a[11]]);
        return format!("proxy=v2 src={src} dst={dst} dport={dport}");
    }
    format!("proxy=unknown {pre:?}")
}

/// An HTTP backend that understands a leading PROXY header (v1 or v2) and answers with
/// `name` and what it saw.
async fn proxy_aware_backend(ip: &str, port: u16, name: String) -> tokio::task::JoinHandle<()> {
    let listener = tokio::net::TcpListener::bind((ip, port)).await.unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let name = name.clone();
            tokio::spawn(async move {
                let read = async {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    // Bounded: at most 16 KiB, and the whole exchange at most 5 s.
                    while buf.len() < 16 * 1024 {
                        let n = s.read(&mut chunk).await.ok()?;
                        if n == 0 {
                            return None;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(at) = find(&buf, b"GET ") {
                            if find(&buf[at..], b"\r\n\r\n").is_some() {
                                return Some(describe_preamble(&buf[..at]));
                            }
                        }
                    }
                    None
                };
                let Ok(Some(seen)) = tokio::time::timeout(Duration::from_secs(5), read).await
                else {
                    return;
                };
                let body = format!("{name} {seen}");
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn web() -> Value {
    json!({
        "metadata": {"name": "web"},
        "spec": {"type": "LoadBalancer", "selector": {"app": "web"},
                 "ports": [{"name": "http", "port": PORTS[0], "protocol": "TCP"},
                           {"name": "alt", "port": PORTS[1], "protocol": "TCP"}]}
    })
}

/// (listener id, pool protocol, member count) per listener of the LB, by port.
async fn pools(env: &Env, lb_id: &str) -> Vec<(String, String, usize)> {
    let lb = env.lbaas.get_loadbalancer(lb_id).await.unwrap();
    let mut out = Vec::new();
    for r in &lb.listeners {
        let l = env.lbaas.get_listener(&r.id).await.unwrap();
        let (protocol, members) = match &l.default_pool_id {
            Some(id) => match env.lbaas.get_pool(id).await {
                Ok(p) => (p.protocol, p.members.len()),
                Err(_) => (String::new(), 0),
            },
            None => (String::new(), 0),
        };
        out.push((l.protocol_port, l.id, protocol, members));
    }
    out.sort();
    out.into_iter().map(|(_, id, p, m)| (id, p, m)).collect()
}

async fn ip_mode(env: &Env) -> Option<String> {
    let s: Service = env.services().get("web").await.ok()?;
    s.status?.load_balancer?.ingress?.first()?.ip_mode.clone()
}

/// Switches the annotation (None = removed) and waits until every pool has `protocol` with
/// all members, the ingress has `mode` and the LB is ACTIVE; returns the writes it took.
async fn switch(
    env: &Env,
    lb_id: &str,
    value: Option<&str>,
    protocol: &str,
    mode: &str,
) -> Vec<String> {
    let from = env.request_log_mark().await;
    env.patch_service("web", json!({"metadata": {"annotations": {PROXY: value}}}))
        .await;
    wait_for(
        &format!("pools {protocol}, ipMode {mode}"),
        LIMIT,
        || async {
            let p = pools(env, lb_id).await;
            let lb = env.lbaas.get_loadbalancer(lb_id).await.ok()?;
            (p.len() == PORTS.len()
                && p.iter()
                    .all(|(_, proto, members)| proto == protocol && *members == NODES.len())
                && lb.provisioning_status == "ACTIVE"
                && ip_mode(env).await.as_deref() == Some(mode))
            .then_some(())
        },
    )
    .await;
    let mut out = Vec::new();
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        for (path, status) in env.calls(from, method).await {
            out.push(format!("{method} {path} {status}"));
        }
    }
    out
}

/// Asserts the writes of one switch: per port exactly one pool DELETE, one pool POST and one
/// member PUT, all successful.
fn assert_pool_replacement(what: &str, writes: &[String]) {
    println!("proxy: {what}: {} writes {writes:?}", writes.len());
    assert_eq!(
        writes.len(),
        WRITES_PER_PORT * PORTS.len(),
        "{what}: {writes:?}"
    );
    let count = |pred: &dyn Fn(&str) -> bool| writes.iter().filter(|w| pred(w)).count();
    assert_eq!(
        count(&|w| w.starts_with("DELETE ") && w.contains("/pools/")),
        PORTS.len()
    );
    assert_eq!(
        count(&|w| w.starts_with("POST ") && w.contains("/pools ")),
        PORTS.len()
    );
    assert_eq!(
        count(&|w| w.starts_with("PUT ") && w.contains("/members ")),
        PORTS.len()
    );
    assert!(
        writes.iter().all(|w| {
            let status: u16 = w.rsplit(' ').next().unwrap().parse().unwrap();
            (200..300).contains(&status)
        }),
        "{what}: {writes:?}"
    );
}

/// Every port answers through the floating IP from a backend that reports `seen(port)`.
async fn assert_seen(ip: &str, seen: impl Fn(u16) -> String) {
    for port in PORTS {
        let seen = seen(port);
        let body = wait_for(&format!("{ip}:{port} with {seen}"), LIMIT, || async {
            http_get(ip, port).await.filter(|b| b.contains(&seen))
        })
        .await;
        println!(
            "proxy: {ip}:{port} -> {}",
            body.lines().last().unwrap_or("")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_protocol_switches_replace_only_the_pools_and_reach_the_backend() {
    let Some(env) = Env::start("proxy", "proxy", sandbox_config(245, FAST)).await else {
        return;
    };
    for (name, ip) in NODES {
        env.add_node(name, ip, true).await;
    }
    let mut controller = env.start_controller(&[]);
    controller.wait_ready(LIMIT).await;
    let svc = env.create_service(web()).await;
    let mut backends = Vec::new();
    for (name, ip) in NODES {
        for port in node_ports(&svc) {
            backends.push(proxy_aware_backend(ip, port, format!("{name}:{port}")).await);
        }
    }
    let ip = env.wait_ingress_ip("web", LIMIT).await;
    let lb_id = wait_for("the LB", LIMIT, || async {
        env.lbs_named(LB_NAME).await.pop().map(|l| l.id)
    })
    .await;
    wait_for("plain pools and ipMode VIP", LIMIT, || async {
        let p = pools(&env, &lb_id).await;
        (p.len() == 2
            && p.iter().all(|(_, proto, _)| proto == "TCP")
            && ip_mode(&env).await.as_deref() == Some("VIP"))
        .then_some(())
    })
    .await;
    let listener_ids: Vec<String> = pools(&env, &lb_id).await.into_iter().map(|p| p.0).collect();
    assert_seen(&ip, |_| "proxy=none".to_string()).await;
    // The header's destination is the floating IP, its source the test's own address.
    let client: IpAddr = Ipv4Addr::LOCALHOST.into();

    let on = switch(&env, &lb_id, Some("true"), "PROXY", "Proxy").await;
    assert_pool_replacement("on (v1)", &on);
    assert_seen(&ip, |port| {
        format!("proxy=v1 src={client} dst={ip} dport={port}")
    })
    .await;
    assert_eq!(env.ingress_ip("web").await.as_deref(), Some(ip.as_str()));

    let v2 = switch(&env, &lb_id, Some("v2"), "PROXYV2", "Proxy").await;
    assert_pool_replacement("v1 -> v2", &v2);
    assert_seen(&ip, |port| {
        format!("proxy=v2 src={client} dst={ip} dport={port}")
    })
    .await;

    let off = switch(&env, &lb_id, None, "TCP", "VIP").await;
    assert_pool_replacement("off", &off);
    assert_seen(&ip, |_| "proxy=none".to_string()).await;

    // The same LB and listeners throughout; one FIP.
    let lbs = env.live_lbs().await;
    assert_eq!(lbs.len(), 1);
    assert_eq!(lbs[0].id, lb_id);
    let now: Vec<String> = pools(&env, &lb_id).await.into_iter().map(|p| p.0).collect();
    assert_eq!(now, listener_ids, "listeners kept");
    assert_eq!(env.ingress_ip("web").await.as_deref(), Some(ip.as_str()));
    assert_eq!(env.fips().await.len(), 1);

    env.services()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_service_gone("web", LIMIT).await;
    env.audit_leaks(&[]).await;
    for b in backends {
        b.abort();
    }
    drop(controller);
    env.finish().await;
}
