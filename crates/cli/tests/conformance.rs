//! Conformance tier, `doctor` part: the built binary against the target cloud (any OpenStack;
//! in CI the openstack-rig), healthy and with broken credentials or a wrong subnet. `doctor`
//! only reads, so nothing is created in the cloud. `#[ignore]`d: run with
//! `scripts/conformance.sh` or `cargo test -p openstack-lb-controller --test conformance --
//! --ignored` after configuring a target (docs/conformance.md).

#[path = "../../controller/tests/conformance_support/target.rs"]
mod target;

use std::path::PathBuf;
use std::time::Duration;

use target::Target;

const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// A private directory for the cloud.conf (it holds the target's secret); removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("olbc-conf-doctor-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        Dir(d)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `doctor` on `conf`; (exit code, stdout + stderr). Fails if a secret shows up.
async fn doctor(t: &Target, dir: &Dir, conf: &str, extra: &[&str]) -> (i32, String) {
    let path = dir.0.join("cloud.conf");
    std::fs::write(&path, conf).unwrap();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_openstack-lb-controller"))
        .arg("doctor")
        .arg("--cloud-config")
        .arg(&path)
        .args(extra)
        .env("RUST_LOG", "error")
        .env_remove("OS_CLOUD")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(RUN_TIMEOUT, run)
        .await
        .expect("doctor finishes in time")
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    println!("--- doctor {extra:?} ---\n{text}");
    for s in t.secrets() {
        assert!(!text.contains(&s), "doctor printed a secret");
    }
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test]
#[ignore = "conformance tier: needs a target cloud (scripts/conformance.sh)"]
async fn doctor_passes_against_the_target() {
    let t = Target::require();
    let dir = Dir::new("ok");
    let conf = t.cloud_conf("");
    let (code, out) = doctor(&t, &dir, &conf, &[]).await;
    assert_eq!(code, 0, "{out}");
    for line in [
        "✓ cloud.conf",
        "✓ credentials",
        "✓ authentication",
        "✓ catalog",
        "✓ endpoint network",
        "✓ endpoint load-balancer",
        "✓ Neutron",
        "✓ load-balancer service",
        "✓ Octavia API version",
        "✓ VIP subnet",
        "✓ a LoadBalancer Service would work",
    ] {
        assert!(out.contains(line), "missing {line:?}:\n{out}");
    }
    assert!(out.contains(&t.subnet_id), "names the subnet: {out}");
    if let Some(f) = &t.floating_network_id {
        assert!(out.contains("✓ floating network"), "{out}");
        assert!(out.contains(f.as_str()), "{out}");
    }
    assert!(!out.contains('✗'), "{out}");

    let (code, json) = doctor(&t, &dir, &conf, &["--output", "json"]).await;
    assert_eq!(code, 0, "{json}");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["would_work"], true, "{report}");
    let checks = report["checks"].as_array().unwrap();
    assert!(checks.iter().all(|c| c["status"] != "fail"), "{report}");
}

#[tokio::test]
#[ignore = "conformance tier: needs a target cloud (scripts/conformance.sh)"]
async fn doctor_names_the_fix_for_wrong_credentials() {
    let t = Target::require();
    let dir = Dir::new("secret");
    let wrong = t.with_wrong_secret();
    let (code, out) = doctor(&t, &dir, &wrong.cloud_conf(""), &[]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("✗ authentication"), "{out}");
    assert!(
        out.contains("fix: Keystone rejected the credentials"),
        "{out}"
    );
    assert!(!out.contains("✓ catalog"), "{out}");
    for s in wrong.secrets() {
        assert!(!out.contains(&s), "the wrong secret was printed");
    }
}

#[tokio::test]
#[ignore = "conformance tier: needs a target cloud (scripts/conformance.sh)"]
async fn doctor_refuses_a_subnet_that_does_not_exist() {
    let t = Target::require();
    let dir = Dir::new("subnet");
    let mut wrong = t.clone();
    wrong.subnet_id = "00000000-0000-4000-8000-00000000c0de".into();
    let (code, out) = doctor(&t, &dir, &wrong.cloud_conf(""), &[]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("✓ authentication"), "{out}");
    assert!(out.contains("✗ VIP subnet"), "{out}");
    assert!(out.contains("fix:"), "{out}");
}
