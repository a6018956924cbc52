//! Piecewise-linear profile tables, from the workspace's one timing crate (`engine-timing`):
//! 1-D ([`Table1d`]) and 2-D ([`Grid2d`]), linear inside and clamped to the edge values
//! outside (until this crate shared them, the 1-D tables here extrapolated).

pub use engine_timing::{Grid2d, Table1d, TableError};
