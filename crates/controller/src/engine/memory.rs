//! Per-Service memory: what the engine remembers between passes, lost on restart on purpose
//! (the cloud and the API are the state). Each outcome of a pass is one named transition here,
//! so the resets that go with it (convergence, hold, attempt counters) live in one place.
//! Uses no sibling module. The change being carried out (from its first executed step until
//! the Service is Ready) is a [`Change`]: whether it created the load balancer.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;

use crate::backend::{CloudPrint, Stages};
use crate::status::Change;

/// What one pass worked from: the Service's spec and annotations (as a hash) and its member
/// fingerprint. The same `Seen` twice means nothing a pass could act on has changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Seen {
    pub input: u64,
    pub fingerprint: u64,
}

impl Seen {
    pub fn new(service: &Service, fingerprint: u64) -> Self {
        Seen {
            input: input_hash(service),
            fingerprint,
        }
    }
}

/// Hash of what the Service asks for: spec, annotations and uid (a re-created Service is new).
pub(super) fn input_hash(service: &Service) -> u64 {
    let mut h = DefaultHasher::new();
    serde_json::to_string(&service.spec)
        .unwrap_or_default()
        .hash(&mut h);
    serde_json::to_string(&service.metadata.annotations)
        .unwrap_or_default()
        .hash(&mut h);
    service.metadata.uid.hash(&mut h);
    h.finish()
}

/// How far the time-to-external-IP stages got (each is recorded once).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Reached {
    pub lb_active: bool,
    pub fip_attached: bool,
    pub status_written: bool,
}

/// What a pass that executed steps learnt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Progress {
    /// The first executed step of this episode (the moment for `EnsuringLoadBalancer`).
    pub first: bool,
    /// Consecutive passes with steps and no convergence.
    pub streak: u32,
    pub creating: bool,
}

/// One Service's memory.
#[derive(Debug, Default)]
pub(super) struct Memory {
    busy_attempts: u32,
    error_attempts: u32,
    progress_streak: u32,
    episode: Option<Change>,
    deleting_since: Option<Instant>,
    fingerprint: Option<u64>,
    /// The last pass found the cloud converged for this input, at this moment.
    converged: Option<(Seen, Instant)>,
    /// A busy or failed pass scheduled the next attempt for this moment; wake-ups before it
    /// for the same input (our own status writes) skip the cloud.
    hold: Option<(Seen, Instant)>,
    /// (input hash, reason, message) of Events already sent, to send each once per input.
    sent: HashSet<(u64, String, String)>,
    reached: Reached,
    disabled_warned: bool,
    /// What the last converged pass saw in the cloud; compared at resync.
    print: Option<CloudPrint>,
    /// The last pass found the Service invalid (rechecked at resync: it costs no cloud call).
    invalid: bool,
    /// This process deleted something of the Service's in the cloud during its cleanup.
    cleanup_progressed: bool,
    /// The backend woke the Service since its current pass began.
    woken_meanwhile: bool,
    /// When this process first saw the Service without an external address (the start of
    /// the time-to-external-IP histogram); `None` for one that had its address already.
    waiting_for_ip_since: Option<Instant>,
}

impl Memory {
    /// The next pass must observe the cloud again (and the resync has nothing to compare).
    pub fn forget_convergence(&mut self) {
        self.converged = None;
        self.print = None;
    }

    /// Whether the cloud was found converged for exactly `seen` less than `max_age` ago.
    pub fn converged_for(&self, seen: Seen, max_age: Duration) -> bool {
        matches!(self.converged, Some((s, at)) if s == seen && at.elapsed() < max_age)
    }

    /// How long the scheduled retry for `seen` still has to wait; a hold for another input
    /// or one that expired is dropped.
    pub fn held(&mut self, seen: Seen, now: Instant) -> Option<Duration> {
        match self.hold {
            Some((s, until)) if s == seen && now < until => Some(until - now),
            _ => {
                self.hold = None;
                None
            }
        }
    }

    /// A retry is scheduled for `until`: passes for the same input wait for it.
    pub fn hold_until(&mut self, seen: Seen, until: Instant) {
        self.hold = Some((seen, until));
    }

    /// A failed pass: the retry waits for `until` unless the input changes. Without a known
    /// member fingerprint nothing can be compared, so nothing is held.
    pub fn hold_failed(&mut self, input: u64, until: Instant) {
        if let Some(fingerprint) = self.fingerprint {
            self.hold = Some((Seen { input, fingerprint }, until));
        }
    }

