//! vLLM KV-event wire format (also emitted by SGLang).
//!
//! A ZMQ message's payload is a msgpack `KVEventBatch` encoded by `msgspec` with
//! `array_like=True`: `[ts: f64, events: [...], data_parallel_rank: int | nil]`. Each event
//! is a tagged tuple whose first element is the class name:
//! * `["BlockStored", block_hashes, parent_block_hash, token_ids, block_size, lora_id,
//!   medium, lora_name, extra_keys, ...]` (trailing fields optional);
//! * `["BlockRemoved", block_hashes, medium, ...]`;
//! * `["AllBlocksCleared", ...]`.
//!
//! Map-encoded events (`{"type": "BlockStored", "block_hashes": ...}`) are accepted too.
//! Block hashes may be signed (reinterpreted as `u64`) or unsigned. Token ids may be
//! plain `u32`s or Eagle/MTP "bigram" pairs `(t_i, t_{i+1})`, in which case each block is
//! hashed over `block_size + 1` tokens, as Dynamo does. The `medium` names the tier: "CPU"
//! (vLLM's offloading connector) is [`StorageTier::Host`], anything else the device.

use crate::hashing::{ExternalHash, block_seed, hash_block};
use crate::index::{KvEventData, StorageTier, StoredBlock};
use rmpv::Value;

/// What the decoder needs to know about the deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeOptions {
    /// The router's KV block size; stored blocks of another size are not indexed.
    pub block_size: usize,
}

/// One decoded batch.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineBatch {
    /// Engine wall-clock timestamp (seconds), informational only.
    pub timestamp: f64,
    /// The data-parallel rank that emitted the batch, if the engine said.
    pub dp_rank: Option<u32>,
    /// The events, in order.
    pub events: Vec<KvEventData>,
    /// The tier of each event (same length as `events`).
    pub tiers: Vec<StorageTier>,
}

/// Why a payload could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    /// Not valid msgpack.
    #[error("invalid msgpack: {0}")]
    Msgpack(String),
    /// Valid msgpack, but not the expected shape.
    #[error("unexpected batch layout: {0}")]
    Layout(&'static str),
}

fn as_hash(value: &Value) -> Option<u64> {
    match value {
        Value::Integer(i) => i.as_u64().or_else(|| i.as_i64().map(|v| v as u64)),
        _ => None,
    }
}

fn as_hashes(value: Option<&Value>) -> Result<Vec<ExternalHash>, DecodeError> {
    let list = value
        .and_then(Value::as_array)
        .ok_or(DecodeError::Layout("block_hashes"))?;
    list.iter()
        .map(|v| {
            as_hash(v)
                .map(ExternalHash)
                .ok_or(DecodeError::Layout("block hash"))
        })
        .collect()
}

/// Token ids, flattened; `true` when they were Eagle bigrams.
fn as_tokens(value: Option<&Value>) -> Result<(Vec<u32>, bool), DecodeError> {
    let list = value
        .and_then(Value::as_array)
        .ok_or(DecodeError::Layout("token_ids"))?;
    let token = |v: &Value| {
        v.as_u64()
            .and_then(|t| u32::try_from(t).ok())
            .ok_or(DecodeError::Layout("token id"))
    };
    if list.first().is_some_and(Value::is_array) {
        let mut out = Vec::with_capacity(list.len() + 1);
        for pair in list {
            let pair = pair
                .as_array()
                .filter(|p| p.len() == 2)
                .ok_or(DecodeError::Layout("bigram"))?;
            out.push(token(&pair[0])?);
        }
        if let Some(last) = list.last().and_then(Value::as_array) {
            out.push(token(&last[1])?);
        }
        return Ok((out, true));
    }
    Ok((list.iter().map(token).collect::<Result<_, _>>()?, false))
}

/// The fields of one event, by name, whichever way it was encoded.
struct Fields<'a> {
    tag: &'a str,
    positional: &'a [Value],
    named: Option<&'a [(Value, Value)]>,
}

impl<'a> Fields<'a> {
    fn of(event: &'a Value) -> Result<Self, DecodeError> {
        match event {
            Value::Array(items) => {
                let tag = items
                    .first()
                    .and_then(Value::as_str)
                    .ok_or(DecodeError::Layout("event tag"))?;
                Ok(Fields {
                    tag,
                    positional: &items[1..],
                    named: None,
                })
            }
            Value::Map(entries) => {
                let tag = entries
                    .iter()
                    .find(|(k, _)| k.as_str() == Some("type"))
                    .and_then(|(_, v)| v.as_str())
                    .ok_or(DecodeError::Layout("event type"))?;
                Ok(Fields {
                    tag,
                    positional: &[],
                    named: Some(entries),
                })
            }
            _ => Err(DecodeError::Layout("event is neither array nor map")),
        }
    }

