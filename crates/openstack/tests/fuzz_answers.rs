//! Fuzzing of OpenStack answers (issue 14 item 4): every read the controller makes, answered
//! by a scripted server (tests/common) with a mangled body — cut anywhere, a field dropped, a
//! value of the wrong type, a huge list, a nesting bomb, bytes that are not JSON, a wrong
//! envelope — and with odd statuses and Retry-After values. The client must never panic or
//! hang: it returns the objects when the answer still makes sense, and otherwise a specific
//! error, short whatever the size of the answer, that never carries the token.

mod common;

use std::time::Duration;

use common::{start, Mock, Reply};
use openstack::lbaas::LoadBalancerApi;
use openstack::{ListQuery, Neutron, Session};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{json, Value};

/// Each call answers within this, retries included.
const CALL_LIMIT: Duration = Duration::from_secs(20);
const MAX_MESSAGE: usize = 4_000;
const CASES: usize = 400;

#[derive(Clone, Copy, Debug)]
enum Read {
    LoadBalancer,
    LoadBalancers,
    Listeners,
    Pools,
    Members,
    Monitors,
    FloatingIps,
    Ports,
    Networks,
    Subnets,
    SecurityGroups,
}

const READS: &[Read] = &[
    Read::LoadBalancer,
    Read::LoadBalancers,
    Read::Listeners,
    Read::Pools,
    Read::Members,
    Read::Monitors,
    Read::FloatingIps,
    Read::Ports,
    Read::Networks,
    Read::Subnets,
    Read::SecurityGroups,
];

