//! HTTP-level tests of the Octavia API of the sandbox: version document, fully-populated
//! create, lifecycle and lock, validation errors, lists, batch members, quotas, catalog.

mod octavia_support;

use std::time::Duration;

use octavia_support::{active_lb, config, lb_body, start};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn fault(body: &Value) -> &str {
    assert_eq!(body["faultcode"], "Client", "{body}");
    assert!(body.get("debuginfo").is_some_and(Value::is_null), "{body}");
    body["faultstring"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn version_document_advertises_up_to_the_configured_maximum() {
    let env = start(config(210)).await;
    let (status, body) = env
        .call(Method::GET, &format!("{}/", env.octavia), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let versions = body["versions"].as_array().unwrap();
    assert_eq!(versions[0]["id"], "v2.0");
    assert_eq!(versions[0]["status"], "SUPPORTED");
    // Octavia 2024.2+ (what openstack-rig runs) advertises up to 2.30.
    assert_eq!(versions.last().unwrap()["id"], "v2.30");
    assert_eq!(versions.last().unwrap()["status"], "CURRENT");
    assert!(versions[0]["links"][0]["href"]
        .as_str()
        .unwrap()
        .ends_with("/v2"));
    env.shutdown().await;

    let mut cfg = config(210);
    cfg.octavia_api_version = Some("2.11".into());
    let env = start(cfg).await;
    let (_, body) = env
        .call(Method::GET, &format!("{}/", env.octavia), None)
        .await;
    let versions = body["versions"].as_array().unwrap();
    assert_eq!(versions.last().unwrap()["id"], "v2.11");
    assert_eq!(versions.last().unwrap()["status"], "CURRENT");
    // Fields newer than the advertised version are unknown attributes.
    let lb = active_lb(&env, "old").await;
    let (status, body) = env
        .post(
            "/listeners",
            json!({"listener": {"loadbalancer_id": lb, "protocol": "TCP", "protocol_port": 80, "allowed_cidrs": ["10.0.0.0/8"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(fault(&body).contains("allowed_cidrs"), "{body}");
    let (status, body) = env
        .post(
            "/listeners",
            json!({"listener": {"loadbalancer_id": lb, "protocol": "SCTP", "protocol_port": 80}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "SCTP needs 2.23: {body}");
    let (status, body) = env
        .post(
            "/listeners",
            json!({"listener": {"loadbalancer_id": lb, "protocol": "TCP", "protocol_port": 80,
              "timeout_client_data": 1000, "tags": ["a"]}}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "timeouts (2.1) and tags (2.5) are fine at 2.11: {body}"
    );
    assert!(
        body["listener"].get("allowed_cidrs").is_none(),
        "hidden below 2.12"
    );
    assert_eq!(
        env.get("/flavors").await.0,
        StatusCode::OK,
        "flavors exist since 2.6"
    );
    assert_eq!(
        env.get("/availabilityzones").await.0,
        StatusCode::NOT_FOUND,
        "zones need 2.14"
    );
    env.shutdown().await;
}

#[tokio::test]
async fn fully_populated_create_places_a_real_vip_and_goes_active() {
    let env = start(config(211)).await;
    let body = json!({"loadbalancer": {
        "name": "full", "vip_subnet_id": env.private_subnet, "tags": ["t1"],
        "listeners": [{
            "name": "l1", "protocol": "HTTP", "protocol_port": 8080,
            "default_pool": {
                "name": "p1", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
                "session_persistence": {"type": "SOURCE_IP"},
                "members": [
                    {"address": "127.0.0.11", "protocol_port": 9001},
                    {"address": "127.0.0.12", "protocol_port": 9002, "monitor_port": 9102}
                ],
                "healthmonitor": {"type": "HTTP", "delay": 5, "timeout": 3, "max_retries": 2}
            }
        }]
    }});
    let (status, created) = env.post("/loadbalancers", body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let lb = &created["loadbalancer"];
    assert_eq!(lb["provisioning_status"], "PENDING_CREATE");
    assert_eq!(lb["provider"], "amphora");
    assert_eq!(lb["listeners"].as_array().unwrap().len(), 1);
    assert_eq!(lb["pools"][0]["members"].as_array().unwrap().len(), 2);
    assert_eq!(lb["pools"][0]["healthmonitor"]["url_path"], "/");
    let id = lb["id"].as_str().unwrap().to_string();
    let port_id = lb["vip_port_id"].as_str().unwrap().to_string();
    let (status, port) = env.neutron_get(&format!("/ports/{port_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(port["port"]["device_owner"], "Octavia");
    assert_eq!(port["port"]["name"], format!("octavia-lb-{id}"));
    assert_eq!(
        port["port"]["fixed_ips"][0]["ip_address"],
        lb["vip_address"]
    );
    assert_eq!(lb["vip_network_id"], env.private_network.as_str());

    let shown = env.wait_lb_active(&id).await;
    assert_eq!(
        shown["loadbalancer"]["listeners"][0]["id"],
        lb["listeners"][0]["id"]
    );
    let (status, tree) = env.get(&format!("/loadbalancers/{id}/status")).await;
    assert_eq!(status, StatusCode::OK);
    let l = &tree["statuses"]["loadbalancer"]["listeners"][0];
    assert_eq!(l["provisioning_status"], "ACTIVE");
    assert_eq!(l["pools"][0]["members"].as_array().unwrap().len(), 2);
    assert_eq!(l["pools"][0]["health_monitor"]["type"], "HTTP");
    let (status, stats) = env.get(&format!("/loadbalancers/{id}/stats")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats["stats"]["total_connections"], 0);
    let pool_id = lb["pools"][0]["id"].as_str().unwrap();
    let (_, members) = env.get(&format!("/pools/{pool_id}/members")).await;
    let m2 = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["address"] == "127.0.0.12")
        .unwrap()
        .clone();
    assert_eq!(m2["monitor_port"], 9102);
    env.shutdown().await;
}

#[tokio::test]
async fn mutations_while_pending_are_refused_with_octavias_409s() {
    let mut cfg = config(212);
    cfg.provisioning_delay = Duration::from_millis(1500);
    let env = start(cfg).await;
    let (status, body) = env.post("/loadbalancers", lb_body(&env, "slow")).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = body["loadbalancer"]["id"].as_str().unwrap().to_string();
    let (status, body) = env
        .post(
            "/listeners",
            json!({"listener": {"loadbalancer_id": id, "protocol": "TCP", "protocol_port": 80}}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        fault(&body),
        format!("Load Balancer {id} is immutable and cannot be updated.")
    );
    let (status, body) = env
        .put(
            &format!("/loadbalancers/{id}"),
            json!({"loadbalancer": {"name": "x"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        fault(&body),
        format!("Invalid state PENDING_CREATE of loadbalancer resource {id}")
    );
    env.wait_lb_active(&id).await;

    // A child create puts the LB in PENDING_UPDATE; a second mutation is refused meanwhile.
    let (status, body) = env
        .post(
            "/listeners",
            json!({"listener": {"loadbalancer_id": id, "protocol": "TCP", "protocol_port": 80}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["listener"]["provisioning_status"], "PENDING_CREATE");
    let (_, lb) = env.get(&format!("/loadbalancers/{id}")).await;
    assert_eq!(lb["loadbalancer"]["provisioning_status"], "PENDING_UPDATE");
    let (status, _) = env
        .post("/pools", json!({"pool": {"loadbalancer_id": id, "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN"}}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    env.wait_lb_active(&id).await;
    let (status, body) = env
        .put(
            &format!("/loadbalancers/{id}"),
            json!({"loadbalancer": {"name": "renamed", "tags": ["x"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["loadbalancer"]["provisioning_status"],
        "PENDING_UPDATE"
    );
    assert_eq!(body["loadbalancer"]["name"], "renamed");
    env.wait_lb_active(&id).await;
    // A member change locks its pool and the pool's listener too.
    let (_, listeners) = env.get(&format!("/listeners?loadbalancer_id={id}")).await;
    let listener = listeners["listeners"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = env
        .post("/pools", json!({"pool": {"listener_id": listener, "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN"}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let pool = body["pool"]["id"].as_str().unwrap().to_string();
    env.wait_lb_active(&id).await;
    let (status, _) = env
        .post(
            &format!("/pools/{pool}/members"),
            json!({"member": {"address": "127.0.0.71", "protocol_port": 80}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    for path in [
        format!("/pools/{pool}"),
        format!("/listeners/{listener}"),
        format!("/loadbalancers/{id}"),
    ] {
        let (_, body) = env.get(&path).await;
        let obj = body.as_object().unwrap().values().next().unwrap().clone();
        assert_eq!(obj["provisioning_status"], "PENDING_UPDATE", "{path}");
    }
    env.wait_lb_active(&id).await;
    let (status, body) = env
        .delete(&format!("/loadbalancers/{id}?cascade=true"))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, lb) = env.get(&format!("/loadbalancers/{id}")).await;
    assert_eq!(lb["loadbalancer"]["provisioning_status"], "PENDING_DELETE");
    env.wait_gone(&format!("/loadbalancers/{id}")).await;
    env.shutdown().await;
}

#[tokio::test]
async fn validation_errors_have_octavias_shapes() {
    let env = start(config(213)).await;
    let id = active_lb(&env, "v").await;
    let listener = |extra: Value| {
        let mut l = json!({"loadbalancer_id": id, "protocol": "TCP", "protocol_port": 80});
        if let (Some(o), Some(e)) = (l.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        json!({ "listener": l })
    };
    let cases: Vec<(Value, &str)> = vec![
        (listener(json!({"colour": "red"})), "Unknown attribute for argument listener_.listener: colour"),
        (listener(json!({"protocol_port": "eighty"})), "invalid literal for int() with base 10: 'eighty'"),
        (listener(json!({"protocol_port": 70000})), "Value should be lower or equal to 65535"),
        (listener(json!({"protocol": "FTP"})), "Value should be one of"),
        (
            listener(json!({"allowed_cidrs": ["10.0.0.0/33"]})),
            "Value: '['10.0.0.0/33']'. Value should be IPv4 or IPv6 CIDR format",
        ),
        (listener(json!({"admin_state_up": "maybe"})), "Value not an unambiguous boolean: maybe"),
        (
            json!({"listener": {"loadbalancer_id": id, "protocol": "TCP"}}),
            "Invalid input for field/attribute protocol_port. Value: 'None'. Mandatory field missing.",
        ),
        (json!({"listeners": {}}), "Unknown attribute for argument listener_: listeners"),
    ];
    for (body, needle) in cases {
        let (status, resp) = env.post("/listeners", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {resp}");
        assert!(fault(&resp).contains(needle), "{body} → {resp}");
    }
    let (status, resp) = env
        .raw(Method::POST, &format!("{}/listeners", env.lb), "{not json")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fault(&resp), "Request is not in valid JSON format");
    let missing = "00000000-0000-0000-0000-000000000000";
    let (status, resp) = env
        .post("/listeners", json!({"listener": {"loadbalancer_id": missing, "protocol": "TCP", "protocol_port": 80}}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(fault(&resp), format!("Load Balancer {missing} not found."));

    let (status, body) = env.post("/listeners", listener(json!({}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let lid = body["listener"]["id"].as_str().unwrap().to_string();
    env.wait_lb_active(&id).await;
    let (status, body) = env
        .post("/listeners", listener(json!({"protocol": "HTTP"})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        fault(&body),
        "Another Listener on this Load Balancer is already using protocol TCP and protocol_port 80"
    );
    // UDP has its own port space.
    let (status, _) = env
        .post("/listeners", listener(json!({"protocol": "UDP"})))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    env.wait_lb_active(&id).await;
    // Immutable fields cannot be changed.
    let (status, body) = env
        .put(
            &format!("/listeners/{lid}"),
            json!({"listener": {"protocol_port": 81}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(fault(&body).contains("protocol_port"));
    // Pool protocol must fit the listener.
    let (status, body) = env
        .post(
            "/pools",
            json!({"pool": {"listener_id": lid, "protocol": "UDP", "lb_algorithm": "ROUND_ROBIN"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fault(&body), "Validation failure: The pool protocol 'UDP' is invalid while the listener protocol is 'TCP'.");
    let (status, body) = env
        .post(
            "/pools",
            json!({"pool": {"protocol": "TCP", "lb_algorithm": "ROUND_ROBIN"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        fault(&body),
        "Validation failure: Must provide at least one of: loadbalancer_id, listener_id"
    );
    // VIP placement is required.
    let (status, body) = env
        .post("/loadbalancers", json!({"loadbalancer": {"name": "novip"}}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        fault(&body).starts_with("Validation failure: VIP must contain one of"),
        "{body}"
    );
    // Unknown provider; OVN's restrictions.
    let (status, body) = env
        .post(
            "/loadbalancers",
            json!({"loadbalancer": {"vip_subnet_id": env.private_subnet, "provider": "f5"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fault(&body), "Provider 'f5' is not enabled.");
    let (status, body) = env
        .post(
            "/loadbalancers",
            json!({"loadbalancer": {"vip_subnet_id": env.private_subnet, "provider": "ovn",
            "listeners": [{"protocol": "TCP", "protocol_port": 80,
                "default_pool": {"name": "p", "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN"}}]}}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
    let text = body["faultstring"].as_str().unwrap_or_default();
    assert!(
        text.contains("OVN provider does not support ROUND_ROBIN algorithm"),
        "{body}"
    );
    let (status, body) = env
        .post(
            "/loadbalancers",
            json!({"loadbalancer": {"vip_subnet_id": env.private_subnet, "provider": "ovn",
            "listeners": [{"protocol": "HTTP", "protocol_port": 80}]}}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{body}");
    // 404s.
    let (status, body) = env
        .get("/loadbalancers/00000000-0000-0000-0000-000000000000")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        fault(&body),
        "Load Balancer 00000000-0000-0000-0000-000000000000 not found."
    );
    let (status, body) = env.get("/healthmonitors/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(fault(&body), "Health Monitor nope not found.");
    // A load balancer with children is not deleted without cascade.
    let (status, body) = env.delete(&format!("/loadbalancers/{id}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        fault(&body),
        format!("Validation failure: Cannot delete Load Balancer {id} - it has children")
    );
    env.shutdown().await;
}

/// Found by the openstack CLI and OCCM against real Octavia 19 (docs/fidelity.md): a member
/// created in a pool without health monitor is answered NO_MONITOR at once, not OFFLINE.
#[tokio::test]
async fn new_members_of_unmonitored_pools_are_no_monitor() {
    let env = start(config(238)).await;
    let body = json!({"loadbalancer": {
        "name": "nm", "vip_subnet_id": env.private_subnet,
        "listeners": [{
            "name": "l1", "protocol": "TCP", "protocol_port": 80,
            "default_pool": {"name": "p1", "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN",
                             "members": [{"address": "127.0.0.11", "protocol_port": 9001}]}
        }]
    }});
    let (status, created) = env.post("/loadbalancers", body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let lb = &created["loadbalancer"];
    assert_eq!(
        lb["pools"][0]["members"][0]["operating_status"],
        "NO_MONITOR"
    );
    let id = lb["id"].as_str().unwrap().to_string();
    let pool = lb["pools"][0]["id"].as_str().unwrap().to_string();
    env.wait_lb_active(&id).await;
    let (status, body) = env
        .post(
            &format!("/pools/{pool}/members"),
            json!({"member": {"address": "127.0.0.12", "protocol_port": 9002}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["member"]["operating_status"], "NO_MONITOR");
    env.shutdown().await;
}

#[tokio::test]
async fn monitors_pools_and_members_validate_and_link() {
    let env = start(config(214)).await;
    let id = active_lb(&env, "m").await;
    let (status, body) = env
        .post("/pools", json!({"pool": {"loadbalancer_id": id, "protocol": "UDP", "lb_algorithm": "SOURCE_IP_PORT",
               "session_persistence": {"type": "APP_COOKIE"}}}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = env
        .post("/pools", json!({"pool": {"loadbalancer_id": id, "protocol": "UDP", "lb_algorithm": "SOURCE_IP"}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let pool = body["pool"]["id"].as_str().unwrap().to_string();
    env.wait_lb_active(&id).await;
    let hm = |t: &str| json!({"healthmonitor": {"pool_id": pool, "type": t, "delay": 2, "timeout": 1, "max_retries": 1}});
    let (status, body) = env.post("/healthmonitors", hm("HTTPS")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let tcp_with_path = json!({"healthmonitor": {"pool_id": pool, "type": "TCP", "delay": 1, "timeout": 5,
                                                 "max_retries": 1, "url_path": "/x"}});
    let (status, body) = env.post("/healthmonitors", tcp_with_path).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        fault(&body),
        "url_path is not a valid option for health monitors of type TCP"
    );
    let (status, body) = env.post("/healthmonitors", hm("UDP-CONNECT")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body["healthmonitor"]["url_path"].is_null());
    assert_eq!(body["healthmonitor"]["pools"][0]["id"], pool.as_str());
    env.wait_lb_active(&id).await;
    let (status, body) = env.post("/healthmonitors", hm("UDP-CONNECT")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(fault(&body), "This pool already has a health monitor");
    let (_, p) = env.get(&format!("/pools/{pool}")).await;
    assert!(p["pool"]["healthmonitor_id"].is_string());
    let member = json!({"member": {"address": "127.0.0.21", "protocol_port": 53, "weight": 5}});
    let (status, body) = env
        .post(&format!("/pools/{pool}/members"), member.clone())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mid = body["member"]["id"].as_str().unwrap().to_string();
    env.wait_lb_active(&id).await;
    let (status, body) = env.post(&format!("/pools/{pool}/members"), member).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        fault(&body),
        "Another member on this pool is already using ip 127.0.0.21 on protocol_port 53"
    );
    let (status, body) = env
        .put(
            &format!("/pools/{pool}/members/{mid}"),
            json!({"member": {"weight": 0, "monitor_address": "127.0.0.22"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["member"]["provisioning_status"], "PENDING_UPDATE");
    env.wait_lb_active(&id).await;
    let (status, _) = env
        .put(
            &format!("/pools/{pool}/members/{mid}"),
            json!({"member": {"address": "127.0.0.9"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = env.delete(&format!("/pools/{pool}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    env.wait_gone(&format!("/pools/{pool}")).await;
    env.wait_gone(&format!("/pools/{pool}/members/{mid}")).await;
    let (_, hms) = env.get("/healthmonitors").await;
    assert!(
        hms["healthmonitors"].as_array().unwrap().is_empty(),
        "monitor went with its pool"
    );
    env.shutdown().await;
}

#[tokio::test]
async fn batch_member_update_creates_updates_and_deletes() {
    let env = start(config(215)).await;
    let id = active_lb(&env, "batch").await;
    let (_, body) = env
        .post("/pools", json!({"pool": {"loadbalancer_id": id, "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN"}}))
        .await;
    let pool = body["pool"]["id"].as_str().unwrap().to_string();
    env.wait_lb_active(&id).await;
    let path = format!("/pools/{pool}/members");
    let (status, body) = env
        .put(
            &path,
            json!({"members": [
            {"address": "127.0.0.31", "protocol_port": 80, "name": "a"},
            {"address": "127.0.0.32", "protocol_port": 80, "name": "b"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    env.wait_lb_active(&id).await;
    let (_, listed) = env.get(&path).await;
    let a_id = listed["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "a")
        .unwrap()["id"]
        .clone();
    let (status, _) = env
        .put(
            &path,
            json!({"members": [
            {"address": "127.0.0.31", "protocol_port": 80, "name": "a2", "weight": 3},
            {"address": "127.0.0.33", "protocol_port": 80, "name": "c"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    env.wait_lb_active(&id).await;
    let (_, listed) = env.get(&path).await;
    let members = listed["members"].as_array().unwrap();
    let mut names: Vec<&str> = members
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, vec!["a2", "c"]);
    let a = members.iter().find(|m| m["name"] == "a2").unwrap();
    assert_eq!(
        a["id"], a_id,
        "matched by address and port, updated in place"
    );
    assert_eq!(a["weight"], 3);
    // additive_only keeps the others.
    let (status, _) = env
        .put(
            &format!("{path}?additive_only=true"),
            json!({"members": [{"address": "127.0.0.34", "protocol_port": 80}]}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    env.wait_lb_active(&id).await;
    let (_, listed) = env.get(&path).await;
    assert_eq!(listed["members"].as_array().unwrap().len(), 3);
    let (status, body) = env
        .put(
            &path,
            json!({"members": [{"address": "nope", "protocol_port": 80}]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    env.shutdown().await;
}

#[tokio::test]
async fn lists_filter_paginate_and_trim_fields() {
    let env = start(config(216)).await;
    let mut ids = Vec::new();
    for (i, tags) in [json!(["a", "b"]), json!(["a"]), json!(["c"]), json!([])]
        .into_iter()
        .enumerate()
    {
        let (status, body) = env
            .post("/loadbalancers", json!({"loadbalancer": {"name": format!("lb{i}"), "vip_subnet_id": env.private_subnet, "tags": tags}}))
            .await;
        assert_eq!(status, StatusCode::CREATED);
        ids.push(body["loadbalancer"]["id"].as_str().unwrap().to_string());
    }
    let names = |v: &Value| -> Vec<String> {
        v["loadbalancers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, all) = env.get("/loadbalancers").await;
    assert_eq!(names(&all), vec!["lb0", "lb1", "lb2", "lb3"]);
    assert!(all["loadbalancers_links"].as_array().unwrap().is_empty());
    let (_, v) = env.get("/loadbalancers?tags=a,b").await;
    assert_eq!(names(&v), vec!["lb0"]);
    let (_, v) = env.get("/loadbalancers?tags-any=a,c").await;
    assert_eq!(names(&v), vec!["lb0", "lb1", "lb2"]);
    let (_, v) = env.get("/loadbalancers?not-tags=a").await;
    assert_eq!(names(&v), vec!["lb2", "lb3"]);
    let (_, v) = env.get("/loadbalancers?not-tags-any=a,c").await;
    assert_eq!(names(&v), vec!["lb3"]);
    let (_, v) = env.get("/loadbalancers?name=lb2").await;
    assert_eq!(names(&v), vec!["lb2"]);
    let (_, v) = env.get("/loadbalancers?fields=id&fields=name").await;
    assert_eq!(v["loadbalancers"][0].as_object().unwrap().len(), 2);
    let (_, v) = env
        .get(&format!("/loadbalancers/{}?fields=name", ids[0]))
        .await;
    assert_eq!(v["loadbalancer"], json!({"name": "lb0"}));
    let (_, page1) = env.get("/loadbalancers?limit=2").await;
    assert_eq!(names(&page1), vec!["lb0", "lb1"]);
    let links = page1["loadbalancers_links"].as_array().unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0]["rel"], "next");
    let next = links[0]["href"].as_str().unwrap();
    assert!(next.contains(&format!("marker={}", ids[1])), "{next}");
    let (_, page2) = env.call(Method::GET, next, None).await;
    assert_eq!(names(&page2), vec!["lb2", "lb3"]);
    let rels: Vec<&str> = page2["loadbalancers_links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["rel"].as_str().unwrap())
        .collect();
    // Octavia offers "next" after every full page, without looking ahead.
    assert_eq!(rels, vec!["next", "previous"]);
    // As real Octavia: the links keep the sort but drop every filter.
    let (_, filtered) = env
        .get("/loadbalancers?limit=1&name=lb2&sort=name:asc")
        .await;
    let href = filtered["loadbalancers_links"][0]["href"].as_str().unwrap();
    assert!(
        href.contains("sort=name") && !href.contains("name=lb2"),
        "{href}"
    );
    let (_, page3) = env
        .get(&format!("/loadbalancers?limit=2&marker={}", ids[3]))
        .await;
    assert!(page3["loadbalancers"].as_array().unwrap().is_empty());
    let (_, v) = env
        .get(&format!(
            "/loadbalancers?limit=2&marker={}&page_reverse=true",
            ids[2]
        ))
        .await;
    assert_eq!(names(&v), vec!["lb0", "lb1"]);
    let (_, v) = env.get("/loadbalancers?sort=name:desc").await;
    assert_eq!(names(&v), vec!["lb3", "lb2", "lb1", "lb0"]);
    let (status, body) = env.get("/loadbalancers?limit=2&marker=bogus").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        fault(&body),
        "Supplied pagination marker 'bogus' is not valid."
    );
    env.shutdown().await;
}

#[tokio::test]
async fn listener_and_pool_lists_honour_the_loadbalancer_id_filter() {
    let env = start(config(241)).await;
    let mut lbs = Vec::new();
    for name in ["filter-a", "filter-b"] {
        let lb = active_lb(&env, name).await;
        let (status, body) = env
            .post(
                "/listeners",
                json!({"listener": {"loadbalancer_id": lb, "protocol": "TCP", "protocol_port": 80, "name": format!("{name}-l")}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        env.wait_lb_active(&lb).await;
        let (status, body) = env
            .post(
                "/pools",
                json!({"pool": {"loadbalancer_id": lb, "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN", "name": format!("{name}-p")}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        env.wait_lb_active(&lb).await;
        lbs.push(lb);
    }
    let names = |v: &Value, plural: &str| -> Vec<String> {
        v[plural]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, all) = env.get("/listeners").await;
    assert_eq!(names(&all, "listeners"), vec!["filter-a-l", "filter-b-l"]);
    let (_, v) = env
        .get(&format!("/listeners?loadbalancer_id={}", lbs[1]))
        .await;
    assert_eq!(names(&v, "listeners"), vec!["filter-b-l"]);
    let (_, v) = env.get(&format!("/pools?loadbalancer_id={}", lbs[0])).await;
    assert_eq!(names(&v, "pools"), vec!["filter-a-p"]);
    // An id that owns nothing lists nothing (it is not an unknown attribute to ignore).
    let (status, v) = env.get("/pools?loadbalancer_id=no-such-lb").await;
    assert_eq!(status, StatusCode::OK);
    assert!(v["pools"].as_array().unwrap().is_empty(), "{v}");
    env.shutdown().await;
}

#[tokio::test]
async fn quotas_are_read_set_and_enforced() {
    let env = start(config(217)).await;
    let (status, body) = env.get("/quotas/defaults").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["quota"]["load_balancer"].is_i64());
    let project = env.project_id.clone();
    let (status, body) = env
        .put(
            &format!("/quotas/{project}"),
            json!({"quota": {"loadbalancer": 1, "listener": 5}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["quota"]["load_balancer"], 1);
    let (_, body) = env.get(&format!("/quotas/{project}")).await;
    assert_eq!(body["quota"]["listener"], 5);
    let (status, body) = env
        .put(
            &format!("/quotas/{project}"),
            json!({"quota": {"bananas": 1}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    active_lb(&env, "one").await;
    let (status, body) = env.post("/loadbalancers", lb_body(&env, "two")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        fault(&body),
        "Quota has been met for resources: Load Balancer"
    );
    let (_, list) = env.get("/quotas").await;
    assert!(list["quotas"]
        .as_array()
        .unwrap()
        .iter()
        .any(|q| q["project_id"] == project.as_str()));
    let (status, _) = env.delete(&format!("/quotas/{project}")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = env.post("/loadbalancers", lb_body(&env, "two")).await;
    assert_eq!(status, StatusCode::CREATED);
    env.shutdown().await;
}

#[tokio::test]
async fn lb_error_fault_and_catalog() {
    let mut cfg = config(218);
    cfg.lb_error_after_create = true;
    let env = start(cfg).await;
    let (_, body) = env.post("/loadbalancers", lb_body(&env, "doomed")).await;
    let id = body["loadbalancer"]["id"].as_str().unwrap().to_string();
    env.wait_for(
        &format!("/loadbalancers/{id}"),
        "/loadbalancer/provisioning_status",
        "ERROR",
    )
    .await;
    // An ERROR load balancer can be deleted, but not changed.
    let (status, _) = env
        .put(
            &format!("/loadbalancers/{id}"),
            json!({"loadbalancer": {"name": "x"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = env.delete(&format!("/loadbalancers/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    env.wait_gone(&format!("/loadbalancers/{id}")).await;

    let (_, providers) = env.get("/providers").await;
    let names: Vec<&str> = providers["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["amphora", "octavia", "ovn"]);
    let (_, flavors) = env.get("/flavors").await;
    let flavor = flavors["flavors"][0]["id"].as_str().unwrap().to_string();
    let (status, _) = env.get(&format!("/flavors/{flavor}")).await;
    assert_eq!(status, StatusCode::OK);
    let (_, profiles) = env.get("/flavorprofiles").await;
    assert_eq!(profiles["flavorprofiles"][0]["provider_name"], "amphora");
    let (_, azs) = env.get("/availabilityzones").await;
    assert_eq!(azs["availability_zones"][0]["name"], "nova");
    let (status, body) = env
        .post("/loadbalancers", json!({"loadbalancer": {"vip_subnet_id": env.private_subnet, "flavor_id": flavor, "availability_zone": "nova"}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = env
        .post("/loadbalancers", json!({"loadbalancer": {"vip_subnet_id": env.private_subnet, "availability_zone": "mars"}}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    env.shutdown().await;
}

#[tokio::test]
async fn vip_on_network_or_existing_port() {
    let env = start(config(219)).await;
    let (status, body) = env
        .post(
            "/loadbalancers",
            json!({"loadbalancer": {"vip_network_id": env.private_network}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["loadbalancer"]["vip_subnet_id"],
        env.private_subnet.as_str()
    );
    let (status, port) = env
        .call(
            Method::POST,
            &format!("{}/v2.0/ports", env.neutron),
            Some(json!({"port": {"network_id": env.private_network}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{port}");
    let port_id = port["port"]["id"].as_str().unwrap().to_string();
    let (status, body) = env
        .post(
            "/loadbalancers",
            json!({"loadbalancer": {"vip_port_id": port_id}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["loadbalancer"]["vip_port_id"], port_id.as_str());
    let id = body["loadbalancer"]["id"].as_str().unwrap().to_string();
    env.wait_lb_active(&id).await;
    env.delete(&format!("/loadbalancers/{id}")).await;
    env.wait_gone(&format!("/loadbalancers/{id}")).await;
    let (status, _) = env.neutron_get(&format!("/ports/{port_id}")).await;
    assert_eq!(status, StatusCode::OK, "a port the user brought stays");
    let (status, body) = env
        .post(
            "/loadbalancers",
            json!({"loadbalancer": {"vip_subnet_id": "00000000-0000-0000-0000-000000000001"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    env.shutdown().await;
}

#[tokio::test]
async fn projects_see_only_their_own_load_balancers() {
    let env = start(config(230)).await;
    let admin_lb = active_lb(&env, "admins").await;
    let demo = env.as_demo().await;
    let (status, body) = demo.get("/loadbalancers").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body["loadbalancers"].as_array().unwrap().is_empty(),
        "{body}"
    );
    let (status, body) = demo.get(&format!("/loadbalancers/{admin_lb}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        fault(&body),
        "Policy does not allow this request to be performed."
    );
    let (status, _) = demo.delete(&format!("/loadbalancers/{admin_lb}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A project_id other than the caller's needs admin.
    let (status, _) = demo
        .post("/loadbalancers", json!({"loadbalancer": {"vip_subnet_id": env.private_subnet, "project_id": env.project_id}}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = demo.post("/loadbalancers", lb_body(&env, "mine")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["loadbalancer"]["project_id"], demo.project_id.as_str());
    let (_, all) = env.get("/loadbalancers").await;
    assert_eq!(
        all["loadbalancers"].as_array().unwrap().len(),
        2,
        "admin sees every project"
    );
    let (_, filtered) = env
        .get(&format!("/loadbalancers?project_id={}", demo.project_id))
        .await;
    assert_eq!(filtered["loadbalancers"].as_array().unwrap().len(), 1);
    env.shutdown().await;
}

/// A 501 body: Octavia's faultcode for server-side refusals is `Server`.
fn server_fault(body: &Value) -> &str {
    assert_eq!(body["faultcode"], "Server", "{body}");
    assert!(body.get("debuginfo").is_some_and(Value::is_null), "{body}");
    body["faultstring"].as_str().unwrap_or_default()
}

/// The amphora driver's refusals, as Octavia 19 answers them (checked against the rig; the
/// fidelity catalogue keeps checking): 501 on single pool creates/updates with
/// SOURCE_IP_PORT and on members of the other family in UDP pools, while a fully-populated
/// create is never validated by the driver and takes SOURCE_IP_PORT.
#[tokio::test]
async fn amphora_refuses_what_its_driver_refuses() {
    let env = start(config(226)).await;
    let id = active_lb(&env, "amp").await;
    let refusal = "Provider 'amphora' does not support a requested option: Amphora provider does not support SOURCE_IP_PORT algorithm.";
    let (status, body) = env
        .post("/pools", json!({"pool": {"loadbalancer_id": id, "protocol": "TCP", "lb_algorithm": "SOURCE_IP_PORT"}}))
        .await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{body}");
    assert_eq!(
        body,
        json!({"faultcode": "Server", "faultstring": refusal, "debuginfo": null})
    );
    let (status, body) = env
        .post("/pools", json!({"pool": {"loadbalancer_id": id, "protocol": "UDP", "lb_algorithm": "ROUND_ROBIN"}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let pool = body["pool"]["id"].as_str().unwrap().to_string();
    env.wait_lb_active(&id).await;
    let (status, body) = env
        .put(
            &format!("/pools/{pool}"),
            json!({"pool": {"lb_algorithm": "SOURCE_IP_PORT"}}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{body}");
    assert_eq!(server_fault(&body), refusal);
    // The VIP is IPv4: an IPv6 member of a UDP pool is refused, alone or in a batch.
    let mixed = "Provider 'amphora' does not support a requested option: This provider doesn't support mixing IPv4 and IPv6 addresses for its VIP and members in UDP load balancers.";
    let (status, body) = env
        .post(
            &format!("/pools/{pool}/members"),
            json!({"member": {"address": "fd00::5", "protocol_port": 53}}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{body}");
    assert_eq!(server_fault(&body), mixed);
    let (status, body) = env
        .put(&format!("/pools/{pool}/members"), json!({"members": [
            {"address": "10.0.0.5", "protocol_port": 53}, {"address": "fd00::5", "protocol_port": 53}]}))
        .await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{body}");
    assert_eq!(server_fault(&body), mixed);
    let (status, body) = env
        .post(
            &format!("/pools/{pool}/members"),
            json!({"member": {"address": "10.0.0.5", "protocol_port": 53}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // The alias names itself in the message; the graph path accepts the algorithm.
    let (status, body) = env
        .post(
            "/loadbalancers",
            json!({"loadbalancer": {"vip_subnet_id": env.private_subnet, "provider": "octavia",
            "listeners": [{"protocol": "TCP", "protocol_port": 80,
                "default_pool": {"name": "p", "protocol": "TCP", "lb_algorithm": "SOURCE_IP_PORT"}}]}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let lb2 = body["loadbalancer"]["id"].as_str().unwrap().to_string();
    env.wait_lb_active(&lb2).await;
    let (status, body) = env
        .post("/pools", json!({"pool": {"loadbalancer_id": lb2, "protocol": "TCP", "lb_algorithm": "SOURCE_IP_PORT"}}))
        .await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{body}");
    assert!(
        server_fault(&body).starts_with(
            "Provider 'octavia' does not support a requested option: Amphora provider"
        ),
        "{body}"
    );
    env.shutdown().await;
}
