//! The planner on the simulator: [`driver`] runs a `sim::Simulation` in disaggregated mode
//! under a planner, [`profiler`] measures the planner's profile from the mock engine. A crate
//! of its own so that the planner library stays free of the simulator, and the evaluation
//! (`planner/examples/planner-eval`) and the closed-loop test share one copy.

pub mod driver;
pub mod profiler;