impl Read {
    /// The mock's key for the call, and a valid answer as real Octavia/Neutron give it.
    fn answer(self) -> (&'static str, Value) {
        let lb = json!({
            "id": "lb1", "name": "kube_service_kubernetes_shop_web", "description": "d",
            "provisioning_status": "ACTIVE", "operating_status": "ONLINE", "admin_state_up": true,
            "project_id": "p-admin", "vip_address": "10.0.0.5", "vip_port_id": "port-vip",
            "vip_subnet_id": "sub", "vip_network_id": "net", "vip_qos_policy_id": null,
            "listeners": [{"id": "l1"}], "pools": [{"id": "p1"}], "provider": "amphora",
            "flavor_id": null, "availability_zone": null, "tags": ["kube-cluster-uid=u"],
            "additional_vips": [], "created_at": "2026-12-04T10:00:00", "updated_at": null
        });
        let listener = json!({
            "id": "l1", "name": "listener_0", "protocol": "TCP", "protocol_port": 80,
            "connection_limit": -1, "default_pool_id": "p1", "loadbalancers": [{"id": "lb1"}],
            "provisioning_status": "ACTIVE", "allowed_cidrs": ["0.0.0.0/0"], "tags": [],
            "timeout_client_data": 50000, "insert_headers": {}
        });
        let pool = json!({
            "id": "p1", "name": "pool_0", "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN",
            "listeners": [{"id": "l1"}], "loadbalancers": [{"id": "lb1"}],
            "members": [{"id": "m1"}], "healthmonitor_id": "hm1",
            "provisioning_status": "ACTIVE", "session_persistence": null, "tags": []
        });
        let member = json!({
            "id": "m1", "name": "node-1", "address": "10.0.0.11", "protocol_port": 30080,
            "subnet_id": "sub", "weight": 1, "provisioning_status": "ACTIVE",
            "operating_status": "ONLINE", "backup": false, "tags": []
        });
        let monitor = json!({
            "id": "hm1", "name": "monitor_0", "type": "TCP", "delay": 5, "timeout": 3,
            "max_retries": 1, "max_retries_down": 3, "pools": [{"id": "p1"}],
            "provisioning_status": "ACTIVE", "tags": []
        });
        let fip = json!({
            "id": "f1", "floating_ip_address": "203.0.113.7", "floating_network_id": "net",
            "port_id": "port-vip", "fixed_ip_address": "10.0.0.5", "router_id": "r1",
            "status": "ACTIVE", "project_id": "p-admin", "tenant_id": "p-admin",
            "description": "Floating IP for Kubernetes external service shop/web from cluster kubernetes",
            "tags": ["kube-cluster-uid=u"], "revision_number": 2
        });
        let port = json!({
            "id": "port-vip", "name": "octavia-lb-lb1", "network_id": "net",
            "fixed_ips": [{"subnet_id": "sub", "ip_address": "10.0.0.5"}],
            "security_groups": ["sg1"], "device_owner": "Octavia", "device_id": "lb1",
            "revision_number": 3, "tags": []
        });
        let network = json!({
            "id": "net", "name": "public", "router:external": true, "subnets": ["sub"],
            "status": "ACTIVE", "tags": []
        });
        let subnet = json!({
            "id": "sub", "name": "public-subnet", "network_id": "net", "cidr": "203.0.113.0/24",
            "ip_version": 4, "tags": []
        });
        let group = json!({
            "id": "sg1", "name": "lb-sg-lb1", "description": "d", "tags": [],
            "security_group_rules": [{"id": "r1", "direction": "ingress", "ethertype": "IPv4",
                "protocol": "tcp", "port_range_min": 30080, "port_range_max": 30080,
                "remote_ip_prefix": "0.0.0.0/0", "security_group_id": "sg1"}]
        });
        match self {
            Read::LoadBalancer => (
                "GET /lb/v2/lbaas/loadbalancers/lb1",
                json!({"loadbalancer": lb}),
            ),
            Read::LoadBalancers => (
                "GET /lb/v2/lbaas/loadbalancers",
                json!({"loadbalancers": [lb]}),
            ),
            Read::Listeners => (
                "GET /lb/v2/lbaas/listeners",
                json!({"listeners": [listener]}),
            ),
            Read::Pools => ("GET /lb/v2/lbaas/pools", json!({"pools": [pool]})),
            Read::Members => (
                "GET /lb/v2/lbaas/pools/p1/members",
                json!({"members": [member]}),
            ),
            Read::Monitors => (
                "GET /lb/v2/lbaas/healthmonitors",
                json!({"healthmonitors": [monitor]}),
            ),
            Read::FloatingIps => ("GET /v2.0/floatingips", json!({"floatingips": [fip]})),
            Read::Ports => ("GET /v2.0/ports", json!({"ports": [port]})),
            Read::Networks => ("GET /v2.0/networks", json!({"networks": [network]})),
            Read::Subnets => ("GET /v2.0/subnets", json!({"subnets": [subnet]})),
            Read::SecurityGroups => (
                "GET /v2.0/security-groups",
                json!({"security_groups": [group]}),
            ),
        }
    }

    /// Makes the call; `Ok(n)` = how many objects came back.
    async fn call(self, s: &Session) -> Result<usize, openstack::Error> {
        let q = ListQuery::new();
        if matches!(
            self,
            Read::LoadBalancer
                | Read::LoadBalancers
                | Read::Listeners
                | Read::Pools
                | Read::Members
                | Read::Monitors
        ) {
            let api = LoadBalancerApi::detect(s, None).await?;
            let Some(v2) = api.v2() else {
                panic!("the mock serves Octavia")
            };
            return match self {
                Read::LoadBalancer => v2.get_loadbalancer("lb1").await.map(|_| 1),
                Read::LoadBalancers => v2.list_loadbalancers(&q).await.map(|v| v.len()),
                Read::Listeners => v2.list_listeners(&q).await.map(|v| v.len()),
                Read::Pools => v2.list_pools(&q).await.map(|v| v.len()),
                Read::Members => v2.list_members("p1", &q).await.map(|v| v.len()),
                _ => v2.list_healthmonitors(&q).await.map(|v| v.len()),
            };
        }
        let n = Neutron::new(s).await?;
        match self {
            Read::FloatingIps => n.list_floating_ips(&q).await.map(|v| v.len()),
            Read::Ports => n.list_ports(&q).await.map(|v| v.len()),
            Read::Networks => n.list_networks(&q).await.map(|v| v.len()),
            Read::Subnets => n.list_subnets(&q).await.map(|v| v.len()),
            _ => n.list_security_groups(&q).await.map(|v| v.len()),
        }
    }
}

