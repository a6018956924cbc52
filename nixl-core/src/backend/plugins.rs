//! The plugins this library provides, by NIXL plugin name.

use std::sync::Arc;

use super::{Backend, BackendContext, Params};
use crate::status::{Result, err};
use crate::types::MemType;

/// A plugin: a name, what it serves, its default parameters, and how to build it.
pub struct Plugin {
    /// NIXL plugin name (`"UCX"`, `"POSIX"`, ...).
    pub name: &'static str,
    /// Memory types it serves.
    pub mem_types: &'static [MemType],
    /// Default parameters and their meaning.
    pub default_params: fn() -> Params,
    /// Builds an instance for an agent.
    pub create: fn(&BackendContext, &Params) -> Result<Arc<dyn Backend>>,
}

/// Every plugin built into this library, in preference order.
///
/// `"UCX"` is a compatibility name: there is no UCX inside. It is this library's native
/// multi-transport network backend (same process, same-host cross-memory attach, TCP), listed
/// under the name NIXL users and their tests ask for. `"LIBFABRIC"` loads libfabric at run
/// time and answers NOT_SUPPORTED where it is absent.
pub fn all() -> &'static [Plugin] {
    &[
        super::net::PLUGIN,
        super::posix::PLUGIN,
        super::fabric::PLUGIN,
    ]
}

/// Finds a plugin by name.
pub fn find(name: &str) -> Result<&'static Plugin> {
    all()
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| err!(NotFound, "no plugin named {name:?}"))
}
