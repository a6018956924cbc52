//! Enacting replica targets. A [`Connector`] receives targets, starts and stops replicas, and
//! reports what happened as [`ReplicaEvent`]s. Removal always drains: the replica first stops
//! receiving requests (event [`ReplicaEvent::Draining`]) and is stopped only when idle or
//! after a drain timeout. Time is passed in by the caller, in seconds.

mod replica_set;
mod simulated;

pub use replica_set::{Action, ReplicaSet};
pub use simulated::SimulatedConnector;

use serde::{Deserialize, Serialize};

use crate::replicas::{ReplicaCounts, ReplicaTarget, Role};

/// A replica's identity, unique for the connector's lifetime.
pub type ReplicaId = u64;

/// Identity of a decision handed to a connector, increasing from 1.
pub type DecisionId = u64;

/// Reports how many requests a replica still holds (queued or running).
pub type InFlight<'a> = &'a dyn Fn(ReplicaId) -> usize;

/// Life-cycle state of a live replica.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum ReplicaState {
    /// Requested, not yet serving.
    Starting,
    /// Serving.
    Ready,
    /// Taking no new requests since `since`; stopped once idle.
    Draining {
        /// When draining began (s).
        since: f64,
    },
}

/// A live replica.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Replica {
    /// Identity.
    pub id: ReplicaId,
    /// Role.
    pub role: Role,
    /// Lowest index free among the role's live replicas when it started (ports derive from it).
    pub slot: u32,
    /// State.
    pub state: ReplicaState,
    /// When it was asked for (s).
    pub requested_at: f64,
}

/// Why a replica was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopReason {
    /// It finished its in-flight requests after draining.
    Drained,
    /// Draining took longer than the timeout; its in-flight requests were cut off.
    DrainTimeout,
    /// It was still starting when the target went down.
    Cancelled,
    /// Its process exited on its own.
    Exited,
}

/// Something that happened to a replica; the caller routes by these events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplicaEvent {
    /// Asked for; not yet serving.
    Starting {
        /// The replica.
        id: ReplicaId,
        /// Its role.
        role: Role,
        /// Its slot.
        slot: u32,
    },
    /// Serving: route requests to it.
    Ready {
        /// The replica.
        id: ReplicaId,
        /// Its role.
        role: Role,
    },
    /// Draining: route no new requests to it.
    Draining {
        /// The replica.
        id: ReplicaId,
        /// Its role.
        role: Role,
    },
    /// Back in service after draining.
    Undrained {
        /// The replica.
        id: ReplicaId,
        /// Its role.
        role: Role,
    },
    /// Gone.
    Stopped {
        /// The replica.
        id: ReplicaId,
        /// Its role.
        role: Role,
        /// Why.
        reason: StopReason,
    },
}

/// Why a connector could not act.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// A worker process could not be spawned or signalled.
    #[error("worker process for {role:?}: {source}")]
    Process {
        /// The role being started or stopped.
        role: Role,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No command is configured for a role that was asked for.
    #[error("no worker command configured for role {0:?}")]
    NoCommand(Role),
}

/// Enacts replica targets.
pub trait Connector {
    /// Moves toward `target` at time `now` (non-blocking): starts, cancels, drains or
    /// un-drains replicas. Returns the decision's id.
    fn set_target(
        &mut self,
        now: f64,
        target: ReplicaTarget,
        in_flight: InFlight<'_>,
    ) -> Result<DecisionId, ConnectorError>;

    /// Advances to `now`: replicas whose start-up finished become ready, drained ones stop.
    fn poll(&mut self, now: f64, in_flight: InFlight<'_>) -> Result<(), ConnectorError>;

    /// Takes the events produced since the last call, in order.
    fn take_events(&mut self) -> Vec<ReplicaEvent>;

    /// Live replicas.
    fn replicas(&self) -> Vec<Replica>;

    /// Counts by role and state.
    fn counts(&self) -> ReplicaCounts;

    /// The latest decision that is fully enacted (all ready, nothing starting or draining).
    fn completed_decision(&self) -> Option<DecisionId>;
}

/// Tracks decision ids and which one the replica set has reached: the bookkeeping every
/// [`Connector`] shares (the simulated one here, disagg's process connector).
#[derive(Debug, Default)]
pub struct DecisionLog {
    latest: DecisionId,
    target: ReplicaTarget,
    completed: Option<DecisionId>,
}

impl DecisionLog {
    /// Records a new target; returns its decision id.
    pub fn record(&mut self, target: ReplicaTarget) -> DecisionId {
        self.latest += 1;
        self.target = target;
        self.latest
    }

    /// Marks the latest decision completed once `set` has settled at its target.
    pub fn check(&mut self, set: &ReplicaSet) {
        if self.latest > 0 && set.settled_at(self.target) {
            self.completed = Some(self.latest);
        }
    }

    /// The latest decision that is fully enacted.
    pub fn completed(&self) -> Option<DecisionId> {
        self.completed
    }
}
