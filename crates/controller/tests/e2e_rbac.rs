//! End to end with exactly the RBAC of deploy/ (issue 6): deploy/manifests/rbac.yaml is applied
//! with the admin kubeconfig, a token for the `openstack-lb-controller` ServiceAccount is
//! obtained through the TokenRequest API, and the controller binary runs with a kubeconfig
//! holding only that bearer token, with `--leader-elect` so the Lease permissions are used too.
//! The test itself (Nodes, Service, assertions) uses the admin client. A LoadBalancer Service
//! must get an external IP answering HTTP through the floating IP, the controller's Events must
//! be recorded, deletion must drop the finalizer and leave nothing behind (leak audit), and
//! the controller log must show no "forbidden"/403. The token must really be limited: listing
//! Secrets with it is Forbidden.

mod common;
mod harness;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{repo_root, wait_for};
use harness::{backend, http_get, node_ports, sandbox_config, ControllerProcess, Env, LIMIT};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Namespace, Secret};
use kube::api::{Api, DeleteParams, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::json;

const FAST: Duration = Duration::from_millis(300);
const SA: &str = "openstack-lb-controller";
const SA_NAMESPACE: &str = "kube-system";
const IDENTITY: &str = "rbac-e2e";
const NODES: [(&str, &str); 2] = [("rbac-1", "127.100.37.11"), ("rbac-2", "127.100.37.12")];

/// `kubectl` with the admin kubeconfig, bounded; panics with its output when it fails.
fn kubectl(admin_kubeconfig: &Path, args: &[&str]) -> String {
    let out = Command::new("kubectl")
        .arg(format!("--kubeconfig={}", admin_kubeconfig.display()))
        .arg("--request-timeout=20s")
        .args(args)
        .output()
        .expect("run kubectl");
    assert!(
        out.status.success(),
        "kubectl {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A kubeconfig with the admin kubeconfig's server and CA but only `token` as credentials.
fn write_token_kubeconfig(admin: &Path, token: &str, out: &Path) -> PathBuf {
    let kc = Kubeconfig::read_from(admin).unwrap();
    let cluster = kc.clusters[0]
        .cluster
        .clone()
        .expect("cluster in kubeconfig");
    let server = cluster.server.expect("server in kubeconfig");
    let ca = cluster
        .certificate_authority_data
        .expect("certificate-authority-data in kubeconfig");
    // JSON is YAML: kube-rs (and kubectl) read it as a kubeconfig.
    let text = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "olbc", "cluster": {"server": server, "certificate-authority-data": ca}}],
        "users": [{"name": SA, "user": {"token": token}}],
        "contexts": [{"name": SA, "context": {"cluster": "olbc", "user": SA, "namespace": SA_NAMESPACE}}],
        "current-context": SA,
    });
    std::fs::write(out, serde_json::to_string_pretty(&text).unwrap()).unwrap();
    out.to_path_buf()
}

async fn client_from(kubeconfig: &Path) -> Client {
    let kc = Kubeconfig::read_from(kubeconfig).unwrap();
    let cfg = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(cfg).unwrap()
}

/// The text logger colours its output even into a file.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether a log line reports an authorization failure: "forbidden" in any case, or a
/// stand-alone 403 (not part of a longer number, a UUID, a fractional timestamp or a duration).
fn reports_forbidden(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    if lower.contains("forbidden") {
        return true;
    }
    let bytes = lower.as_bytes();
    lower.match_indices("403").any(|(i, _)| {
        let before = i.checked_sub(1).map(|j| bytes[j]);
        let after = bytes.get(i + 3).copied();
        let word = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
        // Not a decimal either: "delay=403.15ms" is a backoff, not a status.
        let decimal = after == Some(b'.') && bytes.get(i + 4).is_some_and(u8::is_ascii_digit);
        !word(before) && !word(after) && !decimal && before != Some(b'.') && before != Some(b'-')
    })
}

