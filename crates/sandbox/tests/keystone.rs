//! Keystone v3 of the sandbox: discovery, the three auth methods, scopes, catalog, expiry,
//! revocation and the 401 shapes.

mod sandbox_support;

use reqwest::StatusCode;
use sandbox::{LbaasMode, SandboxConfig};
use sandbox_support::*;
use serde_json::{json, Value};

async fn issue(cloud: &Cloud, body: Value) -> (StatusCode, Option<String>, Value) {
    let resp = cloud
        .http
        .post(format!("{}/auth/tokens", cloud.handle.auth_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let token = resp
        .headers()
        .get("x-subject-token")
        .map(|v| v.to_str().unwrap().to_string());
    (status, token, resp.json().await.unwrap())
}

#[tokio::test]
async fn discovery_documents() {
    let cloud = start().await;
    let v3: Value = cloud
        .http
        .get(cloud.handle.auth_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v3["version"]["status"], "stable");
    assert!(v3["version"]["id"].as_str().unwrap().starts_with("v3."));
    let root = cloud
        .http
        .get(cloud.handle.keystone_url())
        .send()
        .await
        .unwrap();
    assert_eq!(root.status(), StatusCode::MULTIPLE_CHOICES);
    let root: Value = root.json().await.unwrap();
    assert_eq!(
        root["versions"]["values"][0]["links"][0]["href"],
        format!("{}/", cloud.handle.auth_url())
    );
    cloud.handle.shutdown().await;
}

#[tokio::test]
async fn password_token_carries_catalog_roles_and_expiry() {
    let cloud = start().await;
    let (status, token, body) = issue(&cloud, password_body("admin", "secret", "admin")).await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(token.is_some());
    let t = &body["token"];
    assert_eq!(t["methods"], json!(["password"]));
    assert_eq!(t["user"]["name"], "admin");
    assert_eq!(t["project"]["name"], "admin");
    let roles: Vec<&str> = t["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(roles.contains(&"admin"));
    let expires = chrono::DateTime::parse_from_rfc3339(t["expires_at"].as_str().unwrap()).unwrap();
    let issued = chrono::DateTime::parse_from_rfc3339(t["issued_at"].as_str().unwrap()).unwrap();
    assert_eq!((expires - issued).num_seconds(), 3600);
    let catalog = t["catalog"].as_array().unwrap();
    let types: Vec<&str> = catalog
        .iter()
        .map(|s| s["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, vec!["identity", "network", "load-balancer"]);
    for service in catalog {
        let interfaces: Vec<&str> = service["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["interface"].as_str().unwrap())
            .collect();
        assert_eq!(interfaces, vec!["public", "internal", "admin"]);
        assert_eq!(service["endpoints"][0]["region"], "RegionOne");
    }
    let network = &catalog[1]["endpoints"][0]["url"];
    assert_eq!(network, cloud.handle.neutron_url());
    assert_eq!(
        catalog[2]["endpoints"][0]["url"],
        cloud.handle.octavia_url()
    );
    cloud.handle.shutdown().await;
}

#[tokio::test]
async fn configurable_token_lifetime() {
    let cfg = SandboxConfig {
        token_lifetime: std::time::Duration::from_secs(120),
        ..Default::default()
    };
    let cloud = start_with(cfg).await;
    let (_, _, body) = issue(&cloud, password_body("demo", "secret", "demo")).await;
    let t = &body["token"];
    let expires = chrono::DateTime::parse_from_rfc3339(t["expires_at"].as_str().unwrap()).unwrap();
    let issued = chrono::DateTime::parse_from_rfc3339(t["issued_at"].as_str().unwrap()).unwrap();
    assert_eq!((expires - issued).num_seconds(), 120);
    let roles: Vec<&str> = t["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(roles.contains(&"load-balancer_member"));
    cloud.handle.shutdown().await;
}

#[tokio::test]
async fn bad_credentials_are_401_in_keystone_shape() {
    let cloud = start().await;
    for body in [
        password_body("admin", "wrong", "admin"),
        password_body("nobody", "secret", "admin"),
        password_body("demo", "secret", "admin"),
    ] {
        let (status, token, body) = issue(&cloud, body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(token.is_none());
        assert_eq!(body["error"]["code"], 401);
        assert_eq!(body["error"]["title"], "Unauthorized");
    }
    cloud.handle.shutdown().await;
}

#[tokio::test]
async fn application_credential_and_token_methods() {
    let cloud = start().await;
    let (id, secret) = cloud.handle.application_credential();
    let body = json!({"auth": {"identity": {"methods": ["application_credential"],
        "application_credential": {"id": id, "secret": secret.expose()}}}});
    let (status, token, body) = issue(&cloud, body).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["token"]["project"]["name"], "admin");
    assert_eq!(body["token"]["application_credential"]["id"], id);

    let body = json!({"auth": {"identity": {"methods": ["application_credential"],
        "application_credential": {"id": id, "secret": "nope"}}}});
    assert_eq!(issue(&cloud, body).await.0, StatusCode::UNAUTHORIZED);

    let body = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": token.unwrap()}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}});
    let (status, _, body) = issue(&cloud, body).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["token"]["methods"], json!(["token"]));
    cloud.handle.shutdown().await;
}

#[tokio::test]
async fn domain_and_trust_scopes() {
    let cloud = start().await;
    let mut body = password_body("admin", "secret", "admin");
    body["auth"]["scope"] = json!({"domain": {"id": "default"}});
    let (status, _, b) = issue(&cloud, body).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(b["token"]["domain"]["id"], "default");
    assert!(b["token"].get("project").is_none());

    let (trust_id, trustee) = cloud.handle.trust();
    let mut body = password_body(&trustee.username, trustee.password.expose(), "demo");
    body["auth"]["scope"] = json!({"OS-TRUST:trust": {"id": trust_id}});
    let (status, token, b) = issue(&cloud, body).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(b["token"]["OS-TRUST:trust"]["id"], trust_id);
    assert_eq!(b["token"]["project"]["name"], "admin");
    // The trust-scoped token works on Neutron in the trustor's project.
    let (status, _) = cloud
        .call(&token.unwrap(), reqwest::Method::GET, "networks", None)
        .await;
    assert_eq!(status, StatusCode::OK);

    // Only the trustee may use the trust.
    let mut body = password_body("admin", "secret", "admin");
    body["auth"]["scope"] = json!({"OS-TRUST:trust": {"id": trust_id}});
    assert_eq!(issue(&cloud, body).await.0, StatusCode::FORBIDDEN);
    cloud.handle.shutdown().await;
}

#[tokio::test]
async fn validation_revocation_and_expiry() {
    let cloud = start().await;
    let url = format!("{}/auth/tokens", cloud.handle.auth_url());
    let resp = cloud
        .http
        .get(&url)
        .header("X-Auth-Token", &cloud.admin)
        .header("X-Subject-Token", &cloud.demo)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token"]["user"]["name"], "demo");

    // DELETE revokes the subject token.
    let resp = cloud
        .http
        .delete(&url)
        .header("X-Auth-Token", &cloud.admin)
        .header("X-Subject-Token", &cloud.demo)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (status, body) = cloud
        .call(&cloud.demo, reqwest::Method::GET, "networks", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], 401);

    // Expiring every token (admin API) makes services answer 401.
    let r: Value = cloud
        .http
        .post(cloud.admin_api("tokens/expire"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(r["expired"].as_u64().unwrap() >= 1);
    let (status, _) = cloud.get("networks").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Revocation of one user's tokens through the admin API.
    let token = password_token(&cloud.http, &cloud.handle, "demo", "demo").await;
    let r = cloud
        .http
        .post(cloud.admin_api("tokens/revoke"))
        .json(&json!({"user": "demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (status, _) = cloud
        .call(&token, reqwest::Method::GET, "ports", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    cloud.handle.shutdown().await;
}

#[tokio::test]
async fn missing_token_is_401_on_services_and_version_root_is_open() {
    let cloud = start().await;
    let resp = cloud
        .http
        .get(cloud.neutron("networks"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = cloud
        .http
        .get(cloud.handle.neutron_url())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["versions"][0]["id"], "v2.0");
    let resp = cloud
        .http
        .get(format!(
            "{}/v2/lbaas/loadbalancers",
            cloud.handle.octavia_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    cloud.handle.shutdown().await;
}

#[tokio::test]
async fn neutron_lbaas_modes_drop_load_balancer_from_catalog() {
    for mode in [LbaasMode::NeutronV2, LbaasMode::NeutronV1] {
        let cloud = start_with(SandboxConfig {
            lbaas: mode,
            ..Default::default()
        })
        .await;
        let (_, _, body) = issue(&cloud, password_body("admin", "secret", "admin")).await;
        let types: Vec<&str> = body["token"]["catalog"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, vec!["identity", "network"]);
        let (_, ext) = cloud.get("extensions").await;
        let aliases: Vec<&str> = ext["extensions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["alias"].as_str().unwrap())
            .collect();
        let want = if mode == LbaasMode::NeutronV2 {
            "lbaasv2"
        } else {
            "lbaas"
        };
        assert!(aliases.contains(&want), "{aliases:?}");
        cloud.handle.shutdown().await;
    }
}
