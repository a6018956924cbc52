//! One request's state inside an engine.

use super::block_manager::BlockId;
use router::trace_hashing::{BlockHashes, chain_hash, generated_block_hash};
use std::rc::Rc;

/// Index of a request in the simulation's request table.
pub type RequestId = usize;

/// What the passes a request took part in before its first token were made of (all
/// sequences' work in them, in ms of the step-time model): where its TTFT went beyond its
/// own prefill.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct PrefillPasses {
    /// Passes that computed some of its prompt.
    pub passes: u32,
    /// Their total duration.
    pub pass_ms: f64,
    /// Their prefill compute (its own chunks and those batched with them).
    pub prefill_ms: f64,
    /// Their decode steps (other sequences' tokens; in the last one also its own first).
    pub decode_ms: f64,
    /// Their host-tier onboards and peer pulls (its own and others').
    pub load_ms: f64,
    /// Its own prompt tokens computed in them.
    pub own_tokens: u64,
}

/// A request as an engine sees it: prompt, progress and KV blocks.
#[derive(Debug)]
pub struct Sequence {
    /// Which request this is.
    pub request: RequestId,
    /// Seed for the hashes of generated-token blocks (unique per request).
    pub uid: u64,
    /// Prompt tokens.
    pub prompt_len: usize,
    /// Tokens to generate in total.
    pub output_len: usize,
    /// Tokens generated so far (a disaggregated decode starts at 1).
    pub generated: usize,
    /// Tokens whose KV is computed.
    pub computed: usize,
    /// Physical blocks, in order.
    pub blocks: Vec<BlockId>,
    /// Leading blocks already committed to the prefix cache.
    pub committed: usize,
    /// Hashes of the prompt's full blocks.
    pub prompt_hashes: Rc<BlockHashes>,
    /// Sequence hashes of full blocks past the prompt ones (generated tokens).
    pub extra_seq: Vec<u64>,
    /// Prompt tokens found in the prefix cache at first admission.
    pub cached_tokens: Option<usize>,
    /// Prompt blocks pulled from another worker at routing time (their KV waits in a
    /// staging buffer until the first admission uses or drops it).
    pub prefetched: std::ops::Range<usize>,
    /// Tokens scheduled in the current pass and how many were prefill work.
    pub(crate) scheduled: usize,
    pub(crate) scheduled_prefill: usize,
    /// Prompt computed in the current pass: emits a token at its end.
    pub(crate) ready: bool,
    /// Its passes until the first token.
    pub(crate) prefill_passes: PrefillPasses,
}

impl Sequence {
    /// A new sequence with nothing computed.
    pub fn new(
        request: RequestId,
        uid: u64,
        prompt_len: usize,
        output_len: usize,
        prompt_hashes: Rc<BlockHashes>,
    ) -> Self {
        Sequence {
            request,
            uid,
            prompt_len,
            output_len: output_len.max(1),
            generated: 0,
            computed: 0,
            blocks: Vec::new(),
            committed: 0,
            prompt_hashes,
            extra_seq: Vec::new(),
            cached_tokens: None,
            prefetched: 0..0,
            scheduled: 0,
            scheduled_prefill: 0,
            ready: false,
            prefill_passes: PrefillPasses::default(),
        }
    }

    /// Tokens in the sequence (prompt plus generated).
    pub fn len(&self) -> usize {
        self.prompt_len + self.generated
    }

    /// Never true: a sequence has at least one prompt token or is rejected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True once every prompt token is computed and it only decodes.
    pub fn is_decoding(&self) -> bool {
        self.generated > 0 && self.computed + 1 >= self.len()
    }

    /// Tokens still to compute before the next token can be emitted.
    pub fn remaining(&self) -> usize {
        self.len() - self.computed
    }

    /// Sequence hash of full block `i`, if it is already known.
    pub fn known_seq_hash(&self, i: usize) -> Option<u64> {
        let p = self.prompt_hashes.seq.len();
        if i < p {
            Some(self.prompt_hashes.seq[i])
        } else {
            self.extra_seq.get(i - p).copied()
        }
    }

    /// (sequence hash, tokens hash) of full block `i`, computing and
    /// remembering the generated-token ones as they fill.
    pub fn block_hash(&mut self, i: usize) -> (u64, u64) {
        let p = self.prompt_hashes.seq.len();
        if i < p {
            return (self.prompt_hashes.seq[i], self.prompt_hashes.local[i]);
        }
        let local = generated_block_hash(self.uid, i);
        if let Some(&seq) = self.extra_seq.get(i - p) {
            return (seq, local);
        }
        debug_assert_eq!(self.extra_seq.len(), i - p, "blocks fill in order");
        let parent = if i == 0 {
            None
        } else {
            self.known_seq_hash(i - 1)
        };
        let seq = chain_hash(parent, local);
        self.extra_seq.push(seq);
        (seq, local)
    }
}
