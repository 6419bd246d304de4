//! Bad input gets Neutron's and Keystone's 400 shapes, and no request body can crash or hang
//! the sandbox (property test over arbitrary bodies).

mod sandbox_support;

use std::sync::OnceLock;

use proptest::prelude::*;
use reqwest::StatusCode;
use sandbox_support::*;
use serde_json::{json, Value};

async fn raw_post(cloud: &Cloud, path: &str, body: &'static str) -> (StatusCode, Value) {
    let resp = cloud
        .http
        .post(cloud.neutron(path))
        .header("X-Auth-Token", &cloud.admin)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

#[tokio::test]
async fn neutron_400_shapes() {
    // Types and messages as a real Neutron 29 answers them.
    let cloud = start().await;
    let (status, err) = raw_post(&cloud, "networks", "{\"network\": ").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let expect = |t: &str, m: &str| (t.to_string(), m.to_string());
    assert_eq!(
        neutron_error(&err),
        expect("HTTPBadRequest", "Body contains invalid data")
    );

    let cases = [
        (
            json!({"network": {"name": "x", "flavour": 1}}),
            "HTTPBadRequest",
            "Unrecognized attribute(s) 'flavour'",
        ),
        (
            json!({"network": {"admin_state_up": "perhaps"}}),
            "InvalidInput",
            "Invalid input for operation: 'perhaps' cannot be converted to boolean.",
        ),
        (
            json!({"network": {"mtu": "abc"}}),
            "InvalidInput",
            "Invalid input for operation: 'abc' is not an integer.",
        ),
        (
            json!({"network": {"name": 5}}),
            "HTTPBadRequest",
            "Invalid input for name. Reason: '5' is not a valid string.",
        ),
        (
            json!({"network": {"id": "x"}}),
            "HTTPBadRequest",
            "Attribute 'id' not allowed in POST",
        ),
        (
            json!({"network": {"status": "x"}}),
            "HTTPBadRequest",
            "Attribute 'status' not allowed in POST",
        ),
        (
            json!({"net": {}}),
            "HTTPBadRequest",
            "Unable to find 'network' in request body",
        ),
        (
            json!([1, 2]),
            "HTTPBadRequest",
            "Body contains invalid data",
        ),
    ];
    for (body, kind, message) in cases {
        let (status, err) = cloud.post("networks", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(neutron_error(&err), expect(kind, message));
    }
    let (status, err) = cloud.post("ports", json!({"port": {"name": "p"}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        neutron_error(&err),
        expect(
            "HTTPBadRequest",
            "Failed to parse request. Required attribute 'network_id' not specified"
        )
    );
    let (_, err) = cloud
        .post("ports", json!({"port": {"network_id": "not-a-uuid"}}))
        .await;
    assert_eq!(
        neutron_error(&err),
        expect(
            "HTTPBadRequest",
            "Invalid input for network_id. Reason: 'not-a-uuid' is not a valid UUID."
        )
    );
    let net = cloud.handle.seed().private_network_id.clone();
    let subnet = |cidr: &str, version: u8| json!({"subnet": {"network_id": net, "cidr": cidr, "ip_version": version}});
    let (_, err) = cloud.post("subnets", subnet("10.9.0.0/24", 5)).await;
    assert_eq!(
        neutron_error(&err),
        expect(
            "HTTPBadRequest",
            "Invalid input for ip_version. Reason: 5 is not in valid_values."
        )
    );
    let (_, err) = cloud.post("subnets", subnet("10.9.0.0/24", 6)).await;
    assert_eq!(
        neutron_error(&err),
        expect(
            "InvalidInput",
            "Invalid input for operation: cidr '10.9.0.0/24' does not match the ip_version '6'."
        )
    );
    let (_, err) = cloud.post("subnets", subnet("10.0.0.0/25", 4)).await;
    let overlap = format!(
        "Invalid input for operation: Requested subnet with cidr: 10.0.0.0/25 for network: {net} overlaps with another subnet."
    );
    assert_eq!(neutron_error(&err), expect("InvalidInput", &overlap));
    // Host bits are dropped, as Neutron does.
    let (status, sub) = cloud.post("subnets", subnet("10.9.0.7/24", 4)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(sub["subnet"]["cidr"], "10.9.0.0/24");
    let (_, err) = cloud.get("ports?limit=abc").await;
    assert_eq!(
        neutron_error(&err),
        expect(
            "BadRequest",
            "Bad limit request: Limit must be an integer 0 or greater and not 'abc'."
        )
    );
    let (_, err) = cloud
        .post(
            "floatingips",
            json!({"floatingip": {"floating_network_id": net}}),
        )
        .await;
    assert_eq!(
        neutron_error(&err),
        expect(
            "BadRequest",
            &format!("Bad floatingip request: Network {net} is not a valid external network.")
        )
    );
    let (_, err) = cloud
        .put(&format!("networks/{net}/tags"), json!({"tags": "x"}))
        .await;
    assert_eq!(
        neutron_error(&err),
        expect(
            "InvalidInput",
            "Invalid input for operation: 'x' is not a list."
        )
    );
    let (_, err) = cloud.get(&format!("networks/{net}/tags/zzz")).await;
    assert_eq!(
        neutron_error(&err),
        expect("TagNotFound", "Tag zzz could not be found.")
    );
    let (_, err) = cloud
        .put(
            &format!("networks/{net}"),
            json!({"network": {"subnets": []}}),
        )
        .await;
    assert_eq!(
        neutron_error(&err),
        expect(
            "HTTPBadRequest",
            "Cannot update read-only attribute subnets"
        )
    );
    let (status, err) = cloud.get("nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        neutron_error(&err),
        expect("HTTPNotFound", "The resource could not be found.")
    );
    cloud.handle.shutdown().await;
}

#[tokio::test]
async fn keystone_400_shapes() {
    // Messages as a real Keystone 30 answers them (first line of its schema errors).
    let cloud = start().await;
    let url = format!("{}/auth/tokens", cloud.handle.auth_url());
    let not_json = "Expecting to find valid JSON in request body. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.";
    let cases = [
        ("{", not_json),
        ("[]", not_json),
        ("{\"auth\": {}}", "'identity' is a required property"),
        (
            "{\"auth\": {\"identity\": {\"methods\": \"password\"}}}",
            "Invalid input for field 'identity/methods': 'password' is not of type 'array'",
        ),
        (
            "{\"auth\": {\"identity\": {\"methods\": [\"password\"], \"password\": {\"user\": {\"name\": \"admin\", \"password\": \"secret\"}}}}}",
            "Expecting to find domain in user. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.",
        ),
    ];
    for (body, message) in cases {
        let resp = cloud
            .http
            .post(&url)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(
            v,
            json!({"error": {"code": 400, "title": "Bad Request", "message": message}})
        );
    }
    let resp = cloud
        .http
        .get(&url)
        .header("X-Auth-Token", &cloud.admin)
        .header("X-Subject-Token", "nope")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["message"], "Could not recognize Fernet token");
    cloud.handle.shutdown().await;
}

/// One sandbox and runtime for all property cases (starting one per case would be slow).
fn shared() -> &'static (tokio::runtime::Runtime, Cloud) {
    static CELL: OnceLock<(tokio::runtime::Runtime, Cloud)> = OnceLock::new();
    CELL.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let cloud = rt.block_on(start());
        (rt, cloud)
    })
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("10.0.0.0/24"),
            Just("127.200.1.1"),
            Just("true"),
            Just("00000000-0000-0000-0000-000000000000")
        ]
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("name".to_string()),
                    Just("network_id".to_string()),
                    Just("fixed_ips".to_string()),
                    Just("cidr".to_string()),
                    Just("ip_version".to_string()),
                    Just("port_id".to_string()),
                    Just("floating_network_id".to_string()),
                    Just("allocation_pools".to_string()),
                    Just("security_groups".to_string()),
                    Just("protocol".to_string()),
                    Just("tags".to_string()),
                    "[a-z_:]{1,10}",
                ],
                inner,
                0..5,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const TARGETS: &[(&str, &str)] = &[
    ("POST", "networks"),
    ("POST", "subnets"),
    ("POST", "ports"),
    ("POST", "floatingips"),
    ("POST", "routers"),
    ("POST", "security-groups"),
    ("POST", "security-group-rules"),
    ("PUT", "quotas/00000000-0000-0000-0000-000000000000"),
    ("PUT", "networks/{net}"),
    ("PUT", "ports/{port}/tags"),
];

