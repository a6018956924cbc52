//! Optional shared-secret authentication of connections, to the control listener (data path)
//! and to the metadata listener.
//!
//! A listener opens every connection with a random challenge; the caller answers with
//! HMAC-SHA256(secret, context ‖ challenge ‖ target id ‖ its name). Without the secret nothing
//! on that connection is served, so on a shared network only agents that know it can read or
//! write registered memory or change what an agent believes about its peers. Off unless a
//! secret is configured (`NIXL_RS_SECRET` or `AgentConfig::auth_secret`).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes in a proof.
pub const PROOF_LEN: usize = 32;

/// What a proof is for, so one cannot be replayed as the other.
#[derive(Clone, Copy)]
pub enum Context {
    /// A data-path (control listener) connection.
    Data,
    /// A metadata-listener connection.
    Metadata,
    /// A message sent without a connection handshake (the LIBFABRIC backend's
    /// notifications): the proof covers the message itself, see [`tag`].
    Message,
}

fn mac(ctx: Context, secret: &[u8], nonce: u64, instance: u64, name: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(match ctx {
        Context::Data => b"nixl-rs hello v1",
        Context::Metadata => b"nixl-rs md v1\0\0\0",
        Context::Message => b"nixl-rs msg v1\0\0",
    });
    mac.update(&nonce.to_le_bytes());
    mac.update(&instance.to_le_bytes());
    mac.update(name.as_bytes());
    mac
}

/// The initiator's answer to a challenge.
pub fn proof(
    ctx: Context,
    secret: &[u8],
    nonce: u64,
    instance: u64,
    name: &str,
) -> [u8; PROOF_LEN] {
    mac(ctx, secret, nonce, instance, name)
        .finalize()
        .into_bytes()
        .into()
}

/// Checks an answer in constant time.
pub fn verify(
    ctx: Context,
    secret: &[u8],
    nonce: u64,
    instance: u64,
    name: &str,
    proof: &[u8],
) -> bool {
    mac(ctx, secret, nonce, instance, name)
        .verify_slice(proof)
        .is_ok()
}

/// A message's proof: HMAC-SHA256(secret, context ‖ sequence ‖ instance ‖ each part with its
/// length), so that no part can be shifted into its neighbour.
pub fn tag(secret: &[u8], seq: u64, instance: u64, parts: &[&[u8]]) -> [u8; PROOF_LEN] {
    message_mac(secret, seq, instance, parts)
        .finalize()
        .into_bytes()
        .into()
}

/// Checks a message's proof in constant time.
pub fn verify_tag(secret: &[u8], seq: u64, instance: u64, parts: &[&[u8]], tag: &[u8]) -> bool {
    message_mac(secret, seq, instance, parts)
        .verify_slice(tag)
        .is_ok()
}

fn message_mac(secret: &[u8], seq: u64, instance: u64, parts: &[&[u8]]) -> Hmac<Sha256> {
    let mut mac = mac(Context::Message, secret, seq, instance, "");
    for p in parts {
        mac.update(&(p.len() as u64).to_le_bytes());
        mac.update(p);
    }
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_bind_secret_nonce_instance_and_name() {
        use Context::{Data, Metadata};
        let p = proof(Data, b"s3cret", 1, 2, "a");
        assert!(verify(Data, b"s3cret", 1, 2, "a", &p));
        assert!(
            !verify(Metadata, b"s3cret", 1, 2, "a", &p),
            "not valid in another context"
        );
        assert!(!verify(Data, b"other", 1, 2, "a", &p));
        assert!(!verify(Data, b"s3cret", 9, 2, "a", &p));
        assert!(!verify(Data, b"s3cret", 1, 9, "a", &p));
        assert!(!verify(Data, b"s3cret", 1, 2, "b", &p));
        assert!(!verify(Data, b"s3cret", 1, 2, "a", &p[..31]));
    }

    #[test]
    fn message_tags_bind_every_part_and_its_boundaries() {
        let t = tag(b"k", 5, 6, &[b"ab", b"c"]);
        assert!(verify_tag(b"k", 5, 6, &[b"ab", b"c"], &t));
        assert!(
            !verify_tag(b"k", 5, 6, &[b"a", b"bc"], &t),
            "boundary moved"
        );
        assert!(!verify_tag(b"k", 4, 6, &[b"ab", b"c"], &t));
        assert!(!verify_tag(b"k", 5, 7, &[b"ab", b"c"], &t));
        assert!(!verify_tag(b"j", 5, 6, &[b"ab", b"c"], &t));
        assert!(
            !verify(Context::Message, b"k", 5, 6, "", &t),
            "not a handshake proof"
        );
    }
}