/// How an answer is mangled.
#[derive(Clone, Debug)]
enum Mangle {
    /// The serialized answer cut after this fraction (per mille) of its bytes.
    Cut(u16),
    /// One key dropped from the `n`-th object found walking the answer.
    DropKey(usize, usize),
    /// The `n`-th leaf replaced by a value of another type.
    WrongType(usize, Value),
    /// The (first) list repeated to this many elements.
    Huge(usize),
    /// `[[[[…]]]]` this deep instead of the answer.
    Nest(usize),
    /// Bytes that are not JSON.
    Garbage(Vec<u8>),
    /// The envelope key renamed.
    Envelope(String),
    /// As it is, with an odd status and Retry-After.
    Status(u16, Option<String>),
}

fn mangle() -> impl Strategy<Value = Mangle> {
    let wrong = prop_oneof![
        Just(Value::Null),
        Just(json!(-1)),
        Just(json!(1.5e300)),
        Just(json!("")),
        Just(json!("x".repeat(70_000))),
        Just(json!([])),
        Just(json!({})),
        Just(json!(true)),
    ];
    prop_oneof![
        (0u16..1000).prop_map(Mangle::Cut),
        (0usize..40, 0usize..40).prop_map(|(o, k)| Mangle::DropKey(o, k)),
        (0usize..80, wrong).prop_map(|(n, v)| Mangle::WrongType(n, v)),
        prop_oneof![Just(0usize), Just(2), Just(5_000), Just(20_000)].prop_map(Mangle::Huge),
        prop_oneof![Just(100usize), Just(200), Just(100_000)].prop_map(Mangle::Nest),
        prop::collection::vec(any::<u8>(), 0..300).prop_map(Mangle::Garbage),
        "[a-z_]{0,12}".prop_map(Mangle::Envelope),
        (
            prop::sample::select(
                &[200u16, 201, 204, 301, 400, 401, 403, 404, 409, 413, 429, 500, 502, 503, 504][..]
            ),
            prop_oneof![
                Just(None),
                prop::sample::select(
                    &["0", "1", "abc", "-5", "", "Wed, 21 Oct 2015 07:28:00 GMT"][..]
                )
                .prop_map(|s| Some(s.to_string())),
            ],
        )
            .prop_map(|(s, r)| Mangle::Status(s, r)),
    ]
}

/// JSON pointers to every object (`objects`) and every leaf (`leaves`) below the root.
fn walk(v: &Value, at: String, objects: &mut Vec<String>, leaves: &mut Vec<String>) {
    let esc = |k: &str| k.replace('~', "~0").replace('/', "~1");
    match v {
        Value::Object(m) => {
            if !at.is_empty() {
                objects.push(at.clone());
            }
            for (k, x) in m {
                walk(x, format!("{at}/{}", esc(k)), objects, leaves);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, x) in a.iter().enumerate() {
                walk(x, format!("{at}/{i}"), objects, leaves);
            }
        }
        _ => leaves.push(at),
    }
}

