//! Neutron v2.0 of the sandbox over HTTP: networks, subnets, ports, floating IPs, routers,
//! security groups, filters, fields, pagination, tags, If-Match, extensions and quotas.

mod sandbox_support;

use reqwest::{Method, StatusCode};
use sandbox_support::*;
use serde_json::{json, Value};

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn pre_created_world() {
    let cloud = start().await;
    let seed = cloud.handle.seed().clone();
    let (_, nets) = cloud.get("networks?router:external=True").await;
    assert_eq!(ids(&nets["networks"]), vec![seed.public_network_id.clone()]);
    assert_eq!(nets["networks"][0]["name"], "public");
    let (_, sub) = cloud
        .get(&format!("subnets/{}", seed.nodes_subnet_id))
        .await;
    assert_eq!(sub["subnet"]["cidr"], "127.100.0.0/16");
    let (_, sub) = cloud
        .get(&format!("subnets/{}", seed.public_subnet_id))
        .await;
    assert_eq!(sub["subnet"]["cidr"], "127.200.0.0/16");
    assert_eq!(
        sub["subnet"]["allocation_pools"],
        json!([{"start": "127.200.0.2", "end": "127.200.255.254"}])
    );
    let (_, r) = cloud.get(&format!("routers/{}", seed.router_id)).await;
    assert_eq!(
        r["router"]["external_gateway_info"]["network_id"],
        seed.public_network_id
    );
    // demo sees the shared and external networks but not admin's router.
    let (_, nets) = cloud.call(&cloud.demo, Method::GET, "networks", None).await;
    assert_eq!(nets["networks"].as_array().unwrap().len(), 2);
    let (status, _) = cloud
        .call(
            &cloud.demo,
            Method::GET,
            &format!("routers/{}", seed.router_id),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    cloud.handle.shutdown().await;
}

#[tokio::test]
async fn network_subnet_port_lifecycle() {
    let cloud = start().await;
    let (status, net) = cloud
        .post(
            "networks",
            json!({"network": {"name": "n1", "description": "d"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let net_id = net["network"]["id"].as_str().unwrap().to_string();
    assert_eq!(net["network"]["status"], "ACTIVE");
    assert_eq!(net["network"]["revision_number"], 0);

    let (status, sub) = cloud
        .post(
            "subnets",
            json!({"subnet": {"network_id": net_id, "cidr": "192.168.5.0/24", "ip_version": 4,
                "allocation_pools": [{"start": "192.168.5.10", "end": "192.168.5.12"}]}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sub}");
    let sub_id = sub["subnet"]["id"].as_str().unwrap().to_string();
    assert_eq!(sub["subnet"]["gateway_ip"], "192.168.5.1");
    let (_, net) = cloud.get(&format!("networks/{net_id}")).await;
    assert_eq!(net["network"]["subnets"], json!([sub_id]));

    // Allocation runs through the pool, then it is exhausted.
    let mut addresses = Vec::new();
    for i in 0..3 {
        let (status, port) = cloud
            .post(
                "ports",
                json!({"port": {"network_id": net_id, "name": format!("p{i}")}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        addresses.push(
            port["port"]["fixed_ips"][0]["ip_address"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        assert_eq!(
            port["port"]["security_groups"].as_array().unwrap().len(),
            1,
            "default group"
        );
    }
    assert_eq!(
        addresses,
        vec!["192.168.5.10", "192.168.5.11", "192.168.5.12"]
    );
    let (status, err) = cloud
        .post("ports", json!({"port": {"network_id": net_id}}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(neutron_error(&err).0, "IpAddressGenerationFailure");

    // A fixed IP outside the pool but inside the CIDR, then the same again conflicts.
    let body = json!({"port": {"network_id": net_id, "fixed_ips": [{"ip_address": "192.168.5.100"}],
        "device_owner": "compute:nova", "device_id": "vm-1", "port_security_enabled": false,
        "security_groups": []}});
    let (status, port) = cloud.post("ports", body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{port}");
    assert_eq!(port["port"]["fixed_ips"][0]["subnet_id"], sub_id);
    assert_eq!(port["port"]["status"], "ACTIVE");
    let port_id = port["port"]["id"].as_str().unwrap().to_string();
    let (status, err) = cloud.post("ports", body).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(neutron_error(&err).0, "IpAddressAlreadyAllocated");

    // Security groups need port security.
    let (status, _) = cloud
        .put(
            &format!("ports/{port_id}"),
            json!({"port": {"allowed_address_pairs": [{"ip_address": "10.1.1.1"}]}}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Filters and fields.
    let (_, ports) = cloud
        .get("ports?device_id=vm-1&fields=id&fields=name")
        .await;
    assert_eq!(ports["ports"], json!([{"id": port_id, "name": ""}]));
    let (_, ports) = cloud
        .get(&format!(
            "ports?network_id={net_id}&fixed_ips=ip_address%3D192.168.5.11"
        ))
        .await;
    assert_eq!(ports["ports"][0]["name"], "p1");
    // One key repeated: alternatives; two keys: both on the same allocation (real Neutron).
    let (_, ports) = cloud
        .get("ports?fixed_ips=ip_address%3D192.168.5.11&fixed_ips=ip_address%3D192.168.5.100&fields=id")
        .await;
    assert_eq!(ports["ports"].as_array().map(Vec::len), Some(2), "{ports}");
    let (_, ports) = cloud
        .get(&format!(
            "ports?fixed_ips=ip_address%3D192.168.5.100&fixed_ips=subnet_id%3D{sub_id}&fields=id"
        ))
        .await;
    assert_eq!(ports["ports"], json!([{"id": port_id}]));
    let (_, ports) = cloud
        .get("ports?fixed_ips=ip_address%3D192.168.5.100&fixed_ips=subnet_id%3Dnot-that-one&fields=id")
        .await;
    assert_eq!(ports["ports"], json!([]));
    let (status, err) = cloud.get("ports?colour=blue").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        neutron_error(&err).1,
        "['colour'] is invalid attribute for filtering"
    );

    // Update bumps revision; If-Match guards it.
    let (status, p) = cloud
        .put(
            &format!("ports/{port_id}"),
            json!({"port": {"name": "renamed"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(p["port"]["revision_number"], 1);
    let resp = cloud
        .http
        .put(cloud.neutron(&format!("ports/{port_id}")))
        .header("X-Auth-Token", &cloud.admin)
        .header("If-Match", "revision_number=0")
        .json(&json!({"port": {"name": "x"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PRECONDITION_FAILED);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(neutron_error(&err).0, "RevisionNumberConstraintFailed");

    // Busy subnet and network cannot go; after the ports they can.
    let (status, err) = cloud.delete(&format!("subnets/{sub_id}")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(neutron_error(&err).0, "SubnetInUse");
    let (status, err) = cloud.delete(&format!("networks/{net_id}")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(neutron_error(&err).0, "NetworkInUse");
    let (_, ports) = cloud.get(&format!("ports?network_id={net_id}")).await;
    for id in ids(&ports["ports"]) {
        assert_eq!(
            cloud.delete(&format!("ports/{id}")).await.0,
            StatusCode::NO_CONTENT
        );
    }
    assert_eq!(
        cloud.delete(&format!("networks/{net_id}")).await.0,
        StatusCode::NO_CONTENT
    );
    let (status, err) = cloud.get(&format!("subnets/{sub_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        neutron_error(&err),
        (
            "SubnetNotFound".into(),
            format!("Subnet {sub_id} could not be found.")
        )
    );
    cloud.handle.shutdown().await;
}

#[tokio::test]
async fn floating_ip_association_lifecycle() {
    let cloud = start().await;
    let seed = cloud.handle.seed().clone();
    let (_, port) = cloud
        .post("ports", json!({"port": {"network_id": seed.private_network_id, "fixed_ips": [{"subnet_id": seed.nodes_subnet_id}]}}))
        .await;
    let port_id = port["port"]["id"].as_str().unwrap().to_string();
    let fixed = port["port"]["fixed_ips"][0]["ip_address"]
        .as_str()
        .unwrap()
        .to_string();

    let (status, fip) = cloud
        .post(
            "floatingips",
            json!({"floatingip": {"floating_network_id": seed.public_network_id,
            "floating_ip_address": "127.200.3.4", "description": "mine"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{fip}");
    let f = &fip["floatingip"];
    assert_eq!(f["floating_ip_address"], "127.200.3.4");
    assert_eq!(f["status"], "DOWN");
    assert_eq!(f["port_id"], Value::Null);
    assert_eq!(f["description"], "mine");
    let fip_id = f["id"].as_str().unwrap().to_string();

    // Same address again: taken.
    let (status, _) = cloud
        .post("floatingips", json!({"floatingip": {"floating_network_id": seed.public_network_id, "floating_ip_address": "127.200.3.4"}}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // On a subnet.
    let (status, other) = cloud
        .post("floatingips", json!({"floatingip": {"floating_network_id": seed.public_network_id, "subnet_id": seed.public_subnet_id}}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let other_id = other["floatingip"]["id"].as_str().unwrap().to_string();
    // Not on an internal network.
    let (status, _) = cloud
        .post(
            "floatingips",
            json!({"floatingip": {"floating_network_id": seed.private_network_id}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, f) = cloud
        .put(
            &format!("floatingips/{fip_id}"),
            json!({"floatingip": {"port_id": port_id}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{f}");
    assert_eq!(f["floatingip"]["status"], "ACTIVE");
    assert_eq!(f["floatingip"]["fixed_ip_address"], fixed);
    assert_eq!(f["floatingip"]["router_id"], seed.router_id);
    let (_, list) = cloud.get(&format!("floatingips?port_id={port_id}")).await;
    assert_eq!(ids(&list["floatingips"]), vec![fip_id.clone()]);

    // A second FIP on the same fixed IP is refused.
    let (status, err) = cloud
        .put(
            &format!("floatingips/{other_id}"),
            json!({"floatingip": {"port_id": port_id}}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(neutron_error(&err).0, "FloatingIPPortAlreadyAssociated");

    // Disassociate, re-associate, then deleting the port disassociates.
    let (_, f) = cloud
        .put(
            &format!("floatingips/{fip_id}"),
            json!({"floatingip": {"port_id": null}}),
        )
        .await;
    assert_eq!(f["floatingip"]["status"], "DOWN");
    cloud
        .put(
            &format!("floatingips/{fip_id}"),
            json!({"floatingip": {"port_id": port_id}}),
        )
        .await;
    assert_eq!(
        cloud.delete(&format!("ports/{port_id}")).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, f) = cloud.get(&format!("floatingips/{fip_id}")).await;
    assert_eq!(f["floatingip"]["port_id"], Value::Null);
    assert_eq!(
        cloud.delete(&format!("floatingips/{fip_id}")).await.0,
        StatusCode::NO_CONTENT
    );
    // The address is free again.
    let (status, _) = cloud
        .post("floatingips", json!({"floatingip": {"floating_network_id": seed.public_network_id, "floating_ip_address": "127.200.3.4"}}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    cloud.handle.shutdown().await;
}

#[tokio::test]
async fn floating_ip_needs_a_router_to_the_subnet() {
    let cloud = start().await;
    let seed = cloud.handle.seed().clone();
    let (_, net) = cloud
        .post("networks", json!({"network": {"name": "isolated"}}))
        .await;
    let net_id = net["network"]["id"].as_str().unwrap().to_string();
    let (_, sub) = cloud
        .post(
            "subnets",
            json!({"subnet": {"network_id": net_id, "cidr": "172.16.0.0/24", "ip_version": 4}}),
        )
        .await;
    let sub_id = sub["subnet"]["id"].as_str().unwrap().to_string();
    let (_, port) = cloud
        .post("ports", json!({"port": {"network_id": net_id}}))
        .await;
    let port_id = port["port"]["id"].as_str().unwrap().to_string();
    let (status, err) = cloud
        .post("floatingips", json!({"floatingip": {"floating_network_id": seed.public_network_id, "port_id": port_id}}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        neutron_error(&err).0,
        "ExternalGatewayForFloatingIPNotFound"
    );

    // Router with gateway + interface makes it work.
    let (status, r) = cloud
        .post("routers", json!({"router": {"name": "r2", "external_gateway_info": {"network_id": seed.public_network_id}}}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let router_id = r["router"]["id"].as_str().unwrap().to_string();
    let (status, iface) = cloud
        .put(
            &format!("routers/{router_id}/add_router_interface"),
            json!({"subnet_id": sub_id}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(iface["subnet_id"], sub_id);
    let (status, fip) = cloud
        .post("floatingips", json!({"floatingip": {"floating_network_id": seed.public_network_id, "port_id": port_id}}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(fip["floatingip"]["router_id"], router_id);
    // The interface is needed by the FIP; the router has ports.
    let (status, _) = cloud
        .put(
            &format!("routers/{router_id}/remove_router_interface"),
            json!({"subnet_id": sub_id}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, err) = cloud.delete(&format!("routers/{router_id}")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(neutron_error(&err).0, "RouterInUse");
    cloud
        .delete(&format!(
            "floatingips/{}",
            fip["floatingip"]["id"].as_str().unwrap()
        ))
        .await;
    let (status, _) = cloud
        .put(
            &format!("routers/{router_id}/remove_router_interface"),
            json!({"subnet_id": sub_id}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        cloud.delete(&format!("routers/{router_id}")).await.0,
        StatusCode::NO_CONTENT
    );
    cloud.handle.shutdown().await;
}

#[tokio::test]
async fn security_groups_and_rules() {
    let cloud = start().await;
    let (status, sg) = cloud
        .post(
            "security-groups",
            json!({"security_group": {"name": "web", "description": "w"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let sg_id = sg["security_group"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        sg["security_group"]["security_group_rules"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "egress v4+v6"
    );
    let rule = json!({"security_group_rule": {"security_group_id": sg_id, "direction": "ingress",
        "protocol": "tcp", "port_range_min": 30000, "port_range_max": 30001, "remote_ip_prefix": "10.0.0.5/8"}});
    let (status, r) = cloud.post("security-group-rules", rule.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    assert_eq!(r["security_group_rule"]["remote_ip_prefix"], "10.0.0.0/8");
    assert_eq!(r["security_group_rule"]["ethertype"], "IPv4");
    let (status, err) = cloud.post("security-group-rules", rule).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(neutron_error(&err).0, "SecurityGroupRuleExists");
    let (_, sg) = cloud.get(&format!("security-groups/{sg_id}")).await;
    assert_eq!(sg["security_group"]["revision_number"], 1);
    let bad = json!({"security_group_rule": {"security_group_id": sg_id, "direction": "ingress",
        "protocol": "tcp", "port_range_min": 20, "port_range_max": 10}});
    assert_eq!(
        cloud.post("security-group-rules", bad).await.0,
        StatusCode::BAD_REQUEST
    );
    let bad = json!({"security_group_rule": {"security_group_id": sg_id, "direction": "sideways"}});
    assert_eq!(
        cloud.post("security-group-rules", bad).await.0,
        StatusCode::BAD_REQUEST
    );
    let bad = json!({"security_group_rule": {"security_group_id": sg_id, "direction": "ingress", "protocol": "banana"}});
    assert_eq!(
        cloud.post("security-group-rules", bad).await.0,
        StatusCode::BAD_REQUEST
    );

    // In use by a port → 409; free → deleted with its rules.
    let seed = cloud.handle.seed().clone();
    let (_, port) = cloud
        .post(
            "ports",
            json!({"port": {"network_id": seed.private_network_id, "security_groups": [sg_id]}}),
        )
        .await;
    let (status, err) = cloud.delete(&format!("security-groups/{sg_id}")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(neutron_error(&err).0, "SecurityGroupInUse");
    cloud
        .put(
            &format!("ports/{}", port["port"]["id"].as_str().unwrap()),
            json!({"port": {"security_groups": []}}),
        )
        .await;
    assert_eq!(
        cloud.delete(&format!("security-groups/{sg_id}")).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, rules) = cloud
        .get(&format!("security-group-rules?security_group_id={sg_id}"))
        .await;
    assert_eq!(rules["security_group_rules"], json!([]));

    // Each project gets its own default group on first look.
    let (_, groups) = cloud
        .call(
            &cloud.demo,
            Method::GET,
            "security-groups?name=default",
            None,
        )
        .await;
    assert_eq!(groups["security_groups"].as_array().unwrap().len(), 1);
    cloud.handle.shutdown().await;
}

#[tokio::test]
async fn tags_api_and_tag_filters() {
    let cloud = start().await;
    let (_, net) = cloud
        .post("networks", json!({"network": {"name": "tagged"}}))
        .await;
    let id = net["network"]["id"].as_str().unwrap().to_string();
    let (status, t) = cloud
        .put(
            &format!("networks/{id}/tags"),
            json!({"tags": ["a", "b", "a"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(t["tags"], json!(["a", "b"]));
    let (status, _) = cloud.put(&format!("networks/{id}/tags/c"), json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        cloud.get(&format!("networks/{id}/tags/c")).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        cloud.get(&format!("networks/{id}/tags/zzz")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        cloud.delete(&format!("networks/{id}/tags/a")).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, t) = cloud.get(&format!("networks/{id}/tags")).await;
    assert_eq!(t["tags"], json!(["b", "c"]));
    let (_, n) = cloud.get(&format!("networks/{id}")).await;
    assert_eq!(n["network"]["revision_number"], 3);

    let (_, l) = cloud.get("networks?tags=b,c").await;
    assert_eq!(ids(&l["networks"]), vec![id.clone()]);
    let (_, l) = cloud.get("networks?tags-any=zzz,c").await;
    assert_eq!(ids(&l["networks"]), vec![id.clone()]);
    let (_, l) = cloud.get("networks?not-tags-any=b").await;
    assert!(!ids(&l["networks"]).contains(&id));
    assert_eq!(
        cloud.delete(&format!("networks/{id}/tags")).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, t) = cloud.get(&format!("networks/{id}/tags")).await;
    assert_eq!(t["tags"], json!([]));

    // Floating IPs, ports and security groups are taggable too.
    let seed = cloud.handle.seed().clone();
    let (_, fip) = cloud
        .post(
            "floatingips",
            json!({"floatingip": {"floating_network_id": seed.public_network_id}}),
        )
        .await;
    let fid = fip["floatingip"]["id"].as_str().unwrap();
    assert_eq!(
        cloud
            .put(&format!("floatingips/{fid}/tags/kube"), json!({}))
            .await
            .0,
        StatusCode::CREATED
    );
    let (_, l) = cloud.get("floatingips?tags=kube").await;
    assert_eq!(ids(&l["floatingips"]), vec![fid.to_string()]);
    let (_, sg) = cloud
        .post("security-groups", json!({"security_group": {"name": "t"}}))
        .await;
    let sid = sg["security_group"]["id"].as_str().unwrap();
    assert_eq!(
        cloud
            .put(
                &format!("security-groups/{sid}/tags"),
                json!({"tags": ["x"]})
            )
            .await
            .0,
        StatusCode::OK
    );
    cloud.handle.shutdown().await;
}

#[tokio::test]
async fn pagination_and_sorting() {
    let cloud = start().await;
    for i in 0..5 {
        cloud
            .post(
                "security-groups",
                json!({"security_group": {"name": format!("pg{i}")}}),
            )
            .await;
    }
    let mut seen = Vec::new();
    let mut url = "security-groups?limit=2&sort_key=name&sort_dir=asc&description=".to_string();
    // Bounded: 5 items + defaults at 2 per page.
    for _ in 0..10 {
        let (status, page) = cloud.get(&url).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let names: Vec<String> = page["security_groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap().to_string())
            .collect();
        seen.extend(names);
        match page["security_groups_links"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["rel"] == "next"))
        {
            Some(next) => {
                let href = next["href"].as_str().unwrap();
                url = href.split("/v2.0/").nth(1).unwrap().to_string();
            }
            None => break,
        }
    }
    let pg: Vec<&String> = seen.iter().filter(|n| n.starts_with("pg")).collect();
    assert_eq!(pg, vec!["pg0", "pg1", "pg2", "pg3", "pg4"]);
    cloud.handle.shutdown().await;
}

#[tokio::test]
async fn extensions_and_quotas() {
    let cloud = start().await;
    let (_, ext) = cloud.get("extensions").await;
    let aliases: Vec<&str> = ext["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["alias"].as_str().unwrap())
        .collect();
    for want in [
        "router",
        "security-group",
        "standard-attr-tag",
        "quotas",
        "extraroute",
        "external-net",
    ] {
        assert!(aliases.contains(&want), "{want}");
    }
    assert!(!aliases.contains(&"lbaasv2") && !aliases.contains(&"lbaas"));
    assert_eq!(cloud.get("extensions/router").await.0, StatusCode::OK);
    assert_eq!(
        cloud.get("extensions/lbaasv2").await.0,
        StatusCode::NOT_FOUND
    );

    let demo_project = cloud.handle.demo_credentials().project_id.clone();
    let (status, q) = cloud
        .put(
            &format!("quotas/{demo_project}"),
            json!({"quota": {"floatingip": 1}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(q["quota"]["floatingip"], 1);
    let seed = cloud.handle.seed().clone();
    let body = json!({"floatingip": {"floating_network_id": seed.public_network_id}});
    let (status, _) = cloud
        .call(&cloud.demo, Method::POST, "floatingips", Some(body.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, err) = cloud
        .call(&cloud.demo, Method::POST, "floatingips", Some(body))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        neutron_error(&err),
        (
            "OverQuota".into(),
            "Quota exceeded for resources: ['floatingip'].".into()
        )
    );
    let (_, d) = cloud
        .call(
            &cloud.demo,
            Method::GET,
            &format!("quotas/{demo_project}/details.json"),
            None,
        )
        .await;
    assert_eq!(
        d["quota"]["floatingip"],
        json!({"limit": 1, "used": 1, "reserved": 0})
    );
    // demo may not change quotas nor read admin's.
    let (status, _) = cloud
        .call(
            &cloud.demo,
            Method::PUT,
            &format!("quotas/{demo_project}"),
            Some(json!({"quota": {"port": 1}})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        cloud.delete(&format!("quotas/{demo_project}")).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, q) = cloud.get(&format!("quotas/{demo_project}")).await;
    assert_eq!(q["quota"]["floatingip"], 50);
    cloud.handle.shutdown().await;
}

#[tokio::test]
async fn ip_availability_and_service_providers() {
    let cloud = start().await;
    let seed = cloud.handle.seed().clone();
    let (status, a) = cloud
        .get(&format!(
            "network-ip-availabilities/{}",
            seed.private_network_id
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    let subnets = a["network_ip_availability"]["subnet_ip_availability"]
        .as_array()
        .unwrap();
    let private = subnets
        .iter()
        .find(|s| s["subnet_id"] == seed.private_subnet_id.as_str())
        .unwrap();
    // 10.0.0.2-254 in the pool; the router interface holds the gateway.
    assert_eq!(private["total_ips"], 253);
    assert_eq!(private["used_ips"], 1);
    let (status, _) = cloud
        .call(
            &cloud.demo,
            Method::GET,
            &format!("network-ip-availabilities/{}", seed.private_network_id),
            None,
        )
        .await;
    // Real Neutron hides it from a non-admin (404), and lists nothing to one.
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, list) = cloud
        .call(&cloud.demo, Method::GET, "network-ip-availabilities", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["network_ip_availabilities"], json!([]));
    let (_, p) = cloud.get("service-providers").await;
    assert_eq!(p["service_providers"], json!([]));
    cloud.handle.shutdown().await;

    let cloud = start_with(sandbox::SandboxConfig {
        lbaas: sandbox::LbaasMode::NeutronV2,
        ..Default::default()
    })
    .await;
    let (_, p) = cloud
        .get("service-providers?service_type=LOADBALANCERV2")
        .await;
    assert_eq!(p["service_providers"][0]["name"], "octavia");
    assert_eq!(p["service_providers"][0]["default"], true);
    cloud.handle.shutdown().await;
}

async fn new_fip(c: &Cloud) -> (String, std::net::Ipv4Addr) {
    let net = c.handle.seed().public_network_id.clone();
    let (status, f) = c
        .post(
            "floatingips",
            json!({"floatingip": {"floating_network_id": net}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{f}");
    let f = &f["floatingip"];
    (
        f["id"].as_str().unwrap().to_string(),
        f["floating_ip_address"].as_str().unwrap().parse().unwrap(),
    )
}

/// Two sandboxes sharing a floating range never hand out the same address, and an address
/// something on the machine already listens on is never handed out: the data plane could not
/// serve it (the second of two demos used to get the first one's address and answer with the
/// first one's backends). Exact addresses are not asserted: other sandboxes may run.
#[tokio::test]
async fn floating_ips_skip_addresses_used_elsewhere_on_the_machine() {
    use sandbox::address_claim::claim;
    use std::net::{IpAddr, Ipv4Addr};
    let range = sandbox::ipnet::Ipv4Net::new(Ipv4Addr::new(127, 209, 7, 0), 24).unwrap();
    let cfg = || sandbox::SandboxConfig {
        floating_range: range,
        ..Default::default()
    };
    let a = start_with(cfg()).await;
    let b = start_with(cfg()).await;
    let (a_id, a_ip) = new_fip(&a).await;
    assert!(range.contains(&a_ip), "{a_ip}");
    assert!(claim(IpAddr::V4(a_ip)).is_none(), "sandbox a holds {a_ip}");
    // Something else listens on the next addresses (e.g. an older sandbox's data plane).
    let next = |n: u32| Ipv4Addr::from(u32::from(a_ip) + n);
    let squatters: Vec<std::net::TcpListener> = (1..=3)
        .filter_map(|n| std::net::TcpListener::bind((next(n), 0)).ok())
        .collect();
    let squatted: Vec<Ipv4Addr> = squatters
        .iter()
        .filter_map(|l| match l.local_addr().ok()?.ip() {
            IpAddr::V4(ip) => Some(ip),
            IpAddr::V6(_) => None,
        })
        .collect();
    let (_, b_ip) = new_fip(&b).await;
    assert_ne!(b_ip, a_ip, "sandbox b got the address sandbox a holds");
    assert!(!squatted.contains(&b_ip), "{b_ip} is listened on elsewhere");
    drop(squatters);
    // Released with its floating IP: other sandboxes may take it now.
    let (status, _) = a.delete(&format!("floatingips/{a_id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        claim(IpAddr::V4(a_ip)).is_some(),
        "{a_ip} still held after delete"
    );
    // An address asked for explicitly is given as Neutron gives it, even if held elsewhere.
    let net = a.handle.seed().public_network_id.clone();
    let (status, f) = a
        .post("floatingips", json!({"floatingip": {"floating_network_id": net, "floating_ip_address": b_ip.to_string()}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{f}");
    a.handle.shutdown().await;
    b.handle.shutdown().await;
}
