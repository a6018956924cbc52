//! Who this process is, so peers can tell "same process", "same host" and "elsewhere" apart
//! without trusting host names.

use parking_lot::Mutex;
use std::net::IpAddr;

/// Facts about this process that a peer compares with its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessIdentity {
    /// The kernel's boot id: equal only on the same running kernel (same host, same boot).
    pub boot_id: [u8; 16],
    /// Inode of the pid namespace: cross-memory attach needs the same one to use our pid.
    pub pid_ns: u64,
    /// Inode of the network namespace: loopback reaches us only from the same one.
    pub net_ns: u64,
    /// Process id.
    pub pid: u32,
    /// Process start time (clock ticks since boot), so a reused pid is not mistaken for us.
    pub start_time: u64,
    /// Random per-process token: equal only inside this process.
    pub process_token: u64,
}

/// This process's identity. Computed once per process: a child forked after agents existed
/// gets its own (new pid, new token), so it is never mistaken for its parent.
pub fn local() -> ProcessIdentity {
    static ID: Mutex<Option<ProcessIdentity>> = Mutex::new(None);
    let pid = std::process::id();
    let mut cached = ID.lock();
    match &*cached {
        Some(id) if id.pid == pid => id.clone(),
        _ => {
            let id = ProcessIdentity {
                boot_id: boot_id(),
                pid_ns: ns_inode("pid"),
                net_ns: ns_inode("net"),
                pid,
                start_time: start_time(pid).unwrap_or(0),
                process_token: crate::util::random_u64(),
            };
            *cached = Some(id.clone());
            id
        }
    }
}

fn boot_id() -> [u8; 16] {
    let text = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let hex: Vec<u8> = text.trim().bytes().filter(u8::is_ascii_hexdigit).collect();
    let mut id = [0u8; 16];
    for (i, pair) in hex.chunks(2).take(16).enumerate() {
        let s = std::str::from_utf8(pair).unwrap_or("0");
        id[i] = u8::from_str_radix(s, 16).unwrap_or(0);
    }
    id
}

fn ns_inode(kind: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/self/ns/{kind}")).map_or(0, |m| m.ino())
}

/// Field 22 of `/proc/<pid>/stat`: the process start time in clock ticks since boot.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields after it follow the last ')'.
    let after = &stat[stat.rfind(')')? + 2..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Addresses peers on other hosts may use to reach us: `NIXL_RS_ADVERTISE_ADDRS`
/// (comma-separated) if set, else every non-loopback address of an interface that is up.
pub fn advertised_addrs() -> Vec<IpAddr> {
    if let Ok(list) = std::env::var("NIXL_RS_ADVERTISE_ADDRS") {
        return list
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect();
    }
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, valid until freeifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        let up = ifa.ifa_flags & libc::IFF_UP as u32 != 0;
        if !up || ifa.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: ifa_addr is non-null and points to a sockaddr of the family it declares.
        let family = unsafe { (*ifa.ifa_addr).sa_family } as i32;
        let addr = match family {
            libc::AF_INET => {
                // SAFETY: AF_INET addresses are sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                IpAddr::from(u32::from_be(sin.sin_addr.s_addr).to_be_bytes())
            }
            libc::AF_INET6 => {
                // SAFETY: AF_INET6 addresses are sockaddr_in6.
                let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
                let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                if ip.segments()[0] & 0xffc0 == 0xfe80 {
                    continue; // link-local needs a scope id; skip it
                }
                IpAddr::V6(ip)
            }
            _ => continue,
        };
        if !addr.is_loopback() && !out.contains(&addr) {
            out.push(addr);
        }
    }
    // SAFETY: `head` came from getifaddrs and is freed exactly once.
    unsafe { libc::freeifaddrs(head) };
    out
}

/// Lets any process of ours attach to this one with cross-memory attach under Yama
/// `ptrace_scope = 1` (peers still need the same uid, as the kernel requires).
///
/// Trade-off: Yama then lets *any* process of the same uid ptrace this one, not only its
/// peers (the kernel can name a single ptracer only, and peers come and go). It is done only
/// where it changes something: Yama in mode 1 (in mode 0 same-uid attach is allowed anyway,
/// in modes 2 and 3 this cannot help), and never when the backend runs with `transport=tcp`
/// (or `NIXL_RS_TRANSPORT=tcp`), which turns cross-memory attach off for deployments that
/// want Yama's restriction kept.
pub fn allow_peer_attach() {
    let scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope").unwrap_or_default();
    if scope.trim() != "1" {
        return;
    }
    // SAFETY: PR_SET_PTRACER with PR_SET_PTRACER_ANY only changes this process's Yama policy.
    let rc = unsafe { libc::prctl(libc::PR_SET_PTRACER, libc::PR_SET_PTRACER_ANY, 0, 0, 0) };
    if rc != 0 {
        log::debug!(
            "prctl(PR_SET_PTRACER) failed: {}",
            std::io::Error::last_os_error()
        );
    }
}