/// The reply for `valid` mangled by `m`.
fn reply(valid: &Value, m: &Mangle) -> Reply {
    let mut v = valid.clone();
    let body = match m {
        Mangle::Cut(per_mille) => {
            let s = v.to_string();
            let end = s.len() * usize::from(*per_mille) / 1000;
            String::from_utf8_lossy(&s.as_bytes()[..end]).into_owned()
        }
        Mangle::DropKey(o, k) => {
            let (mut objects, mut leaves) = (Vec::new(), Vec::new());
            walk(&v, String::new(), &mut objects, &mut leaves);
            if !objects.is_empty() {
                let at = &objects[o % objects.len()];
                if let Some(Value::Object(map)) = v.pointer_mut(at) {
                    if let Some(key) = map.keys().nth(k % map.len().max(1)).cloned() {
                        map.remove(&key);
                    }
                }
            }
            v.to_string()
        }
        Mangle::WrongType(n, w) => {
            let (mut objects, mut leaves) = (Vec::new(), Vec::new());
            walk(&v, String::new(), &mut objects, &mut leaves);
            if !leaves.is_empty() {
                if let Some(leaf) = v.pointer_mut(&leaves[n % leaves.len()]) {
                    *leaf = w.clone();
                }
            }
            v.to_string()
        }
        Mangle::Huge(count) => {
            if let Some(Value::Array(a)) = v.as_object_mut().and_then(|o| o.values_mut().next()) {
                let one = a.first().cloned().unwrap_or(Value::Null);
                *a = vec![one; *count];
            }
            v.to_string()
        }
        Mangle::Nest(depth) => format!("{}{}", "[".repeat(*depth), "]".repeat(*depth)),
        Mangle::Garbage(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Mangle::Envelope(key) => {
            if let Some(o) = v.as_object_mut() {
                if let Some((_, inner)) = o.iter().next().map(|(k, x)| (k.clone(), x.clone())) {
                    o.clear();
                    o.insert(key.clone(), inner);
                }
            }
            v.to_string()
        }
        Mangle::Status(status, retry_after) => {
            let mut r = Reply::json(*status, v);
            if let Some(h) = retry_after {
                r = r.header("Retry-After", h);
            }
            return r;
        }
    };
    Reply {
        status: 200,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body,
        delay: None,
    }
}

/// The case as shown in a failure: values cut, so a 70 kB string does not flood the output.
fn short(how: &Mangle) -> String {
    let s = format!("{how:?}");
    if s.len() > 200 {
        format!("{}… ({} bytes)", &s[..s.floor_char_boundary(200)], s.len())
    } else {
        s
    }
}

async fn check(m: &Mock, s: &Session, token: &str, read: Read, how: &Mangle) {
    let how_shown = short(how);
    let (key, valid) = read.answer();
    let r = reply(&valid, how);
    let well_formed = r.status == 200 && serde_json::from_str::<Value>(&r.body).is_ok();
    let garbage = r.status == 200 && !well_formed;
    m.default_reply(key, r);
    let result = tokio::time::timeout(CALL_LIMIT, read.call(s))
        .await
        .unwrap_or_else(|_| panic!("{read:?} with {how_shown}: no answer within {CALL_LIMIT:?}"));
    match result {
        Ok(n) => {
            assert!(
                !garbage,
                "{read:?} with {how_shown}: a body that is not JSON was accepted ({n} objects)"
            );
        }
        Err(e) => {
            let shown = e.to_string();
            assert!(
                !shown.trim().is_empty(),
                "{read:?} with {how_shown}: empty error"
            );
            assert!(
                shown.len() <= MAX_MESSAGE,
                "{read:?} with {how_shown}: an error of {} bytes",
                shown.len()
            );
            assert!(
                !shown.contains(token),
                "{read:?} with {how_shown}: the token in {shown}"
            );
            assert!(
                !format!("{e:?}").contains(token),
                "{read:?} with {how_shown}: the token in Debug"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_mangled_answer_is_a_result_or_a_specific_error() {
    let m = start().await;
    let s = m.session().await;
    let token = s.token().await.expect("a token").expose().to_string();
    assert!(!token.is_empty());
    // Seeded: the same cases on every run, so a failure reproduces.
    let mut runner = TestRunner::deterministic();
    let cases = (prop::sample::select(READS), mangle());
    for _ in 0..CASES {
        let (read, how) = cases.new_tree(&mut runner).expect("a case").current();
        check(&m, &s, &token, read, &how).await;
    }
    // Every read with every kind of mangling at least once.
    for read in READS {
        for how in [
            Mangle::Cut(500),
            Mangle::DropKey(0, 0),
            Mangle::WrongType(0, Value::Null),
            Mangle::Huge(20_000),
            Mangle::Nest(100_000),
            Mangle::Garbage(b"<html>502 Bad Gateway</html>".to_vec()),
            Mangle::Envelope("error".into()),
            Mangle::Status(503, Some("abc".into())),
        ] {
            check(&m, &s, &token, *read, &how).await;
        }
    }
}
