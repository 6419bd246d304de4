//! The provisioning watcher: one shared poller for every load balancer that is PENDING_*.
//!
//! Octavia locks a load balancer after every mutation and offers no change notification. A
//! Service whose LB is locked registers here instead of polling alone; while anything is
//! registered, each tick makes one list call for the whole cluster (our cluster tag, only the
//! id and status fields) and wakes exactly the Services whose LB settled (ACTIVE, ERROR) or
//! vanished. The cost per tick is one call whatever the number of waiting Services (plus one
//! GET for an LB the tag list cannot show, e.g. a user's LB that does not carry our tag yet).
//! It must not know about Kubernetes: it hands out Service keys.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Notify};
use tracing::{debug, warn};

/// What a tick learnt about one load balancer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LbProgress {
    /// Still PENDING_* (the status text as the API gives it).
    Pending(String),
    /// No longer locked: ACTIVE, ERROR, or anything else that is not PENDING_*.
    Settled(String),
    /// Not found any more (deleted).
    Gone,
}

/// The one call a tick makes: the provisioning state of `ids`, most of them found in a single
/// list of the LBs tagged `cluster_tag`.
pub trait ProgressSource: Send + Sync + 'static {
    fn lb_progress(
        &self,
        cluster_tag: &str,
        ids: &[String],
    ) -> impl Future<Output = Result<HashMap<String, LbProgress>, String>> + Send;
}

/// A settled LB as the last tick saw it; lets the next pass of its Service skip re-reading a
/// state it already knows (see `Planner`'s expected observations).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settled {
    pub status: String,
    pub at: Instant,
}

#[derive(Default)]
struct State {
    /// LB id → keys of the Services waiting on it.
    waiting: HashMap<String, BTreeSet<String>>,
    /// LB id → its state when a tick last saw it settle.
    settled: HashMap<String, Settled>,
    wake: Option<mpsc::UnboundedSender<String>>,
}

pub struct Watcher {
    state: Mutex<State>,
    kick: Notify,
    tick: Duration,
}

/// Between ticks while something waits: short against an amphora's 20–90 s and the sandbox's
/// seconds, long enough that one list call per tick stays cheap for the cloud.
pub const DEFAULT_TICK: Duration = Duration::from_millis(500);
/// A settled record older than this is not trusted any more.
const SETTLED_TTL: Duration = Duration::from_secs(120);