/// Fails with the offending lines when the controller log reports an authorization error.
fn assert_not_denied(log: &Path) {
    let text = strip_ansi(&std::fs::read_to_string(log).unwrap_or_default());
    let denied: Vec<&str> = text.lines().filter(|l| reports_forbidden(l)).collect();
    assert!(
        denied.is_empty(),
        "the controller hit authorization errors with the deployed RBAC:\n{}",
        denied.join("\n")
    );
}

/// Waits for a Normal Event `reason` about Service `web`; fails at once (instead of after
/// the whole bound) when the controller log shows it was refused.
async fn wait_controller_event(env: &Env, log: &Path, reason: &str) -> Event {
    wait_for(
        &format!("Normal Event {reason} about web"),
        LIMIT,
        || async {
            assert_not_denied(log);
            env.events_for("web").await.into_iter().find(|e| {
                e.type_.as_deref() == Some("Normal") && e.reason.as_deref() == Some(reason)
            })
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_works_with_exactly_the_deployed_rbac() {
    let Some(env) = Env::start("rbac", "rbac", sandbox_config(237, FAST)).await else {
        return;
    };
    let admin = env.cp.kubeconfig.clone();

    // The deployed RBAC, applied as an operator would.
    let manifest = repo_root().join("deploy/manifests/rbac.yaml");
    let applied = kubectl(&admin, &["apply", "-f", &manifest.display().to_string()]);
    println!("rbac: applied:\n{}", applied.trim_end());

    // A bound ServiceAccount token from the TokenRequest API.
    let token = kubectl(
        &admin,
        &["create", "token", SA, "-n", SA_NAMESPACE, "--duration=1h"],
    );
    let token = token.trim();
    assert!(!token.is_empty(), "empty token");
    let sa_kubeconfig =
        write_token_kubeconfig(&admin, token, &env.cp.dir.join("sa-kubeconfig.json"));
    let sa_client = client_from(&sa_kubeconfig).await;

    // RBAC bindings reach the authorizer through an informer: wait (bounded) until the token
    // can do something the ClusterRole allows before judging anything else.
    wait_for("the ServiceAccount may get kube-system", LIMIT, || async {
        Api::<Namespace>::all(sa_client.clone())
            .get(SA_NAMESPACE)
            .await
            .ok()
            .map(|_| ())
    })
    .await;

    // The token is really limited: no Secrets, anywhere, and not as cluster-admin.
    for api in [
        Api::<Secret>::all(sa_client.clone()),
        Api::<Secret>::namespaced(sa_client.clone(), SA_NAMESPACE),
    ] {
        match api.list(&ListParams::default()).await {
            Err(kube::Error::Api(e)) => {
                assert_eq!(e.code, 403, "listing Secrets: {e:?}");
                assert!(
                    e.message
                        .contains(&format!("system:serviceaccount:{SA_NAMESPACE}:{SA}")),
                    "the request must be made as the ServiceAccount: {}",
                    e.message
                );
                println!("rbac: listing Secrets with the token: {}", e.message);
            }
            other => panic!(
                "listing Secrets with the controller's token must be Forbidden, got {other:?}"
            ),
        }
    }
    match Api::<Namespace>::all(sa_client.clone())
        .list(&ListParams::default())
        .await
    {
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 403, "listing Namespaces: {e:?}"),
        other => panic!("listing Namespaces with the token must be Forbidden, got {other:?}"),
    }

    for (name, ip) in NODES {
        env.add_node(name, ip, true).await;
    }
    let mut controller = ControllerProcess::start(
        &sa_kubeconfig,
        &env.conf_path,
        &env.cp.dir.join("controller.log"),
        &["--leader-elect", "--leader-elect-identity", IDENTITY],
    );
    controller.wait_ready(LIMIT).await;

    // Leader election through the Lease the Role allows.
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), SA_NAMESPACE);
    wait_for("the controller holds the Lease", LIMIT, || async {
        assert_not_denied(&controller.log);
        let holder = leases.get(SA).await.ok()?.spec?.holder_identity?;
        (holder == IDENTITY).then_some(())
    })
    .await;

    let created = env
        .create_service(json!({
            "metadata": {"name": "web"},
            "spec": {"type": "LoadBalancer", "selector": {"app": "web"},
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
        }))
        .await;
    let np = node_ports(&created)[0];
    let mut backends = Vec::new();
    for (name, ip) in NODES {
        backends.push(backend(ip, np, name.to_string()).await);
    }

    let ip = wait_for("external IP of web", LIMIT, || async {
        assert_not_denied(&controller.log);
        env.ingress_ip("web").await
    })
    .await;
    assert!(ip.starts_with("127.237.0."), "{ip}");
    let body = wait_for(&format!("HTTP through {ip}:80"), LIMIT, || async {
        http_get(&ip, 80)
            .await
            .filter(|r| r.starts_with("HTTP/1.1 200"))
    })
    .await;
    assert!(
        NODES.iter().any(|(name, _)| body.ends_with(name)),
        "answer from a node backend: {body}"
    );
    println!("rbac: http://{ip}/ answered {:?}", body.lines().last());
    assert!(env.has_finalizer("web").await, "finalizer set");
    let lbs = env.lbs_named("kube_service_kubernetes_rbac_web").await;
    assert_eq!(lbs.len(), 1, "{lbs:?}");
    // Written through services (annotations) and services/status (condition).
    let annotated = wait_for("load-balancer-id written back", LIMIT, || async {
        env.services()
            .get("web")
            .await
            .ok()?
            .metadata
            .annotations?
            .get("loadbalancer.openstack.org/load-balancer-id")
            .cloned()
    })
    .await;
    assert_eq!(annotated, lbs[0].id);
    let (status, reason, message) = wait_for("LoadBalancerReady condition", LIMIT, || {
        env.condition("web")
    })
    .await;
    assert_eq!(status, "True", "{reason}: {message}");

    // Events recorded by the controller itself, under the ServiceAccount's identity.
    let ev = wait_controller_event(&env, &controller.log, "EnsuredLoadBalancer").await;
    assert_eq!(
        ev.reporting_component.as_deref(),
        Some("openstack-lb-controller"),
        "{ev:?}"
    );

    env.services()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_service_gone("web", LIMIT).await;
    let ev = wait_controller_event(&env, &controller.log, "DeletedLoadBalancer").await;
    assert_eq!(
        ev.reporting_component.as_deref(),
        Some("openstack-lb-controller"),
        "{ev:?}"
    );
    env.audit_leaks(&[]).await;

    assert!(controller.is_running(), "the controller must still run");
    let holder = leases
        .get(SA)
        .await
        .unwrap()
        .spec
        .and_then(|s| s.holder_identity);
    assert_eq!(holder.as_deref(), Some(IDENTITY), "still the leader");
    assert_not_denied(&controller.log);
    let log = std::fs::read_to_string(&controller.log).unwrap_or_default();
    assert!(
        strip_ansi(&log).contains("rbac/web"),
        "the controller log must show its decisions about rbac/web (it is what proves no \
         403):\n{log}"
    );

    drop(controller);
    for b in backends {
        b.abort();
    }
    env.finish().await;
}

#[test]
fn forbidden_detection() {
    assert!(reports_forbidden(
        "ApiError: services is forbidden: User ..."
    ));
    assert!(reports_forbidden(
        "ErrorResponse { reason: \"Forbidden\", code: 403 }"
    ));
    assert!(reports_forbidden("status=403 path=/api/v1/events"));
    assert!(!reports_forbidden("2026-11-26T08:45:15.403Z INFO ready"));
    assert!(!reports_forbidden(
        "lb 5f1c-403a-b7e0 port 40312 ip 127.0.4.3"
    ));
    assert!(!reports_forbidden(
        "load balancer busy; rescheduled status=PENDING_CREATE delay=403.157665ms"
    ));
    assert!(reports_forbidden("answered 403."));
}
