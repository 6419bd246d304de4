//! Asynchronous provisioning: after every mutation the load balancer stays PENDING_* for the
//! configured delay, then completes like Octavia's worker would (ACTIVE, ERROR when the fault
//! is set, or gone). It must not know HTTP.

use std::sync::Arc;

use crate::state::Shared;

use super::net;

/// Completes the pending work of `lb_id` after the provisioning delay (at once when the delay
/// is zero, so tests with no delay see ACTIVE on their next request).
pub fn schedule(shared: &Arc<Shared>, lb_id: String) {
    let delay = shared.config.draw_provisioning_delay();
    if delay.is_zero() {
        complete(shared, &lb_id);
        return;
    }
    // A weak handle: a pending timer must not keep a shut-down sandbox alive.
    let weak = Arc::downgrade(shared);
    let token = shared.shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = token.cancelled() => {}
            _ = tokio::time::sleep(delay) => {
                if let Some(shared) = weak.upgrade() {
                    complete(&shared, &lb_id);
                }
            }
        }
    });
}

/// Finishes every PENDING_* object of one load balancer now.
pub fn complete(shared: &Arc<Shared>, lb_id: &str) {
    let fail_create = shared.faults.lock().lb_error_after_create;
    {
        let mut world = shared.world.lock();
        let released = world.octavia.finalize(lb_id, fail_create);
        for port in released {
            net::release_port(&mut world.neutron, &port.0);
        }
    }
    crate::dataplane::sync(shared);
}
