//! Shared helpers of the load-balancer tests: start a sandbox in-process on ephemeral ports,
//! get a token, and call the API with bounded waits. Not a test file itself.
#![allow(dead_code)]

use std::time::Duration;

use ipnet::Ipv4Net;
use reqwest::{Client, Method, StatusCode};
use sandbox::{SandboxConfig, SandboxHandle};
use serde_json::{json, Value};

pub struct Env {
    pub sb: Option<SandboxHandle>,
    pub client: Client,
    pub token: String,
    /// `.../v2/lbaas` (Octavia) or `.../v2.0/lbaas` (Neutron LBaaS v2) or `.../v2.0/lb` (v1).
    pub lb: String,
    pub neutron: String,
    pub octavia: String,
    pub admin: String,
    pub private_subnet: String,
    pub private_network: String,
    pub public_network: String,
    pub project_id: String,
}

/// A config with no provisioning delay and its own floating range (so parallel tests never
/// compete for the same floating_ip:port).
pub fn config(range_octet: u8) -> SandboxConfig {
    SandboxConfig {
        provisioning_delay: Duration::ZERO,
        floating_range: Ipv4Net::new(std::net::Ipv4Addr::new(127, range_octet, 0, 0), 16).unwrap(),
        ..SandboxConfig::default()
    }
}

pub async fn start(cfg: SandboxConfig) -> Env {
    let lbaas = cfg.lbaas;
    let sb = sandbox::start(cfg).await.expect("sandbox starts");
    let client = Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let creds = sb.admin_credentials().clone();
    let body = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": creds.username, "domain": {"name": creds.user_domain_name},
            "password": creds.password.expose()}}},
        "scope": {"project": {"name": creds.project_name, "domain": {"name": creds.project_domain_name}}}
    }});
    let resp = client
        .post(format!("{}/auth/tokens", sb.auth_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED, "token issued");
    let token = resp.headers()["x-subject-token"]
        .to_str()
        .unwrap()
        .to_string();
    let lb = match lbaas {
        sandbox::LbaasMode::Octavia => format!("{}/v2/lbaas", sb.octavia_url()),
        sandbox::LbaasMode::NeutronV2 => format!("{}/v2.0/lbaas", sb.neutron_url()),
        sandbox::LbaasMode::NeutronV1 => format!("{}/v2.0/lb", sb.neutron_url()),
    };
    let seed = sb.seed().clone();
    Env {
        client,
        token,
        lb,
        neutron: sb.neutron_url().to_string(),
        octavia: sb.octavia_url().to_string(),
        admin: sb.admin_url().to_string(),
        private_subnet: seed.private_subnet_id,
        private_network: seed.private_network_id,
        public_network: seed.public_network_id,
        project_id: creds.project_id,
        sb: Some(sb),
    }
}

impl Env {
    /// A copy of this environment acting as the unprivileged `demo` user.
    pub async fn as_demo(&self) -> Env {
        let sb = self.sb.as_ref().unwrap();
        let creds = sb.demo_credentials().clone();
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": creds.username, "domain": {"name": creds.user_domain_name},
                "password": creds.password.expose()}}},
            "scope": {"project": {"name": creds.project_name, "domain": {"name": creds.project_domain_name}}}
        }});
        let resp = self
            .client
            .post(format!("{}/auth/tokens", sb.auth_url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED, "demo token issued");
        let token = resp.headers()["x-subject-token"]
            .to_str()
            .unwrap()
            .to_string();
        Env {
            sb: None,
            client: self.client.clone(),
            token,
            lb: self.lb.clone(),
            neutron: self.neutron.clone(),
            octavia: self.octavia.clone(),
            admin: self.admin.clone(),
            private_subnet: self.private_subnet.clone(),
            private_network: self.private_network.clone(),
            public_network: self.public_network.clone(),
            project_id: creds.project_id,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, url)
            .header("X-Auth-Token", &self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn raw(&self, method: Method, url: &str, body: &str) -> (StatusCode, Value) {
        let resp = self
            .client
            .request(method, url)
            .header("X-Auth-Token", &self.token)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, &format!("{}{path}", self.lb), None)
            .await
    }
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, &format!("{}{path}", self.lb), Some(body))
            .await
    }
    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, &format!("{}{path}", self.lb), Some(body))
            .await
    }
    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, &format!("{}{path}", self.lb), None)
            .await
    }

    /// Polls until `GET path` shows `key` (a JSON pointer) equal to `want`; bounded.
    pub async fn wait_for(&self, path: &str, pointer: &str, want: &str) -> Value {
        let mut last = Value::Null;
        for _ in 0..300 {
            let (status, body) = self.get(path).await;
            if status == StatusCode::OK
                && body.pointer(pointer).and_then(Value::as_str) == Some(want)
            {
                return body;
            }
            last = body;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{path}: {pointer} never became {want}; last: {last}");
    }

    /// Polls until `GET path` answers 404; bounded.
    pub async fn wait_gone(&self, path: &str) {
        for _ in 0..300 {
            if self.get(path).await.0 == StatusCode::NOT_FOUND {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{path} never went away");
    }

    pub async fn wait_lb_active(&self, id: &str) -> Value {
        self.wait_for(
            &format!("/loadbalancers/{id}"),
            "/loadbalancer/provisioning_status",
            "ACTIVE",
        )
        .await
    }

    pub async fn neutron_get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, &format!("{}/v2.0{path}", self.neutron), None)
            .await
    }

    /// A floating IP on the public network associated with `port_id`; returns its address.
    pub async fn floating_ip_for(&self, port_id: &str) -> (String, String) {
        let (status, body) = self
            .call(
                Method::POST,
                &format!("{}/v2.0/floatingips", self.neutron),
                Some(json!({"floatingip": {"floating_network_id": self.public_network, "port_id": port_id}})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (
            body["floatingip"]["id"].as_str().unwrap().to_string(),
            body["floatingip"]["floating_ip_address"]
                .as_str()
                .unwrap()
                .to_string(),
        )
    }

    pub async fn shutdown(mut self) {
        if let Some(sb) = self.sb.take() {
            sb.shutdown().await;
        }
    }
}

/// A minimal load balancer body on the private subnet.
pub fn lb_body(env: &Env, name: &str) -> Value {
    json!({"loadbalancer": {"name": name, "vip_subnet_id": env.private_subnet}})
}

/// Creates an LB and waits until ACTIVE; returns its id.
pub async fn active_lb(env: &Env, name: &str) -> String {
    let (status, body) = env.post("/loadbalancers", lb_body(env, name)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["loadbalancer"]["id"].as_str().unwrap().to_string();
    env.wait_lb_active(&id).await;
    id
}
