//! A GPU-free LLM serving simulator.
//!
//! * [`engine`] — one mock engine: a paged KV [`engine::block_manager`]
//!   with a prefix cache, a vLLM-like scheduler and a step-time
//!   [`perf::PerfModel`]; it publishes [`kv_event`]s in the router's format.
//! * [`Simulation`] — a discrete-event cluster of engines replaying a
//!   [`workload::Workload`] (Mooncake trace or synthetic), aggregated or
//!   disaggregated, routed by a [`routing::RoutingPolicy`], resizable at run
//!   time, observable per interval ([`Observation`]) and summarised in a
//!   [`report::Report`].
//!
//! Everything is pure and seeded: the same inputs give the same report.
//!
//! # Driving it from a planner
//!
//! ```
//! use sim::{Simulation, SimConfig, ServingMode, Role};
//! use sim::workload::SyntheticSpec;
//! use sim::routing::RoundRobin;
//!
//! let cfg = SimConfig {
//!     mode: ServingMode::Aggregated { workers: 2 },
//!     startup_delay_ms: 5_000.0,
//!     ..SimConfig::default()
//! };
//! let load = SyntheticSpec { duration_s: 20.0, input_length: 512, output_length: 16,
//!                            ..SyntheticSpec::default() }.generate();
//! let mut sim = Simulation::new(cfg, load, Box::new(RoundRobin::default()), None);
//! let mut t = 0.0;
//! while !sim.is_finished() {
//!     t += 5_000.0;
//!     sim.run_until(t);
//!     let obs = sim.take_observation();
//!     let pool = obs.pool(Role::Aggregated).unwrap();
//!     if pool.queue_depth > 10 {
//!         sim.set_replicas(Role::Aggregated, sim.replicas(Role::Aggregated) + 1);
//!     }
//! }
//! let report = sim.report();
//! assert_eq!(report.completed, report.requests);
//! ```

pub mod autoscale;
pub mod cluster;
pub mod config;
pub mod engine;
pub mod kv_event;
pub mod perf;
pub mod report;
pub mod router_adapter;
pub mod routing;
pub mod workload;

pub use cluster::{
    DrainChoice, Observation, PoolObservation, ReplicaLoad, RequestOutcome, Simulation, WorkerState,
};
pub use config::{EngineConfig, PreemptionMode, ServingMode, SimConfig, Sla};
pub use engine::Role;
pub use report::Report;