    /// Field `name`, which sits at `position` (after the tag) in the tuple form.
    fn get(&self, name: &str, position: usize) -> Option<&'a Value> {
        let value = match self.named {
            Some(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(name))
                .map(|(_, v)| v),
            None => self.positional.get(position),
        };
        value.filter(|v| !v.is_nil())
    }
}

fn decode_stored(fields: &Fields<'_>, options: &DecodeOptions) -> Result<KvEventData, DecodeError> {
    let hashes = as_hashes(fields.get("block_hashes", 0))?;
    let parent = fields
        .get("parent_block_hash", 1)
        .map(|v| as_hash(v).ok_or(DecodeError::Layout("parent hash")));
    let parent = parent.transpose()?.map(ExternalHash);
    let (tokens, eagle) = as_tokens(fields.get("token_ids", 2))?;
    let block_size = fields
        .get("block_size", 3)
        .and_then(Value::as_u64)
        .ok_or(DecodeError::Layout("block_size"))? as usize;
    let lora = fields.get("lora_name", 6).and_then(Value::as_str);

    // A store that repeats a hash (or its parent) would create a cycle: drop it, as Dynamo does.
    let mut seen: Vec<u64> = hashes
        .iter()
        .map(|h| h.0)
        .chain(parent.map(|p| p.0))
        .collect();
    seen.sort_unstable();
    if seen.windows(2).any(|w| w[0] == w[1]) {
        return Ok(KvEventData::Removed { blocks: Vec::new() });
    }
    if block_size != options.block_size {
        return Ok(KvEventData::Stored {
            parent,
            blocks: Vec::new(),
        });
    }
    let seed = block_seed(lora);
    let window = block_size + usize::from(eagle);
    let blocks = hashes
        .iter()
        .enumerate()
        .map_while(|(i, &external)| {
            let chunk = tokens.get(i * block_size..i * block_size + window)?;
            Some(StoredBlock {
                external,
                tokens: hash_block(chunk, seed),
            })
        })
        .collect();
    Ok(KvEventData::Stored { parent, blocks })
}

/// The tier a `medium` field names.
fn tier(medium: Option<&Value>) -> StorageTier {
    match medium.and_then(Value::as_str) {
        Some(m) if m.eq_ignore_ascii_case("cpu") => StorageTier::Host,
        _ => StorageTier::Device,
    }
}

fn decode_event(
    event: &Value,
    options: &DecodeOptions,
) -> Result<Option<(StorageTier, KvEventData)>, DecodeError> {
    let fields = Fields::of(event)?;
    Ok(match fields.tag {
        "BlockStored" => Some((
            tier(fields.get("medium", 5)),
            decode_stored(&fields, options)?,
        )),
        "BlockRemoved" => Some((
            tier(fields.get("medium", 1)),
            KvEventData::Removed {
                blocks: as_hashes(fields.get("block_hashes", 0))?,
            },
        )),
        "AllBlocksCleared" => Some((StorageTier::Device, KvEventData::Cleared)),
        // Unknown event kinds from newer engines are skipped, not fatal.
        _ => None,
    })
}

/// Decodes one msgpack `KVEventBatch` payload.
pub fn decode_batch(payload: &[u8], options: &DecodeOptions) -> Result<EngineBatch, DecodeError> {
    let value = rmpv::decode::read_value(&mut &payload[..])
        .map_err(|e| DecodeError::Msgpack(e.to_string()))?;
    let items = value
        .as_array()
        .ok_or(DecodeError::Layout("batch is not an array"))?;
    let timestamp = items
        .first()
        .and_then(Value::as_f64)
        .ok_or(DecodeError::Layout("timestamp"))?;
    let events = items
        .get(1)
        .and_then(Value::as_array)
        .ok_or(DecodeError::Layout("events"))?;
    let dp_rank = items.get(2).and_then(Value::as_u64).map(|r| r as u32);
    let (tiers, events) = events
        .iter()
        .filter_map(|e| decode_event(e, options).transpose())
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .unzip();
    Ok(EngineBatch {
        timestamp,
        dp_rank,
        events,
        tiers,
    })
}

#[cfg(test)]
mod tests;
