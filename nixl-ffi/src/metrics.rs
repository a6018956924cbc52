//! Extension: starting nixl-core's Prometheus endpoint from C.

use std::net::{Ipv4Addr, SocketAddr};

use crate::convert::{SUCCESS, out_ptr, write_out};
use crate::status::CapiStatus;

/// Extension: starts this process's Prometheus endpoint (`GET /metrics`) on `port` (0: any free
/// port), on 127.0.0.1 only when `local`, every address otherwise, and writes the bound port to
/// `bound_port`; if it already runs, writes its port. Agents created afterwards record
/// metrics. NIXL's variables (`NIXL_TELEMETRY_EXPORTER=prometheus`, ...) start the same
/// endpoint without this call. A port already taken is `NIXL_CAPI_ERROR_INVALID_PARAM`.
///
/// # Safety
/// `bound_port` must be valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_ext_start_metrics(
    port: u16,
    local: bool,
    bound_port: *mut u16,
) -> CapiStatus {
    ffi_boundary! {
        let out = out_ptr(bound_port, "bound_port")?;
        let ip = if local { Ipv4Addr::LOCALHOST } else { Ipv4Addr::UNSPECIFIED };
        let bound = nixl_core::metrics::start(SocketAddr::from((ip, port)))?;
        // SAFETY: checked by `out_ptr`; valid for a write (this function's `# Safety`).
        unsafe { write_out(out, bound) };
        SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::nixl_capi_status_t;

    #[test]
    fn starts_once_and_reports_the_port() {
        let mut port = 0u16;
        // SAFETY: `port` is a live local.
        let status = unsafe { nixl_capi_ext_start_metrics(0, true, &mut port) };
        assert_eq!(status, nixl_capi_status_t::NIXL_CAPI_SUCCESS.into());
        assert_ne!(port, 0);
        assert_eq!(nixl_core::metrics::exporter_port(), Some(port));
        let mut again = 0u16;
        // SAFETY: `again` is a live local.
        unsafe { nixl_capi_ext_start_metrics(0, true, &mut again) };
        assert_eq!(again, port);
        // SAFETY: a NULL output is refused before anything is written.
        let status = unsafe { nixl_capi_ext_start_metrics(0, true, std::ptr::null_mut()) };
        assert_eq!(
            status,
            nixl_capi_status_t::NIXL_CAPI_ERROR_INVALID_PARAM.into()
        );
        let body = nixl_core::metrics::encode().unwrap();
        assert!(body.ends_with("# EOF\n"), "{body}");
    }
}
