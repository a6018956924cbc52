//! Dynamo's planners, re-implemented from their published equations as baselines:
//! today's planner ([`DynamoCurrentPlanner`]: throughput sizing against the targets, load
//! rules on top), the v0.4 SLA planner ([`DynamoSlaPlanner`]) and the load-based ±1 rules
//! alone ([`LoadRulesPlanner`]).

mod dynamo_current;
mod dynamo_sla;
mod load_rules;

pub use dynamo_current::{DynamoCurrentConfig, DynamoCurrentPlanner};
pub use dynamo_sla::{DynamoSlaConfig, DynamoSlaPlanner};
pub use load_rules::{LoadRulesConfig, LoadRulesPlanner};
