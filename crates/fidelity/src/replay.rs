//! Replaying a catalogue against one target (the real cloud or a sandbox): logs in, finds the
//! endpoints in the catalog, sends every step, records what `compare` needs, and always runs
//! the registered clean-ups in reverse order. It must not decide what counts as a difference.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::catalogue::{substitute, substitute_value, Catalogue, Cleanup, Service, Step};
use crate::shape::Shape;
use crate::Error;

/// Bound of one HTTP request; the real services answer within a second or two even under load.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause between two reads of a polled resource.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How long a clean-up keeps retrying while its object is still PENDING_* (409).
const CLEANUP_LIMIT: Duration = Duration::from_secs(90);

/// Where and as whom to replay.
#[derive(Clone)]
pub struct Target {
    /// "rig", "sandbox", …: used in messages only.
    pub name: String,
    /// Keystone v3 URL, e.g. `http://127.0.0.1:5000/v3`.
    pub auth_url: String,
    pub username: String,
    pub password: String,
    pub project_name: String,
    pub user_domain_name: String,
    pub project_domain_name: String,
    pub region: String,
    /// Prefix of every name the run creates, unique per run.
    pub prefix: String,
    /// Ids of the cloud's own networks: `public_network_id`, `vip_network_id`, `vip_subnet_id`.
    pub vars: BTreeMap<String, String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .field("auth_url", &self.auth_url)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("project_name", &self.project_name)
            .field("region", &self.region)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// What one step's answer looked like, reduced to what is compared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    pub name: String,
    /// 0 when no answer was received (skipped, transport error).
    pub status: u16,
    /// Media type without parameters.
    #[serde(default)]
    pub content_type: Option<String>,
    /// Presence of the step's `compare_headers`.
    #[serde(default)]
    pub headers: BTreeMap<String, bool>,
    #[serde(default)]
    pub body: Option<Shape>,
    /// Distinct consecutive values seen while polling (status codes as "404").
    #[serde(default)]
    pub polled: Option<Vec<String>>,
    /// Why the step has no (complete) answer: missing variable, transport error, poll timeout.
    #[serde(default)]
    pub note: Option<String>,
}

/// Every step's observation, in catalogue order, plus clean-ups that did not succeed.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Run {
    pub target: String,
    pub steps: Vec<Observation>,
    #[serde(default)]
    pub cleanup_failures: Vec<String>,
}

impl Run {
    pub fn get(&self, name: &str) -> Option<&Observation> {
        self.steps.iter().find(|o| o.name == name)
    }
}

struct Endpoints {
    identity: String,
    network: String,
    load_balancer: String,
}

impl Endpoints {
    fn base(&self, s: Service) -> &str {
        match s {
            Service::Identity => &self.identity,
            Service::Network => &self.network,
            Service::LoadBalancer => &self.load_balancer,
        }
    }
}

/// One request as the replay sends it.
struct Outgoing<'a> {
    service: Service,
    method: &'a str,
    path: &'a str,
    token: Option<&'a str>,
    headers: &'a BTreeMap<String, String>,
    body: Option<&'a Value>,
    /// Sent verbatim as JSON when `body` is None.
    raw: Option<&'a str>,
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Option<Value>,
}

struct Ctx {
    http: reqwest::Client,
    endpoints: Endpoints,
    token: String,
    vars: BTreeMap<String, Value>,
}

fn target_err(t: &Target, message: impl Into<String>) -> Error {
    Error::Target {
        target: t.name.clone(),
        message: message.into(),
    }
}

/// Strips a trailing `/` and version segment so catalogue paths can start at the root.
fn service_root(url: &str, versions: &[&str]) -> String {
    let mut u = url.trim_end_matches('/').to_string();
    for v in versions {
        if let Some(stripped) = u.strip_suffix(v) {
            u = stripped.to_string();
            break;
        }
    }
    u
}

