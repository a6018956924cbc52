//! [`NotifMap`]: notifications received by an agent, grouped by sender.

use crate::error::{Result, check, cstr};
use crate::ffi::NotifMapT;
use crate::table::Api;
use std::ffi::{CStr, c_char, c_void};
use std::sync::Arc;

/// An owned `nixl_capi_notif_map_t`; [`crate::Agent::get_notifs`] appends to it.
pub struct NotifMap {
    api: Arc<Api>,
    raw: NotifMapT,
}

// SAFETY: a heap object owned by this value; mutation needs `&mut self`.
unsafe impl Send for NotifMap {}

impl NotifMap {
    /// Creates an empty map.
    pub fn new(api: &Arc<Api>) -> Result<NotifMap> {
        let mut raw = std::ptr::null_mut();
        // SAFETY: `raw` a valid out pointer.
        check("create_notif_map", unsafe {
            (api.create_notif_map)(&mut raw)
        })?;
        Ok(NotifMap {
            api: api.clone(),
            raw,
        })
    }

    /// Copies out every `(sender, messages)` pair.
    pub fn entries(&self) -> Result<Vec<(String, Vec<Vec<u8>>)>> {
        let api = &self.api;
        let mut n = 0;
        // SAFETY: `raw` live; out pointers valid; borrowed strings and
        // buffers are copied before any further call on the map.
        unsafe {
            check("notif_map_size", (api.notif_map_size)(self.raw, &mut n))?;
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                let mut name: *const c_char = std::ptr::null();
                check(
                    "notif_map_get_agent_at",
                    (api.notif_map_get_agent_at)(self.raw, i, &mut name),
                )?;
                let owned = CStr::from_ptr(name).to_owned();
                let mut m = 0;
                check(
                    "notif_map_get_notifs_size",
                    (api.notif_map_get_notifs_size)(self.raw, owned.as_ptr(), &mut m),
                )?;
                let mut msgs = Vec::with_capacity(m);
                for j in 0..m {
                    let (mut d, mut l): (*const c_void, usize) = (std::ptr::null(), 0);
                    check(
                        "notif_map_get_notif",
                        (api.notif_map_get_notif)(self.raw, owned.as_ptr(), j, &mut d, &mut l),
                    )?;
                    msgs.push(if d.is_null() {
                        Vec::new()
                    } else {
                        std::slice::from_raw_parts(d.cast::<u8>(), l).to_vec()
                    });
                }
                out.push((owned.to_string_lossy().into_owned(), msgs));
            }
            Ok(out)
        }
    }

    /// Messages from one sender (empty if none).
    pub fn from_agent(&self, agent: &str) -> Result<Vec<Vec<u8>>> {
        let _ = cstr("notif_map_get_notifs_size", agent)?;
        Ok(self
            .entries()?
            .into_iter()
            .find(|(a, _)| a == agent)
            .map(|(_, m)| m)
            .unwrap_or_default())
    }

    /// Empties the map.
    pub fn clear(&mut self) -> Result<()> {
        // SAFETY: `raw` live.
        check("notif_map_clear", unsafe {
            (self.api.notif_map_clear)(self.raw)
        })
    }

    /// The raw handle, valid while `self` lives.
    pub fn as_raw(&self) -> NotifMapT {
        self.raw
    }
}

impl Drop for NotifMap {
    fn drop(&mut self) {
        // SAFETY: created by create_notif_map, destroyed once.
        unsafe { (self.api.destroy_notif_map)(self.raw) };
    }
}
