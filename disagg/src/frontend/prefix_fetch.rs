//! Which prefix the chosen prefill worker could fetch instead of recomputing: the longest
//! cached prefix of the prompt on another prefill worker, from the router's KV-event index.
//! The routing decision itself stays the router's; this only adds a hint to the request.

use super::Frontend;
use crate::proto::FetchHint;
use router::WorkerId;

/// A fetch is worth its round trip only for at least this many more blocks than the chosen
/// worker caches.
const MIN_GAIN_BLOCKS: u32 = 1;

impl Frontend {
    /// The hint for request `idx` going to prefill worker `chosen`, when another prefill
    /// worker caches a longer prefix (and fetching is on).
    pub(super) fn fetch_hint(&self, idx: usize, chosen: u64) -> Option<FetchHint> {
        if !self.cfg.fetch {
            return None;
        }
        let scores = self.router.prefill.index.find_matches(&self.reqs[idx].seq);
        let mine = scores.get(WorkerId::new(chosen));
        let (holder, blocks) = scores
            .scores
            .iter()
            .filter(|(w, _)| w.id != chosen)
            .max_by_key(|&&(w, n)| (n, std::cmp::Reverse(w.id)))
            .copied()?;
        if blocks < mine + MIN_GAIN_BLOCKS {
            return None;
        }
        let agent = self.fleet.conns.get(&holder.id)?.agent.clone();
        Some(FetchHint {
            agent,
            blocks: blocks as usize,
        })
    }
}
