//! End to end over a real local ZeroMQ socket: a PUB socket sends vLLM-format msgpack
//! frames, our subscriber decodes them and the index answers overlap queries.

/// Without the feature there is no subscriber to test; say so instead of passing silently.
#[cfg(not(feature = "zmq"))]
#[test]
fn published_vllm_frames_reach_the_index() {
    test_support::skip(
        "zmq-feature",
        "the ZeroMQ subscriber needs `--features router/zmq`",
    );
}

#[cfg(feature = "zmq")]
mod with_zmq {

    use router::wire::zmq_subscriber::KvEventSubscriber;
    use router::wire::{DecodeOptions, EngineStream};
    use router::{Indexer, WorkerId, hash_prompt};
    use std::time::Duration;
    use zeromq::{PubSocket, Socket, SocketSend, ZmqMessage};

    fn stored_batch(hashes: &[i64], parent: Option<i64>, tokens: &[u32]) -> Vec<u8> {
        // Written with the low-level `rmp` encoder, field by field, as msgspec lays it out.
        let mut out = Vec::new();
        rmp::encode::write_array_len(&mut out, 3).unwrap();
        rmp::encode::write_f64(&mut out, 1_700_000_000.25).unwrap();
        rmp::encode::write_array_len(&mut out, 1).unwrap();
        rmp::encode::write_array_len(&mut out, 7).unwrap();
        rmp::encode::write_str(&mut out, "BlockStored").unwrap();
        rmp::encode::write_array_len(&mut out, hashes.len() as u32).unwrap();
        for &h in hashes {
            rmp::encode::write_sint(&mut out, h).unwrap();
        }
        match parent {
            Some(p) => rmp::encode::write_sint(&mut out, p).map(|_| ()).unwrap(),
            None => rmp::encode::write_nil(&mut out).unwrap(),
        }
        rmp::encode::write_array_len(&mut out, tokens.len() as u32).unwrap();
        for &t in tokens {
            rmp::encode::write_uint(&mut out, u64::from(t)).unwrap();
        }
        rmp::encode::write_uint(&mut out, 16).unwrap();
        rmp::encode::write_nil(&mut out).unwrap();
        rmp::encode::write_str(&mut out, "GPU").unwrap();
        rmp::encode::write_nil(&mut out).unwrap();
        out
    }

    fn message(topic: &str, sequence: u64, payload: Vec<u8>) -> ZmqMessage {
        let mut m = ZmqMessage::from(topic.to_string());
        m.push_back(sequence.to_be_bytes().to_vec().into());
        m.push_back(payload.into());
        m
    }

    #[tokio::test]
    async fn published_vllm_frames_reach_the_index() {
        let mut publisher = PubSocket::new();
        let endpoint = publisher.bind("tcp://127.0.0.1:0").await.expect("bind");
        let endpoint = endpoint.to_string();
        let mut subscriber =
            KvEventSubscriber::connect(&endpoint, "", DecodeOptions { block_size: 16 })
                .await
                .expect("connect");

        let tokens: Vec<u32> = (0..48).collect();
        let first = stored_batch(&[-1, 2], None, &tokens[..32]);
        let second = stored_batch(&[3], Some(2), &tokens[32..48]);
        // PUB drops messages until the subscription has propagated: resend the first batch
        // (same sequence number, deduplicated by the stream) until it arrives.
        let mut index = Indexer::new();
        let mut stream = EngineStream::new(5);
        let received = loop {
            publisher
                .send(message("", 0, first.clone()))
                .await
                .expect("send");
            if let Ok(got) =
                tokio::time::timeout(Duration::from_millis(100), subscriber.next()).await
            {
                break got.expect("decode");
            }
        };
        assert_eq!(received.0, 0);
        stream.ingest(&mut index, received.0, received.1);
        publisher.send(message("", 1, second)).await.expect("send");
        let (sequence, batch) = loop {
            let (sequence, batch) = tokio::time::timeout(Duration::from_secs(5), subscriber.next())
                .await
                .expect("second batch")
                .expect("decode");
            if sequence == 1 {
                break (sequence, batch);
            }
        };
        let report = stream.ingest(&mut index, sequence, batch);
        assert_eq!((report.applied, report.lost_batches), (1, None));
        let prompt = hash_prompt(&tokens, 16, None);
        assert_eq!(
            index.find_matches(&prompt.sequence).get(WorkerId::new(5)),
            3
        );
    }
}