    /// A pass begins: only a wake-up from now on answers a wait it registers.
    pub fn begin_pass(&mut self) {
        self.woken_meanwhile = false;
    }

    /// The backend woke the Service: its scheduled retry is void, and so is the error count
    /// behind it. A wake-up says the cause is gone (the LB settled, the cloud's ids were found
    /// again); without the reset, one transient fault on the retry would cost the backoff the
    /// errors before the cause went away earned (minutes after a cloud lost its state).
    pub fn woken(&mut self) {
        self.hold = None;
        self.woken_meanwhile = true;
        self.error_attempts = 0;
    }

    /// Wait for a wake-up with `until` as the safety net; `true` when it came already while
    /// the pass was finishing (nothing to wait for then).
    pub fn wait_for_wake(&mut self, seen: Seen, until: Instant) -> bool {
        if self.woken_meanwhile {
            self.hold = None;
        } else {
            self.hold = Some((seen, until));
        }
        self.woken_meanwhile
    }

    /// The member fingerprint a pass computed.
    pub fn set_fingerprint(&mut self, fingerprint: u64) {
        self.fingerprint = Some(fingerprint);
    }

    /// Node-driven check: whether the member fingerprint moved since it was last known.
    pub fn fingerprint_moved(&mut self, fingerprint: u64) -> bool {
        let moved = self.fingerprint.is_some_and(|old| old != fingerprint);
        if self.fingerprint.is_none() || moved {
            self.fingerprint = Some(fingerprint);
        }
        moved
    }

    /// The Service converged: counters, hold and invalidity reset; returns the episode that
    /// just ended, if any.
    pub fn ready(&mut self, seen: Seen, print: Option<CloudPrint>) -> Option<Change> {
        self.busy_attempts = 0;
        self.error_attempts = 0;
        self.progress_streak = 0;
        self.converged = Some((seen, Instant::now()));
        self.hold = None;
        self.print = print;
        self.invalid = false;
        self.episode.take()
    }

    /// Steps were executed; `created`: one of them created the load balancer.
    pub fn progressed(&mut self, created: bool) -> Progress {
        self.busy_attempts = 0;
        self.error_attempts = 0;
        self.progress_streak += 1;
        self.forget_convergence();
        self.invalid = false;
        self.hold = None;
        let first = self.episode.is_none();
        if created {
            self.episode = Some(Change::Created);
        } else if first {
            self.episode = Some(Change::Updated);
        }
        Progress {
            first,
            streak: self.progress_streak,
            creating: self.creating(),
        }
    }

    /// The change being carried out, if any.
    pub fn episode(&self) -> Option<Change> {
        self.episode
    }

    /// Whether the current episode created the load balancer.
    pub fn creating(&self) -> bool {
        self.episode == Some(Change::Created)
    }

    /// The load balancer was locked; returns the attempt number for the backoff.
    pub fn busy(&mut self) -> u32 {
        self.forget_convergence();
        self.next_busy_attempt()
    }

    /// The attempt number of a busy retry, without forgetting anything (deletion).
    pub fn next_busy_attempt(&mut self) -> u32 {
        self.busy_attempts += 1;
        self.busy_attempts - 1
    }

    /// A cloud pass failed; returns the attempt number for the backoff.
    pub fn failed(&mut self) -> u32 {
        self.forget_convergence();
        self.next_error_attempt()
    }

    /// The attempt number of an error retry, without forgetting anything (Kubernetes errors).
    pub fn next_error_attempt(&mut self) -> u32 {
        self.error_attempts += 1;
        self.error_attempts - 1
    }

    /// The Service was found invalid; the episode (if any) is abandoned.
    pub fn invalid(&mut self) {
        self.forget_convergence();
        self.invalid = true;
        self.episode = None;
    }

    /// The cleanup started or goes on; `true` on its first pass.
    pub fn begin_deletion(&mut self) -> bool {
        self.converged = None;
        let first = self.deleting_since.is_none();
        if first {
            self.deleting_since = Some(Instant::now());
        }
        first
    }

    /// The cleanup executed steps; returns the streak.
    pub fn deletion_progressed(&mut self) -> u32 {
        self.busy_attempts = 0;
        self.error_attempts = 0;
        self.progress_streak += 1;
        self.cleanup_progressed = true;
        self.progress_streak
    }

