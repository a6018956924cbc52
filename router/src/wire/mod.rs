//! Decoding KV events published by real engines.
//!
//! * [`vllm`]: vLLM's (and SGLang's) msgpack batch format → [`crate::KvEventData`];
//! * [`stream`]: per-worker event ids and lost-batch detection over the ZMQ sequence numbers;
//! * `zmq_subscriber` (feature `zmq`): a ZeroMQ SUB socket feeding the two above.

pub mod stream;
pub mod vllm;
#[cfg(feature = "zmq")]
pub mod zmq_subscriber;

pub use stream::{EngineStream, StreamReport};
pub use vllm::{DecodeError, DecodeOptions, EngineBatch, decode_batch};
