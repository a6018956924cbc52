//! Worker roles, replica targets and replica counts shared by planners and connectors.

use serde::{Deserialize, Serialize};

/// The job of a worker in disaggregated serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    /// Computes prompts (time to first token).
    Prefill,
    /// Generates output tokens (inter-token latency).
    Decode,
}

impl Role {
    /// Both roles, prefill first.
    pub const ALL: [Role; 2] = [Role::Prefill, Role::Decode];

    /// Lower-case name, as used in commands and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Prefill => "prefill",
            Role::Decode => "decode",
        }
    }
}

/// The number of replicas a planner wants per role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct ReplicaTarget {
    /// Prefill replicas.
    pub prefill: u32,
    /// Decode replicas.
    pub decode: u32,
}

impl ReplicaTarget {
    /// A target of `prefill` and `decode` replicas.
    pub fn new(prefill: u32, decode: u32) -> Self {
        Self { prefill, decode }
    }

    /// The count for `role`.
    pub fn get(&self, role: Role) -> u32 {
        match role {
            Role::Prefill => self.prefill,
            Role::Decode => self.decode,
        }
    }

    /// Sets the count for `role`.
    pub fn set(&mut self, role: Role, n: u32) {
        match role {
            Role::Prefill => self.prefill = n,
            Role::Decode => self.decode = n,
        }
    }
}

/// Replicas of one role by life-cycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RoleCounts {
    /// Serving requests.
    pub ready: u32,
    /// Started but not yet ready (cold start).
    pub starting: u32,
    /// Taking no new requests, finishing in-flight ones before being stopped.
    pub draining: u32,
}

impl RoleCounts {
    /// Replicas that are or will soon be serving: ready plus starting. This is what a planner
    /// compares its target with; draining replicas are already on their way out.
    pub fn committed(&self) -> u32 {
        self.ready + self.starting
    }
}

/// Replica counts for both roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReplicaCounts {
    /// Prefill replicas.
    pub prefill: RoleCounts,
    /// Decode replicas.
    pub decode: RoleCounts,
}

impl ReplicaCounts {
    /// The counts for `role`.
    pub fn get(&self, role: Role) -> RoleCounts {
        match role {
            Role::Prefill => self.prefill,
            Role::Decode => self.decode,
        }
    }

    /// Mutable counts for `role`.
    pub fn get_mut(&mut self, role: Role) -> &mut RoleCounts {
        match role {
            Role::Prefill => &mut self.prefill,
            Role::Decode => &mut self.decode,
        }
    }

    /// Ready plus starting replicas per role, as a target.
    pub fn committed(&self) -> ReplicaTarget {
        ReplicaTarget::new(self.prefill.committed(), self.decode.committed())
    }

    /// Whether a previous decision is still being enacted (something starting or draining).
    pub fn in_transition(&self) -> bool {
        Role::ALL.iter().any(|&r| {
            let c = self.get(r);
            c.starting > 0 || c.draining > 0
        })
    }
}