proptest! {
    // A fixed seed keeps the run deterministic; no regression files are written.
    #![proptest_config(ProptestConfig {
        cases: 96,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x5a4d_b0c5),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bodies_never_crash_or_hang(
        target in 0..TARGETS.len(),
        wrap in any::<bool>(),
        body in arb_json(),
        raw in prop::collection::vec(any::<u8>(), 0..64),
        use_raw in prop::bool::weighted(0.2),
    ) {
        let (rt, cloud) = shared();
        let (method, path) = TARGETS[target];
        let seed = cloud.handle.seed();
        let path = path.replace("{net}", &seed.private_network_id).replace("{port}", "x");
        let singular = match path.split('/').next().unwrap_or("") {
            "networks" => "network", "subnets" => "subnet", "ports" => "port", "floatingips" => "floatingip",
            "routers" => "router", "security-groups" => "security_group", "security-group-rules" => "security_group_rule",
            _ => "quota",
        };
        let payload: Vec<u8> = if use_raw {
            raw
        } else if wrap {
            serde_json::to_vec(&json!({singular: body})).unwrap()
        } else {
            serde_json::to_vec(&body).unwrap()
        };
        let status = rt.block_on(async {
            let resp = cloud.http
                .request(method.parse().unwrap(), cloud.neutron(&path))
                .header("X-Auth-Token", &cloud.admin)
                .header("Content-Type", "application/json")
                .body(payload)
                .send()
                .await
                .expect("the sandbox answers within the client timeout");
            let status = resp.status();
            let text = resp.text().await.unwrap();
            if !text.is_empty() {
                let v: Value = serde_json::from_str(&text).expect("JSON body");
                if status.is_client_error() {
                    prop_assert!(v.get("NeutronError").is_some() || v.get("error").is_some(), "{}", text);
                }
            }
            Ok::<_, TestCaseError>(status)
        })?;
        prop_assert!(!status.is_server_error(), "server error {}", status);
    }
}

#[test]
fn sandbox_still_answers_after_the_property_run() {
    let (rt, cloud) = shared();
    let (status, _) = rt.block_on(cloud.get("networks"));
    assert_eq!(status, StatusCode::OK);
}
