//! Gathering a request's descriptor pairs from two prepped lists by index
//! (`make_xfer_req`'s loop), merging consecutive pairs that both sides continue.
//!
//! The loop is kept lean because it runs once per pair, often tens of thousands of times:
//! whether a pair merges is decided without a branch (with the scattered block indices of a
//! KV-cache transfer it is a coin toss the CPU would mispredict about every other pair), the
//! open pair stays in registers, registration keys are constants when each list lies in one
//! registration, and errors are built out of line. A list of equal blocks at a fixed stride in
//! one registration (how KV caches are laid out) is not even read: its entries are computed
//! ([`Regular`]), so the loop reads only the indices, which matters when a transfer has just
//! pushed the lists out of the CPU caches.

use std::mem::MaybeUninit;

use super::keys::KeyRuns;
use super::pool::DescPool;
use crate::backend::ResolvedDesc;
use crate::desc::Desc;
use crate::status::{NixlError, Result, err};

/// One side of a request: a prepped list, its keys and the indices into it.
pub(super) struct Side<'a> {
    pub(super) descs: &'a [Desc],
    pub(super) keys: &'a KeyRuns,
    /// The list's shape, if it is regular.
    pub(super) regular: Option<Regular>,
    pub(super) idx: &'a [i32],
    pub(super) which: &'static str,
}

/// A list whose entry `i` is `len` bytes at `base + i * stride` on one device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Regular {
    base: u64,
    stride: u64,
    len: u64,
    dev_id: u64,
    count: usize,
}

impl Regular {
    /// The shape of `descs`, if they are regular (and not empty).
    pub(super) fn detect(descs: &[Desc]) -> Option<Regular> {
        let first = descs.first()?;
        let stride = descs.get(1).map_or(0, |d| d.addr.wrapping_sub(first.addr));
        let shape = Regular {
            base: first.addr,
            stride,
            len: first.len,
            dev_id: first.dev_id,
            count: descs.len(),
        };
        // One pass, `&` rather than `&&`: no early exit, so it vectorizes.
        let same = descs.iter().enumerate().fold(true, |ok, (i, d)| {
            ok & (d.addr == shape.base.wrapping_add((i as u64).wrapping_mul(stride)))
                & (d.len == shape.len)
                & (d.dev_id == shape.dev_id)
        });
        same.then_some(shape)
    }
}

/// Entry `i` of a side with its registration key, if `i` is in range.
trait Lookup {
    fn get(&self, i: i32) -> Option<ResolvedDesc>;
    fn prefetch(&self, _i: i32) {}
}

/// A regular list in one registration: entries computed, nothing read.
struct Computed(Regular, u64);

impl Lookup for Computed {
    #[inline(always)]
    fn get(&self, i: i32) -> Option<ResolvedDesc> {
        let (r, key) = (&self.0, self.1);
        let i = usize::try_from(i).ok().filter(|&i| i < r.count)?;
        Some(ResolvedDesc {
            addr: r.base.wrapping_add((i as u64).wrapping_mul(r.stride)),
            len: r.len,
            dev_id: r.dev_id,
            key,
        })
    }
}

/// A list in memory, with its keys looked up by `K` (from `.2` if there is one per entry).
struct Listed<'a, K>(&'a [Desc], K, Option<&'a [u64]>);

impl<K: Fn(usize) -> u64> Lookup for Listed<'_, K> {
    #[inline(always)]
    fn get(&self, i: i32) -> Option<ResolvedDesc> {
        let i = usize::try_from(i).ok()?;
        let d = self.0.get(i)?;
        Some(ResolvedDesc {
            addr: d.addr,
            len: d.len,
            dev_id: d.dev_id,
            key: (self.1)(i),
        })
    }

    #[inline(always)]
    fn prefetch(&self, i: i32) {
        prefetch(self.0, i);
        if let Some(dense) = self.2 {
            prefetch(dense, i);
        }
    }
}

/// How many index pairs ahead the loop prefetches list entries.
const PREFETCH_AHEAD: usize = 16;

/// The request's local and remote descriptors (equal in number), in vectors from `pool`.
/// The index lists must have the same, non-zero length.
pub(super) fn gather(
    local: &Side<'_>,
    remote: &Side<'_>,
    merge: bool,
    pool: &DescPool,
) -> Result<(Vec<ResolvedDesc>, Vec<ResolvedDesc>)> {
    let n = local.idx.len();
    let (mut lv, mut rv) = (pool.take(n), pool.take(n));
    lv.clear();
    rv.clear();
    lv.reserve(n);
    rv.reserve(n);
    let (lout, rout) = (lv.spare_capacity_mut(), rv.spare_capacity_mut());
    let (lk, rk) = (local.keys.single(), remote.keys.single());
    let written = match (local.regular.zip(lk), remote.regular.zip(rk)) {
        (Some((lr, lk)), Some((rr, rk))) => {
            let (l, r) = (Computed(lr, lk), Computed(rr, rk));
            fill(local, remote, &l, &r, merge, lout, rout)?
        }
        _ => match (lk, rk) {
            (Some(lk), Some(rk)) => {
                let (l, r) = (
                    Listed(local.descs, |_| lk, None),
                    Listed(remote.descs, |_| rk, None),
                );
                fill(local, remote, &l, &r, merge, lout, rout)?
            }
            _ => {
                let l = Listed(local.descs, |i| local.keys.key(i), local.keys.dense());
                let r = Listed(remote.descs, |i| remote.keys.key(i), remote.keys.dense());
                fill(local, remote, &l, &r, merge, lout, rout)?
            }
        },
    };
    // SAFETY: `fill` wrote the first `written` entries of both spare capacities.
    unsafe {
        lv.set_len(written);
        rv.set_len(written);
    }
    Ok((lv, rv))
}

