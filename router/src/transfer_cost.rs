//! The price of moving KV blocks instead of recomputing them: bytes per token from the
//! model's shape, and bandwidths for device ↔ host memory (onboarding an offloaded block)
//! and worker ↔ worker (pulling a cached prefix from the worker that holds it).
//!
//! One home for this model: the router prices tier hits and remote fetches with it, and the
//! simulator charges the same figures to the engine pass that uses the moved blocks.

/// The attention shape that decides the KV cache's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelShape {
    /// Transformer layers.
    pub layers: u32,
    /// KV heads per layer (fewer than query heads with grouped-query attention).
    pub kv_heads: u32,
    /// Dimension of one head.
    pub head_dim: u32,
    /// Bytes per stored value (2 for bf16/fp16, 1 for fp8).
    pub dtype_bytes: u32,
}

impl ModelShape {
    /// Llama-3-70B: 80 layers, grouped-query attention with 8 KV heads of 128, bf16.
    pub const LLAMA3_70B: ModelShape = ModelShape {
        layers: 80,
        kv_heads: 8,
        head_dim: 128,
        dtype_bytes: 2,
    };

    /// KV bytes one token occupies: layers · 2 (K and V) · kv_heads · head_dim · dtype bytes.
    /// Llama-3-70B: 80 · 2 · 8 · 128 · 2 = 327,680 bytes (320 KiB).
    pub fn kv_bytes_per_token(&self) -> f64 {
        f64::from(self.layers)
            * 2.0
            * f64::from(self.kv_heads)
            * f64::from(self.head_dim)
            * f64::from(self.dtype_bytes)
    }
}

/// Bandwidths and latencies of KV moves. All outputs in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TransferCost {
    /// KV bytes per token.
    pub kv_bytes_per_token: f64,
    /// Device ↔ host memory bandwidth, bytes per second (one direction).
    pub host_bytes_per_s: f64,
    /// Worker ↔ worker bandwidth, bytes per second.
    pub peer_bytes_per_s: f64,
    /// Fixed cost of one pull from a peer (request, notification), seconds.
    pub peer_latency_s: f64,
}

impl Default for TransferCost {
    /// Llama-3-70B (320 KiB per token); 50 GB/s to host memory (PCIe Gen5 x16 as measured
    /// in practice, below its 64 GB/s peak); 50 GB/s between workers (one 400 Gb/s NIC per
    /// GPU) with 100 µs per pull.
    fn default() -> Self {
        TransferCost {
            kv_bytes_per_token: ModelShape::LLAMA3_70B.kv_bytes_per_token(),
            host_bytes_per_s: 50e9,
            peer_bytes_per_s: 50e9,
            peer_latency_s: 100e-6,
        }
    }
}

impl TransferCost {
    /// Seconds to copy `tokens` tokens of KV from host memory to the device (or back).
    pub fn onboard_s(&self, tokens: f64) -> f64 {
        if tokens <= 0.0 {
            return 0.0;
        }
        tokens * self.kv_bytes_per_token / self.host_bytes_per_s
    }

    /// Seconds to pull `tokens` tokens of KV from another worker.
    pub fn fetch_s(&self, tokens: f64) -> f64 {
        if tokens <= 0.0 {
            return 0.0;
        }
        self.peer_latency_s + tokens * self.kv_bytes_per_token / self.peer_bytes_per_s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama3_70b_takes_320_kib_per_token_and_moves_are_linear() {
        assert_eq!(ModelShape::LLAMA3_70B.kv_bytes_per_token(), 327_680.0);
        let c = TransferCost::default();
        // One 64-token block is 20 MiB: 0.42 ms at 50 GB/s.
        assert!((c.onboard_s(64.0) - 64.0 * 327_680.0 / 50e9).abs() < 1e-12);
        assert!((c.onboard_s(128.0) - 2.0 * c.onboard_s(64.0)).abs() < 1e-12);
        assert_eq!(c.onboard_s(0.0), 0.0);
        assert_eq!(c.fetch_s(0.0), 0.0);
        assert!((c.fetch_s(64.0) - c.onboard_s(64.0) - 100e-6).abs() < 1e-12);
    }
}