impl Watcher {
    pub fn new(tick: Duration) -> Self {
        Watcher {
            state: Mutex::new(State::default()),
            kick: Notify::new(),
            tick,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Where woken Service keys go from now on (a new subscriber replaces the old one).
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<String> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.with(|s| s.wake = Some(tx));
        rx
    }

    /// Wake `keys` now, for a reason other than a settled LB (e.g. the cloud's ids changed
    /// under their failed passes); nothing happens without a subscriber.
    pub fn wake(&self, keys: impl IntoIterator<Item = String>) {
        self.with(|s| {
            if let Some(tx) = &s.wake {
                for k in keys {
                    if tx.send(k).is_err() {
                        break;
                    }
                }
            }
        });
    }

    /// Register `key` as waiting for `lb_id` to settle. Returns whether someone listens, i.e.
    /// whether the Service will be woken (otherwise the caller must poll by itself).
    pub fn wait_for(&self, lb_id: &str, key: &str) -> bool {
        let listening = self.with(|s| {
            let listening = s.wake.as_ref().is_some_and(|w| !w.is_closed());
            if listening {
                s.waiting
                    .entry(lb_id.to_string())
                    .or_default()
                    .insert(key.to_string());
                s.settled.remove(lb_id);
            }
            listening
        });
        if listening {
            self.kick.notify_one();
        }
        listening
    }

    /// The state the last tick saw `lb_id` settle in, if recent.
    pub fn settled(&self, lb_id: &str) -> Option<Settled> {
        self.with(|s| {
            s.settled
                .get(lb_id)
                .filter(|r| r.at.elapsed() < SETTLED_TTL)
                .cloned()
        })
    }

    /// Forget what is known about `lb_id` (a pass is about to change it).
    pub fn forget(&self, lb_id: &str) {
        self.with(|s| {
            s.settled.remove(lb_id);
        });
    }

    /// How many LBs are being waited on.
    pub fn waiting(&self) -> usize {
        self.with(|s| s.waiting.len())
    }

    /// One round: ask `source` about every awaited LB and wake the Services of those that are
    /// no longer locked. Returns the keys woken.
    pub async fn tick<S: ProgressSource>(&self, source: &S, cluster_tag: &str) -> Vec<String> {
        let ids: Vec<String> = self.with(|s| s.waiting.keys().cloned().collect());
        if ids.is_empty() {
            return Vec::new();
        }
        let progress = match source.lb_progress(cluster_tag, &ids).await {
            Ok(p) => p,
            Err(e) => {
                // The Services keep their own fallback retry; the next tick asks again.
                warn!(error = %e, waiting = ids.len(), "provisioning watcher: listing failed");
                return Vec::new();
            }
        };
        let now = Instant::now();
        self.with(|s| {
            let mut woken = Vec::new();
            for id in &ids {
                let done = match progress.get(id) {
                    Some(LbProgress::Pending(_)) => false,
                    Some(LbProgress::Settled(status)) => {
                        s.settled.insert(
                            id.clone(),
                            Settled {
                                status: status.clone(),
                                at: now,
                            },
                        );
                        true
                    }
                    Some(LbProgress::Gone) => true,
                    // Not answered for: keep waiting, the fallback retry bounds it.
                    None => false,
                };
                if done {
                    if let Some(keys) = s.waiting.remove(id) {
                        woken.extend(keys);
                    }
                }
            }
            s.settled.retain(|_, r| r.at.elapsed() < SETTLED_TTL);
            if let Some(tx) = &s.wake {
                woken.retain(|k| tx.send(k.clone()).is_ok());
            }
            if !woken.is_empty() {
                debug!(
                    woken = woken.len(),
                    "provisioning watcher: load balancers settled"
                );
            }
            woken
        })
    }

    /// Tick while anything waits; sleep on the next registration otherwise. Runs until the
    /// task is aborted.
    pub async fn run<S: ProgressSource>(self: Arc<Self>, source: Arc<S>, cluster_tag: String) {
        loop {
            // Registered before checking, so a registration between the check and the wait
            // is not missed.
            let kicked = self.kick.notified();
            if self.waiting() == 0 {
                kicked.await;
            } else {
                drop(kicked);
            }
            tokio::time::sleep(self.tick).await;
            self.tick(&*source, &cluster_tag).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Script {
        answers: Mutex<Vec<Result<HashMap<String, LbProgress>, String>>>,
        calls: Mutex<Vec<Vec<String>>>,
    }

    impl ProgressSource for Script {
        async fn lb_progress(
            &self,
            _tag: &str,
            ids: &[String],
        ) -> Result<HashMap<String, LbProgress>, String> {
            let mut ids = ids.to_vec();
            ids.sort();
            self.calls.lock().unwrap().push(ids);
            self.answers.lock().unwrap().remove(0)
        }
    }

    fn answer(pairs: &[(&str, LbProgress)]) -> Result<HashMap<String, LbProgress>, String> {
        Ok(pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect())
    }

    #[tokio::test]
    async fn one_call_per_tick_wakes_exactly_the_settled_services() {
        let w = Watcher::new(DEFAULT_TICK);
        let mut rx = w.subscribe();
        assert!(w.wait_for("lb-a", "ns/a"));
        assert!(w.wait_for("lb-b", "ns/b"));
        assert!(w.wait_for("lb-b", "ns/b2"), "two Services on one shared LB");
        assert!(w.wait_for("lb-c", "ns/c"));
        let source = Script::default();
        source.answers.lock().unwrap().extend([
            answer(&[
                ("lb-a", LbProgress::Pending("PENDING_CREATE".into())),
                ("lb-b", LbProgress::Settled("ACTIVE".into())),
                ("lb-c", LbProgress::Gone),
            ]),
            Err("503".into()),
            answer(&[("lb-a", LbProgress::Settled("ERROR".into()))]),
        ]);
        let mut woken = w.tick(&source, "tag").await;
        woken.sort();
        assert_eq!(woken, vec!["ns/b", "ns/b2", "ns/c"]);
        let mut got = vec![
            rx.recv().await.unwrap(),
            rx.recv().await.unwrap(),
            rx.recv().await.unwrap(),
        ];
        got.sort();
        assert_eq!(got, woken);
        assert_eq!(w.settled("lb-b").map(|s| s.status), Some("ACTIVE".into()));
        assert_eq!(
            w.settled("lb-c"),
            None,
            "gone is not a settled state to reuse"
        );
        // A failed listing wakes nobody and keeps everyone waiting.
        assert!(w.tick(&source, "tag").await.is_empty());
        assert_eq!(w.waiting(), 1);
        assert_eq!(w.tick(&source, "tag").await, vec!["ns/a"]);
        assert_eq!(w.waiting(), 0);
        // Nothing waits: no call at all.
        assert!(w.tick(&source, "tag").await.is_empty());
        let calls = source.calls.lock().unwrap().clone();
        assert_eq!(
            calls,
            vec![vec!["lb-a", "lb-b", "lb-c"], vec!["lb-a"], vec!["lb-a"]]
        );
    }

    #[tokio::test]
    async fn without_a_subscriber_nobody_is_registered() {
        let w = Watcher::new(DEFAULT_TICK);
        assert!(
            !w.wait_for("lb-a", "ns/a"),
            "the caller must poll by itself"
        );
        assert_eq!(w.waiting(), 0);
        let rx = w.subscribe();
        drop(rx);
        assert!(
            !w.wait_for("lb-a", "ns/a"),
            "a closed subscriber listens to nobody"
        );
    }

    #[tokio::test]
    async fn a_new_wait_drops_the_old_settled_record() {
        let w = Watcher::new(DEFAULT_TICK);
        let _rx = w.subscribe();
        w.wait_for("lb-a", "ns/a");
        let source = Script::default();
        source
            .answers
            .lock()
            .unwrap()
            .push(answer(&[("lb-a", LbProgress::Settled("ACTIVE".into()))]));
        w.tick(&source, "tag").await;
        assert!(w.settled("lb-a").is_some());
        w.wait_for("lb-a", "ns/a");
        assert!(w.settled("lb-a").is_none(), "a new change makes it stale");
    }

    #[tokio::test(start_paused = true)]
    async fn the_loop_ticks_only_while_something_waits() {
        let w = Arc::new(Watcher::new(Duration::from_millis(500)));
        let mut rx = w.subscribe();
        let source = Arc::new(Script::default());
        source.answers.lock().unwrap().extend([
            answer(&[("lb-a", LbProgress::Pending("PENDING_UPDATE".into()))]),
            answer(&[("lb-a", LbProgress::Settled("ACTIVE".into()))]),
        ]);
        let task = tokio::spawn(w.clone().run(source.clone(), "tag".into()));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(source.calls.lock().unwrap().is_empty(), "idle: no call");
        w.wait_for("lb-a", "ns/a");
        let key = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .ok()
            .flatten();
        assert_eq!(key.as_deref(), Some("ns/a"));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(source.calls.lock().unwrap().len(), 2, "idle again: no call");
        task.abort();
    }
}
