//! Exact error shapes and retry behaviour against a scripted stand-in server (tests/common):
//! auth forms, catalog selection, re-auth, retries, Retry-After, quota, conflicts, pagination,
//! filters, If-Match, tags, idempotent create, detection and the version document.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{extensions, fast_options, start, Reply, PASSWORD};
use model::config::{EndpointInterface, LbaasGeneration, MetadataConfig, Secret};
use openstack::lbaas::{CreateMember, LoadBalancerApi};
use openstack::neutron::{CreateFloatingIp, TagResource, UpdatePort};
use openstack::{ApiVersion, Error, ListQuery, Neutron, RateLimit, Session, SessionOptions};
use serde_json::{json, Value};

fn body_json(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

#[tokio::test]
async fn password_auth_sends_user_domain_and_project_scope() {
    let m = start().await;
    let s = m.session().await;
    let auth = m
        .requests()
        .into_iter()
        .find(|r| r.path == "/v3/auth/tokens")
        .unwrap();
    let b = body_json(&auth.body);
    assert_eq!(b["auth"]["identity"]["methods"][0], "password");
    assert_eq!(b["auth"]["identity"]["password"]["user"]["name"], "admin");
    assert_eq!(
        b["auth"]["identity"]["password"]["user"]["domain"]["name"],
        "Default"
    );
    assert_eq!(b["auth"]["scope"]["project"]["name"], "admin");
    assert_eq!(b["auth"]["scope"]["project"]["domain"]["name"], "Default");
    let info = s.token_info().await.unwrap();
    assert_eq!(info.project.as_ref().unwrap().id, "p-admin");
    assert_eq!(info.roles, vec!["admin".to_string(), "member".to_string()]);
    assert_eq!(info.generation, 1);
}

#[tokio::test]
async fn auth_url_without_version_and_app_credential() {
    let m = start().await;
    let mut g = m.global();
    g.auth_url = Some(m.url.clone());
    g.password = None;
    g.username = None;
    g.application_credential_id = Some("ac-1".into());
    g.application_credential_secret = Some(Secret::new(PASSWORD));
    let s = Session::new(&g, &MetadataConfig::default(), fast_options())
        .await
        .unwrap();
    let auth = m
        .requests()
        .into_iter()
        .find(|r| r.path == "/v3/auth/tokens")
        .unwrap();
    let b = body_json(&auth.body);
    assert_eq!(
        b["auth"]["identity"]["methods"][0],
        "application_credential"
    );
    assert_eq!(
        b["auth"]["identity"]["application_credential"]["id"],
        "ac-1"
    );
    assert!(b["auth"].get("scope").is_none());
    assert_eq!(s.endpoint("network").await.unwrap(), m.url);
}

#[tokio::test]
async fn trust_auth_magnum_layout() {
    let m = start().await;
    let mut g = m.global();
    g.username = None;
    g.user_id = Some("trustee-user".into());
    g.trust_id = Some("trust-42".into());
    Session::new(&g, &MetadataConfig::default(), fast_options())
        .await
        .unwrap();
    let auth = m
        .requests()
        .into_iter()
        .find(|r| r.path == "/v3/auth/tokens")
        .unwrap();
    let b = body_json(&auth.body);
    assert_eq!(
        b["auth"]["identity"]["password"]["user"]["id"],
        "trustee-user"
    );
    assert_eq!(b["auth"]["scope"]["OS-TRUST:trust"]["id"], "trust-42");
}

#[tokio::test]
async fn endpoint_by_interface_region_and_override() {
    let m = start().await;
    let s = m.session().await;
    assert_eq!(s.endpoint("network").await.unwrap(), m.url);
    assert_eq!(
        s.endpoint("load-balancer").await.unwrap(),
        format!("{}/lb", m.url)
    );
    assert!(matches!(
        s.endpoint("compute").await,
        Err(Error::EndpointNotFound { .. })
    ));

    let mut g = m.global();
    g.endpoint_interface = EndpointInterface::Internal;
    let s = Session::new(&g, &MetadataConfig::default(), fast_options())
        .await
        .unwrap();
    assert_eq!(
        s.endpoint("network").await.unwrap(),
        "http://127.0.0.1:9/internal-unused"
    );

    let mut g = m.global();
    g.region = Some("OtherRegion".into());
    let mut o = fast_options();
    o.endpoint_overrides = BTreeMap::from([(
        "load-balancer".to_string(),
        "http://127.0.0.1:1/override/".to_string(),
    )]);
    let s = Session::new(&g, &MetadataConfig::default(), o)
        .await
        .unwrap();
    assert_eq!(
        s.endpoint("network").await.unwrap(),
        "http://127.0.0.1:9/other-region-unused"
    );
    assert_eq!(
        s.endpoint("load-balancer").await.unwrap(),
        "http://127.0.0.1:1/override"
    );
}

#[tokio::test]
async fn wrong_password_is_unauthorized_with_keystone_message() {
    let m = start().await;
    let mut g = m.global();
    g.password = Some(Secret::new("wrong"));
    let err = Session::new(&g, &MetadataConfig::default(), fast_options())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    assert!(err.to_string().contains("requires authentication"), "{err}");
    // One attempt only: a 401 at authentication is not retried.
    assert_eq!(m.count("POST", "/v3/auth/tokens"), 1);
}

#[tokio::test]
async fn token_is_shared_by_clones_and_renewed_once_on_401() {
    let m = start().await;
    m.default_reply(
        "GET /v2.0/networks",
        Reply::json(
            200,
            json!({"networks": [{"id": "n1", "name": "public", "router:external": true}]}),
        ),
    );
    let s = m.session().await;
    let s2 = s.clone();
    let n = Neutron::new(&s).await.unwrap();
    let n2 = Neutron::new(&s2).await.unwrap();
    n.list_networks(&ListQuery::new()).await.unwrap();
    n2.list_networks(&ListQuery::new()).await.unwrap();
    assert_eq!(m.auths(), 1, "clones share one token");

    m.revoke_tokens();
    let nets = n2.list_networks(&ListQuery::new()).await.unwrap();
    assert_eq!(nets[0].id, "n1");
    assert!(nets[0].router_external);
    assert_eq!(m.auths(), 2, "one re-authentication after the 401");
    assert_eq!(s.token_info().await.unwrap().generation, 2);
    assert_eq!(s.metrics().retried_count("network", "GET", "reauth"), 1);
}

#[tokio::test]
async fn reauth_shortly_before_expiry() {
    let m = start().await;
    // A token issued an hour ago that expires in 30 s is inside the 120 s margin: every use
    // renews it first.
    *m.state.token_times.lock().unwrap() = (3600, 30);
    m.default_reply("GET /v2.0/extensions", extensions(&["external-net"]));
    let s = m.session().await;
    let n = Neutron::new(&s).await.unwrap();
    n.list_extensions().await.unwrap();
    n.list_extensions().await.unwrap();
    assert!(m.auths() >= 3, "auths {}", m.auths());

    // A fresh long token is reused.
    let m = start().await;
    m.default_reply("GET /v2.0/extensions", extensions(&["external-net"]));
    let s = m.session().await;
    let n = Neutron::new(&s).await.unwrap();
    n.list_extensions().await.unwrap();
    n.list_extensions().await.unwrap();
    assert_eq!(m.auths(), 1);
}

#[tokio::test]
async fn get_503_then_success_is_retried_and_counted() {
    let m = start().await;
    m.script(
        "GET /v2.0/ports",
        vec![Reply::json(503, json!({"NeutronError": {"type": "ServiceUnavailable", "message": "busy", "detail": ""}})), Reply::empty(502)],
    );
    m.default_reply("GET /v2.0/ports", Reply::json(200, json!({"ports": [{"id": "p1", "fixed_ips": [{"subnet_id": "s", "ip_address": "10.0.0.3"}]}]})));
    let s = m.session().await;
    let ports = Neutron::new(&s)
        .await
        .unwrap()
        .list_ports(&ListQuery::new().device_id("d1"))
        .await
        .unwrap();
    assert_eq!(ports[0].fixed_ips[0].ip_address, "10.0.0.3");
    assert_eq!(m.count("GET", "/v2.0/ports"), 3);
    assert_eq!(s.metrics().retried_count("network", "GET", "503"), 1);
    assert_eq!(s.metrics().retried_count("network", "GET", "502"), 1);
    assert_eq!(s.metrics().request_count("network", "GET", "200"), 1);
    assert_eq!(s.metrics().request_count("network", "GET", "503"), 1);
}

#[tokio::test]
async fn get_retries_are_bounded() {
    let m = start().await;
    m.default_reply(
        "GET /v2.0/ports",
        Reply::json(
            503,
            json!({"NeutronError": {"type": "X", "message": "down", "detail": ""}}),
        ),
    );
    let s = m.session().await;
    let err = Neutron::new(&s)
        .await
        .unwrap()
        .list_ports(&ListQuery::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Server { status: 503, .. }), "{err:?}");
    assert_eq!(m.count("GET", "/v2.0/ports"), 4, "1 + max_retries(3)");
}

