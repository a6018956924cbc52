//! The central store as the agent sees it: etcd when built with the `etcd` feature; otherwise
//! an uninhabited type, so code paths that use it need no `cfg`.

#[cfg(feature = "etcd")]
pub use super::etcd::EtcdStore as Store;

#[cfg(not(feature = "etcd"))]
pub use disabled::Store;

#[cfg(not(feature = "etcd"))]
mod disabled {
    use std::sync::Weak;

    use crate::config::AgentConfig;
    use crate::exchange::MetadataHost;
    use crate::status::{Result, err};

    /// No central store in this build.
    pub enum Store {}

    impl Store {
        pub(crate) fn connect(
            _config: &AgentConfig,
            _agent: Weak<dyn MetadataHost>,
        ) -> Result<Store> {
            Err(err!(
                NotSupported,
                "NIXL_ETCD_ENDPOINTS is set but this build has no etcd support; rebuild nixl-core with `--features etcd` (needs protoc)"
            ))
        }

        pub(crate) fn publish(&self, _agent: &str, _label: &str, _md: Vec<u8>) -> Result<()> {
            match *self {}
        }

        pub(crate) fn remove(&self, _agent: &str) -> Result<()> {
            match *self {}
        }

        pub(crate) fn fetch_and_watch(
            &self,
            _host: &dyn MetadataHost,
            _agent: &str,
            _label: &str,
        ) -> Result<()> {
            match *self {}
        }

        pub(crate) fn shutdown(self) {
            match self {}
        }
    }
}
