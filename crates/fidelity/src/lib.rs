//! Differential fidelity: one catalogue of OpenStack API interactions replayed against the
//! real services (openstack-rig, or any cloud) and against the sandbox, with the answers
//! compared by shape. Test-only; nothing of it ships.
//!
//! - `catalogue`: the steps (requests, captures, polls, clean-ups) as data.
//! - `replay`: runs a catalogue against one target and records an `Observation` per step.
//! - `shape`: what of a JSON answer is compared (keys, types, enum values).
//! - `compare`: the differences between two runs, minus the reasoned allow-list.
//! - `clients`: recordings of real clients (openstack CLI, OCCM) reduced to observations.

pub mod catalogue;
pub mod clients;
pub mod compare;
pub mod replay;
pub mod shape;

pub use catalogue::{Catalogue, Step};
pub use compare::{compare_runs, AllowEntry, AllowList, Difference};
pub use replay::{run, Observation, Run, Target};
pub use shape::Shape;

/// Why loading a catalogue or allow-list, or talking to a target, failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot parse {path}: {message}")]
    Parse { path: String, message: String },
    #[error("invalid catalogue: {0}")]
    Catalogue(String),
    #[error("target {target}: {message}")]
    Target { target: String, message: String },
}
