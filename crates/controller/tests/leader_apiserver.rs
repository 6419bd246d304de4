//! Leader election on a real kube-apiserver: one replica leads, the other stands by and takes
//! over when the leader steps down; a leader whose Lease is taken away stops with an error
//! (fail-stop) instead of carrying on.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::{wait_for, ControlPlane};
use controller::leader::{lead, LeaderError, LeaseConfig};
use controller::Health;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

const LIMIT: Duration = Duration::from_secs(60);

fn cfg(identity: &str) -> LeaseConfig {
    LeaseConfig {
        namespace: "default".into(),
        name: "olbc-test".into(),
        identity: identity.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leads_the_other_takes_over_and_a_lost_lease_stops_the_leader() {
    let Some(cp) = ControlPlane::start("leader") else {
        return;
    };
    let client = cp.client().await;
    let (started_tx, mut started) = mpsc::unbounded_channel::<&'static str>();

    let (stop_a, stop_a_rx) = oneshot::channel::<()>();
    let health_a = Arc::new(Health::default());
    let tx = started_tx.clone();
    let a = tokio::spawn(lead(
        client.clone(),
        cfg("replica-a"),
        health_a.clone(),
        async move {
            let _ = tx.send("a");
            let _ = stop_a_rx.await;
        },
    ));
    assert_eq!(
        tokio::time::timeout(LIMIT, started.recv()).await.unwrap(),
        Some("a")
    );

    let health_b = Arc::new(Health::default());
    let tx = started_tx.clone();
    let b = tokio::spawn(lead(
        client.clone(),
        cfg("replica-b"),
        health_b.clone(),
        async move {
            let _ = tx.send("b");
            std::future::pending::<()>().await;
        },
    ));
    wait_for("b standing by", LIMIT, || {
        let h = health_b.clone();
        async move { h.standby.load(Ordering::Relaxed).then_some(()) }
    })
    .await;
    assert!(health_b.ready(), "a standby replica is ready");
    // While a leads, b does not start its work.
    assert!(tokio::time::timeout(Duration::from_secs(3), started.recv())
        .await
        .is_err());

    // a steps down (its work ends): it releases the Lease and b takes over.
    let _ = stop_a.send(());
    tokio::time::timeout(LIMIT, a)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        tokio::time::timeout(LIMIT, started.recv()).await.unwrap(),
        Some("b")
    );
    assert!(!health_b.standby.load(Ordering::Relaxed));

    // Someone else takes the Lease: b must stop with an error, not keep working.
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    let now = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    let steal = json!({"spec": {"holderIdentity": "intruder", "leaseDurationSeconds": 3600,
                                "acquireTime": now.clone(), "renewTime": now.to_string()}});
    leases
        .patch("olbc-test", &PatchParams::default(), &Patch::Merge(&steal))
        .await
        .unwrap();
    let result = tokio::time::timeout(LIMIT, b)
        .await
        .expect("b stops within the limit")
        .unwrap();
    assert!(
        matches!(
            result,
            Err(LeaderError::Lost { .. }) | Err(LeaderError::Lease { .. })
        ),
        "{result:?}"
    );
}
