//! What initiator and target share: loading a library, creating the agent,
//! its backend and a registered buffer.

use crate::args::Args;
use crate::error::Result;
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
    pub fn open(args: &Args, name: &str) -> Result<Session> {
        let api = Arc::new(Api::load(&args.lib)?);
        let agent = Agent::with_config(&api, name, &AgentConfig::default())?;
        let pairs = args.param_pairs();
        let params: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let backend = agent.create_backend(&args.backend, &params)?;
        let buf = Buffer::new(args.buf_bytes, args.segment);
        let mut reg = RegList::new(&api, MemType::Dram)?;
        reg.add(buf.addr(), buf.len(), 0, &[])?;
        agent.register(&reg, None)?;
        Ok(Session {
            api,
            agent,
            _backend: backend,
            buf,
            _reg: reg,
        })
    }
}