#[tokio::test]
async fn post_is_not_retried_on_503() {
    let m = start().await;
    m.default_reply(
        "POST /v2.0/floatingips",
        Reply::json(
            503,
            json!({"NeutronError": {"type": "X", "message": "down", "detail": ""}}),
        ),
    );
    let s = m.session().await;
    let err = Neutron::new(&s)
        .await
        .unwrap()
        .create_floating_ip(&CreateFloatingIp {
            floating_network_id: "net".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(err.is_transient());
    assert_eq!(m.count("POST", "/v2.0/floatingips"), 1);
}

#[tokio::test]
async fn ensure_floating_ip_finds_the_one_a_lost_answer_created() {
    let m = start().await;
    let fip = json!({"id": "f1", "floating_ip_address": "203.0.113.7", "floating_network_id": "net", "description": "Floating IP for Kubernetes external service ns/a from cluster k"});
    // The first POST "fails" with 503 (as if the answer was lost after the create); the
    // second lookup finds what it made.
    m.script(
        "GET /v2.0/floatingips",
        vec![Reply::json(200, json!({"floatingips": []}))],
    );
    m.default_reply(
        "GET /v2.0/floatingips",
        Reply::json(200, json!({"floatingips": [fip]})),
    );
    m.script(
        "POST /v2.0/floatingips",
        vec![Reply::json(
            503,
            json!({"NeutronError": {"type": "X", "message": "down", "detail": ""}}),
        )],
    );
    let s = m.session().await;
    let n = Neutron::new(&s).await.unwrap();
    let req = CreateFloatingIp {
        floating_network_id: "net".into(),
        subnet_id: Some("sub".into()),
        floating_ip_address: Some("203.0.113.7".into()),
        port_id: Some("vip-port".into()),
        description: Some("Floating IP for Kubernetes external service ns/a from cluster k".into()),
        ..Default::default()
    };
    let lookup = ListQuery::new()
        .description(req.description.clone().unwrap())
        .tags(&["kube_cluster_x"]);
    let got = n.ensure_floating_ip(&req, &lookup).await.unwrap();
    assert_eq!(got.id, "f1");
    assert_eq!(
        m.count("POST", "/v2.0/floatingips"),
        1,
        "no duplicate create"
    );
    let post = m
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path == "/v2.0/floatingips")
        .unwrap();
    let b = body_json(&post.body);
    assert_eq!(b["floatingip"]["subnet_id"], "sub");
    assert_eq!(b["floatingip"]["port_id"], "vip-port");
    let get = m
        .requests()
        .into_iter()
        .find(|r| r.method == "GET" && r.path == "/v2.0/floatingips")
        .unwrap();
    assert!(get.query.contains("tags=kube_cluster_x"), "{}", get.query);
    assert!(
        get.query.contains("description=Floating+IP+for+Kubernetes"),
        "{}",
        get.query
    );
}

#[tokio::test]
async fn delete_404_on_retry_is_success_and_404_first_is_not_found() {
    let m = start().await;
    m.script("DELETE /v2.0/floatingips/f1", vec![Reply::empty(503)]);
    let s = m.session().await;
    let n = Neutron::new(&s).await.unwrap();
    n.delete_floating_ip("f1").await.unwrap();
    assert_eq!(m.count("DELETE", "/v2.0/floatingips/f1"), 2);
    let err = n.delete_floating_ip("f2").await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
}

#[tokio::test]
async fn conflict_while_pending_carries_octavia_message_and_is_not_retried() {
    let m = start().await;
    m.default_reply(
        "PUT /lb/v2/lbaas/loadbalancers/lb1",
        Reply::json(409, json!({"faultcode": "Client", "faultstring": "Load Balancer lb1 is immutable and cannot be updated.", "debuginfo": null})),
    );
    let s = m.session().await;
    let api = LoadBalancerApi::detect(&s, None).await.unwrap();
    let v2 = api.v2().unwrap();
    let err = v2
        .update_loadbalancer("lb1", &Default::default())
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err:?}");
    assert!(
        err.message().contains("is immutable and cannot be updated"),
        "{err}"
    );
    assert_eq!(m.count("PUT", "/lb/v2/lbaas/loadbalancers/lb1"), 1);
}

