//! A tiny scripted OpenStack stand-in for exact error shapes: a Keystone token endpoint whose
//! catalog points back at itself, and every other path answered from a per-route script
//! (status, headers, body) or a default. Records every request. Plain HTTP or TLS.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use model::config::{GlobalConfig, MetadataConfig, Secret};
use openstack::{RetryPolicy, Session, SessionOptions};
use serde_json::{json, Value};

pub const PASSWORD: &str = "s3cr3t-P@ss";

#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Option<Duration>,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
            delay: None,
        }
    }
    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: vec![],
            body: String::new(),
            delay: None,
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.into(), v.into()));
        self
    }
    pub fn delayed(mut self, d: Duration) -> Reply {
        self.delay = Some(d);
        self
    }
}

#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: String,
}

pub struct MockState {
    pub url: Mutex<String>,
    pub requests: Mutex<Vec<Recorded>>,
    pub scripts: Mutex<HashMap<String, VecDeque<Reply>>>,
    pub defaults: Mutex<HashMap<String, Reply>>,
    pub auth_count: AtomicUsize,
    pub tokens: Mutex<HashSet<String>>,
    /// (issued this many seconds ago, expires in this many seconds)
    pub token_times: Mutex<(i64, i64)>,
    pub with_load_balancer: Mutex<bool>,
    /// Hook run on every scripted reply body: `{URL}` → the server's base URL.
    pub echo_password_in_errors: Mutex<bool>,
}

pub struct Mock {
    pub url: String,
    pub state: Arc<MockState>,
}

impl Mock {
    /// Queue replies for `"METHOD /path"`; served in order, then the default.
    pub fn script(&self, key: &str, replies: Vec<Reply>) {
        self.state
            .scripts
            .lock()
            .unwrap()
            .entry(key.to_string())
            .or_default()
            .extend(replies);
    }
    pub fn default_reply(&self, key: &str, reply: Reply) {
        self.state
            .defaults
            .lock()
            .unwrap()
            .insert(key.to_string(), reply);
    }
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .count()
    }
    pub fn auths(&self) -> usize {
        self.state.auth_count.load(Ordering::SeqCst)
    }
    pub fn revoke_tokens(&self) {
        self.state.tokens.lock().unwrap().clear();
    }

    pub fn global(&self) -> GlobalConfig {
        GlobalConfig {
            auth_url: Some(format!("{}/v3", self.url)),
            username: Some("admin".into()),
            password: Some(Secret::new(PASSWORD)),
            project_name: Some("admin".into()),
            user_domain_name: Some("Default".into()),
            project_domain_name: Some("Default".into()),
            region: Some("RegionOne".into()),
            ..Default::default()
        }
    }

    pub async fn session(&self) -> Session {
        Session::new(&self.global(), &MetadataConfig::default(), fast_options())
            .await
            .unwrap()
    }
}

/// Short backoffs so retry tests stay quick; no client-side rate limit unless a test asks.
pub fn fast_options() -> SessionOptions {
    SessionOptions {
        rate_limit: None,
        retry: RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            max_retry_after: Duration::from_secs(5),
        },
        ..Default::default()
    }
}

fn catalog(url: &str, with_lb: bool) -> Value {
    let ep = |iface: &str, region: &str, u: &str| json!({"id": format!("{iface}-{region}"), "interface": iface, "region": region, "region_id": region, "url": u});
    let mut services = vec![
        json!({"type": "identity", "name": "keystone", "id": "k", "endpoints": [ep("public", "RegionOne", &format!("{url}/v3"))]}),
        json!({"type": "network", "name": "neutron", "id": "n", "endpoints": [
            ep("public", "RegionOne", &format!("{url}/")),
            ep("internal", "RegionOne", "http://127.0.0.1:9/internal-unused"),
            ep("public", "OtherRegion", "http://127.0.0.1:9/other-region-unused"),
        ]}),
    ];
    if with_lb {
        services.push(json!({"type": "load-balancer", "name": "octavia", "id": "o", "endpoints": [ep("public", "RegionOne", &format!("{url}/lb"))]}));
    }
    Value::Array(services)
}

