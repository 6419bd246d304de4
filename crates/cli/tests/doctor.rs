//! `openstack-lb-controller doctor` as an operator runs it: the real binary against an
//! in-process sandbox, for a healthy cloud in each LBaaS generation and for broken set-ups
//! (wrong password, missing floating network, no Octavia service, endpoint down, bad config).
//! Every run is bounded by a timeout; each test has its own sandbox on ephemeral ports and its
//! own temporary directory.

use std::path::PathBuf;
use std::process::Output;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sandbox::{LbaasMode, SandboxConfig, SandboxHandle};

const RUN_TIMEOUT: Duration = Duration::from_secs(90);

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("olbc-doctor-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn sandbox(mode: LbaasMode) -> SandboxHandle {
    sandbox::start(SandboxConfig {
        lbaas: mode,
        ..SandboxConfig::default()
    })
    .await
    .unwrap()
}

/// A cloud.conf for the sandbox's demo user, with `lb` appended to `[LoadBalancer]`.
fn cloud_conf(sb: &SandboxHandle, password: &str, lb: &str) -> String {
    let c = sb.demo_credentials();
    format!(
        "[Global]\nauth-url = {}\nusername = {}\npassword = \"{password}\"\nproject-name = {}\n\
         user-domain-name = {}\nproject-domain-name = {}\nregion = {}\n\n[LoadBalancer]\n{lb}",
        sb.auth_url(),
        c.username,
        c.project_name,
        c.user_domain_name,
        c.project_domain_name,
        sb.region(),
    )
}

async fn doctor(dir: &TempDir, conf: &str, extra: &[&str]) -> (i32, String) {
    let path = dir.0.join("cloud.conf");
    std::fs::write(&path, conf).unwrap();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_openstack-lb-controller"))
        .arg("doctor")
        .arg("--cloud-config")
        .arg(&path)
        .args(extra)
        .env("RUST_LOG", "error")
        .kill_on_drop(true)
        .output();
    let out: Output = tokio::time::timeout(RUN_TIMEOUT, run)
        .await
        .expect("doctor finishes in time")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    println!("--- doctor {extra:?} ---\n{stdout}{stderr}");
    (out.status.code().unwrap_or(-1), stdout + &stderr)
}