fn endpoint(catalog: &Value, kind: &str, region: &str) -> Option<String> {
    let services = catalog.as_array()?;
    let service = services
        .iter()
        .find(|s| s.get("type").and_then(Value::as_str) == Some(kind))?;
    service
        .get("endpoints")?
        .as_array()?
        .iter()
        .find(|e| {
            e.get("interface").and_then(Value::as_str) == Some("public")
                && (e.get("region_id").and_then(Value::as_str) == Some(region)
                    || e.get("region").and_then(Value::as_str) == Some(region))
        })
        .and_then(|e| e.get("url")?.as_str().map(str::to_string))
}

async fn login(http: &reqwest::Client, t: &Target) -> Result<(String, Value), Error> {
    let body = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": t.username, "domain": {"name": t.user_domain_name}, "password": t.password}}},
        "scope": {"project": {"name": t.project_name, "domain": {"name": t.project_domain_name}}}
    }});
    let url = format!("{}/auth/tokens", t.auth_url.trim_end_matches('/'));
    let resp = http
        .post(&url)
        .json(&body)
        .send()
        .await
        .map_err(|e| target_err(t, format!("log-in at {url}: {e}")))?;
    let status = resp.status();
    let token = resp
        .headers()
        .get("X-Subject-Token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let doc: Value = resp.json().await.unwrap_or(Value::Null);
    match token {
        Some(token) if status.is_success() => Ok((token, doc)),
        _ => Err(target_err(
            t,
            format!("log-in at {url} answered {status} without a token"),
        )),
    }
}

/// Replays `catalogue` against `target`. Only failing to log in is an error; a step that
/// fails is recorded as such and the run goes on (the comparison decides what matters).
pub async fn run(catalogue: &Catalogue, target: &Target) -> Result<Run, Error> {
    let http = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| target_err(target, e.to_string()))?;
    let (token, doc) = login(&http, target).await?;
    let catalog = doc
        .pointer("/token/catalog")
        .cloned()
        .unwrap_or(Value::Null);
    let find = |kind: &str| {
        endpoint(&catalog, kind, &target.region).ok_or_else(|| {
            target_err(
                target,
                format!("no public {kind} endpoint in region {}", target.region),
            )
        })
    };
    let endpoints = Endpoints {
        identity: service_root(&target.auth_url, &["/v3"]),
        network: service_root(&find("network")?, &["/v2.0"]),
        load_balancer: service_root(&find("load-balancer")?, &["/v2.0", "/v2"]),
    };
    let mut vars: BTreeMap<String, Value> = target
        .vars
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    vars.insert("prefix".into(), json!(target.prefix));
    vars.insert("username".into(), json!(target.username));
    vars.insert("password".into(), json!(target.password));
    vars.insert("project_name".into(), json!(target.project_name));
    vars.insert("user_domain_name".into(), json!(target.user_domain_name));
    vars.insert(
        "project_domain_name".into(),
        json!(target.project_domain_name),
    );
    for (var, ptr) in [
        ("admin_user_id", "/token/user/id"),
        ("admin_project_id", "/token/project/id"),
    ] {
        if let Some(v) = doc.pointer(ptr) {
            vars.insert(var.into(), v.clone());
        }
    }
    // A well-formed token no cloud ever issued.
    vars.insert(
        "bogus_token".into(),
        json!(format!("gAAAAAB{}", "x".repeat(180))),
    );
    vars.insert("missing_id".into(), json!(uuid::Uuid::new_v4().to_string()));
    let mut ctx = Ctx {
        http,
        endpoints,
        token,
        vars,
    };
    let mut out = Run {
        target: target.name.clone(),
        ..Default::default()
    };
    let mut cleanups: Vec<(String, Cleanup)> = Vec::new();
    for step in &catalogue.steps {
        let obs = ctx.step(step, &mut cleanups).await;
        out.steps.push(obs);
    }
    while let Some((step, c)) = cleanups.pop() {
        if let Err(e) = ctx.cleanup(&c).await {
            out.cleanup_failures.push(format!("after {step}: {e}"));
        }
    }
    Ok(out)
}

