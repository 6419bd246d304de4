//! The HTTP endpoints for operators and kubelets: `/metrics` (Prometheus text), `/healthz`
//! (the process serves) and `/readyz` (caches synced, or a standby replica). Must not know
//! about load balancers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::engine::Health;
use crate::metrics::Metrics;

async fn metrics(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.encode(),
    )
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(h): State<Arc<Health>>) -> impl IntoResponse {
    if h.ready() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "caches not synced")
    }
}

/// The router of `--metrics-addr`: `/metrics`, and the probes too.
pub fn router(metrics_: Arc<Metrics>, health: Arc<Health>) -> Router {
    health_router(health).route("/metrics", get(metrics).with_state(metrics_))
}

/// The router of `--health-addr`: the probes only, never `/metrics`.
pub fn health_router(health: Arc<Health>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(health)
}

/// At most this many connections are served at once; more wait in the listen backlog, so
/// idle or slow clients cannot use up the process's file descriptors.
pub const MAX_CONNECTIONS: usize = 64;
/// A client must send its request headers within this time…
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// …and a connection lives at most this long, whatever it does.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(30);

/// Bind `addr` and serve in the background; returns the bound address (port 0 allowed).
pub async fn serve(addr: SocketAddr, router: Router) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // Out of descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %err, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let service = TowerToHyperService::new(router.clone());
            tokio::spawn(async move {
                let _slot = slot;
                let mut http = http1::Builder::new();
                http.timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT);
                let conn = http.serve_connection(TokioIo::new(stream), service);
                let _ = tokio::time::timeout(CONNECTION_LIFETIME, conn).await;
            });
        }
    });
    Ok(local)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get_path(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn endpoints_answer() {
        let metrics = Arc::new(Metrics::new());
        let health = Arc::new(Health::default());
        let addr = serve(
            "127.0.0.1:0".parse().unwrap(),
            router(metrics, health.clone()),
        )
        .await
        .unwrap();
        assert!(get_path(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
        assert!(get_path(addr, "/readyz").await.starts_with("HTTP/1.1 503"));
        health.caches_synced.store(true, Ordering::Relaxed);
        assert!(get_path(addr, "/readyz").await.starts_with("HTTP/1.1 200"));
        let m = get_path(addr, "/metrics").await;
        assert!(m.contains("olbc_queue_depth"), "{m}");
        // The health address serves the probes, never the metrics.
        let health_only = serve("127.0.0.1:0".parse().unwrap(), health_router(health))
            .await
            .unwrap();
        assert!(get_path(health_only, "/readyz")
            .await
            .starts_with("HTTP/1.1 200"));
        assert!(get_path(health_only, "/metrics")
            .await
            .starts_with("HTTP/1.1 404"));
    }

    #[tokio::test]
    async fn idle_connections_cannot_starve_the_probes() {
        let addr = serve(
            "127.0.0.1:0".parse().unwrap(),
            health_router(Arc::new(Health::default())),
        )
        .await
        .unwrap();
        // Twice the connection limit of clients that connect and send nothing.
        let mut idle = Vec::new();
        for _ in 0..2 * MAX_CONNECTIONS {
            idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        // Each is cut after the header timeout, so a probe gets its turn.
        let answer = tokio::time::timeout(
            HEADER_READ_TIMEOUT * 3 + Duration::from_secs(5),
            get_path(addr, "/healthz"),
        )
        .await
        .expect("the probe is answered once the idle clients are cut off");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        // The idle ones were closed by the server (read sees EOF, not a hang).
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(5), idle[0].read(&mut buf))
            .await
            .expect("closed, not hanging")
            .unwrap_or(0);
        assert!(n == 0 || buf.starts_with(b"HTTP/1.1 408"), "{n}");
    }
}
