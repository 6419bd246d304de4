//! Which LBaaS generation a cloud offers (SPEC §1.2), and the names reports give them: the
//! one place that knows the catalog service type and the Neutron extension aliases.

use crate::config::LbaasGeneration;
use crate::features::Generation;

/// The catalog service type of Octavia.
pub const LOAD_BALANCER_SERVICE: &str = "load-balancer";
/// The Neutron extension alias of Neutron LBaaS v2.
const LBAAS_V2_EXTENSION: &str = "lbaasv2";
/// The Neutron extension alias of Neutron LBaaS v1.
const LBAAS_V1_EXTENSION: &str = "lbaas";

/// Every generation, best first: the order detection prefers them in.
const BEST_FIRST: [LbaasGeneration; 3] = [
    LbaasGeneration::Octavia,
    LbaasGeneration::NeutronV2,
    LbaasGeneration::NeutronV1,
];

/// Whether the cloud offers `generation`: Octavia in the catalog, Neutron LBaaS as an
/// extension of Neutron.
pub(super) fn offers(
    generation: LbaasGeneration,
    has_load_balancer_service: bool,
    network_extensions: &[String],
) -> bool {
    let has = |alias: &str| network_extensions.iter().any(|e| e == alias);
    match generation {
        LbaasGeneration::Octavia => has_load_balancer_service,
        LbaasGeneration::NeutronV2 => has(LBAAS_V2_EXTENSION),
        LbaasGeneration::NeutronV1 => has(LBAAS_V1_EXTENSION),
    }
}

/// The generation the controller will use: forced by configuration or detected in the order
/// of SPEC §1.2 (Octavia in the catalog, then Neutron `lbaasv2`, then `lbaas`).
pub fn detect_generation(
    has_load_balancer_service: bool,
    network_extensions: &[String],
) -> Option<LbaasGeneration> {
    BEST_FIRST
        .into_iter()
        .find(|g| offers(*g, has_load_balancer_service, network_extensions))
}

/// The names of every generation the cloud offers, best first.
pub(super) fn offered(
    has_load_balancer_service: bool,
    network_extensions: &[String],
) -> Vec<&'static str> {
    BEST_FIRST
        .into_iter()
        .filter(|g| offers(*g, has_load_balancer_service, network_extensions))
        .map(generation_name)
        .collect()
}

pub(super) fn generation_name(g: LbaasGeneration) -> &'static str {
    Generation::from(g).label()
}