#[tokio::test]
async fn rate_limited_429_honours_retry_after() {
    let m = start().await;
    m.script(
        "GET /lb/v2/lbaas/loadbalancers/lb1",
        vec![Reply::json(
            429,
            json!({"faultcode": "Client", "faultstring": "slow down"}),
        )
        .header("Retry-After", "1")],
    );
    m.default_reply(
        "GET /lb/v2/lbaas/loadbalancers/lb1",
        Reply::json(
            200,
            json!({"loadbalancer": {"id": "lb1", "provisioning_status": "ACTIVE"}}),
        ),
    );
    let s = m.session().await;
    let api = LoadBalancerApi::detect(&s, None).await.unwrap();
    let started = std::time::Instant::now();
    let lb = api.v2().unwrap().get_loadbalancer("lb1").await.unwrap();
    assert_eq!(lb.provisioning_status, "ACTIVE");
    // A lower bound on a sleep cannot flake: without honouring Retry-After the retry would
    // come after the policy's backoff (at most 50 ms here).
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "waited for Retry-After"
    );
    assert_eq!(s.metrics().retried_count("load-balancer", "GET", "429"), 1);

    // A Retry-After beyond the policy's cap goes back to the caller at once.
    m.script(
        "GET /lb/v2/lbaas/loadbalancers/lb2",
        vec![Reply::json(
            429,
            json!({"faultcode": "Client", "faultstring": "slow down"}),
        )
        .header("Retry-After", "3600")],
    );
    let err = api.v2().unwrap().get_loadbalancer("lb2").await.unwrap_err();
    match err {
        Error::RateLimited { retry_after, .. } => {
            assert_eq!(retry_after, Some(Duration::from_secs(3600)))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_retry_after_holds_every_request_to_that_endpoint() {
    let m = start().await;
    m.script(
        "GET /lb/v2/lbaas/loadbalancers/lb1",
        vec![Reply::json(
            429,
            json!({"faultcode": "Client", "faultstring": "slow down"}),
        )
        .header("Retry-After", "3")],
    );
    for id in ["lb1", "lb3"] {
        m.default_reply(
            &format!("GET /lb/v2/lbaas/loadbalancers/{id}"),
            Reply::json(
                200,
                json!({"loadbalancer": {"id": id, "provisioning_status": "ACTIVE"}}),
            ),
        );
    }
    let s = m.session().await;
    let api = LoadBalancerApi::detect(&s, None).await.unwrap();
    let v2 = api.v2().unwrap().clone();
    let first = tokio::spawn(async move { v2.get_loadbalancer("lb1").await });
    // Until the 429 has been taken in (the retry is counted just before its wait).
    for _ in 0..200 {
        if s.metrics().retried_count("load-balancer", "GET", "429") == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(s.metrics().retried_count("load-balancer", "GET", "429"), 1);
    // Another request to the same endpoint, which never got a 429 itself, waits too.
    let started = std::time::Instant::now();
    api.v2().unwrap().get_loadbalancer("lb3").await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "held by the endpoint's Retry-After: {:?}",
        started.elapsed()
    );
    first.await.unwrap().unwrap();
}

#[tokio::test]
async fn quota_errors_413_403_and_neutron_overquota() {
    let m = start().await;
    m.default_reply("POST /lb/v2/lbaas/loadbalancers", Reply::json(403, json!({"faultcode": "Client", "faultstring": "Quota has been met for resources: Load Balancer", "debuginfo": null})));
    m.default_reply("POST /v2.0/floatingips", Reply::json(409, json!({"NeutronError": {"type": "OverQuota", "message": "Quota exceeded for resources: ['floatingip'].", "detail": ""}})));
    m.default_reply(
        "POST /v2.0/ports",
        Reply::json(
            413,
            json!({"overLimit": {"code": 413, "message": "Quota exceeded for ports"}}),
        ),
    );
    m.default_reply("POST /lb/v2/lbaas/listeners", Reply::json(403, json!({"faultcode": "Client", "faultstring": "Policy does not allow this request to be performed."})));
    let s = m.session().await;
    let v2 = LoadBalancerApi::detect(&s, None).await.unwrap();
    let v2 = v2.v2().unwrap();
    let e = v2
        .create_loadbalancer(&Default::default())
        .await
        .unwrap_err();
    assert!(e.is_quota(), "{e:?}");
    assert!(e.message().contains("Quota has been met"));
    let n = Neutron::new(&s).await.unwrap();
    let e = n
        .create_floating_ip(&CreateFloatingIp {
            floating_network_id: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(e.is_quota(), "{e:?}");
    let e = n.create_port(&Default::default()).await.unwrap_err();
    assert!(e.is_quota(), "{e:?}");
    assert!(e.message().contains("Quota exceeded for ports"), "{e}");
    let e = v2.create_listener(&Default::default()).await.unwrap_err();
    assert!(matches!(e, Error::Forbidden { .. }), "{e:?}");
}

#[tokio::test]
async fn bad_request_carries_neutron_message() {
    let m = start().await;
    m.default_reply(
        "POST /v2.0/security-group-rules",
        Reply::json(400, json!({"NeutronError": {"type": "InvalidInput", "message": "Invalid input for operation: port_range_min > port_range_max.", "detail": ""}})),
    );
    let s = m.session().await;
    let e = Neutron::new(&s)
        .await
        .unwrap()
        .create_security_group_rule(&Default::default())
        .await
        .unwrap_err();
    match &e {
        Error::BadRequest { message, .. } => assert!(
            message.contains("port_range_min > port_range_max"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn endpoint_down_is_transport_error_after_bounded_retries() {
    let m = start().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut o = fast_options();
    o.endpoint_overrides =
        BTreeMap::from([("network".to_string(), format!("http://127.0.0.1:{closed}"))]);
    let s = Session::new(&m.global(), &MetadataConfig::default(), o)
        .await
        .unwrap();
    let e = Neutron::new(&s)
        .await
        .unwrap()
        .list_networks(&ListQuery::new())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
    assert!(e.is_transient());
    assert_eq!(s.metrics().retried_count("network", "GET", "transport"), 3);
}

#[tokio::test]
async fn request_timeout_from_metadata() {
    let m = start().await;
    m.default_reply(
        "GET /v2.0/networks/slow",
        Reply::json(200, json!({"network": {"id": "slow"}})).delayed(Duration::from_secs(3)),
    );
    let mut o = fast_options();
    o.retry.max_retries = 0;
    let md = MetadataConfig {
        request_timeout: Duration::from_millis(300),
        ..MetadataConfig::default()
    };
    let s = Session::new(&m.global(), &md, o).await.unwrap();
    let e = Neutron::new(&s)
        .await
        .unwrap()
        .get_network("slow")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    assert_eq!(s.metrics().request_count("network", "GET", "timeout"), 1);
}

#[tokio::test]
async fn pagination_follows_next_links_with_our_base_url() {
    let m = start().await;
    m.script(
        "GET /lb/v2/lbaas/loadbalancers",
        vec![
            Reply::json(200, json!({"loadbalancers": [{"id": "a"}, {"id": "b"}], "loadbalancers_links": [{"rel": "next", "href": "http://internal.example:9876/v2/lbaas/loadbalancers?limit=2&marker=b&tags=t1"}]})),
            Reply::json(200, json!({"loadbalancers": [{"id": "c"}], "loadbalancers_links": [{"rel": "previous", "href": "http://internal.example/v2/lbaas/loadbalancers?marker=c&page_reverse=True"}]})),
        ],
    );
    let s = m.session().await;
    let api = LoadBalancerApi::detect(&s, None).await.unwrap();
    let lbs = api
        .v2()
        .unwrap()
        .list_loadbalancers(&ListQuery::new().tags(&["t1"]).limit(2))
        .await
        .unwrap();
    assert_eq!(
        lbs.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    let q: Vec<String> = m
        .requests()
        .iter()
        .filter(|r| r.path == "/lb/v2/lbaas/loadbalancers")
        .map(|r| r.query.clone())
        .collect();
    assert_eq!(q, ["tags=t1&limit=2", "limit=2&marker=b&tags=t1"]);
}

#[tokio::test]
async fn list_filters_are_encoded() {
    let m = start().await;
    m.default_reply(
        "GET /v2.0/networks",
        Reply::json(200, json!({"networks": []})),
    );
    let s = m.session().await;
    let n = Neutron::new(&s).await.unwrap();
    let q = ListQuery::new()
        .router_external(true)
        .name("public net")
        .tags_any(&["a", "b"])
        .not_tags(&["c"])
        .fields(&["id", "name"]);
    n.list_networks(&q).await.unwrap();
    let r = m
        .requests()
        .into_iter()
        .find(|r| r.path == "/v2.0/networks")
        .unwrap();
    assert_eq!(
        r.query,
        "router%3Aexternal=true&name=public+net&tags-any=a%2Cb&not-tags=c&fields=id&fields=name"
    );
}

#[tokio::test]
async fn if_match_revision_and_tags() {
    let m = start().await;
    m.script("PUT /v2.0/ports/p1", vec![Reply::json(412, json!({"NeutronError": {"type": "RevisionNumberConstraintFailed", "message": "Constrained to 4, but current revision is 5", "detail": ""}}))]);
    m.default_reply(
        "PUT /v2.0/ports/p1",
        Reply::json(
            200,
            json!({"port": {"id": "p1", "revision_number": 6, "security_groups": ["sg"]}}),
        ),
    );
    m.default_reply(
        "PUT /v2.0/ports/p1/tags",
        Reply::json(200, json!({"tags": ["a", "b c"]})),
    );
    m.default_reply("PUT /v2.0/ports/p1/tags/b%20c", Reply::empty(201));
    let s = m.session().await;
    let n = Neutron::new(&s).await.unwrap();
    let u = UpdatePort {
        security_groups: Some(vec!["sg".into()]),
        ..Default::default()
    };
    let e = n.update_port("p1", &u, Some(4)).await.unwrap_err();
    assert!(matches!(e, Error::PreconditionFailed { .. }), "{e:?}");
    let p = n.update_port("p1", &u, Some(5)).await.unwrap();
    assert_eq!(p.revision_number, Some(6));
    let puts: Vec<_> = m
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v2.0/ports/p1")
        .collect();
    assert_eq!(
        puts[1].headers.get("if-match").unwrap(),
        "revision_number=5"
    );
    assert_eq!(
        body_json(&puts[1].body),
        json!({"port": {"security_groups": ["sg"]}})
    );

    let tags = n
        .replace_tags(TagResource::Ports, "p1", &["a".into(), "b c".into()])
        .await
        .unwrap();
    assert_eq!(tags, ["a", "b c"]);
    n.add_tag(TagResource::Ports, "p1", "b c").await.unwrap();
}

#[tokio::test]
async fn quota_details_with_fallback() {
    let m = start().await;
    m.default_reply("GET /v2.0/quotas/p-admin/details", Reply::json(200, json!({"quota": {"floatingip": {"limit": 50, "used": 48, "reserved": 1}, "port": {"limit": -1, "used": 3, "reserved": 0}}})));
    m.default_reply(
        "GET /v2.0/quotas/p2",
        Reply::json(200, json!({"quota": {"floatingip": 10}})),
    );
    let s = m.session().await;
    let n = Neutron::new(&s).await.unwrap();
    let q = n.quota("p-admin").await.unwrap();
    assert_eq!(q["floatingip"].free(), Some(1));
    assert_eq!(q["port"].free(), None);
    let q = n.quota("p2").await.unwrap();
    assert_eq!(q["floatingip"].limit, 10);
    assert_eq!(q["floatingip"].used, None);
}

#[tokio::test]
async fn detection_order_and_forcing() {
    // Octavia in the catalog wins.
    let m = start().await;
    let s = m.session().await;
    assert_eq!(
        LoadBalancerApi::detect(&s, None)
            .await
            .unwrap()
            .generation(),
        Some(LbaasGeneration::Octavia)
    );

    for (aliases, want) in [
        (
            vec!["external-net", "lbaasv2"],
            Some(LbaasGeneration::NeutronV2),
        ),
        (vec!["lbaas"], Some(LbaasGeneration::NeutronV1)),
        (vec!["external-net"], None),
    ] {
        let m = start().await;
        *m.state.with_load_balancer.lock().unwrap() = false;
        m.default_reply("GET /v2.0/extensions", extensions(&aliases));
        let s = m.session().await;
        let api = LoadBalancerApi::detect(&s, None).await.unwrap();
        assert_eq!(api.generation(), want, "{aliases:?}");
        // Forcing skips detection.
        let forced = LoadBalancerApi::detect(&s, Some(LbaasGeneration::NeutronV1))
            .await
            .unwrap();
        assert!(forced.v1().is_some());
        // Forcing Octavia without a load-balancer endpoint is an error, not a guess.
        assert!(matches!(
            LoadBalancerApi::detect(&s, Some(LbaasGeneration::Octavia)).await,
            Err(Error::EndpointNotFound { .. })
        ));
    }
}

#[tokio::test]
async fn octavia_version_document_and_neutron_v2_paths() {
    let m = start().await;
    m.default_reply(
        "GET /lb/",
        Reply::json(200, json!({"versions": [{"id": "v2.0", "status": "SUPPORTED"}, {"id": "v2.27", "status": "CURRENT"}, {"id": "v2.9", "status": "SUPPORTED"}]})),
    );
    m.default_reply("GET /v2.0/lbaas/loadbalancers/x/statuses", Reply::json(200, json!({"statuses": {"loadbalancer": {"id": "x", "provisioning_status": "ACTIVE", "operating_status": "ONLINE", "listeners": [{"id": "l", "pools": [{"id": "p", "members": [{"id": "m", "address": "10.0.0.4", "protocol_port": 80, "operating_status": "ONLINE"}]}]}]}}})));
    let s = m.session().await;
    let api = LoadBalancerApi::detect(&s, None).await.unwrap();
    assert_eq!(
        api.v2().unwrap().max_version().await.unwrap(),
        ApiVersion::new(2, 27)
    );

    let nv2 = LoadBalancerApi::detect(&s, Some(LbaasGeneration::NeutronV2))
        .await
        .unwrap();
    let nv2 = nv2.v2().unwrap();
    assert_eq!(nv2.max_version().await.unwrap(), ApiVersion::new(2, 0));
    let tree = nv2.status_tree("x").await.unwrap();
    assert_eq!(
        tree.loadbalancer.listeners[0].pools[0].members[0].address,
        "10.0.0.4"
    );
    assert!(matches!(
        nv2.delete_loadbalancer("x", true).await,
        Err(Error::Unsupported { .. })
    ));
    assert!(matches!(
        nv2.replace_members("p", &[CreateMember::default()]).await,
        Err(Error::Unsupported { .. })
    ));
}

#[tokio::test]
async fn batch_member_update_and_cascade_delete_paths() {
    let m = start().await;
    m.default_reply("PUT /lb/v2/lbaas/pools/p1/members", Reply::empty(202));
    m.default_reply("DELETE /lb/v2/lbaas/loadbalancers/lb1", Reply::empty(204));
    let s = m.session().await;
    let api = LoadBalancerApi::detect(&s, None).await.unwrap();
    let v2 = api.v2().unwrap();
    let members = vec![
        CreateMember {
            address: "10.0.0.5".into(),
            protocol_port: 30080,
            subnet_id: Some("s".into()),
            ..Default::default()
        },
        CreateMember {
            address: "10.0.0.6".into(),
            protocol_port: 30080,
            ..Default::default()
        },
    ];
    v2.replace_members("p1", &members).await.unwrap();
    v2.delete_loadbalancer("lb1", true).await.unwrap();
    let reqs = m.requests();
    let put = reqs.iter().find(|r| r.method == "PUT").unwrap();
    assert_eq!(body_json(&put.body)["members"][1]["address"], "10.0.0.6");
    let del = reqs.iter().find(|r| r.method == "DELETE").unwrap();
    assert_eq!(del.query, "cascade=true");
}

#[tokio::test]
async fn rate_limiter_makes_callers_wait_and_counts_them() {
    let m = start().await;
    m.default_reply("GET /v2.0/extensions", extensions(&[]));
    let o = SessionOptions {
        rate_limit: Some(RateLimit {
            per_second: 20.0,
            burst: 1,
        }),
        ..fast_options()
    };
    let s = Session::new(&m.global(), &MetadataConfig::default(), o)
        .await
        .unwrap();
    let n = Neutron::new(&s).await.unwrap();
    let calls = (0..5).map(|_| n.list_extensions());
    for r in futures::future::join_all(calls).await {
        r.unwrap();
    }
    assert!(
        s.metrics().throttled_count("network") >= 1,
        "callers waited instead of failing"
    );
}

#[tokio::test]
async fn metrics_register_into_a_registry() {
    let m = start().await;
    let s = m.session().await;
    let mut reg = prometheus_client::registry::Registry::default();
    s.metrics().register(&mut reg);
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &reg).unwrap();
    assert!(
        out.contains(
            "openstack_requests_total{service=\"identity\",method=\"POST\",status=\"201\"} 1"
        ),
        "{out}"
    );
    assert!(out.contains("openstack_request_duration_seconds"), "{out}");
}

#[tokio::test]
async fn concurrent_callers_share_one_reauthentication() {
    let m = start().await;
    m.default_reply("GET /v2.0/extensions", extensions(&["external-net"]));
    let s = m.session().await;
    let n = Neutron::new(&s).await.unwrap();
    m.revoke_tokens();
    let calls = (0..8).map(|_| n.list_extensions());
    for r in futures::future::join_all(calls).await {
        r.unwrap();
    }
    assert_eq!(
        m.auths(),
        2,
        "one initial authentication, one renewal for all eight callers"
    );
}
