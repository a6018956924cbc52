//! Dynamo mocker's polynomial timing, with chunked prefill and the KV-transfer link.

/// Prefill/decode/transfer timing of one engine configuration, from fitted polynomials:
///
/// * prefill: one forward pass computing `x` new prompt tokens (summed over the batch) takes
///   `p2·x² + p1·x + p0` ms; a prompt longer than the chunk `max_batched_tokens` runs as
///   `ceil(x / chunk)` passes (chunked prefill);
/// * decode: one step of `b` sequences holding `k` KV tokens takes
///   `d2·u² + d1·u + d0 + per_seq·b` ms, never under 1 ms (Dynamo's floor), with
///   `u = min(k / kv_capacity_tokens, 1)` (a zero capacity counts as full);
/// * KV transfer: `latency + tokens · kv_bytes_per_token / bandwidth`.
///
/// The defaults are Dynamo mocker's fit and a 64 GB/s link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Polynomial {
    /// Prefill polynomial coefficients `[p0, p1, p2]` (milliseconds, tokens).
    pub prefill_ms: [f64; 3],
    /// Decode polynomial coefficients `[d0, d1, d2]` in the KV utilisation `u`.
    pub decode_ms: [f64; 3],
    /// Extra decode milliseconds per sequence in the batch.
    pub decode_per_seq_ms: f64,
    /// Tokens of KV the engine can hold.
    pub kv_capacity_tokens: u64,
    /// Token budget of one forward pass (chunked-prefill chunk size).
    pub max_batched_tokens: u64,
    /// Bytes of KV per token (layers · 2 · kv_heads · head_dim · dtype bytes).
    pub kv_bytes_per_token: f64,
    /// KV transfer bandwidth between prefill and decode engines, bytes per second.
    pub transfer_bytes_per_s: f64,
    /// Fixed per-transfer latency (handshake, notification), seconds.
    pub transfer_latency_s: f64,
}

impl Default for Polynomial {
    fn default() -> Self {
        Self {
            prefill_ms: [16.50142, 1.518344e-2, 4.209989e-7],
            decode_ms: [5.74, 54.01, -25.74],
            decode_per_seq_ms: 0.0,
            kv_capacity_tokens: 16_384 * 64,
            max_batched_tokens: 8_192,
            // A Llama-3-8B-like model in fp16: 32 layers · 2 · 8 heads · 128 dims · 2 bytes.
            kv_bytes_per_token: 131_072.0,
            transfer_bytes_per_s: 64e9,
            transfer_latency_s: 0.0,
        }
    }
}

impl Polynomial {
    /// Milliseconds for one forward pass computing `tokens` prompt tokens (0 for none).
    pub fn prefill_pass_ms(&self, tokens: f64) -> f64 {
        if tokens <= 0.0 {
            return 0.0;
        }
        let [p0, p1, p2] = self.prefill_ms;
        p2 * tokens * tokens + p1 * tokens + p0
    }

    /// Seconds for one forward pass computing `tokens` prompt tokens (0 for none).
    pub fn prefill_pass_s(&self, tokens: f64) -> f64 {
        self.prefill_pass_ms(tokens) / 1e3
    }

    /// Seconds to prefill `tokens` uncached tokens with chunked prefill; `batch` requests
    /// of this size share the passes (`tokens` is per request).
    pub fn prefill_s(&self, tokens: f64, batch: u32) -> f64 {
        let total = tokens * f64::from(batch.max(1));
        let chunk = self.max_batched_tokens.max(1) as f64;
        let full = (total / chunk).floor();
        full * self.prefill_pass_s(chunk) + self.prefill_pass_s(total - full * chunk)
    }

    /// Number of forward passes needed for `tokens` prompt tokens.
    pub fn prefill_passes(&self, tokens: f64) -> f64 {
        (tokens / self.max_batched_tokens.max(1) as f64).ceil()
    }

    /// Milliseconds for one decode step of `batch` sequences holding `active_kv_tokens` on
    /// an engine of `capacity_kv_tokens` (0 for an empty batch).
    pub fn decode_step_ms(
        &self,
        batch: u32,
        active_kv_tokens: f64,
        capacity_kv_tokens: u64,
    ) -> f64 {
        if batch == 0 {
            return 0.0;
        }
        let u = if capacity_kv_tokens == 0 {
            1.0
        } else {
            (active_kv_tokens / capacity_kv_tokens as f64).clamp(0.0, 1.0)
        };
        let [d0, d1, d2] = self.decode_ms;
        (d2 * u * u + d1 * u + d0 + self.decode_per_seq_ms * f64::from(batch)).max(1.0)
    }

    /// Seconds for one decode step of `batch` sequences holding `active_kv_tokens` on this
    /// engine (`kv_capacity_tokens`).
    pub fn decode_step_s(&self, batch: u32, active_kv_tokens: f64) -> f64 {
        self.decode_step_ms(batch, active_kv_tokens, self.kv_capacity_tokens) / 1e3
    }

    /// Seconds to move the KV of `tokens` tokens between engines.
    pub fn transfer_s(&self, tokens: f64) -> f64 {
        if tokens <= 0.0 {
            return 0.0;
        }
        self.transfer_latency_s + tokens * self.kv_bytes_per_token / self.transfer_bytes_per_s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefill_is_chunked_and_monotonic() {
        let m = Polynomial::default();
        assert_eq!(m.prefill_s(0.0, 1), 0.0);
        let one_chunk = m.prefill_pass_s(8_192.0);
        assert!((m.prefill_s(16_384.0, 1) - 2.0 * one_chunk).abs() < 1e-12);
        assert!(m.prefill_s(1_000.0, 1) < m.prefill_s(2_000.0, 1));
        assert!((m.prefill_s(1_000.0, 2) - m.prefill_s(2_000.0, 1)).abs() < 1e-12);
        assert_eq!(m.prefill_passes(8_193.0), 2.0);
    }

    #[test]
    fn decode_grows_with_kv_and_transfer_with_tokens() {
        let m = Polynomial::default();
        assert!(m.decode_step_s(8, 0.0) < m.decode_step_s(8, 500_000.0));
        assert!((m.decode_step_s(1, 0.0) - 0.00574).abs() < 1e-9);
        assert_eq!(m.decode_step_ms(0, 10.0, 100), 0.0);
        // Utilisation saturates at 1; a zero capacity counts as full.
        assert_eq!(
            m.decode_step_ms(1, 500.0, 100),
            m.decode_step_ms(1, 100.0, 100)
        );
        assert_eq!(m.decode_step_ms(1, 0.0, 0), m.decode_step_ms(1, 100.0, 100));
        // 1,000 tokens · 128 KiB at 64 GB/s ≈ 2.05 ms.
        assert!((m.transfer_s(1_000.0) - 0.002048).abs() < 1e-6);
    }
}
