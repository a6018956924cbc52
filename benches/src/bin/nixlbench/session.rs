//! What initiator and target share: loading a library, creating the agent,
//! its backend and a registered buffer.

use crate::args::Args;
use nixl_benches::buffer::Buffer;
use nixl_capi_client::{Agent, AgentConfig, Api, Backend, MemType, RegList};
use std::sync::Arc;

/// One side of a benchmark pair.
pub struct Session {
    /// The loaded library.
    pub api: Arc<Api>,
    /// This process's agent.
    pub agent: Agent,
    /// Kept alive for the agent's lifetime.
    pub _backend: Backend,
    /// The registered transfer buffer.
    pub buf: Buffer,
    /// Its registration (deregistered on drop of the agent).
    pub _reg: RegList,
}

impl Session {
    /// Loads `args.lib`, creates agent `name` with backend `args.backend`,
    /// allocates and registers `args.buf_bytes`.
    pub fn open(args: &Args, name: &str) -> Result<Session, String> {
        let api = Arc::new(Api::load(&args.lib).map_err(|e| e.to_string())?);
        let agent =
            Agent::with_config(&api, name, &AgentConfig::default()).map_err(|e| e.to_string())?;
        let pairs = args.param_pairs();
        let params: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let backend = agent
            .create_backend(&args.backend, &params)
            .map_err(|e| e.to_string())?;
        let buf = Buffer::new(args.buf_bytes, args.segment);
        let mut reg = RegList::new(&api, MemType::Dram).map_err(|e| e.to_string())?;
        reg.add(buf.addr(), buf.len(), 0, &[])
            .map_err(|e| e.to_string())?;
        agent.register(&reg, None).map_err(|e| e.to_string())?;
        Ok(Session {
            api,
            agent,
            _backend: backend,
            buf,
            _reg: reg,
        })
    }
}

/// Shorthand: any displayable error into a String.
pub fn s<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}
