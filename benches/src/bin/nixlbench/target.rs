//! The target process: owns the remote buffer, fills and checks it on request,
//! counts notifications.

use crate::args::Args;
use crate::proto::{hex, serve, unhex};
use crate::session::{Session, s};
use nixl_benches::pattern;
use nixl_capi_client::NotifMap;

fn nums(parts: &[&str]) -> Result<Vec<u64>, String> {
    parts.iter().map(|p| p.parse::<u64>().map_err(s)).collect()
}

/// Runs the target role until `QUIT`.
pub fn run(args: &Args) -> Result<(), String> {
    let name = format!("nixlbench-target-{}", std::process::id());
    let mut sess = Session::open(args, &name)?;
    println!(
        "READY {} {} {}",
        name,
        sess.buf.addr(),
        hex(&sess.agent.local_md().map_err(s)?)
    );
    let mut notifs = NotifMap::new(&sess.api).map_err(s)?;
    let mut received = 0usize;
    serve(|line| {
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.first().copied() {
            Some("LOAD") => {
                let md = unhex(parts.get(1).ok_or("LOAD needs metadata")?)?;
                sess.agent.load_remote_md(&md).map_err(s)?;
                Ok(None)
            }
            Some("FILL") | Some("CHECK") => {
                let v = nums(&parts[1..])?;
                let [block, n, seed] = v[..] else {
                    return Err("FILL/CHECK block n seed".into());
                };
                let (block, n) = (block as usize, n as usize);
                let buf = sess.buf.as_mut_slice();
                for slot in 0..n {
                    let b = &mut buf[slot * block..(slot + 1) * block];
                    if parts[0] == "FILL" {
                        pattern::fill(b, seed, slot);
                    } else if !pattern::check(b, seed, slot) {
                        return Err(format!("slot {slot} of {n} ({block} B) holds wrong data"));
                    }
                }
                Ok(None)
            }
            Some("NOTIFS") => {
                sess.agent.get_notifs(&mut notifs, None).map_err(s)?;
                received += notifs
                    .entries()
                    .map_err(s)?
                    .iter()
                    .map(|(_, m)| m.len())
                    .sum::<usize>();
                notifs.clear().map_err(s)?;
                Ok(Some(format!("COUNT {received}")))
            }
            _ => Err(format!("unknown command {line:?}")),
        }
    });
    Ok(())
}
