//! One opened libfabric stack: fabric and domain (shared, so one registration serves every
//! endpoint), and per endpoint a completion queue, an address vector and one RDM endpoint, with
//! thin safe wrappers over the ops-table calls this backend makes.

use std::ffi::{CStr, c_void};
use std::ptr::null_mut;

use super::sys::{self, Lib, fi_addr_t};
use crate::status::{Result, err};

/// How the progress thread waits for completions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// `Blocking` where the provider's wait object wakes on completions, else `Polled`
    /// (`shm` in libfabric 1.17: its `fi_cq_sread` neither progresses nor returns while the
    /// peer moves data through shared memory).
    Auto,
    /// Sleep in `fi_cq_sread` (falls back to polling where the CQ has no wait object).
    Blocking,
    /// Poll, backing off to 1 ms sleeps while no transfer is outstanding.
    Polled,
}

/// What the chosen provider asks of this backend.
#[derive(Clone, Debug)]
pub struct Traits {
    /// Provider name as libfabric reports it (e.g. `tcp;ofi_rxm`, `shm`, `verbs;ofi_rxm`).
    pub provider: String,
    /// Fabric name (e.g. the subnet for tcp).
    pub fabric: String,
    /// Domain name (e.g. the interface).
    pub domain: String,
    /// Local buffers need a descriptor from their registration.
    pub mr_local: bool,
    /// Remote addresses are virtual addresses (else offsets into the registration).
    pub virt_addr: bool,
    /// The provider chooses keys (else this backend must supply unique ones).
    pub prov_key: bool,
    /// Largest single message or RMA.
    pub max_msg_size: usize,
    /// Pieces one RMA may carry: the provider's `iov_limit` and `rma_iov_limit`, at most
    /// [`MAX_IOV`].
    pub max_iov: usize,
    /// The provider's transmit queue depth (`tx_attr->size`; 0 when it gives none).
    pub tx_size: usize,
    /// Addresses are formatted strings whose length varies by endpoint (`shm`), not binary
    /// addresses of one length.
    pub addr_str: bool,
}

/// Longest endpoint address inserted; shorter ones are zero-padded to it, so a provider that
/// reads its own fixed address length never reads past the buffer.
pub const MAX_ADDR_LEN: usize = 256;

/// Most pieces this backend puts in one RMA (libfabric 1.17's tcp, rxm and shm take 4).
pub const MAX_IOV: usize = 4;

/// One local range and the remote range of the same length it moves to or from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    /// Local address.
    pub local: u64,
    /// Remote address (virtual or offset, as the provider's `mr_mode` asks).
    pub remote: u64,
    /// Bytes.
    pub len: usize,
}

/// The fabric and domain every endpoint of a backend shares. Closed when the last endpoint
/// holding it is dropped (registrations are closed before, by the backend).
struct Domain {
    lib: &'static Lib,
    info: *mut sys::fi_info,
    fabric: *mut sys::fid_fabric,
    domain: *mut sys::fid_domain,
}

// SAFETY: the domain is opened with FI_THREAD_SAFE; the raw pointers are only freed by `Drop`.
unsafe impl Send for Domain {}
// SAFETY: as above.
unsafe impl Sync for Domain {}

impl Drop for Domain {
    fn drop(&mut self) {
        // SAFETY: opened by `Endpoint::open`, closed once, after every endpoint on it (each
        // holds an `Arc` to it).
        unsafe {
            for f in [self.domain.cast::<sys::fid>(), self.fabric.cast()] {
                if !f.is_null() {
                    let _ = ((*(*f).ops).close)(f);
                }
            }
            (self.lib.freeinfo)(self.info);
        }
    }
}

/// One endpoint with its completion queue and address vector. Every pointer stays valid until
/// `Drop` closes it.
pub struct Endpoint {
    dom: std::sync::Arc<Domain>,
    cq: *mut sys::fid_cq,
    av: *mut sys::fid_av,
    ep: *mut sys::fid_ep,
    /// Whether `sread` blocks on a wait object (else the progress thread polls with backoff).
    pub blocking_cq: bool,
    /// The chosen provider's properties.
    pub traits: Traits,
    /// The endpoint's address, for peers' address vectors.
    pub name: Vec<u8>,
}

// SAFETY: the domain is opened with FI_THREAD_SAFE, so every object may be used from any thread
// concurrently; the raw pointers are only freed by `Drop`.
unsafe impl Send for Endpoint {}
// SAFETY: as above.
unsafe impl Sync for Endpoint {}

fn check(lib: &Lib, rc: i32, what: &str) -> Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(err!(Backend, "{what}: {}", lib.error_text(rc as isize)))
    }
}

