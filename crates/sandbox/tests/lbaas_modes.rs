//! The older LBaaS generations at the HTTP level: Neutron LBaaS v2 (the Octavia model under
//! the network endpoint, Neutron error shapes) and LBaaS v1 (pools, vips, members, health
//! monitors with association), including traffic through a v1 VIP's floating IP.

mod octavia_support;

use std::time::Duration;

use octavia_support::{config, start};
use reqwest::{Method, StatusCode};
use sandbox::LbaasMode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn neutron_error(body: &Value) -> (&str, &str) {
    let e = &body["NeutronError"];
    assert!(e.is_object(), "{body}");
    (
        e["type"].as_str().unwrap_or_default(),
        e["message"].as_str().unwrap_or_default(),
    )
}

#[tokio::test]
async fn neutron_v2_serves_the_octavia_model_with_neutron_errors() {
    let mut cfg = config(223);
    cfg.lbaas = LbaasMode::NeutronV2;
    cfg.provisioning_delay = Duration::from_millis(800);
    let env = start(cfg).await;
    let (status, body) = env
        .post(
            "/loadbalancers",
            json!({"loadbalancer": {"name": "n2", "vip_subnet_id": env.private_subnet}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["loadbalancer"]["id"].as_str().unwrap().to_string();
    assert_eq!(body["loadbalancer"]["tenant_id"], env.project_id.as_str());
    env.wait_lb_active(&id).await;
    let (status, body) = env
        .post(
            "/listeners",
            json!({"listener": {"loadbalancer_id": id, "protocol": "TCP", "protocol_port": 80}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = env
        .post(
            "/listeners",
            json!({"listener": {"loadbalancer_id": id, "protocol": "TCP", "protocol_port": 81}}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (kind, message) = neutron_error(&body);
    assert_eq!(kind, "StateInvalid");
    assert!(message.contains(&id), "{message}");
    env.wait_lb_active(&id).await;
    let (status, body) = env.get(&format!("/loadbalancers/{id}/statuses")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["statuses"]["loadbalancer"]["listeners"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let (status, body) = env
        .get("/loadbalancers/00000000-0000-0000-0000-000000000000")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    neutron_error(&body);
    let (status, body) = env
        .post("/pools", json!({"pool": {"protocol": "TCP"}}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(neutron_error(&body).0, "HTTPBadRequest");
    // The network endpoint advertises lbaasv2; no Octavia routes answer there.
    let (_, ext) = env.neutron_get("/extensions").await;
    let aliases: Vec<&str> = ext["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["alias"].as_str())
        .collect();
    assert!(aliases.contains(&"lbaasv2"), "{aliases:?}");
    let (status, _) = env
        .call(
            Method::GET,
            &format!("{}/v2/lbaas/loadbalancers", env.octavia),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = env
        .delete(&format!("/loadbalancers/{id}?cascade=true"))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    env.wait_gone(&format!("/loadbalancers/{id}")).await;
    env.shutdown().await;
}

async fn v1_wait_active(env: &octavia_support::Env, path: &str, key: &str) -> Value {
    for _ in 0..200 {
        let (status, body) = env.get(path).await;
        if status == StatusCode::OK && body[key]["status"] == "ACTIVE" {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{path} never became ACTIVE");
}

#[tokio::test]
async fn lbaas_v1_objects_provision_associate_and_forward() {
    let mut cfg = config(224);
    cfg.lbaas = LbaasMode::NeutronV1;
    cfg.provisioning_delay = Duration::from_millis(300);
    let env = start(cfg).await;
    let backend = TcpListener::bind("127.0.0.51:0").await.unwrap();
    let addr = backend.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = backend.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nv1")
                    .await;
            });
        }
    });

    let (status, body) = env
        .post("/pools", json!({"pool": {"name": "p", "subnet_id": env.private_subnet, "protocol": "HTTP", "lb_method": "ROUND_ROBIN"}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["pool"]["status"], "PENDING_CREATE");
    let pool = body["pool"]["id"].as_str().unwrap().to_string();
    let (status, body) = env
        .put(&format!("/pools/{pool}"), json!({"pool": {"name": "q"}}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(neutron_error(&body).0, "StateInvalid");
    v1_wait_active(&env, &format!("/pools/{pool}"), "pool").await;

    let (status, body) = env
        .post("/members", json!({"member": {"pool_id": pool, "address": addr.ip().to_string(), "protocol_port": addr.port()}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let member = body["member"]["id"].as_str().unwrap().to_string();
    let (status, body) = env
        .post(
            "/health_monitors",
            json!({"health_monitor": {"type": "TCP", "delay": 1, "timeout": 1, "max_retries": 1}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let hm = body["health_monitor"]["id"].as_str().unwrap().to_string();
    let (status, body) = env
        .post(
            &format!("/pools/{pool}/health_monitors"),
            json!({"health_monitor": {"id": hm}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = env
        .post("/vips", json!({"vip": {"name": "v", "subnet_id": env.private_subnet, "protocol": "HTTP", "protocol_port": 8081, "pool_id": pool}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let vip = body["vip"]["id"].as_str().unwrap().to_string();
    let port_id = body["vip"]["port_id"].as_str().unwrap().to_string();
    assert!(body["vip"]["address"].is_string());
    let (status, body) = env
        .post("/vips", json!({"vip": {"subnet_id": env.private_subnet, "protocol": "HTTP", "protocol_port": 8082, "pool_id": pool}}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "one VIP per pool: {body}");
    let shown = v1_wait_active(&env, &format!("/pools/{pool}"), "pool").await;
    assert_eq!(shown["pool"]["health_monitors"][0], hm.as_str());
    assert_eq!(shown["pool"]["vip_id"], vip.as_str());
    v1_wait_active(&env, &format!("/vips/{vip}"), "vip").await;

    let (_, fip) = env.floating_ip_for(&port_id).await;
    let target = format!("{fip}:8081");
    let mut answer = None;
    for _ in 0..100 {
        if let Ok(mut s) = TcpStream::connect(&target).await {
            let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n").await;
            let mut out = Vec::new();
            if tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut out))
                .await
                .is_ok()
                && !out.is_empty()
            {
                answer = Some(String::from_utf8_lossy(&out).to_string());
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(answer.unwrap_or_default().ends_with("v1"));
    // The monitor notices a dead member.
    task.abort();
    let mut inactive = false;
    for _ in 0..100 {
        let (_, m) = env.get(&format!("/members/{member}")).await;
        if m["member"]["status"] == "INACTIVE" {
            inactive = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(inactive, "member never went INACTIVE");

    // Validation and 404s in Neutron's shape.
    let (status, body) = env.post("/pools", json!({"pool": {"subnet_id": env.private_subnet, "protocol": "FTP", "lb_method": "ROUND_ROBIN"}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(neutron_error(&body).1.contains("protocol"), "{body}");
    let (status, body) = env
        .post(
            "/pools",
            json!({"pool": {"protocol": "TCP", "lb_method": "ROUND_ROBIN"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(neutron_error(&body).1.contains("subnet_id"), "{body}");
    let (status, body) = env.post("/pools", json!({"pool": {"bogus": 1}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        neutron_error(&body).1.contains("Unrecognized attribute"),
        "{body}"
    );
    let (status, body) = env.get("/vips/00000000-0000-0000-0000-000000000000").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(neutron_error(&body).0, "VipNotFound");
    let (status, body) = env.delete(&format!("/pools/{pool}")).await;
    assert_eq!(status, StatusCode::CONFLICT, "pool with a vip: {body}");
    let (status, _) = env.delete(&format!("/vips/{vip}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    env.wait_gone(&format!("/vips/{vip}")).await;
    let (status, _) = env.neutron_get(&format!("/ports/{port_id}")).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the VIP port goes with the vip"
    );
    let (status, _) = env
        .call(
            Method::DELETE,
            &format!("{}/pools/{pool}/health_monitors/{hm}", env.lb),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = env.delete(&format!("/pools/{pool}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    env.wait_gone(&format!("/pools/{pool}")).await;
    let (_, members) = env.get("/members").await;
    assert!(members["members"].as_array().unwrap().is_empty());
    env.shutdown().await;
}
