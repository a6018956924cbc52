use super::*;
use crate::hashing::{hash_blocks, hash_prompt};
use crate::index::Indexer;
use crate::wire::EngineStream;
use crate::worker::WorkerId;

fn s(text: &str) -> Value {
    Value::from(text)
}

fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, value).unwrap();
    out
}

fn batch(events: Vec<Value>, dp_rank: Value) -> Vec<u8> {
    encode(&Value::Array(vec![
        Value::F64(1.5),
        Value::Array(events),
        dp_rank,
    ]))
}

fn tokens(n: u32) -> Vec<u32> {
    (100..100 + n).collect()
}

fn token_values(tokens: &[u32]) -> Value {
    Value::Array(tokens.iter().map(|&t| Value::from(t)).collect())
}

const OPTIONS: DecodeOptions = DecodeOptions { block_size: 4 };

#[test]
fn decodes_every_variant_of_the_tuple_form() {
    let t = tokens(10); // two full blocks + a partial one the engine never announces
    let stored = Value::Array(vec![
        s("BlockStored"),
        Value::Array(vec![Value::from(-5i64), Value::from(u64::MAX - 1)]),
        Value::Nil,
        token_values(&t[..8]),
        Value::from(4),
        Value::Nil,
        s("GPU"),
    ]);
    let lora_stored = Value::Array(vec![
        s("BlockStored"),
        Value::Array(vec![Value::from(7)]),
        Value::from(-5i64),
        token_values(&t[4..8]),
        Value::from(4),
        Value::Nil,
        s("GPU"),
        s("my-adapter"),
        Value::Nil,
    ]);
    let removed = Value::Array(vec![
        s("BlockRemoved"),
        Value::Array(vec![Value::from(7)]),
        s("CPU"),
    ]);
    let cleared = Value::Array(vec![s("AllBlocksCleared")]);
    let unknown = Value::Array(vec![s("SomethingNew"), Value::from(1)]);
    let payload = batch(
        vec![stored, lora_stored, removed, cleared, unknown],
        Value::from(3),
    );
    let decoded = decode_batch(&payload, &OPTIONS).unwrap();
    use StorageTier::{Device, Host};
    assert_eq!(
        decoded.tiers,
        vec![Device, Device, Host, Device],
        "the medium names the tier"
    );
    assert_eq!(decoded.timestamp, 1.5);
    assert_eq!(decoded.dp_rank, Some(3));
    assert_eq!(decoded.events.len(), 4);
    let expected = hash_blocks(&t[..8], 4, None);
    let KvEventData::Stored { parent, blocks } = &decoded.events[0] else {
        panic!()
    };
    assert_eq!(*parent, None);
    assert_eq!(blocks[0].external, ExternalHash(-5i64 as u64));
    assert_eq!(blocks[1].external, ExternalHash(u64::MAX - 1));
    assert_eq!(
        blocks.iter().map(|b| b.tokens).collect::<Vec<_>>(),
        expected
    );
    let KvEventData::Stored { parent, blocks } = &decoded.events[1] else {
        panic!()
    };
    assert_eq!(*parent, Some(ExternalHash(-5i64 as u64)));
    assert_eq!(
        blocks[0].tokens,
        hash_blocks(&t[4..8], 4, Some("my-adapter"))[0]
    );
    assert_eq!(
        decoded.events[2],
        KvEventData::Removed {
            blocks: vec![ExternalHash(7)]
        }
    );
    assert_eq!(decoded.events[3], KvEventData::Cleared);
}

#[test]
fn decodes_map_events_and_bigram_tokens() {
    let t = tokens(9);
    let bigrams = Value::Array(
        t.windows(2)
            .map(|w| Value::Array(vec![w[0].into(), w[1].into()]))
            .collect(),
    );
    let event = Value::Map(vec![
        (s("type"), s("BlockStored")),
        (
            s("block_hashes"),
            Value::Array(vec![Value::from(1), Value::from(2)]),
        ),
        (s("parent_block_hash"), Value::Nil),
        (s("token_ids"), bigrams),
        (s("block_size"), Value::from(4)),
    ]);
    let decoded = decode_batch(&batch(vec![event], Value::Nil), &OPTIONS).unwrap();
    assert_eq!(decoded.dp_rank, None);
    let KvEventData::Stored { blocks, .. } = &decoded.events[0] else {
        panic!()
    };
    // Eagle windows are block_size + 1 tokens, advancing by block_size.
    let seed = crate::hashing::block_seed(None);
    assert_eq!(blocks[0].tokens, crate::hashing::hash_block(&t[0..5], seed));
    assert_eq!(blocks[1].tokens, crate::hashing::hash_block(&t[4..9], seed));
}

#[test]
fn rejects_garbage_and_drops_self_referencing_stores() {
    assert!(matches!(
        decode_batch(&[0x93, 0xcb], &OPTIONS),
        Err(DecodeError::Msgpack(_))
    ));
    assert_eq!(
        decode_batch(&encode(&Value::from(3)), &OPTIONS),
        Err(DecodeError::Layout("batch is not an array"))
    );
    let cyclic = Value::Array(vec![
        s("BlockStored"),
        Value::Array(vec![Value::from(9)]),
        Value::from(9),
        token_values(&tokens(4)),
        Value::from(4),
    ]);
    let decoded = decode_batch(&batch(vec![cyclic], Value::Nil), &OPTIONS).unwrap();
    assert_eq!(
        decoded.events,
        vec![KvEventData::Removed { blocks: vec![] }]
    );
}

#[test]
fn stream_indexes_batches_and_reports_lost_ones() {
    let t = tokens(8);
    let store = |hashes: Vec<Value>, parent: Value, toks: &[u32]| {
        Value::Array(vec![
            s("BlockStored"),
            Value::Array(hashes),
            parent,
            token_values(toks),
            Value::from(4),
        ])
    };
    let mut index = Indexer::new();
    let mut stream = EngineStream::new(11);
    let first = decode_batch(
        &batch(vec![store(vec![1.into()], Value::Nil, &t[..4])], Value::Nil),
        &OPTIONS,
    )
    .unwrap();
    let second = decode_batch(
        &batch(vec![store(vec![2.into()], 1.into(), &t[4..])], Value::Nil),
        &OPTIONS,
    )
    .unwrap();
    assert_eq!(stream.ingest(&mut index, 0, first.clone()).applied, 1);
    let report = stream.ingest(&mut index, 3, second);
    assert_eq!(report.lost_batches, Some(1..3));
    assert_eq!(
        stream.ingest(&mut index, 2, first).applied,
        0,
        "late replays are ignored"
    );
    let prompt = hash_prompt(&t, 4, None);
    assert_eq!(
        index.find_matches(&prompt.sequence).get(WorkerId::new(11)),
        2
    );
}
