//! The authenticated HTTP session every client shares: one reqwest client (TLS from `[Global]`,
//! timeout from `[Metadata]`), one Keystone token cache (re-auth shortly before expiry and once
//! on a 401), endpoint selection, the shared rate limiter, retries with jittered backoff where
//! they are safe, request metrics and secret redaction. It knows nothing about Neutron or
//! Octavia resources: clients hand it a method, a base URL and a path.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use model::config::{EndpointInterface, GlobalConfig, MetadataConfig, Secret};
use rand::Rng;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::time::Instant;

use crate::error::{classify, Error, Op, Result};
use crate::keystone::{interface_name, tokens_url, AuthMethod, Catalog, NamedRef, TokenBody};
use crate::metrics::Metrics;
use crate::ratelimit::{RateLimit, RateLimiter};

/// Bounded retries with jittered exponential backoff.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Repetitions after the first attempt.
    pub max_retries: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A Retry-After longer than this is not waited for: the error goes to the caller, whose
    /// requeue is cheaper than a blocked worker.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// "Equal jitter": half the exponential step, plus a random part of the other half, so
    /// retries of many callers spread out but never fire immediately.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX));
        let step = exp.min(self.max_delay);
        let half = step / 2;
        let jitter =
            rand::thread_rng().gen_range(0..=half.as_millis().min(u128::from(u64::MAX)) as u64);
        half + Duration::from_millis(jitter)
    }
}

/// Knobs of a [`Session`] that do not come from cloud.conf.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// Service type (`network`, `load-balancer`, `identity`) → URL used instead of the catalog.
    pub endpoint_overrides: BTreeMap<String, String>,
    /// `None`: no client-side limit.
    pub rate_limit: Option<RateLimit>,
    pub retry: RetryPolicy,
    pub metrics: Metrics,
    /// Re-authenticate this long before `expires_at` (capped at half the token's lifetime).
    pub reauth_margin: Duration,
    pub user_agent: String,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            endpoint_overrides: BTreeMap::new(),
            rate_limit: Some(RateLimit::default()),
            retry: RetryPolicy::default(),
            metrics: Metrics::new(),
            reauth_margin: Duration::from_secs(120),
            user_agent: concat!("openstack-lb-controller/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

/// Who the token belongs to and what it can reach; never the token itself.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenInfo {
    pub user: Option<NamedRef>,
    pub project: Option<NamedRef>,
    pub domain: Option<NamedRef>,
    pub roles: Vec<String>,
    pub expires_at: DateTime<Utc>,
    pub catalog: Catalog,
    /// Counts authentications of this session (1 = the first token).
    pub generation: u64,
}

struct TokenState {
    value: Secret,
    info: Arc<TokenInfo>,
    refresh_at: DateTime<Utc>,
    /// Set when the cloud answered 401 with this token.
    rejected: AtomicBool,
}

impl TokenState {
    fn usable(&self) -> bool {
        !self.rejected.load(Ordering::Acquire) && Utc::now() < self.refresh_at
    }
}

/// When a failed request may be sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryMode {
    /// GET, HEAD and DELETE are retried; other methods are not.
    Safe,
    /// The caller guarantees repeating is harmless (e.g. a Neutron tag PUT).
    Idempotent,
    Never,
}

/// One API call, relative to a service's base URL.
#[derive(Clone, Debug)]
pub struct Request {
    /// Metrics label and error context: the catalog service type.
    pub service: String,
    pub method: Method,
    /// The endpoint base, without trailing slash.
    pub base: String,
    /// Starts with `/`; already percent-encoded.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Option<JsonBody>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub retry: RetryMode,
    pub authenticated: bool,
}

