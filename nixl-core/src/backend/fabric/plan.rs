//! Turns a request's descriptor pairs into RMAs: pairs that continue each other on both sides
//! (same local registration, same remote key) are merged into one piece, up to the provider's
//! iov limit of pieces share one RMA, and no RMA carries more than `chunk` bytes. Fewer, larger
//! operations are what small blocks need: each RMA costs a completion, a context and, on
//! `tcp;ofi_rxm`, a request header on the wire.

use super::ep::{MAX_IOV, Piece};

/// One RMA to post: pieces in one local registration `mr`, towards one remote `key`.
pub struct Rma<M> {
    /// The local registration (its descriptor and in-flight count).
    pub mr: M,
    /// The remote key.
    pub key: u64,
    pieces: [Piece; MAX_IOV],
    count: usize,
    total: u64,
}

impl<M> Rma<M> {
    /// The pieces, in order.
    pub fn pieces(&self) -> &[Piece] {
        &self.pieces[..self.count]
    }

    /// Bytes it moves.
    pub fn bytes(&self) -> u64 {
        self.total
    }
}

/// Builds the RMAs of one request, pair by pair.
pub struct Planner<M> {
    chunk: u64,
    max_iov: usize,
    same_mr: fn(&M, &M) -> bool,
    out: Vec<Rma<M>>,
}

impl<M: Clone> Planner<M> {
    /// `chunk`: most bytes per RMA (≥ 1); `max_iov`: most pieces per RMA (1..=MAX_IOV);
    /// `same_mr`: whether two local registrations are one.
    pub fn new(chunk: u64, max_iov: usize, same_mr: fn(&M, &M) -> bool, pairs: usize) -> Self {
        Planner {
            chunk: chunk.max(1),
            max_iov: max_iov.clamp(1, MAX_IOV),
            same_mr,
            out: Vec::with_capacity(pairs),
        }
    }

    /// Adds `len` bytes from `local` (in `mr`) to `remote` (under `key`).
    pub fn add(&mut self, mr: &M, key: u64, local: u64, remote: u64, len: u64) {
        let mut off = 0;
        while off < len {
            let n = (len - off).min(self.chunk);
            self.add_piece(mr, key, local + off, remote + off, n);
            off += n;
        }
    }

    fn add_piece(&mut self, mr: &M, key: u64, local: u64, remote: u64, n: u64) {
        if let Some(last) = self.out.last_mut()
            && last.key == key
            && (self.same_mr)(&last.mr, mr)
            && last.total + n <= self.chunk
        {
            let p = &mut last.pieces[last.count - 1];
            let plen = p.len as u64;
            if p.local.checked_add(plen) == Some(local)
                && p.remote.checked_add(plen) == Some(remote)
            {
                p.len += n as usize;
                last.total += n;
                return;
            }
            if last.count < self.max_iov {
                last.pieces[last.count] = Piece {
                    local,
                    remote,
                    len: n as usize,
                };
                last.count += 1;
                last.total += n;
                return;
            }
        }
        let mut pieces = [Piece {
            local: 0,
            remote: 0,
            len: 0,
        }; MAX_IOV];
        pieces[0] = Piece {
            local,
            remote,
            len: n as usize,
        };
        self.out.push(Rma {
            mr: mr.clone(),
            key,
            pieces,
            count: 1,
            total: n,
        });
    }

    /// The RMAs, in the order of the pairs.
    pub fn finish(self) -> Vec<Rma<M>> {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(
        chunk: u64,
        iov: usize,
        pairs: &[(u32, u64, u64, u64, u64)],
    ) -> Vec<Vec<(u64, u64, usize)>> {
        let mut p = Planner::new(chunk, iov, |a: &u32, b: &u32| a == b, pairs.len());
        for &(mr, key, l, r, n) in pairs {
            p.add(&mr, key, l, r, n);
        }
        p.finish()
            .iter()
            .map(|o| {
                o.pieces()
                    .iter()
                    .map(|x| (x.local, x.remote, x.len))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn contiguous_pairs_merge_into_one_piece() {
        let got = plan(
            1 << 20,
            4,
            &[(1, 7, 0, 100, 10), (1, 7, 10, 110, 10), (1, 7, 20, 120, 5)],
        );
        assert_eq!(got, vec![vec![(0, 100, 25)]]);
    }

    #[test]
    fn pairs_contiguous_on_one_side_only_share_an_rma_as_pieces() {
        let got = plan(
            1 << 20,
            2,
            &[(1, 7, 0, 300, 10), (1, 7, 10, 100, 10), (1, 7, 20, 500, 10)],
        );
        assert_eq!(
            got,
            vec![vec![(0, 300, 10), (10, 100, 10)], vec![(20, 500, 10)]]
        );
    }

    #[test]
    fn other_registration_or_key_starts_a_new_rma() {
        let got = plan(
            1 << 20,
            4,
            &[(1, 7, 0, 0, 10), (2, 7, 10, 10, 10), (2, 8, 20, 20, 10)],
        );
        assert_eq!(got.len(), 3, "{got:?}");
    }

    #[test]
    fn no_rma_exceeds_the_chunk() {
        let got = plan(
            16,
            4,
            &[(1, 7, 0, 0, 40), (1, 7, 40, 40, 8), (1, 7, 100, 0, 8)],
        );
        assert_eq!(
            got,
            vec![
                vec![(0, 0, 16)],
                vec![(16, 16, 16)],
                vec![(32, 32, 16)],
                vec![(100, 0, 8)]
            ]
        );
        let one = plan(1 << 20, 1, &[(1, 7, 0, 50, 4), (1, 7, 8, 54, 4)]);
        assert_eq!(one, vec![vec![(0, 50, 4)], vec![(8, 54, 4)]], "max_iov 1");
    }

    #[test]
    fn address_overflow_is_not_mistaken_for_contiguity() {
        let got = plan(u64::MAX, 4, &[(1, 7, u64::MAX - 3, 0, 4), (1, 7, 0, 4, 4)]);
        assert_eq!(got, vec![vec![(u64::MAX - 3, 0, 4), (0, 4, 4)]]);
    }
}
