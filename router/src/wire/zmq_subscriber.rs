//! ZeroMQ SUB side of vLLM's KV-event publisher (feature `zmq`, pure-Rust `zeromq`
//! crate, no system libzmq).
//!
//! vLLM sends multipart messages `[topic, sequence (8 bytes, big-endian), payload]`, where
//! `payload` is a msgpack `KVEventBatch` (see [`super::vllm`]).

use super::vllm::{DecodeError, DecodeOptions, EngineBatch, decode_batch};
use zeromq::{Socket, SocketRecv, SubSocket};

/// Why a message could not be received or decoded.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    /// The socket failed.
    #[error("zmq: {0}")]
    Zmq(#[from] zeromq::ZmqError),
    /// The message did not have the `[topic, sequence, payload]` shape.
    #[error("malformed message: {0}")]
    Frame(&'static str),
    /// The payload was not a valid batch.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// A subscription to one engine's KV-event stream.
pub struct KvEventSubscriber {
    socket: SubSocket,
    options: DecodeOptions,
}

impl KvEventSubscriber {
    /// Connects to `endpoint` (e.g. `tcp://127.0.0.1:5557`) and subscribes to `topic`
    /// (vLLM's default is the empty topic, i.e. everything).
    pub async fn connect(
        endpoint: &str,
        topic: &str,
        options: DecodeOptions,
    ) -> Result<Self, SubscribeError> {
        let mut socket = SubSocket::new();
        socket.connect(endpoint).await?;
        socket.subscribe(topic).await?;
        Ok(KvEventSubscriber { socket, options })
    }

    /// Waits for the next batch; returns the engine's sequence number and the batch.
    pub async fn next(&mut self) -> Result<(u64, EngineBatch), SubscribeError> {
        let message = self.socket.recv().await?;
        let frames: Vec<_> = message.into_vec();
        let (sequence, payload) = match frames.len() {
            3 => (&frames[1], &frames[2]),
            2 => (&frames[0], &frames[1]),
            _ => return Err(SubscribeError::Frame("expected [topic,] sequence, payload")),
        };
        let sequence: [u8; 8] = sequence
            .as_ref()
            .try_into()
            .map_err(|_| SubscribeError::Frame("sequence is not 8 bytes"))?;
        Ok((
            u64::from_be_bytes(sequence),
            decode_batch(payload, &self.options)?,
        ))
    }
}
