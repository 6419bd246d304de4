//! Health-monitor calls (create on a pool, update, delete). Must not decide anything.

use model::plan::MonitorUpdate;
use model::spec::MonitorSpec;
use model::Step;
use openstack::lbaas::{CreateHealthMonitor, UpdateHealthMonitor};

use super::super::OpenStackCloud;
use super::{ignore_missing, misrouted, Created};
use crate::cloud::CloudError;

pub(super) fn monitor_to_api(m: &MonitorSpec, pool_id: Option<String>) -> CreateHealthMonitor {
    CreateHealthMonitor {
        pool_id,
        monitor_type: m.kind.as_api(),
        delay: u64::from(m.delay),
        timeout: u64::from(m.timeout),
        max_retries: m.max_retries,
        max_retries_down: Some(m.max_retries_down),
        name: Some(m.name.clone()),
        http_method: m.http_method.clone(),
        url_path: m.url_path.clone(),
        expected_codes: m.expected_codes.clone(),
        ..Default::default()
    }
}

impl OpenStackCloud {
    pub(super) async fn monitor_step(
        &self,
        step: &Step,
        created: &mut Created,
    ) -> Result<(), CloudError> {
        match step {
            Step::CreateMonitor { pool, monitor } => {
                let pool = created.resolve(pool)?;
                let m = self
                    .lb
                    .create_healthmonitor(&monitor_to_api(monitor, Some(pool)))
                    .await?;
                created.ids.insert(monitor.name.clone(), m.id);
            }
            Step::UpdateMonitor { monitor, changes } => {
                let MonitorUpdate {
                    name,
                    delay,
                    timeout,
                    max_retries,
                    max_retries_down,
                    http_method,
                    url_path,
                    expected_codes,
                } = changes.clone();
                let u = UpdateHealthMonitor {
                    name,
                    delay: delay.map(u64::from),
                    timeout: timeout.map(u64::from),
                    max_retries,
                    max_retries_down,
                    http_method,
                    url_path,
                    expected_codes,
                    ..Default::default()
                };
                self.lb.update_healthmonitor(monitor, &u).await?;
            }
            Step::DeleteMonitor { monitor } => {
                ignore_missing(self.lb.delete_healthmonitor(monitor).await)?
            }
            other_step => return Err(misrouted(other_step, "health-monitor")),
        }
        Ok(())
    }
}