fn cstr(p: *const std::ffi::c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        // SAFETY: libfabric's strings are NUL-terminated and live as long as their fi_info.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

impl Endpoint {
    /// Opens the stack on `provider` (None: libfabric's first choice, after its own
    /// `FI_PROVIDER` filter). No fallback: a provider that cannot serve RDM + RMA + messages
    /// is an error naming it.
    pub fn open(lib: &'static Lib, provider: Option<&str>, progress: Progress) -> Result<Endpoint> {
        // SAFETY: fi_dupinfo(NULL) allocates zeroed hints with every attribute struct present.
        let hints = unsafe { (lib.dupinfo)(std::ptr::null()) };
        if hints.is_null() {
            return Err(err!(Backend, "fi_allocinfo failed"));
        }
        let mut info: *mut sys::fi_info = null_mut();
        // SAFETY: `hints` and its attribute structs were allocated by libfabric above; strings
        // given to it are strdup'ed so that fi_freeinfo can free them.
        let rc = unsafe {
            let h = &mut *hints;
            h.caps = sys::FI_MSG | sys::FI_RMA;
            h.mode = sys::FI_CONTEXT | sys::FI_CONTEXT2;
            (*h.ep_attr).type_ = sys::FI_EP_RDM;
            let d = &mut *h.domain_attr;
            d.threading = sys::FI_THREAD_SAFE;
            d.av_type = sys::FI_AV_TABLE;
            d.mr_mode = sys::FI_MR_LOCAL
                | sys::FI_MR_VIRT_ADDR
                | sys::FI_MR_ALLOCATED
                | sys::FI_MR_PROV_KEY;
            if let Some(p) = provider {
                let c = std::ffi::CString::new(p)
                    .map_err(|_| err!(InvalidParam, "provider name {p:?} contains NUL"))?;
                (*h.fabric_attr).prov_name = libc::strdup(c.as_ptr());
            }
            let rc = (lib.getinfo)(
                sys::API_VERSION,
                std::ptr::null(),
                std::ptr::null(),
                0,
                hints,
                &mut info,
            );
            (lib.freeinfo)(hints);
            rc
        };
        if rc != 0 || info.is_null() {
            let which =
                provider.map_or_else(|| "any provider".to_owned(), |p| format!("provider {p:?}"));
            return Err(err!(
                NotSupported,
                "libfabric has no reliable-datagram endpoint with RMA and messages on {which}: {} \
                 (`fi_info -t FI_EP_RDM` lists what is available)",
                lib.error_text(rc as isize)
            ));
        }
        let mut dom = Domain {
            lib,
            info,
            fabric: null_mut(),
            domain: null_mut(),
        };
        // SAFETY: `info` is the first entry libfabric returned; every pointer dereferenced is
        // libfabric's; objects opened are stored in `dom` at once, so `Drop` closes them.
        let traits = unsafe {
            let info = &*dom.info;
            let d = &*info.domain_attr;
            let f = &*info.fabric_attr;
            let traits = Traits {
                provider: cstr(f.prov_name),
                fabric: cstr(f.name),
                domain: cstr(d.name),
                mr_local: d.mr_mode & sys::FI_MR_LOCAL != 0,
                virt_addr: d.mr_mode & sys::FI_MR_VIRT_ADDR != 0,
                prov_key: d.mr_mode & sys::FI_MR_PROV_KEY != 0,
                max_msg_size: (*info.ep_attr).max_msg_size,
                max_iov: {
                    let tx = &*info.tx_attr;
                    tx.iov_limit.min(tx.rma_iov_limit).clamp(1, MAX_IOV)
                },
                tx_size: (*info.tx_attr).size,
                addr_str: info.addr_format == sys::FI_ADDR_STR,
            };
            check(
                lib,
                (lib.fabric)(info.fabric_attr, &mut dom.fabric, null_mut()),
                "fi_fabric",
            )?;
            let fops = &*(*dom.fabric).ops;
            check(
                lib,
                (fops.domain)(dom.fabric, dom.info, &mut dom.domain, null_mut()),
                "fi_domain",
            )?;
            traits
        };
        Endpoint::open_on(std::sync::Arc::new(dom), traits, progress)
    }

    /// Another endpoint (own completion queue and address vector) on this one's domain, so
    /// registrations made through either serve both.
    pub fn sibling(&self, progress: Progress) -> Result<Endpoint> {
        Endpoint::open_on(self.dom.clone(), self.traits.clone(), progress)
    }

    fn open_on(
        dom: std::sync::Arc<Domain>,
        traits: Traits,
        progress: Progress,
    ) -> Result<Endpoint> {
        let mut ep = Endpoint {
            dom,
            cq: null_mut(),
            av: null_mut(),
            ep: null_mut(),
            blocking_cq: false,
            traits,
            name: Vec::new(),
        };
        // SAFETY: the domain is open; the objects opened below are stored in `ep` right away
        // so that `Drop` closes whatever was opened on failure.
        unsafe { ep.open_objects(progress)? };
        Ok(ep)
    }

    unsafe fn open_objects(&mut self, progress: Progress) -> Result<()> {
        let lib = self.dom.lib;
        // SAFETY: every pointer dereferenced was just returned by libfabric with a success
        // code; ops tables are the provider's.
        unsafe {
            let dops = &*(*self.dom.domain).ops;
            // A CQ with a wait object lets the progress thread sleep in fi_cq_sread; providers
            // without one get a polled CQ (the thread backs off when idle).
            let polled = match progress {
                Progress::Polled => true,
                Progress::Blocking => false,
                Progress::Auto => self.traits.provider.split(';').next() == Some("shm"),
            };
            let waits: &[i32] = if polled {
                &[sys::FI_WAIT_NONE]
            } else {
                &[sys::FI_WAIT_UNSPEC, sys::FI_WAIT_NONE]
            };
            for &wait_obj in waits {
                let mut attr = sys::fi_cq_attr {
                    size: 0,
                    flags: 0,
                    format: sys::FI_CQ_FORMAT_DATA,
                    wait_obj,
                    signaling_vector: 0,
                    wait_cond: 0,
                    wait_set: null_mut(),
                };
                if (dops.cq_open)(self.dom.domain, &mut attr, &mut self.cq, null_mut()) == 0 {
                    self.blocking_cq = wait_obj != sys::FI_WAIT_NONE;
                    break;
                }
                self.cq = null_mut();
            }
            if self.cq.is_null() {
                return Err(err!(
                    Backend,
                    "fi_cq_open failed on {}",
                    self.traits.provider
                ));
            }
            let mut av_attr = sys::fi_av_attr {
                type_: sys::FI_AV_TABLE,
                rx_ctx_bits: 0,
                count: 0,
                ep_per_node: 0,
                name: std::ptr::null(),
                map_addr: null_mut(),
                flags: 0,
            };
            check(
                lib,
                (dops.av_open)(self.dom.domain, &mut av_attr, &mut self.av, null_mut()),
                "fi_av_open",
            )?;
            check(
                lib,
                (dops.endpoint)(self.dom.domain, self.dom.info, &mut self.ep, null_mut()),
                "fi_endpoint",
            )?;
            let ep_fid = &mut (*self.ep).fid;
            let eops = &*ep_fid.ops;
            check(
                lib,
                (eops.bind)(ep_fid, &mut (*self.av).fid, 0),
                "fi_ep_bind(av)",
            )?;
            check(
                lib,
                (eops.bind)(ep_fid, &mut (*self.cq).fid, sys::FI_TRANSMIT | sys::FI_RECV),
                "fi_ep_bind(cq)",
            )?;
            check(
                lib,
                (eops.control)(ep_fid, sys::FI_ENABLE, null_mut()),
                "fi_enable",
            )?;
            let mut name = vec![0u8; 256];
            let mut len = name.len();
            let cm = &*(*self.ep).cm;
            check(
                lib,
                (cm.getname)(ep_fid, name.as_mut_ptr().cast(), &mut len),
                "fi_getname",
            )?;
            name.truncate(len);
            self.name = name;
        }
        Ok(())
    }

    /// Library error text.
    pub fn error_text(&self, code: isize) -> String {
        self.dom.lib.error_text(code)
    }

    /// Registers `[addr, addr+len)` for local use and remote RMA.
    ///
    /// # Safety
    /// The range must stay mapped until the returned registration is closed.
    pub unsafe fn mr_reg(&self, addr: u64, len: u64, requested_key: u64) -> Result<MemReg> {
        let access = sys::FI_READ
            | sys::FI_WRITE
            | sys::FI_REMOTE_READ
            | sys::FI_REMOTE_WRITE
            | sys::FI_SEND
            | sys::FI_RECV;
        let mut mr: *mut sys::fid_mr = null_mut();
        // SAFETY: the domain is open; the caller keeps the range mapped.
        let rc = unsafe {
            let mops = &*(*self.dom.domain).mr;
            (mops.reg)(
                &mut (*self.dom.domain).fid,
                addr as *const c_void,
                len as usize,
                access,
                0,
                requested_key,
                0,
                &mut mr,
                null_mut(),
            )
        };
        if rc != 0 || mr.is_null() {
            return Err(err!(
                Backend,
                "fi_mr_reg of {len} bytes at {addr:#x}: {}",
                self.error_text(rc as isize)
            ));
        }
        // SAFETY: `mr` was just returned with success.
        let (key, desc) = unsafe { ((*mr).key, (*mr).mem_desc) };
        Ok(MemReg {
            mr,
            key,
            desc: desc as usize,
        })
    }

    /// Inserts a peer's endpoint address; returns its handle.
    pub fn av_insert(&self, addr: &[u8]) -> Result<fi_addr_t> {
        if addr.is_empty() || addr.len() > MAX_ADDR_LEN {
            return Err(err!(
                InvalidParam,
                "a libfabric address of {} bytes (1 to {MAX_ADDR_LEN})",
                addr.len()
            ));
        }
        let mut padded = [0u8; MAX_ADDR_LEN];
        padded[..addr.len()].copy_from_slice(addr);
        let mut out: fi_addr_t = u64::MAX;
        // SAFETY: the AV is open; the provider reads one address of its format, at most
        // MAX_ADDR_LEN bytes, from the zero-padded copy, which outlives the call.
        let rc = unsafe {
            let aops = &*(*self.av).ops;
            (aops.insert)(self.av, padded.as_ptr().cast(), 1, &mut out, 0, null_mut())
        };
        if rc != 1 {
            return Err(err!(
                InvalidParam,
                "the peer's libfabric address was not accepted: {}",
                self.error_text(if rc < 0 { rc as isize } else { 22 })
            ));
        }
        Ok(out)
    }

    /// Removes a peer's address (closes its connection on connection-based providers).
    pub fn av_remove(&self, addr: fi_addr_t) {
        let mut a = addr;
        // SAFETY: the AV is open; removing an unknown handle only returns an error.
        unsafe {
            let aops = &*(*self.av).ops;
            let _ = (aops.remove)(self.av, &mut a, 1, 0);
        }
    }

    /// Posts one RMA over up to [`MAX_IOV`] pieces (local and remote ranges of equal
    /// lengths, all in one local registration with descriptor `desc` and one remote key);
    /// returns the provider's code (0, -FI_EAGAIN, or an error).
    ///
    /// # Safety
    /// Every local range must stay valid (and `ctx` alive) until the completion for `ctx` is
    /// read; `pieces` holds 1 to `Traits::max_iov` entries.
    pub unsafe fn rma(
        &self,
        write: bool,
        pieces: &[Piece],
        desc: usize,
        peer: fi_addr_t,
        key: u64,
        ctx: *mut c_void,
    ) -> isize {
        let n = pieces.len().min(MAX_IOV);
        let mut iov = [sys::iovec {
            iov_base: null_mut(),
            iov_len: 0,
        }; MAX_IOV];
        let mut rma_iov = [sys::fi_rma_iov {
            addr: 0,
            len: 0,
            key,
        }; MAX_IOV];
        for (i, p) in pieces[..n].iter().enumerate() {
            iov[i] = sys::iovec {
                iov_base: p.local as *mut c_void,
                iov_len: p.len,
            };
            rma_iov[i] = sys::fi_rma_iov {
                addr: p.remote,
                len: p.len,
                key,
            };
        }
        let mut d = [desc as *mut c_void; MAX_IOV];
        let msg = sys::fi_msg_rma {
            msg_iov: iov.as_ptr(),
            desc: d.as_mut_ptr(),
            iov_count: n,
            addr: peer,
            rma_iov: rma_iov.as_ptr(),
            rma_iov_count: n,
            context: ctx,
            data: 0,
        };
        // SAFETY: the endpoint is enabled; the caller keeps buffers and context alive; the
        // provider copies the descriptor arrays before returning.
        unsafe {
            let rops = &*(*self.ep).rma;
            if write {
                // Delivery complete: the write's completion means the data is visible at the
                // target, so a notification sent afterwards never overtakes it.
                (rops.writemsg)(
                    self.ep,
                    &msg,
                    sys::FI_COMPLETION | sys::FI_DELIVERY_COMPLETE,
                )
            } else {
                (rops.readmsg)(self.ep, &msg, sys::FI_COMPLETION)
            }
        }
    }

    /// Posts a message send.
    ///
    /// # Safety
    /// `buf` and `ctx` must stay alive until the send's completion is read.
    pub unsafe fn send(&self, buf: &[u8], desc: usize, peer: fi_addr_t, ctx: *mut c_void) -> isize {
        // SAFETY: as documented.
        unsafe {
            let mops = &*(*self.ep).msg;
            (mops.send)(
                self.ep,
                buf.as_ptr().cast(),
                buf.len(),
                desc as *mut c_void,
                peer,
                ctx,
            )
        }
    }

    /// Posts a receive buffer.
    ///
    /// # Safety
    /// `buf` and `ctx` must stay alive until the receive's completion is read (or the
    /// endpoint is closed).
    pub unsafe fn recv(&self, buf: *mut u8, len: usize, desc: usize, ctx: *mut c_void) -> isize {
        // SAFETY: as documented.
        unsafe {
            let mops = &*(*self.ep).msg;
            (mops.recv)(self.ep, buf.cast(), len, desc as *mut c_void, u64::MAX, ctx)
        }
    }

    /// Reads up to `out.len()` completions, waiting up to `timeout_ms` when the CQ has a
    /// wait object. Returns the count, 0 when none came, or `Err(entry)` for an error
    /// completion.
    pub fn read_cq(
        &self,
        out: &mut [sys::fi_cq_data_entry],
        timeout_ms: i32,
    ) -> std::result::Result<usize, Box<sys::fi_cq_err_entry>> {
        self.read_cq_inner(out, self.blocking_cq.then_some(timeout_ms))
    }

    /// Reads completions without waiting (this also drives the provider's progress), as a
    /// poster does while the provider answers `-FI_EAGAIN`.
    pub fn poll_cq(
        &self,
        out: &mut [sys::fi_cq_data_entry],
    ) -> std::result::Result<usize, Box<sys::fi_cq_err_entry>> {
        self.read_cq_inner(out, None)
    }

    fn read_cq_inner(
        &self,
        out: &mut [sys::fi_cq_data_entry],
        wait_ms: Option<i32>,
    ) -> std::result::Result<usize, Box<sys::fi_cq_err_entry>> {
        // SAFETY: the CQ is open (FI_CQ_FORMAT_DATA entries); `out` is writable. The domain is
        // FI_THREAD_SAFE, so a poster may read while the progress thread waits.
        let n = unsafe {
            let cops = &*(*self.cq).ops;
            if let Some(timeout_ms) = wait_ms {
                (cops.sread)(
                    self.cq,
                    out.as_mut_ptr().cast(),
                    out.len(),
                    std::ptr::null(),
                    timeout_ms,
                )
            } else {
                (cops.read)(self.cq, out.as_mut_ptr().cast(), out.len())
            }
        };
        if n > 0 {
            return Ok(n as usize);
        }
        if n == -sys::FI_EAVAIL {
            // SAFETY: an all-zero entry is valid input (err_data_size 0: no provider data).
            let mut e: Box<sys::fi_cq_err_entry> = Box::new(unsafe { std::mem::zeroed() });
            // SAFETY: the CQ is open; `e` is writable.
            let rc = unsafe { ((*(*self.cq).ops).readerr)(self.cq, &mut *e, 0) };
            if rc > 0 {
                return Err(e);
            }
        }
        Ok(0)
    }

    /// Wakes a thread blocked in `read_cq`.
    pub fn signal_cq(&self) {
        if self.blocking_cq {
            // SAFETY: the CQ is open; providers without signal support return an error.
            unsafe {
                let _ = ((*(*self.cq).ops).signal)(self.cq);
            }
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        // SAFETY: each object was opened by `open_on` and is closed once, endpoint first; the
        // domain outlives them (this endpoint's `Arc` is dropped after).
        unsafe {
            for f in [self.ep.cast::<sys::fid>(), self.av.cast(), self.cq.cast()] {
                if !f.is_null() {
                    let _ = ((*(*f).ops).close)(f);
                }
            }
        }
    }
}

/// One memory registration; closed with [`MemReg::close`].
pub struct MemReg {
    mr: *mut sys::fid_mr,
    /// The key peers present.
    pub key: u64,
    /// The local descriptor (as an integer, to keep this type `Send`).
    pub desc: usize,
}

// SAFETY: the registration is a provider object used under FI_THREAD_SAFE.
unsafe impl Send for MemReg {}
// SAFETY: as above.
unsafe impl Sync for MemReg {}

impl MemReg {
    /// Closes the registration: afterwards the provider refuses its key.
    pub fn close(self) {
        // SAFETY: `mr` is open and closed only here (self is consumed).
        unsafe {
            let f = self.mr.cast::<sys::fid>();
            let _ = ((*(*f).ops).close)(f);
        }
    }
}
