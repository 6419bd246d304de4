//! Data-plane tests: traffic through a floating IP reaches the members round robin, health
//! monitors take a dead member out, UDP and PROXY protocol work, and listeners stop when the
//! floating IP goes away.

mod octavia_support;

use std::net::SocketAddr;
use std::time::Duration;

use octavia_support::{config, start, Env};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

/// A tiny HTTP server answering every request with its name.
async fn http_backend(ip: &str, name: &'static str) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind(format!("{ip}:0")).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 2048];
                let mut got = Vec::new();
                // Read until the end of the request head (bounded by the buffer size).
                while got.len() < 8192 && !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let resp = format!(
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{name}",
                    name.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    (addr, task)
}

/// One HTTP GET through the load balancer; None when it fails.
async fn fetch(addr: &str) -> Option<String> {
    let mut s = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: lb\r\n\r\n")
        .await
        .ok()?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&out).to_string();
    let body = text.split("\r\n\r\n").nth(1)?.to_string();
    text.starts_with("HTTP/1.0 200").then_some(body)
}

async fn member_status(env: &Env, pool: &str, address: &str) -> String {
    let (_, body) = env.get(&format!("/pools/{pool}/members")).await;
    body["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["address"] == address)
        .map(|m| m["operating_status"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

async fn wait_member(env: &Env, pool: &str, address: &str, want: &str) {
    for _ in 0..200 {
        if member_status(env, pool, address).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("member {address} never became {want}");
}

/// Creates a load balancer with one listener/pool/members (+ optional monitor) and a floating
/// IP on its VIP; returns (lb id, pool id, fip id, fip address).
async fn build(env: &Env, listener: Value, pool: Value) -> (String, String, String, String) {
    let mut listener = listener;
    let mut pool = pool;
    // Octavia refuses unnamed pools in a fully-populated create.
    pool["name"] = json!("dp-pool");
    listener["default_pool"] = pool;
    let (status, body) = env
        .post("/loadbalancers", json!({"loadbalancer": {"name": "dp", "vip_subnet_id": env.private_subnet, "listeners": [listener]}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let lb = body["loadbalancer"]["id"].as_str().unwrap().to_string();
    let pool_id = body["loadbalancer"]["pools"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let port = body["loadbalancer"]["vip_port_id"]
        .as_str()
        .unwrap()
        .to_string();
    env.wait_lb_active(&lb).await;
    let (fip_id, fip) = env.floating_ip_for(&port).await;
    (lb, pool_id, fip_id, fip)
}

#[tokio::test]
async fn traffic_round_robins_and_the_monitor_removes_a_dead_member() {
    let env = start(config(220)).await;
    let (a, a_task) = http_backend("127.0.0.41", "alpha").await;
    let (b, b_task) = http_backend("127.0.0.42", "beta").await;
    let (lb, pool, fip_id, fip) = build(
        &env,
        json!({"protocol": "HTTP", "protocol_port": 8080}),
        json!({"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
               "members": [{"address": a.ip().to_string(), "protocol_port": a.port()},
                           {"address": b.ip().to_string(), "protocol_port": b.port()}],
               "healthmonitor": {"type": "HTTP", "delay": 1, "timeout": 1, "max_retries": 1,
                                 "max_retries_down": 1, "url_path": "/healthz", "expected_codes": "200-204"}}),
    )
    .await;
    wait_member(&env, &pool, "127.0.0.41", "ONLINE").await;
    wait_member(&env, &pool, "127.0.0.42", "ONLINE").await;
    let target = format!("{fip}:8080");
    let mut seen = Vec::new();
    for _ in 0..100 {
        if let Some(body) = fetch(&target).await {
            seen.push(body);
            if seen.len() == 6 {
                break;
            }
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert_eq!(seen.len(), 6, "traffic flows through the floating IP");
    assert!(
        seen.contains(&"alpha".to_string()) && seen.contains(&"beta".to_string()),
        "{seen:?}"
    );
    let (_, stats) = env.get(&format!("/loadbalancers/{lb}/stats")).await;
    assert!(
        stats["stats"]["total_connections"].as_u64().unwrap() >= 6,
        "{stats}"
    );
    let (_, lbv) = env.get(&format!("/loadbalancers/{lb}")).await;
    assert_eq!(lbv["loadbalancer"]["operating_status"], "ONLINE");

    a_task.abort();
    wait_member(&env, &pool, "127.0.0.41", "ERROR").await;
    let (_, lbv) = env.get(&format!("/loadbalancers/{lb}")).await;
    assert_eq!(lbv["loadbalancer"]["operating_status"], "DEGRADED");
    for _ in 0..6 {
        assert_eq!(fetch(&target).await.as_deref(), Some("beta"));
    }

    // Detaching the floating IP stops the listener.
    let (status, _) = env
        .call(
            Method::PUT,
            &format!("{}/v2.0/floatingips/{fip_id}", env.neutron),
            Some(json!({"floatingip": {"port_id": null}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut stopped = false;
    for _ in 0..100 {
        if TcpStream::connect(&target).await.is_err() {
            stopped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        stopped,
        "listener on {target} still accepts after disassociation"
    );
    b_task.abort();
    env.shutdown().await;
}

#[tokio::test]
async fn udp_listener_forwards_datagrams_and_delete_stops_it() {
    let env = start(config(221)).await;
    let echo = UdpSocket::bind("127.0.0.43:0").await.unwrap();
    let echo_addr = echo.local_addr().unwrap();
    let echo_task = tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, peer)) = echo.recv_from(&mut buf).await {
            let mut reply = b"echo:".to_vec();
            reply.extend_from_slice(&buf[..n]);
            let _ = echo.send_to(&reply, peer).await;
        }
    });
    // A closed UDP port: the second member is probed there (monitor_port) and must go ERROR
    // although its traffic port answers.
    let closed = UdpSocket::bind("127.0.0.45:0").await.unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let (lb, pool, _fip_id, fip) = build(
        &env,
        json!({"protocol": "UDP", "protocol_port": 5353}),
        json!({"protocol": "UDP", "lb_algorithm": "ROUND_ROBIN",
               "members": [{"address": echo_addr.ip().to_string(), "protocol_port": echo_addr.port()},
                           {"address": "127.0.0.45", "protocol_port": echo_addr.port(),
                            "monitor_address": echo_addr.ip().to_string(), "monitor_port": closed_port}],
               "healthmonitor": {"type": "UDP-CONNECT", "delay": 1, "timeout": 1, "max_retries": 1,
                                 "max_retries_down": 1}}),
    )
    .await;
    wait_member(&env, &pool, "127.0.0.43", "ONLINE").await;
    wait_member(&env, &pool, "127.0.0.45", "ERROR").await;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target = format!("{fip}:5353");
    let mut answer = None;
    for _ in 0..50 {
        client.send_to(b"ping", &target).await.unwrap();
        let mut buf = [0u8; 1500];
        if let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_millis(200), client.recv_from(&mut buf)).await
        {
            answer = Some(buf[..n].to_vec());
            break;
        }
    }
    assert_eq!(answer.as_deref(), Some(&b"echo:ping"[..]));
    let (status, _) = env
        .delete(&format!("/loadbalancers/{lb}?cascade=true"))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    env.wait_gone(&format!("/loadbalancers/{lb}")).await;
    // The front end is gone: its address can be bound again by anyone.
    let mut freed = false;
    for _ in 0..100 {
        if UdpSocket::bind(&target).await.is_ok() {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(freed, "UDP front end still bound after delete");
    echo_task.abort();
    env.shutdown().await;
}

#[tokio::test]
async fn proxy_pools_receive_a_proxy_header_and_shutdown_frees_listeners() {
    let env = start(config(222)).await;
    let backend = TcpListener::bind("127.0.0.44:0").await.unwrap();
    let addr = backend.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = backend.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 512];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let _ = s.write_all(&buf[..n]).await;
            });
        }
    });
    let (_lb, _pool, _fip_id, fip) = build(
        &env,
        json!({"protocol": "TCP", "protocol_port": 9000}),
        json!({"protocol": "PROXY", "lb_algorithm": "ROUND_ROBIN",
               "members": [{"address": addr.ip().to_string(), "protocol_port": addr.port()}]}),
    )
    .await;
    let target = format!("{fip}:9000");
    let mut line = String::new();
    for _ in 0..100 {
        if let Ok(mut s) = TcpStream::connect(&target).await {
            let mut buf = vec![0u8; 512];
            if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await
            {
                line = String::from_utf8_lossy(&buf[..n]).to_string();
                if !line.is_empty() {
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        line.starts_with(&format!("PROXY TCP4 127.0.0.1 {fip} ")),
        "{line:?}"
    );
    assert!(line.ends_with(" 9000\r\n"), "{line:?}");
    env.shutdown().await;
    let mut freed = false;
    for _ in 0..100 {
        if TcpListener::bind(&target).await.is_ok() {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(freed, "front end still listening after shutdown");
    task.abort();
}

/// One HTTP GET from a chosen source address; None when refused or closed unanswered.
async fn fetch_from(source: &str, target: &str) -> Option<String> {
    let socket = tokio::net::TcpSocket::new_v4().ok()?;
    socket.bind(format!("{source}:0").parse().ok()?).ok()?;
    let mut s = tokio::time::timeout(Duration::from_secs(2), socket.connect(target.parse().ok()?))
        .await
        .ok()?
        .ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").await.ok()?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&out).to_string();
    text.split("\r\n\r\n").nth(1).map(str::to_string)
}

#[tokio::test]
async fn source_ip_persistence_sticks_and_allowed_cidrs_filter_clients() {
    let env = start(config(227)).await;
    let (a, a_task) = http_backend("127.0.0.46", "alpha").await;
    let (b, b_task) = http_backend("127.0.0.47", "beta").await;
    let (_lb, _pool, _fip_id, fip) = build(
        &env,
        json!({"protocol": "HTTP", "protocol_port": 8090, "allowed_cidrs": ["127.0.0.1/32", "127.0.0.6/32"]}),
        json!({"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "session_persistence": {"type": "SOURCE_IP"},
               "members": [{"address": a.ip().to_string(), "protocol_port": a.port()},
                           {"address": b.ip().to_string(), "protocol_port": b.port()}]}),
    )
    .await;
    let target = format!("{fip}:8090");
    let mut first = None;
    for _ in 0..100 {
        first = fetch_from("127.0.0.1", &target).await;
        if first.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let first = first.expect("traffic flows");
    for _ in 0..6 {
        assert_eq!(
            fetch_from("127.0.0.1", &target).await.as_deref(),
            Some(first.as_str())
        );
    }
    assert!(
        fetch_from("127.0.0.6", &target).await.is_some(),
        "allowed source"
    );
    assert_eq!(
        fetch_from("127.0.0.7", &target).await,
        None,
        "source outside allowed_cidrs"
    );
    a_task.abort();
    b_task.abort();
    env.shutdown().await;
}

#[tokio::test]
async fn http_listener_inserts_x_forwarded_headers() {
    let env = start(config(228)).await;
    // The backend answers with the request head it received.
    let backend = TcpListener::bind("127.0.0.48:0").await.unwrap();
    let addr = backend.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = backend.accept().await {
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut buf = [0u8; 1024];
                while got.len() < 8192 && !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let reply = format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", got.len());
                let _ = s.write_all(reply.as_bytes()).await;
                let _ = s.write_all(&got).await;
            });
        }
    });
    let (_lb, _pool, _fip_id, fip) = build(
        &env,
        json!({"protocol": "HTTP", "protocol_port": 8095,
               "insert_headers": {"X-Forwarded-For": "true", "X-Forwarded-Port": "true"}}),
        json!({"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
               "members": [{"address": addr.ip().to_string(), "protocol_port": addr.port()}]}),
    )
    .await;
    let target = format!("{fip}:8095");
    let mut head = None;
    for _ in 0..100 {
        head = fetch_from("127.0.0.9", &target).await;
        if head.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let head = head.expect("traffic flows");
    assert!(head.starts_with("GET / HTTP/1.0\r\n"), "{head:?}");
    assert!(
        head.contains("\r\nX-Forwarded-For: 127.0.0.9\r\n"),
        "{head:?}"
    );
    assert!(head.contains("\r\nX-Forwarded-Port: 8095"), "{head:?}");
    task.abort();
    env.shutdown().await;
}

#[tokio::test]
async fn backup_members_serve_only_when_no_regular_member_can() {
    let env = start(config(229)).await;
    let (a, a_task) = http_backend("127.0.0.49", "primary").await;
    let (b, b_task) = http_backend("127.0.0.50", "backup").await;
    let (lb, pool, _fip_id, fip) = build(
        &env,
        json!({"protocol": "TCP", "protocol_port": 8096}),
        json!({"protocol": "TCP", "lb_algorithm": "ROUND_ROBIN",
               "members": [{"address": a.ip().to_string(), "protocol_port": a.port(), "name": "a"},
                           {"address": b.ip().to_string(), "protocol_port": b.port(), "backup": true}]}),
    )
    .await;
    let target = format!("{fip}:8096");
    let mut first = None;
    for _ in 0..100 {
        first = fetch(&target).await;
        if first.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(first.as_deref(), Some("primary"));
    for _ in 0..4 {
        assert_eq!(fetch(&target).await.as_deref(), Some("primary"));
    }
    let (_, members) = env.get(&format!("/pools/{pool}/members?name=a")).await;
    let a_id = members["members"][0]["id"].as_str().unwrap().to_string();
    let (status, _) = env
        .put(
            &format!("/pools/{pool}/members/{a_id}"),
            json!({"member": {"admin_state_up": false}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    env.wait_lb_active(&lb).await;
    for _ in 0..4 {
        assert_eq!(fetch(&target).await.as_deref(), Some("backup"));
    }
    a_task.abort();
    b_task.abort();
    env.shutdown().await;
}