impl Request {
    pub fn new(service: &str, method: Method, base: &str, path: impl Into<String>) -> Self {
        Request {
            service: service.to_string(),
            method,
            base: base.trim_end_matches('/').to_string(),
            path: path.into(),
            query: Vec::new(),
            body: None,
            headers: Vec::new(),
            retry: RetryMode::Safe,
            authenticated: true,
        }
    }
    pub fn query(mut self, q: Vec<(String, String)>) -> Self {
        self.query.extend(q);
        self
    }
    /// The body, encoded once here: retries resend the same bytes, and no `Value` tree of a
    /// large member list is kept beside them.
    pub fn json<B: Serialize + ?Sized>(mut self, body: &B) -> Result<Self> {
        self.body = Some(JsonBody::encode(body)?);
        Ok(self)
    }
    /// The body `{"<key>": body}`, the envelope every OpenStack resource uses.
    pub fn json_under<B: Serialize + ?Sized>(self, key: &str, body: &B) -> Result<Self> {
        self.json(&Envelope { key, body })
    }
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
    pub fn retry(mut self, mode: RetryMode) -> Self {
        self.retry = mode;
        self
    }
    fn op(&self) -> Op {
        Op {
            method: self.method.to_string(),
            service: self.service.clone(),
            path: self.path.clone(),
        }
    }
    fn may_retry(&self) -> bool {
        match self.retry {
            RetryMode::Never => false,
            RetryMode::Idempotent => true,
            RetryMode::Safe => matches!(self.method, Method::GET | Method::HEAD | Method::DELETE),
        }
    }
}

/// An encoded JSON request body. Its Debug names only its size: a token request carries a
/// password.
#[derive(Clone)]
pub struct JsonBody(Bytes);

impl JsonBody {
    fn encode<B: Serialize + ?Sized>(body: &B) -> Result<JsonBody> {
        serde_json::to_vec(body)
            .map(|v| JsonBody(Bytes::from(v)))
            .map_err(|e| Error::Config(format!("cannot encode request: {e}")))
    }
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for JsonBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JsonBody({} bytes)", self.0.len())
    }
}

/// Serializes as `{"<key>": body}` without building the map.
struct Envelope<'a, B: ?Sized> {
    key: &'a str,
    body: &'a B,
}

impl<B: Serialize + ?Sized> Serialize for Envelope<'_, B> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(self.key, self.body)?;
        m.end()
    }
}

/// A successful answer.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    op: Op,
}

impl Response {
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::decode(self.op.clone(), e.to_string()))
    }
    /// The answer's top-level members, borrowed from the bytes; `None` for JSON that is not an
    /// object. Malformed JSON, or JSON nested past the parser's limit, is an error.
    fn top(&self) -> Result<Option<HashMap<String, &RawValue>>> {
        let decode = |e: serde_json::Error| Error::decode(self.op.clone(), e.to_string());
        match serde_json::from_slice(&self.body) {
            Ok(top) => Ok(Some(top)),
            Err(e) if e.classify() == serde_json::error::Category::Data => {
                // Rare and small: a `Value` applies the parser's nesting limit, as every read does.
                serde_json::from_slice::<serde_json::Value>(&self.body).map_err(decode)?;
                Ok(None)
            }
            Err(e) => Err(decode(e)),
        }
    }
    /// The member `key` of the answer's top-level object, decoded straight from the bytes:
    /// the rest of the answer is skipped, not built into a `Value` first.
    pub fn take<T: DeserializeOwned>(&self, key: &str) -> Result<T> {
        let missing = || Error::decode(self.op.clone(), format!("no {key:?} in the answer"));
        let inner = self
            .top()?
            .and_then(|top| top.get(key).copied())
            .ok_or_else(missing)?;
        serde_json::from_str(inner.get())
            .map_err(|e| Error::decode(self.op.clone(), format!("{key}: {e}")))
    }
    /// One page of a collection listing, read straight from the bytes: its items (none when
    /// the answer lacks them) and the href of its "next" link. A listing of every pool with
    /// hundreds of member ids each must not be built into a `Value` tree and copied.
    pub(crate) fn page<T: DeserializeOwned>(
        &self,
        collection: &str,
    ) -> Result<(Vec<T>, Option<String>)> {
        let Some(top) = self.top()? else {
            return Ok((vec![], None));
        };
        let items = match top.get(collection) {
            Some(raw) => serde_json::from_str(raw.get())
                .map_err(|e| Error::decode(self.op.clone(), format!("{collection}: {e}")))?,
            None => Vec::new(),
        };
        // Links are few and loosely shaped: read leniently, as before.
        let next = top
            .get(&format!("{collection}_links"))
            .and_then(|raw| serde_json::from_str::<Vec<serde_json::Value>>(raw.get()).ok())
            .and_then(|links| {
                links
                    .into_iter()
                    .find(|l| l.get("rel").and_then(serde_json::Value::as_str) == Some("next"))
            })
            .and_then(|l| {
                l.get("href")
                    .and_then(serde_json::Value::as_str)
                    .map(String::from)
            });
        Ok((items, next))
    }
    pub fn op(&self) -> &Op {
        &self.op
    }
}

