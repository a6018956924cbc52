//! Notifications: the map `get_notifs` fills, and standalone notifications.

use libc::size_t;
use std::ffi::{CString, c_char, c_void};

use nixl_core::NotifMap;

use crate::boundary::Failure;
use crate::convert::{SUCCESS, into_handle, out_ptr, to_cstring, write_out};
use crate::status::CapiStatus;
use crate::types::{nixl_capi_agent_t, nixl_capi_notif_map_t, nixl_capi_opt_args_t};

/// Received notifications by sender, each sender's in arrival order. Senders keep the order
/// in which they first appeared. Pointers handed out stay valid until the map is cleared or
/// destroyed: appending never moves a stored name or message.
#[derive(Default)]
pub struct nixl_capi_notif_map_s {
    entries: Vec<(String, CString, Vec<Vec<u8>>)>,
}

impl nixl_capi_notif_map_s {
    fn merge(&mut self, new: NotifMap) {
        for (sender, msgs) in new {
            match self.entries.iter_mut().find(|(s, _, _)| *s == sender) {
                Some((_, _, list)) => list.extend(msgs),
                None => {
                    let c = to_cstring(&sender);
                    self.entries.push((sender, c, msgs));
                }
            }
        }
    }

    fn messages(&self, agent: &str) -> Result<&[Vec<u8>], Failure> {
        self.entries
            .iter()
            .find(|(s, _, _)| s == agent)
            .map(|(_, _, m)| m.as_slice())
            .ok_or_else(|| Failure::invalid(format!("no notifications from {agent:?} in the map")))
    }
}

/// Creates an empty notification map, owned by the caller (`nixl_capi_destroy_notif_map`).
///
/// # Safety
/// `notif_map` must be valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_create_notif_map(
    notif_map: *mut nixl_capi_notif_map_t,
) -> CapiStatus {
    ffi_boundary! {
        let out = out_ptr(notif_map, "notif_map")?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, into_handle(nixl_capi_notif_map_s::default())) };
        SUCCESS
    }
}

/// Destroys a notification map; pointers it handed out become invalid.
///
/// # Safety
/// `notif_map` must be NULL or a live map.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_destroy_notif_map(
    notif_map: nixl_capi_notif_map_t,
) -> CapiStatus {
    ffi_boundary! { drop(arg!(take notif_map)); SUCCESS }
}

/// Drains the agent's received notifications and appends them to the map.
///
/// # Safety
/// `agent` must be a live agent, `notif_map` a live map, `opt_args` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_get_notifs(
    agent: nixl_capi_agent_t,
    notif_map: nixl_capi_notif_map_t,
    opt_args: nixl_capi_opt_args_t,
) -> CapiStatus {
    ffi_boundary! {
        let agent = arg!(agent agent);
        let map = arg!(mut notif_map);
        let _ = arg!(opt opt_args);
        let mut new = NotifMap::new();
        agent.get_notifs(&mut new)?;
        map.merge(new);
        SUCCESS
    }
}

/// Sends `len` bytes at `data` as a standalone notification to `remote_agent` (or to this
/// agent itself). `data` may be NULL when `len` is 0.
///
/// # Safety
/// `agent` must be a live agent, `remote_agent` a NUL-terminated string, `data` valid for
/// `len` bytes, `opt_args` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_gen_notif(
    agent: nixl_capi_agent_t,
    remote_agent: *const c_char,
    data: *const c_void,
    len: size_t,
    opt_args: nixl_capi_opt_args_t,
) -> CapiStatus {
    ffi_boundary! {
        let agent = arg!(agent agent);
        let remote = arg!(str remote_agent);
        let msg = arg!(bytes data, len, "data");
        agent.gen_notif(remote, msg, arg!(opt opt_args).as_ref())?;
        SUCCESS
    }
}

/// Number of senders in the map.
///
/// # Safety
/// `map` must be a live map, `size` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_notif_map_size(
    map: nixl_capi_notif_map_t,
    size: *mut size_t,
) -> CapiStatus {
    ffi_boundary! {
        let map = arg!(ref map);
        let out = out_ptr(size, "size")?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, map.entries.len()) };
        SUCCESS
    }
}

/// The name of the sender at `index`, borrowed from the map (valid until it is cleared or
/// destroyed); INVALID_PARAM past the end.
///
/// # Safety
/// `map` must be a live map, `agent_name` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_notif_map_get_agent_at(
    map: nixl_capi_notif_map_t,
    index: size_t,
    agent_name: *mut *const c_char,
) -> CapiStatus {
    ffi_boundary! {
        let map = arg!(ref map);
        let out = out_ptr(agent_name, "agent_name")?;
        let (_, name, _) = map.entries.get(index).ok_or_else(|| {
            Failure::invalid(format!("index {index} is past the end ({})", map.entries.len()))
        })?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, name.as_ptr()) };
        SUCCESS
    }
}

/// Number of notifications from `agent_name`; INVALID_PARAM if the sender is not in the map.
///
/// # Safety
/// `map` must be a live map, `agent_name` a NUL-terminated string, `size` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_notif_map_get_notifs_size(
    map: nixl_capi_notif_map_t,
    agent_name: *const c_char,
    size: *mut size_t,
) -> CapiStatus {
    ffi_boundary! {
        let map = arg!(ref map);
        let agent = arg!(str agent_name);
        let out = out_ptr(size, "size")?;
        let n = map.messages(agent)?.len();
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, n) };
        SUCCESS
    }
}

/// Notification `index` from `agent_name`: its bytes, borrowed from the map (valid until it
/// is cleared or destroyed), and length.
///
/// # Safety
/// `map` must be a live map, `agent_name` a NUL-terminated string, `data` and `len` valid for
/// writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_notif_map_get_notif(
    map: nixl_capi_notif_map_t,
    agent_name: *const c_char,
    index: size_t,
    data: *mut *const c_void,
    len: *mut size_t,
) -> CapiStatus {
    ffi_boundary! {
        let map = arg!(ref map);
        let agent = arg!(str agent_name);
        let (data, len) = (out_ptr(data, "data")?, out_ptr(len, "len")?);
        let msgs = map.messages(agent)?;
        let msg = msgs.get(index).ok_or_else(|| {
            Failure::invalid(format!("index {index} is past the end ({})", msgs.len()))
        })?;
        // SAFETY: both checked non-NULL.
        unsafe {
            write_out(data, msg.as_ptr().cast::<c_void>());
            write_out(len, msg.len());
        }
        SUCCESS
    }
}

/// Empties the map; pointers it handed out become invalid.
///
/// # Safety
/// `map` must be a live map.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_notif_map_clear(map: nixl_capi_notif_map_t) -> CapiStatus {
    ffi_boundary! {
        arg!(mut map).entries.clear();
        SUCCESS
    }
}

/// Extension: blocks, without spinning, until a notification is waiting to be taken by
/// `nixl_capi_get_notifs` or `timeout_us` microseconds pass (negative: no limit). Returns
/// `NIXL_CAPI_SUCCESS` when one is waiting, `NIXL_CAPI_IN_PROG` on timeout.
///
/// # Safety
/// `agent` must be a live agent.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_wait_notifs(
    agent: nixl_capi_agent_t,
    timeout_us: i64,
) -> CapiStatus {
    ffi_boundary! {
        let agent = arg!(agent agent);
        let timeout = u64::try_from(timeout_us).ok().map(std::time::Duration::from_micros);
        if agent.wait_notifs(timeout) {
            SUCCESS
        } else {
            Ok(crate::status::capi_status_of(nixl_core::Status::InProg))
        }
    }
}
