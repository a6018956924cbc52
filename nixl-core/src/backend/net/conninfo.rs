//! The network backend's connection info: what goes in the metadata under "UCX".

use std::net::IpAddr;

use super::identity::ProcessIdentity;
use crate::codec::{Reader, Writer};
use crate::status::{Result, err};

const VERSION: u8 = 1;
const MAX_ADDRS: usize = 64;

/// How to reach one network backend instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    /// The process it runs in.
    pub process: ProcessIdentity,
    /// Random id of the backend instance (a restarted agent has a new one).
    pub instance: u64,
    /// Port of its control listener.
    pub port: u16,
    /// Descriptor number of its shared registration table (-1: none), for same-host peers.
    pub regtab_fd: i32,
    /// Addresses for peers on other hosts.
    pub addrs: Vec<IpAddr>,
}

impl ConnInfo {
    /// Serializes.
    pub fn encode(&self) -> Vec<u8> {
        let p = &self.process;
        let mut w = Writer::with_capacity(96);
        w.u8(VERSION)
            .raw(&p.boot_id)
            .u64(p.pid_ns)
            .u64(p.net_ns)
            .u32(p.pid)
            .u64(p.start_time)
            .u64(p.process_token)
            .u64(self.instance)
            .u16(self.port)
            .u32(self.regtab_fd as u32)
            .u8(self.addrs.len().min(MAX_ADDRS) as u8);
        for addr in self.addrs.iter().take(MAX_ADDRS) {
            match addr {
                IpAddr::V4(v4) => w.u8(4).raw(&v4.octets()),
                IpAddr::V6(v6) => w.u8(6).raw(&v6.octets()),
            };
        }
        w.finish()
    }

    /// Parses, rejecting anything malformed.
    pub fn decode(bytes: &[u8]) -> Result<ConnInfo> {
        let mut r = Reader::new(bytes, "connection info");
        let version = r.u8()?;
        if version != VERSION {
            return Err(err!(
                NotSupported,
                "connection info version {version} (this build reads {VERSION})"
            ));
        }
        let boot_id = r.take(16)?.try_into().expect("16 bytes");
        let process = ProcessIdentity {
            boot_id,
            pid_ns: r.u64()?,
            net_ns: r.u64()?,
            pid: r.u32()?,
            start_time: r.u64()?,
            process_token: r.u64()?,
        };
        let instance = r.u64()?;
        let port = r.u16()?;
        let regtab_fd = r.u32()? as i32;
        let n = r.u8()? as usize;
        let mut addrs = Vec::with_capacity(n);
        for _ in 0..n {
            addrs.push(match r.u8()? {
                4 => IpAddr::from(<[u8; 4]>::try_from(r.take(4)?).expect("4 bytes")),
                6 => IpAddr::from(<[u8; 16]>::try_from(r.take(16)?).expect("16 bytes")),
                k => {
                    return Err(err!(
                        InvalidParam,
                        "connection info: unknown address kind {k}"
                    ));
                }
            });
        }
        r.finish()?;
        Ok(ConnInfo {
            process,
            instance,
            port,
            regtab_fd,
            addrs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_truncation() {
        let info = ConnInfo {
            process: super::super::identity::local(),
            instance: 9,
            port: 4242,
            regtab_fd: 5,
            addrs: vec!["10.1.2.3".parse().unwrap(), "fd00::1".parse().unwrap()],
        };
        let bytes = info.encode();
        assert_eq!(ConnInfo::decode(&bytes).unwrap(), info);
        for cut in 0..bytes.len() {
            assert!(ConnInfo::decode(&bytes[..cut]).is_err());
        }
    }
}
