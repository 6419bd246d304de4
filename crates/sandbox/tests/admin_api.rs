//! The sandbox's admin API: fault rules (status, latency, probability, per service), the
//! LB-ERROR switch, quotas, request log, node registration; and HTTPS with the generated CA.

mod sandbox_support;

use reqwest::{Method, StatusCode};
use sandbox::SandboxConfig;
use sandbox_support::*;
use serde_json::{json, Value};

#[tokio::test]
async fn fault_rules_fail_matching_requests_in_the_service_shape() {
    let cloud = start().await;
    let resp = cloud
        .http
        .post(cloud.admin_api("faults/rules"))
        .json(
            &json!({"service": "network", "method": "GET", "path": "^/v2.0/ports", "status": 503}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let (status, err) = cloud.get("ports").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(neutron_error(&err).0, "HTTPServiceUnavailable");
    // Other methods, paths and services are untouched.
    assert_eq!(cloud.get("networks").await.0, StatusCode::OK);
    let seed = cloud.handle.seed().clone();
    let (status, _) = cloud
        .post(
            "ports",
            json!({"port": {"network_id": seed.private_network_id}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // Keystone faults use Keystone's shape; probability 0 never fires.
    let rules = json!({"rules": [
        {"service": "identity", "method": "POST", "path": "/v3/auth/tokens", "status": 500},
        {"service": "network", "path": ".", "status": 500, "probability": 0.0},
        {"service": "network", "path": "^/v2.0/networks", "latency_ms": 5}
    ], "lb_error_after_create": true});
    let resp = cloud
        .http
        .put(cloud.admin_api("faults"))
        .json(&rules)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = cloud
        .http
        .post(format!("{}/auth/tokens", cloud.handle.auth_url()))
        .json(&password_body("admin", "secret", "admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], 500);
    assert_eq!(
        cloud.get("ports").await.0,
        StatusCode::OK,
        "the 503 rule was replaced"
    );
    assert_eq!(
        cloud.get("networks").await.0,
        StatusCode::OK,
        "latency only"
    );
    assert!(
        cloud
            .handle
            .state()
            .inner
            .faults
            .lock()
            .lb_error_after_create
    );

    let faults: Value = cloud
        .http
        .get(cloud.admin_api("faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(faults["rules"].as_array().unwrap().len(), 3);
    assert_eq!(faults["rules"][2]["latency_ms"], 5);

    let resp = cloud
        .http
        .delete(cloud.admin_api("faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(
        !cloud
            .handle
            .state()
            .inner
            .faults
            .lock()
            .lb_error_after_create
    );

    // Invalid rules are refused with a reason.
    let resp = cloud
        .http
        .post(cloud.admin_api("faults/rules"))
        .json(&json!({"path": "(", "status": 500}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = cloud
        .http
        .post(cloud.admin_api("faults/rules"))
        .json(&json!({"status": 500, "colour": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    cloud.handle.shutdown().await;
}

#[tokio::test]
async fn faults_given_at_start() {
    let cfg = SandboxConfig {
        faults: vec![
            "service=network,method=POST,status=409,path=^/v2.0/floatingips$"
                .parse()
                .unwrap(),
        ],
        quota_overrides: vec!["demo:network=0".parse().unwrap()],
        ..Default::default()
    };
    let cloud = start_with(cfg).await;
    let seed = cloud.handle.seed().clone();
    let (status, _) = cloud
        .post(
            "floatingips",
            json!({"floatingip": {"floating_network_id": seed.public_network_id}}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, err) = cloud
        .call(
            &cloud.demo,
            Method::POST,
            "networks",
            Some(json!({"network": {}})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(neutron_error(&err).0, "OverQuota");
    // Quotas changed at runtime through the admin API.
    let resp = cloud
        .http
        .put(cloud.admin_api("quotas"))
        .json(&json!({"project": "demo", "resource": "network", "limit": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (status, _) = cloud
        .call(
            &cloud.demo,
            Method::POST,
            "networks",
            Some(json!({"network": {}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    cloud.handle.shutdown().await;
}

#[tokio::test]
async fn request_log_records_calls_with_user() {
    let cloud = start().await;
    let resp = cloud
        .http
        .delete(cloud.admin_api("requests"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    cloud.get("networks?name=public").await;
    cloud.call(&cloud.demo, Method::GET, "ports", None).await;
    cloud
        .http
        .get(cloud.neutron("subnets"))
        .send()
        .await
        .unwrap();
    let log: Value = cloud
        .http
        .get(cloud.admin_api("requests?service=network"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = log["requests"].as_array().unwrap();
    let summary: Vec<(String, String, u64, Value)> = entries
        .iter()
        .map(|e| {
            (
                e["method"].as_str().unwrap().into(),
                e["path"].as_str().unwrap().into(),
                e["status"].as_u64().unwrap(),
                e["user"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("GET".into(), "/v2.0/networks".into(), 200, json!("admin")),
            ("GET".into(), "/v2.0/ports".into(), 200, json!("demo")),
            ("GET".into(), "/v2.0/subnets".into(), 401, Value::Null),
        ]
    );
    assert_eq!(entries[0]["query"], "name=public");
    assert!(entries[0]["time"].as_str().is_some());
    let next = log["next_since"].as_u64().unwrap();
    cloud.get("routers").await;
    let log: Value = cloud
        .http
        .get(cloud.admin_api(&format!("requests?since={next}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log["requests"].as_array().unwrap().len(), 1);
    cloud.handle.shutdown().await;
}

#[tokio::test]
async fn nodes_are_registered_as_compute_ports() {
    let cloud = start().await;
    let resp = cloud
        .http
        .post(cloud.admin_api("nodes"))
        .json(&json!({"name": "node-1", "ip_address": "127.100.0.11"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let port: Value = resp.json().await.unwrap();
    let port_id = port["port"]["id"].as_str().unwrap().to_string();
    let (_, ports) = cloud.get("ports?fixed_ips=ip_address%3D127.100.0.11").await;
    assert_eq!(ports["ports"][0]["id"], port_id);
    assert_eq!(ports["ports"][0]["device_owner"], "compute:nova");
    assert_eq!(
        ports["ports"][0]["fixed_ips"][0]["subnet_id"],
        cloud.handle.seed().nodes_subnet_id
    );
    // The same address twice is a conflict; a bad body is a 400.
    let resp = cloud
        .http
        .post(cloud.admin_api("nodes"))
        .json(&json!({"name": "n", "ip_address": "127.100.0.11"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    let resp = cloud
        .http
        .post(cloud.admin_api("nodes"))
        .json(&json!({"name": "n", "ip_address": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = cloud
        .http
        .delete(cloud.admin_api(&format!("nodes/{port_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    cloud.handle.shutdown().await;
}

#[tokio::test]
async fn connection_texts_name_the_endpoints() {
    let cloud = start().await;
    let h = &cloud.handle;
    assert!(h
        .openrc()
        .contains(&format!("export OS_AUTH_URL={}", h.auth_url())));
    assert!(h.clouds_yaml().contains("application_credential_id"));
    let conf = h.cloud_conf();
    assert!(conf.contains(&format!(
        "floating-network-id = {}",
        h.seed().public_network_id
    )));
    assert!(conf.contains(&format!("subnet-id = {}", h.seed().nodes_subnet_id)));
    let info: Value = cloud
        .http
        .get(h.admin_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["endpoints"]["network"], h.neutron_url());
    assert!(
        !info.to_string().contains("secret"),
        "no secrets on the admin API"
    );
    cloud.handle.shutdown().await;
}

#[tokio::test]
async fn https_with_generated_ca() {
    let dir = std::env::temp_dir().join(format!("sandbox-https-{}", std::process::id()));
    let handle = sandbox::start(SandboxConfig {
        tls: true,
        tls_dir: Some(dir.clone()),
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(handle.auth_url().starts_with("https://127.0.0.1:"));
    let ca = handle.ca_pem_path().unwrap().to_path_buf();
    let pem = std::fs::read(&ca).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap();
    let token = password_token(&http, &handle, "admin", "admin").await;
    let resp = http
        .get(format!("{}/v2.0/networks", handle.neutron_url()))
        .header("X-Auth-Token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(handle.openrc().contains("OS_CACERT="));
    // Without the CA the certificate is not trusted.
    assert!(client().get(handle.auth_url()).send().await.is_err());
    handle.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn added_users_act_as_admin_and_are_named_in_the_request_log() {
    let cloud = start().await;
    let add = |body: Value| {
        let req = cloud.http.post(cloud.admin_api("users")).json(&body);
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status();
            (status, resp.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = add(json!({"name": "bench-a", "password": "pw-a"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["user"]["name"], "bench-a");
    let (status, body) = add(json!({"name": "bench-a", "password": "other"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.to_string().contains("already exists"), "{body}");
    let (status, body) = add(json!({"name": "bench-b", "password": "pw", "project": "nope"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.to_string().contains("nope"), "{body}");

    let resp = cloud
        .http
        .post(format!("{}/auth/tokens", cloud.handle.auth_url()))
        .json(&password_body("bench-a", "pw-a", "admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let token = resp.headers()["x-subject-token"]
        .to_str()
        .unwrap()
        .to_string();
    let (status, net) = cloud
        .call(
            &token,
            Method::POST,
            "networks",
            Some(json!({"network": {"name": "by-bench-a"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{net}");
    // Admin's roles on admin's project: the object belongs to the same project as admin's.
    let (_, admin_view) = cloud.get("networks?name=by-bench-a").await;
    assert_eq!(admin_view["networks"].as_array().unwrap().len(), 1);
    let log: Value = cloud
        .http
        .get(cloud.admin_api("requests?service=network&method=POST"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let users: Vec<&Value> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["user"])
        .collect();
    assert_eq!(users, vec![&json!("bench-a")]);
    cloud.handle.shutdown().await;
}

#[tokio::test]
async fn losing_the_state_remakes_the_seed_with_new_ids_and_keeps_the_users() {
    let cloud = start().await;
    let before = cloud.handle.seed();
    let admin_url = cloud.handle.admin_url().to_string();
    let node = cloud
        .http
        .post(cloud.admin_api("nodes"))
        .json(&json!({"name": "node-1", "ip_address": "127.100.0.21"}))
        .send()
        .await
        .unwrap();
    assert_eq!(node.status(), StatusCode::CREATED);
    let node: Value = node.json().await.unwrap();
    let old_node_port = node["port"]["id"].as_str().unwrap().to_string();
    let (status, fip) = cloud
        .post(
            "floatingips",
            json!({"floatingip": {"floating_network_id": before.public_network_id}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{fip}");
    let old_fip = fip["floatingip"]["id"].as_str().unwrap().to_string();
    let (status, group) = cloud
        .call(
            &cloud.demo,
            Method::POST,
            "security-groups",
            Some(json!({"security_group": {"name": "g"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let old_group = group["security_group"]["id"].as_str().unwrap().to_string();
    let octavia = |path: &str| format!("{}/v2/lbaas/{path}", cloud.handle.octavia_url());
    let lb = cloud
        .http
        .post(octavia("loadbalancers"))
        .header("X-Auth-Token", &cloud.admin)
        .json(&json!({"loadbalancer": {"name": "lb", "vip_subnet_id": before.nodes_subnet_id}}))
        .send()
        .await
        .unwrap();
    assert_eq!(lb.status(), StatusCode::CREATED);
    let lb: Value = lb.json().await.unwrap();
    let old_lb = lb["loadbalancer"]["id"].as_str().unwrap().to_string();

    let resp = cloud
        .http
        .post(cloud.admin_api("state/lose"))
        .json(&json!({"keep_nodes": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let lost: Value = resp.json().await.unwrap();
    let after = cloud.handle.seed();
    assert_eq!(
        lost["lost"]["networks"],
        serde_json::to_value(&after).unwrap()
    );
    for (old, new) in [
        (&before.public_network_id, &after.public_network_id),
        (&before.public_subnet_id, &after.public_subnet_id),
        (&before.private_network_id, &after.private_network_id),
        (&before.private_subnet_id, &after.private_subnet_id),
        (&before.nodes_subnet_id, &after.nodes_subnet_id),
        (&before.router_id, &after.router_id),
    ] {
        assert_ne!(old, new, "a seeded id survived");
    }

    // Everything the old cloud held answers 404, with the old token (Keystone kept it).
    for path in [
        format!("networks/{}", before.public_network_id),
        format!("networks/{}", before.private_network_id),
        format!("subnets/{}", before.nodes_subnet_id),
        format!("routers/{}", before.router_id),
        format!("ports/{old_node_port}"),
        format!("floatingips/{old_fip}"),
        format!("security-groups/{old_group}"),
    ] {
        assert_eq!(cloud.get(&path).await.0, StatusCode::NOT_FOUND, "{path}");
    }
    let resp = cloud
        .http
        .get(octavia(&format!("loadbalancers/{old_lb}")))
        .header("X-Auth-Token", &cloud.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = cloud
        .http
        .get(octavia("loadbalancers"))
        .header("X-Auth-Token", &cloud.admin)
        .send()
        .await
        .unwrap();
    let lbs: Value = resp.json().await.unwrap();
    assert_eq!(lbs["loadbalancers"], json!([]));
    let (_, fips) = cloud.get("floatingips").await;
    assert_eq!(fips["floatingips"], json!([]));

    // The new seed is what discovery finds: one external network, the node's port on the
    // new nodes subnet (kept), and the same listening address for everything.
    let (_, external) = cloud.get("networks?router:external=true").await;
    let external = external["networks"].as_array().unwrap();
    assert_eq!(external.len(), 1);
    assert_eq!(external[0]["id"], after.public_network_id.as_str());
    let (_, ports) = cloud.get("ports?fixed_ips=ip_address%3D127.100.0.21").await;
    let ports = ports["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 1);
    assert_ne!(ports[0]["id"], old_node_port.as_str());
    assert_eq!(ports[0]["name"], "node-1");
    assert_eq!(ports[0]["device_owner"], "compute:nova");
    assert_eq!(
        ports[0]["fixed_ips"][0]["subnet_id"],
        after.nodes_subnet_id.as_str()
    );
    assert_eq!(lost["lost"]["node_ports"], json!([ports[0]["id"]]));
    assert!(lost["lost"]["ports"]
        .as_array()
        .unwrap()
        .contains(&ports[0]["id"]));
    assert_eq!(cloud.handle.admin_url(), admin_url);
    let info: Value = cloud
        .http
        .get(cloud.admin_api(""))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        info["networks"]["nodes_subnet_id"],
        after.nodes_subnet_id.as_str()
    );

    // The users and their passwords are the same: a new token works on the new cloud.
    let token = password_token(&cloud.http, &cloud.handle, "demo", "demo").await;
    let (status, nets) = cloud.call(&token, Method::GET, "networks", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(nets["networks"].as_array().unwrap().len(), 2, "{nets}");
    let (status, _) = cloud
        .call(
            &token,
            Method::POST,
            "ports",
            Some(json!({"port": {"network_id": after.private_network_id}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // Without keep_nodes, the node is gone too (the Rust form of the same call).
    let lost = cloud.handle.lose_state(false);
    assert!(lost.node_ports.is_empty());
    let (_, ports) = cloud.get("ports?fixed_ips=ip_address%3D127.100.0.21").await;
    assert_eq!(ports["ports"], json!([]));
    assert_ne!(cloud.handle.seed().nodes_subnet_id, after.nodes_subnet_id);
    cloud.handle.shutdown().await;
}