    /// Whether this process deleted something of the Service's during its cleanup.
    pub fn cleanup_progressed(&self) -> bool {
        self.cleanup_progressed
    }

    /// Start the time-to-external-IP clock for a Service seen without an address, once.
    pub fn waiting_for_ip(&mut self, waiting: bool) {
        if waiting && self.waiting_for_ip_since.is_none() && !self.reached.status_written {
            self.waiting_for_ip_since = Some(Instant::now());
        }
    }

    pub fn waiting_for_ip_since(&self) -> Option<Instant> {
        self.waiting_for_ip_since
    }

    /// Record the stages reached; returns those reached for the first time.
    pub fn reach(&mut self, stages: Stages, status_written: bool) -> Reached {
        let before = self.reached;
        self.reached.lb_active |= stages.lb_active;
        self.reached.fip_attached |= stages.fip_attached;
        self.reached.status_written |= status_written;
        Reached {
            lb_active: self.reached.lb_active && !before.lb_active,
            fip_attached: self.reached.fip_attached && !before.fip_attached,
            status_written: self.reached.status_written && !before.status_written,
        }
    }

    /// `true` the first time only: the disabled Warning is sent once per Service.
    pub fn first_disabled_warning(&mut self) -> bool {
        !std::mem::replace(&mut self.disabled_warned, true)
    }

    /// `true` unless this Event was already sent for this input.
    pub fn first_send(&mut self, input: u64, reason: &str, message: &str) -> bool {
        self.sent
            .insert((input, reason.to_string(), message.to_string()))
    }
}

/// Every Service's memory, behind one lock.
#[derive(Debug, Default)]
pub(super) struct Memories {
    map: Mutex<HashMap<String, Memory>>,
}

impl Memories {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Memory>> {
        // A poisoned lock only means another worker panicked mid-update; the memory is a cache.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run `f` on the memory of `key`, made empty if there is none.
    pub fn with<T>(&self, key: &str, f: impl FnOnce(&mut Memory) -> T) -> T {
        f(self.lock().entry(key.to_string()).or_default())
    }

    /// Run `f` on the memory of `key` only if the engine knows the Service.
    pub fn with_known(&self, key: &str, f: impl FnOnce(&mut Memory)) {
        if let Some(m) = self.lock().get_mut(key) {
            f(m);
        }
    }

    /// Drop the memory of `key`; returns the age in seconds of the oldest pending deletion.
    pub fn forget(&self, key: &str) -> f64 {
        let mut map = self.lock();
        map.remove(key);
        oldest_deletion(&map)
    }

    /// The age in seconds of the oldest pending deletion (0 without any).
    pub fn oldest_deletion(&self) -> f64 {
        oldest_deletion(&self.lock())
    }

