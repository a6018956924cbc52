//! Notifications: standalone messages and the map `get_notifs` fills.

use std::collections::HashMap;

use super::{Agent, OptArgs};
use crate::backend::Target;
use crate::status::{Result, err};

/// Notifications by sender name, each sender's in arrival order (`nixl_notifs_t`).
pub type NotifMap = HashMap<String, Vec<Vec<u8>>>;

impl Agent {
    /// Drains received notifications and appends them to `map` (`getNotifs`). Notifications
    /// from agents whose metadata this agent never loaded are included.
    pub fn get_notifs(&self, map: &mut NotifMap) -> Result<()> {
        let backends = self.inner.backends.read();
        if !backends.iter().any(|b| b.engine.capabilities().notif) {
            return Err(err!(
                Backend,
                "no backend on agent {} delivers notifications",
                self.inner.name
            ));
        }
        drop(backends);
        for (sender, msg) in self.inner.notifs.drain() {
            map.entry(sender).or_default().push(msg);
        }
        Ok(())
    }

    /// Sends a standalone notification (`genNotif`) to a remote agent or to this agent itself.
    pub fn gen_notif(&self, remote: &str, msg: &[u8], opts: Option<&OptArgs>) -> Result<()> {
        let backends = self.inner.backends.read();
        let hinted = |b: usize| {
            opts.is_none_or(|o| o.backends.is_empty() || o.backends.iter().any(|h| h.0 == b))
        };
        let notif_capable = |b: usize| backends[b].engine.capabilities().notif && hinted(b);
        if remote == self.inner.name {
            if !(0..backends.len())
                .any(|b| notif_capable(b) && backends[b].engine.capabilities().local)
            {
                return Err(err!(
                    NotFound,
                    "no backend on agent {} delivers notifications to itself",
                    self.inner.name
                ));
            }
            self.inner.notifs.push(&self.inner.name, msg.to_vec());
            return Ok(());
        }
        let peer = self
            .inner
            .remotes
            .read()
            .get(remote)
            .cloned()
            .ok_or_else(|| err!(NotFound, "no metadata loaded for agent {remote}"))?;
        let link = peer
            .links
            .iter()
            .find(|l| notif_capable(l.backend))
            .ok_or_else(|| {
                err!(
                    NotFound,
                    "no common backend delivers notifications to {remote}"
                )
            })?;
        let engine = backends[link.backend].engine.clone();
        drop(backends);
        let result = engine.gen_notif(&Target::Peer(link.peer.clone()), msg);
        if let Err(e) = &result
            && super::remote::is_disconnect(e.status())
        {
            self.inner.on_remote_disconnect(&peer);
        }
        result
    }
}
