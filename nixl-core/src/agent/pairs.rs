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

/// A request's descriptors gathered from two prepped lists.
pub(super) struct Gathered {
    pub(super) local: Vec<ResolvedDesc>,
    pub(super) remote: Vec<ResolvedDesc>,
    /// Bytes moved by one post (counted in the loop: a second pass over megabytes of
    /// descriptors would cost a tenth of the loop again).
    pub(super) total_bytes: u64,
}

/// The request's local and remote descriptors (equal in number), in vectors from `pool`.
/// The index lists must have the same, non-zero length.
pub(super) fn gather(
    local: &Side<'_>,
    remote: &Side<'_>,
    merge: bool,
    pool: &DescPool,
) -> Result<Gathered> {
    let n = local.idx.len();
    let (mut lv, mut rv) = (pool.take(n), pool.take(n));
    lv.clear();
    rv.clear();
    lv.reserve(n);
    rv.reserve(n);
    let (lout, rout) = (lv.spare_capacity_mut(), rv.spare_capacity_mut());
    let (lk, rk) = (local.keys.single(), remote.keys.single());
    let (written, total_bytes) = match (local.regular.zip(lk), remote.regular.zip(rk)) {
        (Some((lr, lk)), Some((rr, rk))) => {
            match fill_regular((lr, lk), (rr, rk), local.idx, remote.idx, merge, lout, rout) {
                Some(done) => done,
                None => {
                    // A bad index or length: `fill` finds the first and says which.
                    let (l, r) = (Computed(lr, lk), Computed(rr, rk));
                    fill(local, remote, &l, &r, merge, lout, rout)?
                }
            }
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
    Ok(Gathered {
        local: lv,
        remote: rv,
        total_bytes,
    })
}

/// Writes the pairs into `lout` / `rout` (room for one per index); returns how many, and
/// the bytes they cover.
#[inline(always)]
fn fill(
    local: &Side<'_>,
    remote: &Side<'_>,
    lget: &impl Lookup,
    rget: &impl Lookup,
    merge: bool,
    lout: &mut [MaybeUninit<ResolvedDesc>],
    rout: &mut [MaybeUninit<ResolvedDesc>],
) -> Result<(usize, u64)> {
    let (lidx, ridx) = (local.idx, &remote.idx[..local.idx.len()]);
    let (lout, rout) = (&mut lout[..lidx.len()], &mut rout[..lidx.len()]);
    // The open (last written) pair; merging into it is refused while nothing is written.
    let (mut cl, mut cr) = (ResolvedDesc::default(), ResolvedDesc::default());
    let mut n = 0usize;
    let mut total = 0u64;
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
        total = total.wrapping_add(l.len);
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
    Ok((n, total))
}

/// [`fill`] for two regular lists, each in one registration: entries differ only in their
/// address, so the loop carries two addresses and a length, and the indices are checked for
/// the whole list at the end rather than one by one (`None` if any is out of range, or the
/// lists' entries differ in length: the caller then runs `fill`, which names the first).
/// Indices are taken as unsigned, so a negative one is out of range too.
fn fill_regular(
    (l, lk): (Regular, u64),
    (r, rk): (Regular, u64),
    lidx: &[i32],
    ridx: &[i32],
    merge: bool,
    lout: &mut [MaybeUninit<ResolvedDesc>],
    rout: &mut [MaybeUninit<ResolvedDesc>],
) -> Option<(usize, u64)> {
    let len = l.len;
    if r.len != len {
        return None;
    }
    let count = lidx.len();
    let (ridx, lout, rout) = (&ridx[..count], &mut lout[..count], &mut rout[..count]);
    let (lcount, rcount) = (l.count as u64, r.count as u64);
    let mut bad = false;
    // The open pair: both start addresses and its length.
    let (mut la0, mut ra0, mut run) = (0u64, 0u64, 0u64);
    let mut n = 0usize;
    for i in 0..count {
        let (li, ri) = (i64::from(lidx[i]) as u64, i64::from(ridx[i]) as u64);
        bad |= (li >= lcount) | (ri >= rcount);
        let la = l.base.wrapping_add(li.wrapping_mul(l.stride));
        let ra = r.base.wrapping_add(ri.wrapping_mul(r.stride));
        // Both lists lie inside registrations, so an open pair's end never wraps.
        let merged =
            merge & (n > 0) & (la0.wrapping_add(run) == la) & (ra0.wrapping_add(run) == ra);
        let mask = 0u64.wrapping_sub(u64::from(merged));
        la0 = (la0 & mask) | (la & !mask);
        ra0 = (ra0 & mask) | (ra & !mask);
        run = (run & mask).wrapping_add(len);
        let slot = n - usize::from(merged);
        lout[slot].write(ResolvedDesc {
            addr: la0,
            len: run,
            dev_id: l.dev_id,
            key: lk,
        });
        rout[slot].write(ResolvedDesc {
            addr: ra0,
            len: run,
            dev_id: r.dev_id,
            key: rk,
        });
        n = slot + 1;
    }
    (!bad).then_some((n, len.wrapping_mul(count as u64)))
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
        let g = gather(
            &side(l, lk, li, "local"),
            &side(r, rk, ri, "remote"),
            merge,
            &DescPool::default(),
        )?;
        let sum = |v: &[ResolvedDesc]| v.iter().map(|d| d.len).sum::<u64>();
        assert_eq!(g.total_bytes, sum(&g.local), "bytes counted in the loop");
        assert_eq!(sum(&g.local), sum(&g.remote));
        Ok((g.local, g.remote))
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
        assert_eq!(computed, (read.local, read.remote));
        let unmerged = run(&l, &lk, &li, &r, &rk, &ri, false).unwrap();
        assert_eq!(unmerged.0.len(), li.len());
        let e = run(&l, &lk, &[64], &r, &rk, &[0], true).unwrap_err();
        assert!(e.message().contains("local index 64"), "{e}");
        let e = run(&l, &lk, &[0, 1], &r, &rk, &[1, -1], true).unwrap_err();
        assert!(e.message().contains("remote index -1"), "{e}");
        // Regular lists of different entry lengths: the mismatch is named.
        let wide: Vec<Desc> = (0..64).map(|i| Desc::new(4096 + i * 64, 32, 0)).collect();
        let e = run(&l, &lk, &[3], &wide, &lk, &[3], true).unwrap_err();
        assert!(e.message().contains("length mismatch"), "{e}");
    }
}
