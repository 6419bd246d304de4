//! Test support: a real etcd + kube-apiserver started through hack/control-plane.sh in a temp
//! dir, stopped on drop. Tests skip (with a message) when the binaries are not built.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A directory holding prebuilt kube-apiserver + etcd, if any: $OLBC_BIN_DIR, else the cache
/// dir of the version hack/build-control-plane.sh selects (OLBC_K8S_VERSION, else the default
/// of hack/k8s-versions.env). Asking the script, rather than taking any cached version, keeps
/// a test on the pinned version when several versions sit in the cache.
pub fn bin_dir() -> Option<PathBuf> {
    let has_bins = |p: &Path| p.join("kube-apiserver").exists() && p.join("etcd").exists();
    if let Ok(dir) = std::env::var("OLBC_BIN_DIR") {
        let p = PathBuf::from(dir);
        if has_bins(&p) {
            return Some(p);
        }
    }
    let out = Command::new(repo_root().join("hack/build-control-plane.sh"))
        .arg("--print-bin-dir")
        .output()
        .expect("run hack/build-control-plane.sh --print-bin-dir");
    assert!(
        out.status.success(),
        "hack/build-control-plane.sh --print-bin-dir failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    has_bins(&dir).then_some(dir)
}

pub struct ControlPlane {
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
}

impl ControlPlane {
    /// `None` (after printing why) when the control-plane binaries are not built.
    pub fn start(tag: &str) -> Option<ControlPlane> {
        let Some(bins) = bin_dir() else {
            eprintln!("SKIPPED: kube-apiserver/etcd not built; run hack/build-control-plane.sh (CI does) to enable this test");
            return None;
        };
        // Several tests start control planes at once on a small machine; a start that loses
        // a race is retried in a fresh directory (bounded), keeping the evidence of each try.
        let mut errors = Vec::new();
        for attempt in 0..3 {
            let dir = std::env::temp_dir().join(format!(
                "olbc-{tag}-{}-{}-{attempt}",
                std::process::id(),
                rand_suffix()
            ));
            let out = Command::new(repo_root().join("hack/control-plane.sh"))
                .args(["start", "--dir"])
                .arg(&dir)
                .env("OLBC_BIN_DIR", &bins)
                .output()
                .expect("run hack/control-plane.sh");
            if out.status.success() {
                let kubeconfig = dir.join("kubeconfig");
                return Some(ControlPlane { dir, kubeconfig });
            }
            let log = std::fs::read_to_string(dir.join("kube-apiserver.log")).unwrap_or_default();
            let tail: Vec<&str> = log
                .lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            errors.push(format!(
                "{}\n{}",
                String::from_utf8_lossy(&out.stderr),
                tail.join("\n")
            ));
            let _ = Command::new(repo_root().join("hack/control-plane.sh"))
                .args(["stop", "--dir"])
                .arg(&dir)
                .output();
            let _ = std::fs::remove_dir_all(&dir);
        }
        panic!("control plane did not start:\n{}", errors.join("\n----\n"));
    }

    pub async fn client(&self) -> Client {
        let kc = Kubeconfig::read_from(&self.kubeconfig).unwrap();
        let cfg = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .unwrap();
        Client::try_from(cfg).unwrap()
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("hack/control-plane.sh"))
            .args(["stop", "--dir"])
            .arg(&self.dir)
            .output();
        if std::env::var("OLBC_KEEP_TEST_DIR").is_err() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn rand_suffix() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    h.finish() as u32
}

/// Poll `f` every 100 ms until it returns `Some`, at most `limit`.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