/// Writes the pairs into `lout` / `rout` (room for one per index) and returns how many.
#[inline(always)]
fn fill(
    local: &Side<'_>,
    remote: &Side<'_>,
    lget: &impl Lookup,
    rget: &impl Lookup,
    merge: bool,
    lout: &mut [MaybeUninit<ResolvedDesc>],
    rout: &mut [MaybeUninit<ResolvedDesc>],
) -> Result<usize> {
    let (lidx, ridx) = (local.idx, &remote.idx[..local.idx.len()]);
    let (lout, rout) = (&mut lout[..lidx.len()], &mut rout[..lidx.len()]);
    // The open (last written) pair; merging into it is refused while nothing is written.
    let (mut cl, mut cr) = (ResolvedDesc::default(), ResolvedDesc::default());
    let mut n = 0usize;
    for i in 0..lidx.len() {
        // Indices may be scattered over lists of millions of entries: ask for the entries a
        // few pairs ahead now, so their cache misses overlap instead of queueing.
        if let (Some(&a), Some(&b)) = (lidx.get(i + PREFETCH_AHEAD), ridx.get(i + PREFETCH_AHEAD)) {
            lget.prefetch(a);
            rget.prefetch(b);
        }
        let (li, ri) = (lidx[i], ridx[i]);
        let (Some(l), Some(r)) = (lget.get(li), rget.get(ri)) else {
            return Err(out_of_range(local, remote, li, ri));
        };
        if l.len != r.len {
            return Err(length_mismatch(&l, &r));
        }
        let merged = merge & (n > 0) & extends(&cl, &l) & extends(&cr, &r);
        // All ones when merging: the open pair grows by this one; otherwise this one opens.
        let mask = 0u64.wrapping_sub(u64::from(merged));
        cl = ResolvedDesc {
            addr: (cl.addr & mask) | (l.addr & !mask),
            len: l.len.wrapping_add(cl.len & mask),
            ..l
        };
        cr = ResolvedDesc {
            addr: (cr.addr & mask) | (r.addr & !mask),
            len: r.len.wrapping_add(cr.len & mask),
            ..r
        };
        let slot = n - usize::from(merged);
        lout[slot].write(cl);
        rout[slot].write(cr);
        n = slot + 1;
    }
    Ok(n)
}

/// `descs[idx]`, if `idx` is in range.
#[inline(always)]
fn at(descs: &[Desc], idx: i32) -> Option<&Desc> {
    usize::try_from(idx).ok().and_then(|i| descs.get(i))
}

#[cold]
fn out_of_range(local: &Side<'_>, remote: &Side<'_>, li: i32, ri: i32) -> NixlError {
    let (side, idx) = if at(local.descs, li).is_none() {
        (local, li)
    } else {
        (remote, ri)
    };
    err!(
        InvalidParam,
        "{} index {idx} is out of range (list has {})",
        side.which,
        side.descs.len()
    )
}

#[cold]
fn length_mismatch(l: &ResolvedDesc, r: &ResolvedDesc) -> NixlError {
    err!(
        InvalidParam,
        "pair length mismatch: local {} bytes, remote {}",
        l.len,
        r.len
    )
}

/// True if `next` continues `prev` in the same region (and device).
#[inline(always)]
fn extends(prev: &ResolvedDesc, next: &ResolvedDesc) -> bool {
    // `&`, not `&&`: three comparisons, no branches.
    (prev.key == next.key)
        & (prev.dev_id == next.dev_id)
        & (prev.addr.checked_add(prev.len) == Some(next.addr))
}

