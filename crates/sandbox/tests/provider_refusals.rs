//! A provider refusal as the controller receives it: the openstack client's error for a
//! 501 from Octavia carries the status and quotes Octavia's faultstring, which is the text
//! the controller puts into the Service's Warning Event and condition
//! ("Error syncing load balancer: <error>"). Driven against the sandbox, whose refusals
//! the fidelity catalogue checks against a real Octavia.

use std::time::{Duration, Instant};

use model::config::{GlobalConfig, MetadataConfig};
use openstack::lbaas::{CreateListener, CreateLoadBalancer, CreatePool, UpdatePool};
use openstack::{LbaasV2, Session, SessionOptions};
use sandbox::{SandboxConfig, SandboxHandle};

async fn session(h: &SandboxHandle) -> Session {
    let c = h.admin_credentials();
    let global = GlobalConfig {
        auth_url: Some(h.auth_url()),
        username: Some(c.username.clone()),
        password: Some(c.password.clone()),
        project_name: Some(c.project_name.clone()),
        user_domain_name: Some(c.user_domain_name.clone()),
        project_domain_name: Some(c.project_domain_name.clone()),
        region: Some(h.region().to_string()),
        ..Default::default()
    };
    Session::new(
        &global,
        &MetadataConfig::default(),
        SessionOptions::default(),
    )
    .await
    .unwrap()
}

async fn wait_active(lb: &LbaasV2, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if lb.get_loadbalancer(id).await.unwrap().provisioning_status == "ACTIVE" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("load balancer {id} not ACTIVE after 20 s");
}

#[tokio::test]
async fn a_501_reaches_the_controller_with_octavias_message() {
    let h = sandbox::start(SandboxConfig {
        provisioning_delay: Duration::from_millis(20),
        ..Default::default()
    })
    .await
    .unwrap();
    let s = session(&h).await;
    let octavia = LbaasV2::octavia(&s).await.unwrap();
    let lb = octavia
        .create_loadbalancer(&CreateLoadBalancer {
            name: Some("refusal".into()),
            vip_subnet_id: Some(h.seed().nodes_subnet_id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    wait_active(&octavia, &lb.id).await;
    let listener = octavia
        .create_listener(&CreateListener {
            loadbalancer_id: Some(lb.id.clone()),
            protocol: "TCP".into(),
            protocol_port: 80,
            ..Default::default()
        })
        .await
        .unwrap();
    wait_active(&octavia, &lb.id).await;
    let quoted = "Provider 'amphora' does not support a requested option: Amphora provider does not support SOURCE_IP_PORT algorithm.";
    let err = octavia
        .create_pool(&CreatePool {
            listener_id: Some(listener.id.clone()),
            protocol: "TCP".into(),
            lb_algorithm: "SOURCE_IP_PORT".into(),
            ..Default::default()
        })
        .await
        .expect_err("amphora refuses SOURCE_IP_PORT");
    assert_eq!(err.status(), Some(501), "{err:?}");
    assert!(!err.is_transient(), "a refusal is not retried: {err:?}");
    assert_eq!(err.message(), quoted);
    let text = err.to_string();
    assert_eq!(
        text,
        format!("POST load-balancer /v2/lbaas/pools: server error 501: {quoted}")
    );
    // The same for an in-place change of the algorithm.
    let pool = octavia
        .create_pool(&CreatePool {
            listener_id: Some(listener.id.clone()),
            protocol: "TCP".into(),
            lb_algorithm: "ROUND_ROBIN".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    wait_active(&octavia, &lb.id).await;
    let err = octavia
        .update_pool(
            &pool.id,
            &UpdatePool {
                lb_algorithm: Some("SOURCE_IP_PORT".into()),
                ..Default::default()
            },
        )
        .await
        .expect_err("amphora refuses SOURCE_IP_PORT on update");
    assert_eq!(err.status(), Some(501), "{err:?}");
    assert!(err.to_string().ends_with(quoted), "{err}");
    h.shutdown().await;
}