struct Inner {
    http: reqwest::Client,
    auth: AuthMethod,
    tokens_url: String,
    interface: EndpointInterface,
    region: Option<String>,
    overrides: BTreeMap<String, String>,
    limiter: Option<RateLimiter>,
    retry: RetryPolicy,
    metrics: Metrics,
    reauth_margin: Duration,
    request_timeout: Duration,
    token: RwLock<Option<Arc<TokenState>>>,
    auth_lock: tokio::sync::Mutex<()>,
    generation: AtomicU64,
    /// Per service type: no request before this instant. A 429's Retry-After speaks for the
    /// endpoint, not for the one request that got it: every caller waits it out.
    not_before: std::sync::Mutex<BTreeMap<String, tokio::time::Instant>>,
}

/// Cheap to clone; all clones share one token, one rate limiter and one connection pool.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("tokens_url", &self.inner.tokens_url)
            .field("interface", &self.inner.interface)
            .field("region", &self.inner.region)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Builds the HTTP client and authenticates once, so a bad configuration or a wrong password
    /// is reported at start-up.
    pub async fn new(
        global: &GlobalConfig,
        metadata: &MetadataConfig,
        options: SessionOptions,
    ) -> Result<Session> {
        let session = Self::unauthenticated(global, metadata, options).await?;
        session.current_token().await?;
        Ok(session)
    }

    /// Like [`Session::new`] without the first authentication (it happens on the first call).
    pub async fn unauthenticated(
        global: &GlobalConfig,
        metadata: &MetadataConfig,
        options: SessionOptions,
    ) -> Result<Session> {
        let auth_url = global
            .auth_url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
            .ok_or_else(|| Error::Config("[Global] auth-url is required".into()))?;
        let tokens_url = match options.endpoint_overrides.get("identity") {
            Some(o) => tokens_url(o)?,
            None => tokens_url(auth_url)?,
        };
        let auth = AuthMethod::from_config(global)?;
        let http =
            crate::tls::build_client(global, metadata.request_timeout, &options.user_agent).await?;
        let overrides = options
            .endpoint_overrides
            .iter()
            .map(|(k, v)| (k.clone(), v.trim_end_matches('/').to_string()))
            .collect();
        Ok(Session {
            inner: Arc::new(Inner {
                http,
                auth,
                tokens_url,
                interface: global.endpoint_interface,
                region: global.region.clone().filter(|r| !r.trim().is_empty()),
                overrides,
                limiter: options.rate_limit.map(RateLimiter::new),
                retry: options.retry,
                metrics: options.metrics,
                reauth_margin: options.reauth_margin,
                request_timeout: metadata.request_timeout,
                token: RwLock::new(None),
                auth_lock: tokio::sync::Mutex::new(()),
                not_before: std::sync::Mutex::new(BTreeMap::new()),
                generation: AtomicU64::new(0),
            }),
        })
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        self.inner.retry
    }

    pub fn interface(&self) -> EndpointInterface {
        self.inner.interface
    }

    pub fn region(&self) -> Option<&str> {
        self.inner.region.as_deref()
    }

    fn cached(&self) -> Option<Arc<TokenState>> {
        match self.inner.token.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn store(&self, t: Arc<TokenState>) {
        match self.inner.token.write() {
            Ok(mut g) => *g = Some(t),
            Err(poisoned) => *poisoned.into_inner() = Some(t),
        }
    }

    /// The identity and catalog of the current token, authenticating if needed.
    pub async fn token_info(&self) -> Result<Arc<TokenInfo>> {
        Ok(self.current_token().await?.info.clone())
    }

    /// The current token (for callers that must hand it to another tool).
    pub async fn token(&self) -> Result<Secret> {
        Ok(self.current_token().await?.value.clone())
    }

    pub async fn catalog(&self) -> Result<Catalog> {
        Ok(self.token_info().await?.catalog.clone())
    }

    /// Whether a service type is reachable: overridden, or in the catalog.
    pub async fn has_service(&self, service_type: &str) -> Result<bool> {
        if self.inner.overrides.contains_key(service_type) {
            return Ok(true);
        }
        Ok(self.token_info().await?.catalog.has_service(service_type))
    }

    /// The base URL of a service: the override, else the catalog entry for the configured
    /// interface and region.
    pub async fn endpoint(&self, service_type: &str) -> Result<String> {
        if let Some(o) = self.inner.overrides.get(service_type) {
            return Ok(o.clone());
        }
        self.token_info().await?.catalog.endpoint(
            service_type,
            self.inner.interface,
            self.inner.region.as_deref(),
        )
    }

    /// Forces the next call to authenticate again (e.g. after credentials were rotated).
    pub fn invalidate_token(&self) {
        if let Some(t) = self.cached() {
            t.rejected.store(true, Ordering::Release);
        }
    }

    async fn current_token(&self) -> Result<Arc<TokenState>> {
        if let Some(t) = self.cached().filter(|t| t.usable()) {
            return Ok(t);
        }
        // One re-authentication for all waiting callers: the others find the fresh token.
        let _guard = self.inner.auth_lock.lock().await;
        if let Some(t) = self.cached().filter(|t| t.usable()) {
            return Ok(t);
        }
        let t = Arc::new(self.authenticate().await?);
        self.store(t.clone());
        Ok(t)
    }

    async fn authenticate(&self) -> Result<TokenState> {
        let base = self
            .inner
            .tokens_url
            .strip_suffix(crate::keystone::TOKENS_PATH)
            .unwrap_or(&self.inner.tokens_url);
        let path = if base.len() < self.inner.tokens_url.len() {
            crate::keystone::TOKENS_PATH
        } else {
            ""
        };
        let mut req = Request::new("identity", Method::POST, base, path)
            .json(&self.inner.auth.request_body())?
            .retry(RetryMode::Idempotent);
        req.authenticated = false;
        let resp = Box::pin(self.send(req)).await?;
        let op = resp.op().clone();
        let value = resp
            .headers
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(Secret::new)
            .ok_or_else(|| Error::decode(op.clone(), "no X-Subject-Token header in the answer"))?;
        let body: TokenBody = resp.json()?;
        let t = body.token;
        let lifetime = t
            .issued_at
            .map(|i| t.expires_at - i)
            .unwrap_or_else(|| t.expires_at - Utc::now());
        let margin = chrono::Duration::from_std(self.inner.reauth_margin)
            .unwrap_or_else(|_| chrono::Duration::seconds(120));
        let refresh_at = t.expires_at - margin.min(lifetime / 2);
        let generation = self.inner.generation.fetch_add(1, Ordering::AcqRel) + 1;
        tracing::debug!(
            user = t.user.as_ref().map(|u| u.name.as_str()).unwrap_or_default(),
            project = t.project.as_ref().map(|p| p.name.as_str()).unwrap_or_default(),
            expires_at = %t.expires_at,
            generation,
            "keystone: authenticated"
        );
        Ok(TokenState {
            value,
            info: Arc::new(TokenInfo {
                user: t.user,
                project: t.project,
                domain: t.domain,
                roles: t.roles.into_iter().map(|r| r.name).collect(),
                expires_at: t.expires_at,
                catalog: Catalog {
                    services: t.catalog,
                },
                generation,
            }),
            refresh_at,
            rejected: AtomicBool::new(false),
        })
    }

    /// Replaces every known secret in `text` by `***`: clouds and proxies sometimes echo parts
    /// of a request, and no secret may leave through an error.
    fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        let mut secrets = self.inner.auth.secrets();
        if let Some(t) = self.cached() {
            secrets.push(t.value.clone());
        }
        for s in secrets.iter().filter(|s| !s.is_empty()) {
            if out.contains(s.expose()) {
                out = out.replace(s.expose(), "***");
            }
        }
        out
    }

    /// Sends one API call: rate limit, token, timeout, metrics, re-auth once on 401, and
    /// bounded retries of safe requests on transport errors, 429, 500, 502, 503 and 504.
    pub async fn send(&self, req: Request) -> Result<Response> {
        let op = req.op();
        let method = req.method.to_string();
        let mut url = reqwest::Url::parse(&format!("{}{}", req.base, req.path))
            .map_err(|e| Error::Config(format!("{op}: bad URL: {e}")))?;
        if !req.query.is_empty() {
            url.query_pairs_mut().extend_pairs(req.query.iter());
        }
        let mut attempt: u32 = 0;
        let mut reauthed = false;
        loop {
            let hold = self
                .inner
                .not_before
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&req.service)
                .copied();
            if let Some(until) = hold.filter(|t| *t > tokio::time::Instant::now()) {
                let waited = until - tokio::time::Instant::now();
                tokio::time::sleep_until(until).await;
                self.inner.metrics.throttled(&req.service, waited);
            }
            if let Some(l) = &self.inner.limiter {
                let waited = l.acquire().await;
                if !waited.is_zero() {
                    self.inner.metrics.throttled(&req.service, waited);
                }
            }
            let token = if req.authenticated {
                Some(self.current_token().await?)
            } else {
                None
            };
            let mut rb = self
                .inner
                .http
                .request(req.method.clone(), url.clone())
                .header("Accept", "application/json");
            if let Some(t) = &token {
                let mut v = HeaderValue::from_str(t.value.expose())
                    .map_err(|_| Error::decode(op.clone(), "token is not a valid header value"))?;
                v.set_sensitive(true);
                rb = rb.header("X-Auth-Token", v);
            }
            for (k, v) in &req.headers {
                rb = rb.header(k.clone(), v.clone());
            }
            if let Some(b) = &req.body {
                rb = rb
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(b.0.clone());
            }
            let started = Instant::now();
            let outcome = match rb.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let headers = resp.headers().clone();
                    resp.bytes().await.map(|b| (status, headers, b))
                }
                Err(e) => Err(e),
            };
            let took = started.elapsed();
            let (status, headers, body) = match outcome {
                Ok(x) => x,
                Err(e) => {
                    let (label, err) = if e.is_timeout() {
                        (
                            "timeout",
                            Error::Timeout {
                                op: op.clone(),
                                after: self.inner.request_timeout,
                            },
                        )
                    } else {
                        (
                            "transport",
                            Error::Transport {
                                op: op.clone(),
                                message: self.redact(&error_chain(&e)),
                            },
                        )
                    };
                    self.inner
                        .metrics
                        .observe(&req.service, &method, label, took);
                    tracing::debug!(service = %req.service, method = %method, path = %req.path, error = %err, "openstack request failed");
                    if req.may_retry() && attempt < self.inner.retry.max_retries {
                        self.inner.metrics.retried(&req.service, &method, label);
                        tokio::time::sleep(self.inner.retry.backoff(attempt)).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(err);
                }
            };
            self.inner
                .metrics
                .observe(&req.service, &method, &status.to_string(), took);
            tracing::debug!(service = %req.service, method = %method, path = %req.path, status, took_ms = took.as_millis() as u64, "openstack request");
            if (200..300).contains(&status) {
                return Ok(Response {
                    status,
                    headers,
                    body,
                    op,
                });
            }
            if status == 401 {
                if let Some(t) = &token {
                    if !reauthed {
                        // The token was revoked or expired early: authenticate once more.
                        t.rejected.store(true, Ordering::Release);
                        reauthed = true;
                        self.inner.metrics.retried(&req.service, &method, "reauth");
                        continue;
                    }
                }
            }
            if status == 404 && req.method == Method::DELETE && attempt > 0 {
                // An earlier attempt may have deleted it before its answer was lost.
                return Ok(Response {
                    status: 204,
                    headers,
                    body: Bytes::new(),
                    op,
                });
            }
            let retry_after = parse_retry_after(&headers);
            if let Some(d) = retry_after.filter(|_| status == 429) {
                // Capped: a cloud asking for minutes gets its answer as an error instead.
                let until = tokio::time::Instant::now() + d.min(self.inner.retry.max_retry_after);
                let mut hold = self
                    .inner
                    .not_before
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let slot = hold.entry(req.service.clone()).or_insert(until);
                *slot = (*slot).max(until);
            }
            let redacted = self.redact(&String::from_utf8_lossy(&body));
            let err = classify(op.clone(), status, redacted.as_bytes(), retry_after);
            let transient = matches!(status, 429 | 500 | 502 | 503 | 504);
            if transient && req.may_retry() && attempt < self.inner.retry.max_retries {
                let wait = match retry_after {
                    Some(d) if d <= self.inner.retry.max_retry_after => d,
                    Some(_) => return Err(err),
                    None => self.inner.retry.backoff(attempt),
                };
                self.inner
                    .metrics
                    .retried(&req.service, &method, &status.to_string());
                tracing::debug!(service = %req.service, method = %method, path = %req.path, status, wait_ms = wait.as_millis() as u64, "retrying");
                tokio::time::sleep(wait).await;
                attempt += 1;
                continue;
            }
            return Err(err);
        }
    }

    /// A create made safe to repeat by a lookup: `lookup` is asked first (and again before every
    /// repetition), so a POST whose answer was lost is found instead of duplicated. `create` is
    /// repeated only on transient errors, at most `max_retries` times.
    pub async fn create_idempotent<T, L, LF, C, CF>(
        &self,
        service: &str,
        mut lookup: L,
        mut create: C,
    ) -> Result<T>
    where
        L: FnMut() -> LF,
        LF: Future<Output = Result<Option<T>>>,
        C: FnMut() -> CF,
        CF: Future<Output = Result<T>>,
    {
        let mut attempt = 0;
        loop {
            if let Some(found) = lookup().await? {
                return Ok(found);
            }
            match create().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_transient() && attempt < self.inner.retry.max_retries => {
                    let wait = match &e {
                        Error::RateLimited {
                            retry_after: Some(d),
                            ..
                        } if *d <= self.inner.retry.max_retry_after => *d,
                        Error::RateLimited {
                            retry_after: Some(_),
                            ..
                        } => return Err(e),
                        _ => self.inner.retry.backoff(attempt),
                    };
                    self.inner.metrics.retried(service, "POST", e.reason());
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// reqwest's Display hides the cause ("error sending request"); the chain says what happened
/// (connection refused, certificate unknown, ...).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    let mut depth = 0;
    while let Some(c) = cur {
        if depth >= 8 {
            break;
        }
        let cs = c.to_string();
        if !s.contains(&cs) {
            s.push_str(": ");
            s.push_str(&cs);
        }
        cur = c.source();
        depth += 1;
    }
    s
}

/// `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs));
        }
    }
    let when = DateTime::parse_from_rfc2822(v).ok()?.with_timezone(&Utc);
    Some((when - Utc::now()).to_std().unwrap_or(Duration::ZERO))
}

