//! Shared helpers of the sandbox's Keystone/Neutron/admin tests: start an in-process sandbox
//! on ephemeral ports and get tokens. Only loopback traffic; every wait is bounded.
#![allow(dead_code)]

use std::time::Duration;

use reqwest::StatusCode;
use sandbox::{SandboxConfig, SandboxHandle};
use serde_json::{json, Value};

pub struct Cloud {
    pub handle: SandboxHandle,
    pub http: reqwest::Client,
    /// Project-scoped admin token.
    pub admin: String,
    /// Project-scoped demo token.
    pub demo: String,
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

pub async fn start() -> Cloud {
    start_with(SandboxConfig::default()).await
}

pub async fn start_with(cfg: SandboxConfig) -> Cloud {
    let handle = sandbox::start(cfg).await.unwrap();
    let http = client();
    let admin = password_token(&http, &handle, "admin", "admin").await;
    let demo = password_token(&http, &handle, "demo", "demo").await;
    Cloud {
        handle,
        http,
        admin,
        demo,
    }
}

pub fn password_body(user: &str, password: &str, project: &str) -> Value {
    json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"name": "Default"}}}
    }})
}

pub async fn password_token(
    http: &reqwest::Client,
    handle: &SandboxHandle,
    user: &str,
    project: &str,
) -> String {
    let resp = http
        .post(format!("{}/auth/tokens", handle.auth_url()))
        .json(&password_body(user, "secret", project))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    resp.headers()["x-subject-token"]
        .to_str()
        .unwrap()
        .to_string()
}

impl Cloud {
    pub fn neutron(&self, path: &str) -> String {
        format!("{}/v2.0/{path}", self.handle.neutron_url())
    }

    pub fn admin_api(&self, path: &str) -> String {
        format!("{}/{path}", self.handle.admin_url())
    }

    /// A request to Neutron with `token`; returns status and JSON body (Null when empty).
    pub async fn call(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, self.neutron(path))
            .header("X-Auth-Token", token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(&self.admin.clone(), reqwest::Method::GET, path, None)
            .await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(&self.admin.clone(), reqwest::Method::POST, path, Some(body))
            .await
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(&self.admin.clone(), reqwest::Method::PUT, path, Some(body))
            .await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(&self.admin.clone(), reqwest::Method::DELETE, path, None)
            .await
    }
}

/// The NeutronError of an error body: (type, message).
pub fn neutron_error(body: &Value) -> (String, String) {
    let e = &body["NeutronError"];
    assert_eq!(e["detail"], "", "NeutronError has detail \"\": {body}");
    (
        e["type"].as_str().unwrap().to_string(),
        e["message"].as_str().unwrap().to_string(),
    )
}
