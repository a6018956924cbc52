//! The target process: owns the remote buffer, fills and checks it on request,
//! counts notifications.

use crate::args::Args;
use crate::error::{BenchError, Result};
use crate::proto::{hex, serve, unhex};
use crate::session::Session;
use nixl_benches::pattern;
use nixl_capi_client::NotifMap;

fn nums(parts: &[&str]) -> Result<Vec<u64>> {
    Ok(parts
        .iter()
        .map(|p| p.parse::<u64>())
        .collect::<std::result::Result<_, _>>()?)
}

/// Runs the target role until `QUIT`.
pub fn run(args: &Args) -> Result<()> {
    let name = format!("nixlbench-target-{}", std::process::id());
    let mut sess = Session::open(args, &name)?;
    println!(
        "READY {} {} {}",
        name,
        sess.buf.addr(),
        hex(&sess.agent.local_md()?)
    );
    let mut notifs = NotifMap::new(&sess.api)?;
    let mut received = 0usize;
    serve(|line| {
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.first().copied() {
            Some("LOAD") => {
                let md = unhex(
                    parts
                        .get(1)
                        .ok_or_else(|| BenchError::peer("LOAD needs metadata"))?,
                )?;
                sess.agent.load_remote_md(&md)?;
                Ok(None)
            }
            Some("FILL") | Some("CHECK") => {
                let v = nums(&parts[1..])?;
                let [block, n, seed] = v[..] else {
                    return Err(BenchError::peer("FILL/CHECK block n seed"));
                };
                let (block, n) = (block as usize, n as usize);
                let buf = sess.buf.as_mut_slice();
                for slot in 0..n {
                    let b = &mut buf[slot * block..(slot + 1) * block];
                    if parts[0] == "FILL" {
                        pattern::fill(b, seed, slot);
                    } else if !pattern::check(b, seed, slot) {
                        return Err(BenchError::WrongData { slot, n, block });
                    }
                }
                Ok(None)
            }
            Some("NOTIFS") => {
                sess.agent.get_notifs(&mut notifs, None)?;
                received += notifs
                    .entries()?
                    .iter()
                    .map(|(_, m)| m.len())
                    .sum::<usize>();
                notifs.clear()?;
                Ok(Some(format!("COUNT {received}")))
            }
            _ => Err(BenchError::peer(format!("unknown command {line:?}"))),
        }
    });
    Ok(())
}