/// The interface name as used in the catalog (for reports).
pub fn interface_label(i: EndpointInterface) -> &'static str {
    interface_name(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded_and_grows() {
        let p = RetryPolicy {
            max_retries: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(5),
        };
        for a in 0..40 {
            let d = p.backoff(a);
            assert!(d <= Duration::from_secs(1), "{a}: {d:?}");
        }
        assert!(p.backoff(0) >= Duration::from_millis(50));
        assert!(p.backoff(10) >= Duration::from_millis(500));
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(parse_retry_after(&h), Some(Duration::ZERO));
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(parse_retry_after(&h), None);
    }

    fn answer(body: &str) -> Response {
        Response {
            status: 200,
            headers: HeaderMap::new(),
            body: Bytes::copy_from_slice(body.as_bytes()),
            op: Op {
                method: "GET".into(),
                service: "load-balancer".into(),
                path: "/v2/lbaas/pools/p1".into(),
            },
        }
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Pool {
        id: String,
        members: Vec<String>,
    }

    #[test]
    fn take_reads_one_member_of_the_answer_and_names_what_is_wrong() {
        let ok = answer(r#"{"links": [{"x": 1}], "pool": {"id": "p1", "members": ["a", "b"]}}"#);
        let pool: Pool = ok.take("pool").expect("a pool");
        assert_eq!(pool.members, ["a", "b"]);

        // Escaped keys still match: the keys are decoded, not borrowed.
        let escaped = answer(r#"{"po\u006fl": {"id": "p1", "members": []}}"#);
        assert_eq!(escaped.take::<Pool>("pool").expect("a pool").id, "p1");

        for (body, says) in [
            (r#"{"listener": {}}"#, r#"no "pool" in the answer"#),
            (r#"["pool"]"#, r#"no "pool" in the answer"#),
            ("null", r#"no "pool" in the answer"#),
            (
                r#"{"pool": {"id": 7, "members": []}}"#,
                "pool: invalid type",
            ),
            (r#"{"pool": {"id": "p1", "mem"#, "EOF"),
        ] {
            let err = answer(body)
                .take::<Pool>("pool")
                .expect_err(body)
                .to_string();
            assert!(err.contains(says), "{body}: {err}");
            assert!(err.contains("/v2/lbaas/pools/p1"), "{body}: {err}");
        }
    }

    #[test]
    fn a_body_is_sent_in_its_envelope_and_never_shown() {
        let req = Request::new(
            "identity",
            Method::POST,
            "http://127.0.0.1:1",
            "/v3/auth/tokens",
        )
        .json_under("auth", &serde_json::json!({"password": "hunter2"}))
        .expect("encodes");
        let body = req.body.as_ref().expect("a body");
        assert_eq!(body.bytes(), br#"{"auth":{"password":"hunter2"}}"#);
        let shown = format!("{req:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("JsonBody(31 bytes)"), "{shown}");
    }

    #[test]
    fn a_page_gives_its_items_and_next_link_and_names_a_bad_item() {
        let page = answer(
            r#"{"pools": [{"id": "p1", "members": []}, {"id": "p2", "members": ["m"]}],
                "pools_links": [{"rel": "prev", "href": "x"}, {"rel": "next", "href": "http://h/v2/lbaas/pools?marker=p2"}]}"#,
        );
        let (items, next): (Vec<Pool>, _) = page.page("pools").expect("a page");
        assert_eq!(items.len(), 2);
        assert_eq!(next.as_deref(), Some("http://h/v2/lbaas/pools?marker=p2"));

        for body in [
            r#"{"pools_links": []}"#,
            "[]",
            r#"{"pools": [], "pools_links": "odd"}"#,
        ] {
            let (items, next): (Vec<Pool>, _) = answer(body).page("pools").expect(body);
            assert!(items.is_empty() && next.is_none(), "{body}");
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(answer(&deep).page::<Pool>("pools").is_err());
        let err = answer(r#"{"pools": [{"id": 1}]}"#)
            .page::<Pool>("pools")
            .expect_err("a bad item")
            .to_string();
        assert!(err.contains("pools: invalid type"), "{err}");
    }
}