    /// The prints of converged Services, and the keys of invalid ones, for a resync.
    pub fn resync_inputs(&self) -> (Vec<(String, CloudPrint)>, Vec<String>) {
        let map = self.lock();
        let prints = map
            .iter()
            .filter_map(|(k, m)| m.print.clone().map(|p| (k.clone(), p)))
            .collect();
        let invalid = map
            .iter()
            .filter(|(_, m)| m.invalid)
            .map(|(k, _)| k.clone())
            .collect();
        (prints, invalid)
    }
}

fn oldest_deletion(map: &HashMap<String, Memory>) -> f64 {
    map.values()
        .filter_map(|m| m.deleting_since)
        .map(|t| t.elapsed().as_secs_f64())
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEEN: Seen = Seen {
        input: 1,
        fingerprint: 2,
    };

    #[test]
    fn convergence_holds_for_the_same_input_only() {
        let mut m = Memory::default();
        assert!(!m.converged_for(SEEN, Duration::from_secs(60)));
        assert_eq!(m.ready(SEEN, None), None);
        assert!(m.converged_for(SEEN, Duration::from_secs(60)));
        let moved = Seen {
            fingerprint: 3,
            ..SEEN
        };
        assert!(!m.converged_for(moved, Duration::from_secs(60)));
        assert!(!m.converged_for(SEEN, Duration::ZERO), "too old");
        m.busy();
        assert!(!m.converged_for(SEEN, Duration::from_secs(60)));
    }

    #[test]
    fn an_episode_remembers_a_creation_until_ready() {
        let mut m = Memory::default();
        let p = m.progressed(false);
        assert!(p.first && !p.creating);
        assert_eq!(p.streak, 1);
        let p = m.progressed(true);
        assert!(!p.first && p.creating);
        // A later step that creates nothing does not turn the creation into an update.
        let p = m.progressed(false);
        assert!(p.creating);
        assert_eq!(p.streak, 3);
        assert_eq!(m.ready(SEEN, None), Some(Change::Created));
        assert_eq!(m.ready(SEEN, None), None);
        assert!(m.progressed(false).first);
        m.invalid();
        assert!(m.progressed(false).first, "invalid abandons the episode");
    }

    #[test]
    fn a_wake_up_starts_the_error_backoff_over() {
        let mut m = Memory::default();
        for _ in 0..7 {
            m.failed();
        }
        m.hold_until(SEEN, Instant::now() + Duration::from_secs(120));
        m.woken();
        assert_eq!(
            m.held(SEEN, Instant::now()),
            None,
            "the scheduled retry is void"
        );
        assert_eq!(
            m.failed(),
            0,
            "a fault on the retry backs off from the start"
        );
    }

    #[test]
    fn attempts_count_up_and_reset_on_progress() {
        let mut m = Memory::default();
        assert_eq!(m.busy(), 0);
        assert_eq!(m.busy(), 1);
        assert_eq!(m.failed(), 0);
        assert_eq!(m.next_error_attempt(), 1);
        m.progressed(false);
        assert_eq!(m.busy(), 0);
        assert_eq!(m.failed(), 0);
    }

    #[test]
    fn a_hold_is_kept_for_its_input_until_it_expires() {
        let mut m = Memory::default();
        let now = Instant::now();
        m.hold_until(SEEN, now + Duration::from_secs(5));
        assert_eq!(m.held(SEEN, now), Some(Duration::from_secs(5)));
        let other = Seen { input: 9, ..SEEN };
        assert_eq!(m.held(other, now), None, "another input drops the hold");
        assert_eq!(m.held(SEEN, now), None);
        // Without a known fingerprint a failure holds nothing.
        m.hold_failed(1, now + Duration::from_secs(5));
        assert_eq!(m.held(SEEN, now), None);
        m.set_fingerprint(2);
        m.hold_failed(1, now + Duration::from_secs(5));
        assert!(m.held(SEEN, now).is_some());
    }

    #[test]
    fn a_wake_up_during_the_pass_is_not_lost() {
        let mut m = Memory::default();
        let until = Instant::now() + Duration::from_secs(60);
        m.begin_pass();
        assert!(!m.wait_for_wake(SEEN, until));
        assert!(m.held(SEEN, Instant::now()).is_some());
        m.woken();
        assert!(m.held(SEEN, Instant::now()).is_none());
        assert!(
            m.wait_for_wake(SEEN, until),
            "woken before the wait was set"
        );
        m.begin_pass();
        assert!(!m.wait_for_wake(SEEN, until));
    }

    #[test]
    fn fingerprint_moves_only_from_a_known_value() {
        let mut m = Memory::default();
        assert!(!m.fingerprint_moved(5), "first sighting");
        assert!(!m.fingerprint_moved(5));
        assert!(m.fingerprint_moved(6));
    }

    #[test]
    fn stages_and_warnings_are_reported_once() {
        let mut m = Memory::default();
        let stages = Stages {
            lb_active: true,
            fip_attached: false,
        };
        let r = m.reach(stages, false);
        assert!(r.lb_active && !r.fip_attached && !r.status_written);
        assert_eq!(
            m.reach(stages, true),
            Reached {
                status_written: true,
                ..Reached::default()
            }
        );
        m.waiting_for_ip(true);
        assert_eq!(m.waiting_for_ip_since(), None, "status already written");
        assert!(m.first_disabled_warning());
        assert!(!m.first_disabled_warning());
        assert!(m.first_send(1, "R", "m"));
        assert!(!m.first_send(1, "R", "m"));
        assert!(m.first_send(2, "R", "m"));
    }

    #[test]
    fn deletion_age_is_tracked_until_forgotten() {
        let all = Memories::default();
        assert!(all.with("a/x", |m| m.begin_deletion()));
        assert!(!all.with("a/x", |m| m.begin_deletion()));
        assert!(all.oldest_deletion() >= 0.0);
        all.with("a/x", |m| m.deletion_progressed());
        assert!(all.with("a/x", |m| m.cleanup_progressed()));
        all.forget("a/x");
        assert!(!all.with("a/x", |m| m.cleanup_progressed()));
    }
}