fn demo_password(sb: &SandboxHandle) -> String {
    sb.demo_credentials().password.expose().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_octavia_cloud_exits_zero() {
    let sb = sandbox(LbaasMode::Octavia).await;
    let dir = TempDir::new();
    let lb = format!(
        "floating-network-id = {}\nsubnet-id = {}\n",
        sb.seed().public_network_id,
        sb.seed().nodes_subnet_id
    );
    let conf = cloud_conf(&sb, &demo_password(&sb), &lb);
    let (code, out) = doctor(&dir, &conf, &[]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("✓ load-balancer service"), "{out}");
    assert!(out.contains("Octavia (detected"), "{out}");
    assert!(out.contains("✓ floating network"), "{out}");
    assert!(out.contains("a LoadBalancer Service would work"), "{out}");
    assert!(
        !out.contains(&demo_password(&sb)),
        "the password must never be printed"
    );

    let (code, json) = doctor(&dir, &conf, &["--output", "json"]).await;
    assert_eq!(code, 0, "{json}");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["would_work"], true);
    assert!(report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["status"] != "fail"));
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neutron_lbaas_generations_are_detected() {
    // Both work; v2 with a deprecation warning, v1 with its limits spelled out as warnings.
    for (mode, label, verdict) in [
        (
            LbaasMode::NeutronV2,
            "Neutron LBaaS v2 (detected",
            "! Neutron LBaaS v2",
        ),
        (
            LbaasMode::NeutronV1,
            "Neutron LBaaS v1 (detected",
            "! LBaaS v1",
        ),
    ] {
        let sb = sandbox(mode).await;
        let dir = TempDir::new();
        let lb = format!("floating-network-id = {}\n", sb.seed().public_network_id);
        let (code, out) = doctor(&dir, &cloud_conf(&sb, &demo_password(&sb), &lb), &[]).await;
        assert_eq!(code, 0, "{out}");
        assert!(out.contains(label), "{out}");
        assert!(out.contains(verdict), "{out}");
        assert!(!out.contains("✗"), "{out}");
        sb.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lbaas_v1_cloud_says_what_the_controller_will_do() {
    let sb = sandbox(LbaasMode::NeutronV1).await;
    let dir = TempDir::new();
    let lb = format!(
        "floating-network-id = {}\nsubnet-id = {}\n",
        sb.seed().public_network_id,
        sb.seed().nodes_subnet_id
    );
    let (code, out) = doctor(&dir, &cloud_conf(&sb, &demo_password(&sb), &lb), &[]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("a LoadBalancer Service would work (Neutron LBaaS v1;"),
        "{out}"
    );
    for said in [
        "exactly one TCP port",
        "lb-method SOURCE_IP_PORT is refused",
        "listener timeouts, loadBalancerSourceRanges",
        "TCP checks of the NodePort",
        "name and description only",
    ] {
        assert!(out.contains(said), "{said:?} missing: {out}");
    }
    let (code, json) = doctor(
        &dir,
        &cloud_conf(&sb, &demo_password(&sb), &lb),
        &["--output", "json"],
    )
    .await;
    assert_eq!(code, 0, "{json}");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let v1_warnings = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["title"] == "LBaaS v1" && c["status"] == "warn")
        .count();
    assert_eq!(v1_warnings, 4, "{json}");

    // A default the v1 API cannot take would make every Service fail: that is a ✗.
    let bad = format!("{lb}lb-method = SOURCE_IP_PORT\n");
    let (code, out) = doctor(&dir, &cloud_conf(&sb, &demo_password(&sb), &bad), &[]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("✗ LBaaS v1"), "{out}");
    assert!(out.contains("would NOT work"), "{out}");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_fails_authentication() {
    let sb = sandbox(LbaasMode::Octavia).await;
    let dir = TempDir::new();
    let (code, out) = doctor(&dir, &cloud_conf(&sb, "not-the-password", ""), &[]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("✗ authentication"), "{out}");
    assert!(
        out.contains("fix: Keystone rejected the credentials"),
        "{out}"
    );
    assert!(!out.contains("not-the-password"), "{out}");
    assert!(
        !out.contains("✓ catalog"),
        "nothing is checked after a failed authentication: {out}"
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_floating_network_fails() {
    let sb = sandbox(LbaasMode::Octavia).await;
    let dir = TempDir::new();
    let lb = "floating-network-id = 00000000-0000-4000-8000-000000000000\n";
    let (code, out) = doctor(&dir, &cloud_conf(&sb, &demo_password(&sb), lb), &[]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("✗ floating network"), "{out}");
    assert!(out.contains("does not exist"), "{out}");
    assert!(
        out.contains("fix: set [LoadBalancer] floating-network-id"),
        "{out}"
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_octavia_service_fails() {
    // A cloud with Neutron LBaaS v2 only, while cloud.conf insists on Octavia (Magnum's
    // `use-octavia = True`): there is no load-balancer service to talk to.
    let sb = sandbox(LbaasMode::NeutronV2).await;
    let dir = TempDir::new();
    let (code, out) = doctor(
        &dir,
        &cloud_conf(&sb, &demo_password(&sb), "use-octavia = True\n"),
        &[],
    )
    .await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("✗ load-balancer service"), "{out}");
    assert!(out.contains("forces Octavia"), "{out}");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn octavia_endpoint_down_fails() {
    let sb = sandbox(LbaasMode::Octavia).await;
    let dir = TempDir::new();
    sb.state()
        .inner
        .faults
        .lock()
        .rules
        .push("service=load-balancer,status=503".parse().unwrap());
    let (code, out) = doctor(&dir, &cloud_conf(&sb, &demo_password(&sb), ""), &[]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("✗ Octavia API"), "{out}");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_config_exits_two() {
    let dir = TempDir::new();
    let (code, out) = doctor(&dir, "[LoadBalancer]\nlb-method = RANDOM\n", &[]).await;
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("[LoadBalancer] lb-method = \"RANDOM\" is invalid; accepted:"),
        "{out}"
    );
    let (code, out) = doctor(&dir, "[Global]\nuse-clouds = true\n", &["--cloud", "nope"]).await;
    assert_eq!(code, 2, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clouds_yaml_application_credential_fills_global() {
    let sb = sandbox(LbaasMode::Octavia).await;
    let dir = TempDir::new();
    let clouds = dir.0.join("clouds.yaml");
    std::fs::write(&clouds, sb.clouds_yaml()).unwrap();
    let conf = format!(
        "[Global]\nuse-clouds = true\nclouds-file = {}\n[LoadBalancer]\nfloating-network-id = {}\n",
        clouds.display(),
        sb.seed().public_network_id
    );
    let (code, out) = doctor(&dir, &conf, &["--cloud", "sandbox-appcred"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("✓ clouds.yaml"), "{out}");
    assert!(
        out.contains("application-credential-secret"),
        "the filled keys are named: {out}"
    );
    assert!(out.contains("application credential (by id)"), "{out}");
    assert!(
        !out.contains(sb.application_credential().1.expose()),
        "{out}"
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_needs_the_right_ca() {
    let dir = TempDir::new();
    let sb = sandbox::start(SandboxConfig {
        tls: true,
        tls_dir: Some(dir.0.join("tls")),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let ca = sb
        .ca_pem_path()
        .expect("the TLS sandbox writes its CA")
        .to_path_buf();
    let lb = format!("floating-network-id = {}\n", sb.seed().public_network_id);
    let base = cloud_conf(&sb, &demo_password(&sb), &lb);
    let with_ca = base.replacen(
        "[Global]\n",
        &format!("[Global]\nca-file = {}\n", ca.display()),
        1,
    );
    let (code, out) = doctor(&dir, &with_ca, &[]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("✓ TLS"), "{out}");
    let (code, out) = doctor(&dir, &base, &[]).await;
    assert_eq!(
        code, 1,
        "without the CA the certificate is not trusted: {out}"
    );
    assert!(out.contains("✗ authentication"), "{out}");
    assert!(out.contains("ca-file"), "the fix names ca-file: {out}");
    sb.shutdown().await;
}
