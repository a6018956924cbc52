//! KV events in vLLM's wire format: the workers publish msgpack `KVEventBatch`es on a ZeroMQ
//! PUB socket (`[topic, sequence (8 bytes BE), payload]`), exactly as vLLM's
//! `ZmqEventPublisher` does; the frontend subscribes with the `router` crate's subscriber.

use rmpv::Value;
use sim::kv_event::KvEventData;
use std::collections::HashMap;

/// Turns the mock engine's cache events into vLLM events. vLLM's events carry token ids (the
/// router re-hashes them), so the worker remembers each prompt block's tokens.
#[derive(Debug, Default)]
pub struct VllmEncoder {
    tokens: HashMap<u64, Vec<u32>>,
    block_size: usize,
}

impl VllmEncoder {
    /// An encoder for `block_size`-token blocks.
    pub fn new(block_size: usize) -> Self {
        VllmEncoder {
            tokens: HashMap::new(),
            block_size,
        }
    }

    /// Remembers the tokens of a prompt block with sequence hash `seq_hash`.
    pub fn remember(&mut self, seq_hash: u64, tokens: Vec<u32>) {
        debug_assert_eq!(tokens.len(), self.block_size);
        self.tokens.entry(seq_hash).or_insert(tokens);
    }

    /// Encodes one batch of engine events at wall-clock `ts` (seconds). Stored blocks whose
    /// tokens are unknown (generated tokens) end the stored run: later blocks would chain on
    /// them and cannot be routed to anyway.
    pub fn encode(&mut self, ts: f64, events: &[KvEventData]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        for event in events {
            match event {
                KvEventData::Stored { parent, blocks } => {
                    let known: Vec<_> = blocks
                        .iter()
                        .take_while(|b| self.tokens.contains_key(&b.external.0))
                        .collect();
                    if known.is_empty() {
                        continue;
                    }
                    let hashes = known
                        .iter()
                        .map(|b| Value::from(b.external.0))
                        .collect::<Vec<_>>();
                    let tokens = known
                        .iter()
                        .flat_map(|b| self.tokens[&b.external.0].iter().map(|&t| Value::from(t)))
                        .collect::<Vec<_>>();
                    out.push(Value::Array(vec![
                        Value::from("BlockStored"),
                        Value::Array(hashes),
                        parent.map_or(Value::Nil, |p| Value::from(p.0)),
                        Value::Array(tokens),
                        Value::from(self.block_size as u64),
                        Value::Nil,
                        Value::from("GPU"),
                        Value::Nil,
                    ]));
                }
                KvEventData::Removed { blocks } => {
                    for h in blocks {
                        self.tokens.remove(&h.0);
                    }
                    out.push(Value::Array(vec![
                        Value::from("BlockRemoved"),
                        Value::Array(blocks.iter().map(|h| Value::from(h.0)).collect()),
                        Value::from("GPU"),
                    ]));
                }
                KvEventData::Cleared => {
                    self.tokens.clear();
                    out.push(Value::Array(vec![Value::from("AllBlocksCleared")]));
                }
            }
        }
        if out.is_empty() {
            return None;
        }
        let batch = Value::Array(vec![Value::from(ts), Value::Array(out), Value::Nil]);
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &batch).expect("writing to a Vec cannot fail");
        Some(bytes)
    }
}

/// A ZeroMQ PUB socket on its own thread.
pub struct Publisher {
    endpoint: String,
    tx: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
}

impl Publisher {
    /// Binds `tcp://{host}:0` and returns once bound.
    pub fn bind(host: &str) -> std::io::Result<Publisher> {
        use zeromq::{PubSocket, Socket, SocketSend, ZmqMessage};
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
        let (ep_tx, ep_rx) = std::sync::mpsc::channel();
        let addr = format!("tcp://{host}:0");
        spawn_on_runtime("kv-events", move || async move {
            let mut socket = PubSocket::new();
            let endpoint = match socket.bind(&addr).await {
                Ok(ep) => ep.to_string(),
                Err(e) => {
                    let _ = ep_tx.send(Err(e.to_string()));
                    return;
                }
            };
            let _ = ep_tx.send(Ok(endpoint));
            let mut sequence = 0u64;
            while let Some(payload) = rx.recv().await {
                let mut m = ZmqMessage::from(String::new());
                m.push_back(sequence.to_be_bytes().to_vec().into());
                m.push_back(payload.into());
                sequence += 1;
                if socket.send(m).await.is_err() {
                    break;
                }
            }
        })?;
        let endpoint = ep_rx
            .recv()
            .map_err(std::io::Error::other)?
            .map_err(std::io::Error::other)?;
        Ok(Publisher { endpoint, tx })
    }

    /// The bound endpoint (`tcp://host:port`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Queues one payload.
    pub fn send(&self, payload: Vec<u8>) {
        let _ = self.tx.send(payload);
    }
}

/// Runs the future `task` makes on a current-thread tokio runtime in a new thread called
/// `name`: the ZeroMQ loops of the publisher here and of the frontend's subscriber. The
/// runtime is built before the thread starts, so failing to build it is an error returned
/// here, not a panic there.
pub(crate) fn spawn_on_runtime<F, Fut>(name: &str, task: F) -> std::io::Result<()>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || rt.block_on(task()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use router::wire::{DecodeOptions, decode_batch};
    use sim::kv_event::StoredBlock;

    #[test]
    fn encoded_batches_decode_with_the_router_and_match_its_hashes() {
        let mut hasher = router::trace_hashing::TraceHasher::new(4, 8);
        let hashes = hasher.hashes(&[5, 6], 16);
        let mut enc = VllmEncoder::new(4);
        let tokens: Vec<u32> = (0..16).map(|t| [5u32, 6][t / 8]).collect();
        for (i, h) in hashes.seq.iter().enumerate() {
            enc.remember(*h, tokens[i * 4..i * 4 + 4].to_vec());
        }
        let blocks: Vec<StoredBlock> = (0..4)
            .map(|i| StoredBlock {
                external: router::ExternalHash(hashes.seq[i]),
                tokens: router::BlockHash(hashes.local[i]),
            })
            .chain([StoredBlock {
                external: router::ExternalHash(999),
                tokens: router::BlockHash(0),
            }])
            .collect();
        let bytes = enc
            .encode(
                1.5,
                &[
                    KvEventData::Stored {
                        parent: None,
                        blocks,
                    },
                    KvEventData::Removed {
                        blocks: vec![router::ExternalHash(hashes.seq[3])],
                    },
                ],
            )
            .unwrap();
        let batch = decode_batch(&bytes, &DecodeOptions { block_size: 4 }).unwrap();
        assert_eq!(batch.events.len(), 2);
        let router::KvEventData::Stored { parent, blocks } = &batch.events[0] else {
            panic!("stored first");
        };
        assert_eq!(*parent, None);
        assert_eq!(blocks.len(), 4, "the unknown generated block is dropped");
        let prompt = router::hash_prompt(&tokens, 4, None);
        for (b, l) in blocks.iter().zip(&hashes.local) {
            assert_eq!(
                b.tokens.0, *l,
                "router re-hashes to the engine's tokens hash"
            );
        }
        assert_eq!(
            prompt.sequence.iter().map(|s| s.0).collect::<Vec<_>>(),
            hashes.seq,
            "router sequence hashes equal the engine's"
        );
    }
}
