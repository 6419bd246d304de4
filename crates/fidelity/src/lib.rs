//! Differential fidelity: one catalogue of OpenStack API interactions replayed against the
//! real services (openstack-rig, or any cloud) and against the sandbox, with the answers
//! compared by shape. Test-only; nothing of it ships.
