//! Optional shared-secret authentication of connections to the control listener.
//!
//! The listener opens every connection with a random challenge; the initiator answers with
//! HMAC-SHA256(secret, challenge ‖ target instance ‖ its agent name). Without the secret no
//! request on that connection is served, so on a shared network only agents that know it can
//! read or write registered memory. Off unless a secret is configured.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes in a proof.
pub const PROOF_LEN: usize = 32;

fn mac(secret: &[u8], nonce: u64, instance: u64, name: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(b"nixl-rs hello v1");
    mac.update(&nonce.to_le_bytes());
    mac.update(&instance.to_le_bytes());
    mac.update(name.as_bytes());
    mac
}

/// The initiator's answer to a challenge.
pub fn proof(secret: &[u8], nonce: u64, instance: u64, name: &str) -> [u8; PROOF_LEN] {
    mac(secret, nonce, instance, name)
        .finalize()
        .into_bytes()
        .into()
}

/// Checks an answer in constant time.
pub fn verify(secret: &[u8], nonce: u64, instance: u64, name: &str, proof: &[u8]) -> bool {
    mac(secret, nonce, instance, name)
        .verify_slice(proof)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_bind_secret_nonce_instance_and_name() {
        let p = proof(b"s3cret", 1, 2, "a");
        assert!(verify(b"s3cret", 1, 2, "a", &p));
        assert!(!verify(b"other", 1, 2, "a", &p));
        assert!(!verify(b"s3cret", 9, 2, "a", &p));
        assert!(!verify(b"s3cret", 1, 9, "a", &p));
        assert!(!verify(b"s3cret", 1, 2, "b", &p));
        assert!(!verify(b"s3cret", 1, 2, "a", &p[..31]));
    }
}