async fn handle(
    State(st): State<Arc<MockState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let body_s = String::from_utf8_lossy(&body).to_string();
    st.requests.lock().unwrap().push(Recorded {
        method: method.to_string(),
        path: path.clone(),
        query: uri.query().unwrap_or_default().to_string(),
        headers: headers.clone(),
        body: body_s.clone(),
    });
    let url = st.url.lock().unwrap().clone();

    if method == Method::POST && path == "/v3/auth/tokens" {
        let v: Value = serde_json::from_str(&body_s).unwrap_or_default();
        let id = &v["auth"]["identity"];
        let given = id["password"]["user"]["password"]
            .as_str()
            .or(id["application_credential"]["secret"].as_str())
            .unwrap_or_default();
        if given != PASSWORD {
            let mut msg = "The request you have made requires authentication.".to_string();
            if *st.echo_password_in_errors.lock().unwrap() {
                msg = format!("{msg} (you sent {given})");
            }
            return (
                StatusCode::UNAUTHORIZED,
                [("content-type", "application/json")],
                json!({"error": {"code": 401, "message": msg, "title": "Unauthorized"}})
                    .to_string(),
            )
                .into_response();
        }
        let n = st.auth_count.fetch_add(1, Ordering::SeqCst) + 1;
        let token = format!("gAAAAA-token-{n}-{}", rand_suffix());
        st.tokens.lock().unwrap().insert(token.clone());
        let (ago, expires) = *st.token_times.lock().unwrap();
        let now = chrono::Utc::now();
        let body = json!({"token": {
            "methods": ["password"],
            "issued_at": (now - chrono::Duration::seconds(ago)).to_rfc3339(),
            "expires_at": (now + chrono::Duration::seconds(expires)).to_rfc3339(),
            "user": {"id": "u-admin", "name": "admin", "domain": {"id": "default", "name": "Default"}},
            "project": {"id": "p-admin", "name": "admin", "domain": {"id": "default", "name": "Default"}},
            "roles": [{"id": "r1", "name": "admin"}, {"id": "r2", "name": "member"}],
            "catalog": catalog(&url, *st.with_load_balancer.lock().unwrap()),
        }});
        return (
            StatusCode::CREATED,
            [
                ("x-subject-token", token.as_str()),
                ("content-type", "application/json"),
            ],
            body.to_string(),
        )
            .into_response();
    }

    let tok = headers
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if !st.tokens.lock().unwrap().contains(&tok) {
        return (StatusCode::UNAUTHORIZED, [("content-type", "application/json")], json!({"error": {"code": 401, "message": "The request you have made requires authentication.", "title": "Unauthorized"}}).to_string()).into_response();
    }

    let key = format!("{method} {path}");
    let scripted = st
        .scripts
        .lock()
        .unwrap()
        .get_mut(&key)
        .and_then(|q| q.pop_front());
    let reply = scripted.or_else(|| st.defaults.lock().unwrap().get(&key).cloned());
    let Some(reply) = reply else {
        return (StatusCode::NOT_FOUND, [("content-type", "application/json")], json!({"NeutronError": {"type": "HTTPNotFound", "message": format!("The resource could not be found: {key}"), "detail": ""}}).to_string()).into_response();
    };
    if let Some(d) = reply.delay {
        tokio::time::sleep(d).await;
    }
    let mut resp = Response::builder().status(reply.status);
    for (k, v) in &reply.headers {
        resp = resp.header(k, v);
    }
    resp.body(axum::body::Body::from(reply.body.replace("{URL}", &url)))
        .unwrap()
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0)
}

fn new_state() -> Arc<MockState> {
    Arc::new(MockState {
        url: Mutex::new(String::new()),
        requests: Mutex::new(Vec::new()),
        scripts: Mutex::new(HashMap::new()),
        defaults: Mutex::new(HashMap::new()),
        auth_count: AtomicUsize::new(0),
        tokens: Mutex::new(HashSet::new()),
        token_times: Mutex::new((0, 3600)),
        with_load_balancer: Mutex::new(true),
        echo_password_in_errors: Mutex::new(false),
    })
}

fn router(state: Arc<MockState>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

/// Plain HTTP on an ephemeral loopback port.
pub async fn start() -> Mock {
    let state = new_state();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    *state.url.lock().unwrap() = url.clone();
    let app = router(state.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Mock { url, state }
}

/// Test PKI made with rcgen: a CA and a server certificate for 127.0.0.1 signed by it.
pub struct TestPki {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

pub fn make_pki() -> TestPki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "olbc test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().unwrap();
    let mut sp =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    sp.distinguished_name
        .push(rcgen::DnType::CommonName, "127.0.0.1");
    let server_cert = sp.signed_by(&server_key, &issuer).unwrap();

    let client_key = KeyPair::generate().unwrap();
    let mut cp = CertificateParams::new(vec!["olbc-client".to_string()]).unwrap();
    cp.distinguished_name
        .push(rcgen::DnType::CommonName, "olbc-client");
    cp.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = cp.signed_by(&client_key, &issuer).unwrap();

    TestPki {
        ca_pem: ca_cert.pem(),
        server_cert_pem: server_cert.pem(),
        server_key_pem: server_key.serialize_pem(),
        client_cert_pem: client_cert.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}

/// HTTPS with `pki`'s server certificate; with `require_client_cert`, clients must present a
/// certificate signed by the same CA.
pub async fn start_tls(pki: &TestPki, require_client_cert: bool) -> Mock {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let state = new_state();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    *state.url.lock().unwrap() = url.clone();

    let certs: Vec<CertificateDer<'static>> =
        rustls_pemfile::certs(&mut pki.server_cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
    let key: PrivateKeyDer<'static> =
        rustls_pemfile::private_key(&mut pki.server_key_pem.as_bytes())
            .unwrap()
            .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if require_client_cert {
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pemfile::certs(&mut pki.ca_pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut cfg = builder.with_single_cert(certs, key).unwrap();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let app = router(state.clone());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                break;
            };
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                .await;
            });
        }
    });
    Mock { url, state }
}

/// A neutron extension list answer.
pub fn extensions(aliases: &[&str]) -> Reply {
    let exts: Vec<Value> = aliases
        .iter()
        .map(|a| json!({"alias": a, "name": a, "description": "", "updated": ""}))
        .collect();
    Reply::json(200, json!({ "extensions": exts }))
}
