//! No secret (password, application-credential secret, token) reaches a log line (all tracing
//! output at TRACE, every crate, captured) or an error's Display/Debug, for every error kind the
//! client produces against a failing server — including a server that echoes the password.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{fast_options, start, Reply, PASSWORD};
use model::config::{MetadataConfig, Secret};
use openstack::lbaas::LoadBalancerApi;
use openstack::neutron::CreateFloatingIp;
use openstack::{Error, ListQuery, Neutron, Session};
use serde_json::json;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

const APP_SECRET: &str = "AppCred-Secret-9f8e7d";

#[tokio::test(flavor = "current_thread")]
async fn no_secret_in_logs_or_errors() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .with_ansi(false)
        .finish();
    // current_thread runtime: the mock server's tasks run on this thread too, so they log here.
    let _guard = tracing::subscriber::set_default(subscriber);

    let m = start().await;
    *m.state.echo_password_in_errors.lock().unwrap() = true;
    m.script("GET /v2.0/networks", vec![Reply::empty(503)]);
    m.default_reply(
        "GET /v2.0/networks",
        Reply::json(200, json!({"networks": []})),
    );
    m.default_reply(
        "GET /v2.0/networks/garbage",
        Reply::json(200, json!({"not": "a network"})),
    );
    m.default_reply("GET /v2.0/networks/echo", Reply::json(400, json!({"NeutronError": {"type": "Bad", "message": format!("you said {PASSWORD}"), "detail": ""}})));
    m.default_reply(
        "GET /v2.0/networks/slow",
        Reply::empty(200).delayed(Duration::from_secs(3)),
    );
    m.default_reply("POST /v2.0/floatingips", Reply::json(409, json!({"NeutronError": {"type": "OverQuota", "message": "Quota exceeded", "detail": ""}})));
    m.default_reply(
        "PUT /lb/v2/lbaas/loadbalancers/x",
        Reply::json(
            409,
            json!({"faultcode": "Client", "faultstring": "Invalid state PENDING_UPDATE"}),
        ),
    );
    m.default_reply(
        "GET /lb/v2/lbaas/loadbalancers/x",
        Reply::json(429, json!({"faultcode": "Client", "faultstring": "slow"}))
            .header("Retry-After", "999"),
    );
    m.default_reply(
        "POST /lb/v2/lbaas/listeners",
        Reply::json(
            403,
            json!({"faultcode": "Client", "faultstring": "Policy does not allow"}),
        ),
    );
    m.default_reply(
        "DELETE /lb/v2/lbaas/pools/p",
        Reply::json(500, json!({"faultcode": "Server", "faultstring": "boom"})),
    );

    let mut errors: Vec<Error> = Vec::new();
    let mut tokens: Vec<String> = Vec::new();

    // Password session: success, token revocation, and most error kinds.
    let mut g = m.global();
    g.tls_insecure = true;
    let md = MetadataConfig {
        request_timeout: Duration::from_millis(300),
        ..MetadataConfig::default()
    };
    let s = Session::new(&g, &md, fast_options()).await.unwrap();
    tokens.push(s.token().await.unwrap().expose().to_string());
    let n = Neutron::new(&s).await.unwrap();
    n.list_networks(&ListQuery::new()).await.unwrap();
    m.revoke_tokens();
    n.list_networks(&ListQuery::new()).await.unwrap();
    tokens.push(s.token().await.unwrap().expose().to_string());
    errors.push(n.get_network("garbage").await.unwrap_err());
    errors.push(n.get_network("echo").await.unwrap_err());
    errors.push(n.get_network("slow").await.unwrap_err());
    errors.push(n.get_network("missing").await.unwrap_err());
    errors.push(
        n.create_floating_ip(&CreateFloatingIp::default())
            .await
            .unwrap_err(),
    );
    let api = LoadBalancerApi::detect(&s, None).await.unwrap();
    let v2 = api.v2().unwrap();
    errors.push(
        v2.update_loadbalancer("x", &Default::default())
            .await
            .unwrap_err(),
    );
    errors.push(v2.get_loadbalancer("x").await.unwrap_err());
    errors.push(v2.create_listener(&Default::default()).await.unwrap_err());
    errors.push(v2.delete_pool("p").await.unwrap_err());
    m.default_reply(
        "PUT /v2.0/ports/p",
        Reply::json(412, json!({"NeutronError": {"type": "RevisionNumberConstraintFailed", "message": "Constrained to 1, but current revision is 2", "detail": ""}})),
    );
    errors.push(
        n.update_port("p", &Default::default(), Some(1))
            .await
            .unwrap_err(),
    );
    errors.push(s.endpoint("compute").await.unwrap_err());
    let nv2 = LoadBalancerApi::detect(&s, Some(model::config::LbaasGeneration::NeutronV2))
        .await
        .unwrap();
    errors.push(nv2.v2().unwrap().flavors().await.unwrap_err());

    // Endpoint down.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut o = fast_options();
    o.endpoint_overrides =
        BTreeMap::from([("network".to_string(), format!("http://127.0.0.1:{closed}"))]);
    let s_down = Session::new(&m.global(), &md, o).await.unwrap();
    tokens.push(s_down.token().await.unwrap().expose().to_string());
    errors.push(
        Neutron::new(&s_down)
            .await
            .unwrap()
            .list_networks(&ListQuery::new())
            .await
            .unwrap_err(),
    );

    // Wrong password, echoed back by the server; wrong application-credential secret.
    let mut bad = m.global();
    bad.password = Some(Secret::new(format!("{PASSWORD}-wrong")));
    errors.push(Session::new(&bad, &md, fast_options()).await.unwrap_err());
    let mut ac = m.global();
    ac.password = None;
    ac.application_credential_id = Some("ac".into());
    ac.application_credential_secret = Some(Secret::new(APP_SECRET));
    let ac_err = Session::new(&ac, &md, fast_options()).await.unwrap_err();
    errors.push(ac_err);
    // Keystone down.
    let mut down = m.global();
    down.auth_url = Some(format!("http://127.0.0.1:{closed}/v3"));
    errors.push(Session::new(&down, &md, fast_options()).await.unwrap_err());
    // Configuration errors.
    let mut nouser = m.global();
    nouser.username = None;
    errors.push(
        Session::new(&nouser, &md, fast_options())
            .await
            .unwrap_err(),
    );

    let kinds: std::collections::BTreeSet<&str> = errors.iter().map(|e| e.reason()).collect();
    for k in [
        "Decode",
        "PreconditionFailed",
        "BadRequest",
        "Timeout",
        "NotFound",
        "QuotaExceeded",
        "Conflict",
        "RateLimited",
        "Forbidden",
        "Server",
        "EndpointNotFound",
        "Unsupported",
        "Transport",
        "Unauthorized",
        "Config",
    ] {
        assert!(kinds.contains(k), "error kind {k} exercised; got {kinds:?}");
    }

    let mut secrets: Vec<String> = vec![PASSWORD.to_string(), APP_SECRET.to_string()];
    secrets.extend(tokens.iter().filter(|t| !t.is_empty()).cloned());
    assert!(tokens.len() >= 3);
    for e in &errors {
        let shown = format!("{e} | {e:?} | {}", e.message());
        for sct in &secrets {
            assert!(!shown.contains(sct.as_str()), "secret in error: {shown}");
        }
    }
    for dbg in [format!("{s:?}"), format!("{g:?}"), format!("{ac:?}")] {
        for sct in &secrets {
            assert!(!dbg.contains(sct.as_str()), "secret in Debug: {dbg}");
        }
    }
    // The echoed password was replaced, not dropped: the rest of the message survives.
    assert!(
        errors.iter().any(|e| e.message().contains("you said ***")),
        "{errors:?}"
    );

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("openstack request"),
        "logs were captured: {} bytes",
        logs.len()
    );
    assert!(
        logs.contains("tls-insecure"),
        "loud warning for tls-insecure"
    );
    for sct in &secrets {
        assert!(!logs.contains(sct.as_str()), "secret {sct:?} found in logs");
    }
}