/// Hints the CPU to load `slice[idx]` into cache; out-of-range indices are ignored (they are
/// reported when their turn comes).
#[inline(always)]
fn prefetch<T>(slice: &[T], idx: i32) {
    #[cfg(target_arch = "x86_64")]
    if let Some(entry) = usize::try_from(idx).ok().and_then(|i| slice.get(i)) {
        // SAFETY: a prefetch is only a hint and never faults; the pointer is in bounds anyway.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                (entry as *const T).cast::<i8>(),
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (slice, idx);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Region, RegionTable};
    use std::sync::Arc;

    /// Keys for `descs` from a table of (addr, len, key) regions.
    fn keys(regions: &[(u64, u64, u64)], descs: &[Desc]) -> KeyRuns {
        let mut t = RegionTable::new(false);
        t.insert_all(regions.iter().map(|&(addr, len, key)| Region {
            desc: Desc::new(addr, len, 0),
            key,
            meta: Arc::from(&b""[..]),
            public: Arc::from(&b""[..]),
        }));
        KeyRuns::resolve(&t, descs).unwrap()
    }

    fn rd(addr: u64, len: u64, key: u64) -> ResolvedDesc {
        ResolvedDesc {
            addr,
            len,
            dev_id: 0,
            key,
        }
    }

    fn run(
        l: &[Desc],
        lk: &KeyRuns,
        li: &[i32],
        r: &[Desc],
        rk: &KeyRuns,
        ri: &[i32],
        merge: bool,
    ) -> Result<(Vec<ResolvedDesc>, Vec<ResolvedDesc>)> {
        let side = |descs, keys, idx, which| Side {
            descs,
            keys,
            regular: Regular::detect(descs),
            idx,
            which,
        };
        gather(
            &side(l, lk, li, "local"),
            &side(r, rk, ri, "remote"),
            merge,
            &DescPool::default(),
        )
    }

    #[test]
    fn pairs_merge_only_when_both_sides_continue_in_one_registration() {
        // Local blocks of 10 bytes: 0..40 in key 1, 40..60 in key 9.
        let l: Vec<Desc> = (0..6).map(|i| Desc::new(i * 10, 10, 0)).collect();
        let lk = keys(&[(0, 40, 1), (40, 20, 9)], &l);
        let r: Vec<Desc> = (0..6).map(|i| Desc::new(100 + i * 10, 10, 0)).collect();
        let rk = keys(&[(100, 60, 2)], &r);
        // 0-1 continue on both sides; 2 jumps remotely; 3 then 4 cross into key 9 locally;
        // 4-5 continue.
        let (lo, ro) = run(
            &l,
            &lk,
            &[0, 1, 2, 3, 4, 5],
            &r,
            &rk,
            &[0, 1, 4, 5, 2, 3],
            true,
        )
        .unwrap();
        assert_eq!(lo, [rd(0, 20, 1), rd(20, 20, 1), rd(40, 20, 9)]);
        assert_eq!(ro, [rd(100, 20, 2), rd(140, 20, 2), rd(120, 20, 2)]);
        let (lo, _) = run(&l, &lk, &[0, 1], &r, &rk, &[0, 1], false).unwrap();
        assert_eq!(lo.len(), 2, "no merging when asked not to");
    }

    #[test]
    fn bad_indices_and_lengths_are_errors() {
        let l = [Desc::new(0, 10, 0), Desc::new(10, 5, 0)];
        let lk = keys(&[(0, 100, 1)], &l);
        let e = run(&l, &lk, &[0, 2], &l, &lk, &[0, 0], true).unwrap_err();
        assert!(e.message().contains("local index 2"), "{e}");
        let e = run(&l, &lk, &[0], &l, &lk, &[-1], true).unwrap_err();
        assert!(e.message().contains("remote index -1"), "{e}");
        let e = run(&l, &lk, &[0], &l, &lk, &[1], true).unwrap_err();
        assert!(e.message().contains("length mismatch"), "{e}");
    }

    #[test]
    fn regular_lists_are_computed_as_they_would_be_read() {
        let l: Vec<Desc> = (0..64).map(|i| Desc::new(4096 + i * 64, 64, 0)).collect();
        let r: Vec<Desc> = (0..64)
            .map(|i| Desc::new((1 << 20) + i * 128, 64, 0))
            .collect();
        let (lk, rk) = (
            keys(&[(4096, 4096, 1)], &l),
            keys(&[(1 << 20, 8192, 2)], &r),
        );
        assert!(Regular::detect(&l).is_some() && Regular::detect(&r).is_some());
        let mut irregular = l.clone();
        irregular[40].addr += 1;
        assert_eq!(Regular::detect(&irregular), None);
        let li: Vec<i32> = (0..64).rev().step_by(3).chain(0..10).collect();
        let ri: Vec<i32> = (0..li.len() as i32).map(|i| (i * 7) % 64).collect();
        let computed = run(&l, &lk, &li, &r, &rk, &ri, true).unwrap();
        let side = |descs, keys, idx, which| Side {
            descs,
            keys,
            regular: None,
            idx,
            which,
        };
        let read = gather(
            &side(&l, &lk, &li, "local"),
            &side(&r, &rk, &ri, "remote"),
            true,
            &DescPool::default(),
        )
        .unwrap();
        assert_eq!(computed, read);
        let e = run(&l, &lk, &[64], &r, &rk, &[0], true).unwrap_err();
        assert!(e.message().contains("local index 64"), "{e}");
    }
}
