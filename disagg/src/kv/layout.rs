//! Geometry of a paged KV cache laid out like vLLM's: one tensor per layer, each
//! `[num_blocks, block_tokens, bytes_per_token]`, the layers one after the other.

use serde::{Deserialize, Serialize};

/// Shape of one worker's KV pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvLayout {
    /// Transformer layers (one KV tensor each).
    pub layers: usize,
    /// Tokens per block.
    pub block_tokens: usize,
    /// KV bytes of one token in one layer (2 · kv_heads · head_dim · dtype bytes).
    pub bytes_per_token: usize,
    /// Blocks per layer.
    pub num_blocks: usize,
}

impl KvLayout {
    /// The default mock model: 8 layers, 64-token blocks, 2 KV heads × 64 dims × fp16 × (K, V)
    /// = 512 bytes per token and layer, so 32 KiB per layer-block and 256 KiB per block.
    pub fn mock_model(num_blocks: usize) -> Self {
        KvLayout {
            layers: 8,
            block_tokens: 64,
            bytes_per_token: 512,
            num_blocks,
        }
    }

    /// Bytes of one block in one layer (the unit a descriptor moves).
    pub fn layer_block_bytes(&self) -> usize {
        self.block_tokens * self.bytes_per_token
    }

    /// Bytes of one block over all layers.
    pub fn block_bytes(&self) -> usize {
        self.layer_block_bytes() * self.layers
    }

    /// Bytes of the whole pool.
    pub fn total_bytes(&self) -> usize {
        self.block_bytes() * self.num_blocks
    }

    /// Offset of block `slot` of layer `layer` from the pool's start.
    pub fn offset(&self, layer: usize, slot: usize) -> usize {
        debug_assert!(layer < self.layers && slot < self.num_blocks);
        (layer * self.num_blocks + slot) * self.layer_block_bytes()
    }

    /// KV bytes of one token over all layers.
    pub fn bytes_per_token_all_layers(&self) -> usize {
        self.bytes_per_token * self.layers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_layer_major_and_disjoint() {
        let l = KvLayout::mock_model(10);
        assert_eq!(l.layer_block_bytes(), 32 * 1024);
        assert_eq!(l.block_bytes(), 256 * 1024);
        assert_eq!(l.offset(0, 1), 32 * 1024);
        assert_eq!(l.offset(1, 0), 10 * 32 * 1024);
        assert_eq!(l.offset(7, 9) + l.layer_block_bytes(), l.total_bytes());
    }
}
