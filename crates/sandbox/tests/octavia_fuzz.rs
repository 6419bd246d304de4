//! Property test: random JSON (and non-JSON) bodies sent to every create/update endpoint of
//! the load-balancer API get a client error or success, never a 5xx other than a provider's
//! 501, never a dropped connection, and always within a bounded time.

mod octavia_support;

use std::time::Duration;

use octavia_support::{active_lb, config, start};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::Method;
use serde_json::Value;

const KEYS: &[&str] = &[
    "loadbalancer",
    "listener",
    "pool",
    "member",
    "members",
    "healthmonitor",
    "quota",
    "name",
    "description",
    "vip_subnet_id",
    "vip_network_id",
    "vip_port_id",
    "vip_address",
    "listeners",
    "pools",
    "default_pool",
    "protocol",
    "protocol_port",
    "lb_algorithm",
    "loadbalancer_id",
    "listener_id",
    "pool_id",
    "address",
    "type",
    "delay",
    "timeout",
    "max_retries",
    "tags",
    "allowed_cidrs",
    "session_persistence",
    "provider",
    "admin_state_up",
    "weight",
    "monitor_port",
    "expected_codes",
    "url_path",
    "default_pool_id",
    "load_balancer",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(KEYS).prop_map(str::to_string),
        1 => "[a-z_]{1,10}",
    ]
}

fn json(ids: Vec<String>) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (0i64..70000).prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        proptest::sample::select(vec![
            "TCP",
            "UDP",
            "HTTP",
            "HTTPS",
            "PROXY",
            "PROXYV2",
            "SCTP",
            "ROUND_ROBIN",
            "SOURCE_IP_PORT",
            "UDP-CONNECT",
            "PING",
            "127.0.0.1",
            "10.0.0.0/8",
            "::1",
            "200-204",
            "/",
            "amphora",
            "ovn",
        ])
        .prop_map(Value::from),
        proptest::sample::select(ids).prop_map(Value::from),
        ".{0,16}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map(key(), inner, 0..8).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn random_bodies_never_crash_or_hang_the_server() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let env = rt.block_on(start(config(225)));
    let lb = rt.block_on(active_lb(&env, "fuzz"));
    let (_, pool) = rt.block_on(env.post(
        "/pools",
        serde_json::json!({"pool": {"loadbalancer_id": lb, "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN"}}),
    ));
    let pool = pool["pool"]["id"].as_str().unwrap().to_string();
    let ids = vec![
        lb.clone(),
        pool.clone(),
        env.private_subnet.clone(),
        env.private_network.clone(),
    ];
    let targets: Vec<(Method, String, &str)> = vec![
        (Method::POST, "/loadbalancers".into(), "loadbalancer"),
        (Method::POST, "/listeners".into(), "listener"),
        (Method::POST, "/pools".into(), "pool"),
        (Method::POST, "/healthmonitors".into(), "healthmonitor"),
        (Method::POST, format!("/pools/{pool}/members"), "member"),
        (Method::PUT, format!("/pools/{pool}/members"), "members"),
        (Method::PUT, format!("/loadbalancers/{lb}"), "loadbalancer"),
        (Method::PUT, format!("/pools/{pool}"), "pool"),
        (Method::PUT, format!("/quotas/{}", env.project_id), "quota"),
    ];
    let seen = std::sync::Mutex::new(std::collections::BTreeMap::<u16, usize>::new());
    let mut runner = TestRunner::new(Config {
        cases: 160,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (0..targets.len(), any::<bool>(), json(ids));
    let result = runner.run(&strategy, |(i, wrap, body)| {
        let (method, path, root) = &targets[i];
        // Half of the bodies carry the right wrapper key so that validation goes deeper.
        let body = if wrap {
            serde_json::json!({ *root: body })
        } else {
            body
        };
        let url = format!("{}{path}", env.lb);
        let answer = rt.block_on(async {
            tokio::time::timeout(
                Duration::from_secs(10),
                env.call(method.clone(), &url, Some(body.clone())),
            )
            .await
        });
        let Ok((status, resp)) = answer else {
            return Err(TestCaseError::fail(format!(
                "{method} {path} hung on {body}"
            )));
        };
        prop_assert!(
            status.as_u16() < 500 || status.as_u16() == 501,
            "{method} {path} {body} → {status} {resp}"
        );
        *seen.lock().unwrap().entry(status.as_u16()).or_insert(0) += 1;
        Ok(())
    });
    result.unwrap();
    let seen = seen.into_inner().unwrap();
    eprintln!("statuses seen: {seen:?}");
    assert!(
        seen.get(&400).is_some_and(|n| *n > 0),
        "validation answered: {seen:?}"
    );

    let mut runner = TestRunner::new(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&(0..targets.len(), ".{0,40}"), |(i, text)| {
        let (method, path, _) = &targets[i];
        let url = format!("{}{path}", env.lb);
        let answer = rt.block_on(async {
            tokio::time::timeout(
                Duration::from_secs(10),
                env.raw(method.clone(), &url, &text),
            )
            .await
        });
        let Ok((status, _)) = answer else {
            return Err(TestCaseError::fail(format!("{method} {path} hung")));
        };
        prop_assert!(status.as_u16() < 500, "{method} {path} {text:?} → {status}");
        Ok(())
    });
    result.unwrap();

    let (status, _) = rt.block_on(env.get("/loadbalancers"));
    assert_eq!(status.as_u16(), 200, "still serving after the fuzzing");
    rt.block_on(env.shutdown());
}
