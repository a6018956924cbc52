//! Dynamo's planners, re-implemented from their published equations as baselines:
//! the v0.4 SLA planner ([`DynamoSlaPlanner`]) and the load-based ±1 rules
//! ([`LoadRulesPlanner`]).

mod dynamo_sla;
mod load_rules;

pub use dynamo_sla::{DynamoSlaConfig, DynamoSlaPlanner};
pub use load_rules::{LoadRulesConfig, LoadRulesPlanner};