impl Ctx {
    async fn send(&self, out: Outgoing<'_>) -> Result<Answer, String> {
        let method = Method::from_bytes(out.method.as_bytes()).map_err(|e| e.to_string())?;
        let url = format!("{}{}", self.endpoints.base(out.service), out.path);
        let mut req = self.http.request(method, &url);
        if let Some(t) = out.token {
            req = req.header("X-Auth-Token", t);
        }
        for (k, v) in out.headers {
            req = req.header(k, v);
        }
        if let Some(b) = out.body {
            req = req.json(b);
        } else if let Some(r) = out.raw {
            req = req
                .header("Content-Type", "application/json")
                .body(r.to_string());
        }
        let resp = req.send().await.map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.map_err(|e| format!("{url}: {e}"))?;
        let body = if bytes.is_empty() {
            None
        } else {
            // A non-JSON body (an HTML error page) is kept as a string, so it shows as a
            // type difference instead of disappearing.
            Some(
                serde_json::from_slice(&bytes)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into())),
            )
        };
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    fn token_for(&self, step: &Step) -> Result<Option<String>, String> {
        match step.token.as_deref() {
            None => Ok(Some(self.token.clone())),
            Some("none") => Ok(None),
            Some(t) => substitute(t, &self.vars).map(Some),
        }
    }

    async fn step(&mut self, step: &Step, cleanups: &mut Vec<(String, Cleanup)>) -> Observation {
        let mut obs = Observation {
            name: step.name.clone(),
            status: 0,
            content_type: None,
            headers: BTreeMap::new(),
            body: None,
            polled: None,
            note: None,
        };
        let prepared = (|| {
            let path = substitute(&step.path, &self.vars)?;
            let token = self.token_for(step)?;
            let headers = step
                .headers
                .iter()
                .map(|(k, v)| Ok((k.clone(), substitute(v, &self.vars)?)))
                .collect::<Result<BTreeMap<_, _>, String>>()?;
            let body = step
                .body
                .as_ref()
                .map(|b| substitute_value(b, &self.vars))
                .transpose()?;
            Ok::<_, String>((path, token, headers, body))
        })();
        let (path, token, headers, body) = match prepared {
            Ok(p) => p,
            Err(var) => {
                obs.note = Some(format!("skipped: variable {var} was not captured"));
                return obs;
            }
        };
        let answer = match self
            .send(Outgoing {
                service: step.service,
                method: &step.method,
                path: &path,
                token: token.as_deref(),
                headers: &headers,
                body: body.as_ref(),
                raw: step.raw_body.as_deref(),
            })
            .await
        {
            Ok(a) => a,
            Err(e) => {
                obs.note = Some(format!("no answer: {e}"));
                return obs;
            }
        };
        obs.status = answer.status;
        obs.content_type = answer
            .headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        for h in &step.compare_headers {
            obs.headers
                .insert(h.clone(), answer.headers.contains_key(h.as_str()));
        }
        obs.body = answer.body.as_ref().map(Shape::of);
        for (var, from) in &step.capture {
            let value = match from.strip_prefix("header:") {
                Some(h) => answer
                    .headers
                    .get(h)
                    .and_then(|v| v.to_str().ok())
                    .map(|s| Value::String(s.to_string())),
                None => answer.body.as_ref().and_then(|b| b.pointer(from)).cloned(),
            };
            match value {
                Some(v) => {
                    self.vars.insert(var.clone(), v);
                }
                None => {
                    self.vars.remove(var);
                }
            }
        }
        if (200..300).contains(&answer.status) {
            if let Some(c) = &step.cleanup {
                match substitute(&c.path, &self.vars) {
                    Ok(p) => cleanups.push((
                        step.name.clone(),
                        Cleanup {
                            service: Some(c.service.unwrap_or(step.service)),
                            method: c.method.clone(),
                            path: p,
                            body: c
                                .body
                                .as_ref()
                                .and_then(|b| substitute_value(b, &self.vars).ok()),
                        },
                    )),
                    Err(var) => {
                        obs.note = Some(format!("no clean-up: variable {var} missing"));
                    }
                }
            }
        }
        if let Some(poll) = &step.poll {
            let initial = answer
                .body
                .as_ref()
                .and_then(|b| b.pointer(&poll.pointer))
                .and_then(Value::as_str)
                .map(str::to_string);
            match self.poll(step.service, poll, initial).await {
                Ok(seen) => obs.polled = Some(seen),
                Err((seen, e)) => {
                    obs.polled = Some(seen);
                    obs.note = Some(e);
                }
            }
        }
        obs
    }

    async fn poll(
        &self,
        service: Service,
        poll: &crate::catalogue::Poll,
        initial: Option<String>,
    ) -> Result<Vec<String>, (Vec<String>, String)> {
        let mut seen: Vec<String> = initial.into_iter().collect();
        let path = match substitute(&poll.path, &self.vars) {
            Ok(p) => p,
            Err(var) => return Err((seen, format!("poll skipped: variable {var} missing"))),
        };
        if seen.last().is_some_and(|v| poll.until.contains(v)) {
            return Ok(seen);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(poll.timeout_s);
        let max_reads = poll.timeout_s * 1000 / POLL_INTERVAL.as_millis() as u64 + 1;
        let token = self.token.clone();
        let no_headers = BTreeMap::new();
        for _ in 0..max_reads {
            let answer = self
                .send(Outgoing {
                    service,
                    method: "GET",
                    path: &path,
                    token: Some(&token),
                    headers: &no_headers,
                    body: None,
                    raw: None,
                })
                .await
                .map_err(|e| (seen.clone(), format!("poll: {e}")))?;
            let value = if answer.status == 200 {
                answer
                    .body
                    .as_ref()
                    .and_then(|b| b.pointer(&poll.pointer))
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                    .unwrap_or_else(|| "<absent>".into())
            } else {
                answer.status.to_string()
            };
            if seen.last() != Some(&value) {
                seen.push(value.clone());
            }
            if poll.until.contains(&value) {
                return Ok(seen);
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        let msg = format!(
            "poll of {path}: none of {:?} within {}s",
            poll.until, poll.timeout_s
        );
        Err((seen, msg))
    }

    async fn cleanup(&self, c: &Cleanup) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + CLEANUP_LIMIT;
        let service = c.service.unwrap_or(Service::Network);
        let no_headers = BTreeMap::new();
        let max_tries = CLEANUP_LIMIT.as_secs() + 1;
        for _ in 0..max_tries {
            let a = self
                .send(Outgoing {
                    service,
                    method: &c.method,
                    path: &c.path,
                    token: Some(&self.token),
                    headers: &no_headers,
                    body: c.body.as_ref(),
                    raw: None,
                })
                .await?;
            match a.status {
                200..=299 | 404 => return Ok(()),
                409 if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                s => return Err(format!("{} {} answered {s}", c.method, c.path)),
            }
        }
        Err(format!("{} {} still 409", c.method, c.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_suffixes_are_stripped() {
        assert_eq!(
            service_root("http://h:9696/v2.0/", &["/v2.0"]),
            "http://h:9696"
        );
        assert_eq!(
            service_root("http://h/load-balancer/v2", &["/v2.0", "/v2"]),
            "http://h/load-balancer"
        );
        assert_eq!(service_root("http://h:9876", &["/v2"]), "http://h:9876");
    }

    #[test]
    fn debug_hides_the_password() {
        let t = Target {
            name: "x".into(),
            auth_url: "u".into(),
            username: "admin".into(),
            password: "hunter2".into(),
            project_name: "p".into(),
            user_domain_name: "Default".into(),
            project_domain_name: "Default".into(),
            region: "RegionOne".into(),
            prefix: "p".into(),
            vars: BTreeMap::new(),
        };
        assert!(!format!("{t:?}").contains("hunter2"));
    }
}
