//! SLO planning for disaggregated LLM serving: how many prefill and decode workers to run.
//!
//! The crate is pure and deterministic: no clocks, no I/O in the planning path. Time is passed
//! in as seconds (`f64`), once per adjustment interval, with an [`Observation`] of what
//! happened during it. A [`Planner`] answers with a [`ReplicaTarget`]; a [`Connector`] enacts
//! it (a simulated one with start-up delays here; disagg has one that runs worker processes).
//!
//! Planners:
//! - [`baseline::DynamoCurrentPlanner`] — today's Dynamo: throughput sizing against the
//!   targets, load rules on top;
//! - [`baseline::DynamoSlaPlanner`] — Dynamo v0.4's SLA equations with correction factors;
//! - [`baseline::LoadRulesPlanner`] — Dynamo's load-based ±1 rules;
//! - [`SloPlanner`] — ours: percentile-aware sizing over the request mix, trend forecasting
//!   over the worker start-up time, hysteresis, and drain-before-remove via the connector.

pub mod baseline;
pub mod connector;
pub mod forecast;
pub mod interp;
pub mod observation;
pub mod plan;
pub mod profile;
pub mod queueing;
pub mod replicas;
pub mod sizing;
pub mod slo_planner;
pub mod stats;

pub use connector::{Connector, ConnectorError, ReplicaEvent};
pub use forecast::{Forecaster, ForecasterKind};
pub use observation::{DecodeLoad, Observation, PrefillLoad};
pub use plan::{Limits, Planner, SloTargets};
pub use profile::{DecodeProfile, PerfProfile, PrefillProfile, ProfileError};
pub use replicas::{ReplicaCounts, ReplicaTarget, Role, RoleCounts};
pub use slo_planner::{PlanDiagnostics, SloPlanner, SloPlannerConfig};
