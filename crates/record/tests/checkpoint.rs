//! Signed checkpoints and countersignatures: exact bytes, verification under the right key only,
//! and equivocation.

use adi_record::{Checkpoint, CheckpointError, Head, SignedCheckpoint};
use ed25519_dalek::{Signature, SigningKey, Verifier, VerifyingKey};

fn checkpoint(size: u64, root: u8) -> Checkpoint {
    Checkpoint { line: [7; 16], signer: "PH".into(), size, root: [root; 32], time_ms: 1_796_000_000_000, heads: None }
}

#[test]
fn a_signed_checkpoint_verifies_under_its_signers_key_only_and_travels_as_exact_bytes() {
    let (ph, cn) = (SigningKey::from_bytes(&[1; 32]), SigningKey::from_bytes(&[2; 32]));
    let signed = checkpoint(5, 9).sign(&ph).unwrap();
    signed.verify(&ph.verifying_key()).unwrap();
    assert_eq!(signed.verify(&cn.verifying_key()), Err(CheckpointError::BadSignature("PH".into())));

    let bytes = signed.to_bytes().unwrap();
    assert_eq!(bytes.len(), 16 + 1 + 2 + 8 + 32 + 8 + 64);
    assert_eq!(&bytes[..16], &[7; 16]);
    assert_eq!(&bytes[16..19], b"\x02PH");
    assert_eq!(&bytes[19..27], &5u64.to_be_bytes());
    assert_eq!(SignedCheckpoint::from_bytes(&bytes).unwrap(), signed);
    // Any changed byte breaks the signature or the encoding.
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x40;
        let ok = SignedCheckpoint::from_bytes(&bad).is_ok_and(|c| c.verify(&ph.verifying_key()).is_ok());
        assert!(!ok, "byte {i} changed and the checkpoint still verified");
    }
    assert!(SignedCheckpoint::from_bytes(&bytes[..bytes.len() - 1]).is_err());
}

#[test]
fn a_countersignature_binds_the_peer_to_the_exact_signed_checkpoint() {
    let (ph, cn) = (SigningKey::from_bytes(&[1; 32]), SigningKey::from_bytes(&[2; 32]));
    let signed = checkpoint(5, 9).sign(&ph).unwrap();
    let counter = signed.countersign(&cn).unwrap();
    signed.verify_countersignature("CN", &cn.verifying_key(), &counter).unwrap();
    assert!(signed.verify_countersignature("PH", &ph.verifying_key(), &counter).is_err());
    let other = checkpoint(5, 8).sign(&ph).unwrap();
    assert!(other.verify_countersignature("CN", &cn.verifying_key(), &counter).is_err());
}

#[test]
fn two_roots_for_one_size_are_equivocation() {
    let ph = SigningKey::from_bytes(&[1; 32]);
    let a = checkpoint(5, 9).sign(&ph).unwrap();
    assert!(a.equivocates_with(&checkpoint(5, 8).sign(&ph).unwrap()));
    assert!(!a.equivocates_with(&checkpoint(6, 8).sign(&ph).unwrap()), "another size is another tree");
    assert!(!a.equivocates_with(&a.clone()));
}

/// The identity point as a public key, and the signature (R the identity, s zero) that it
/// "verifies" for any message under non-strict verification.
fn identity_forgery() -> (VerifyingKey, [u8; 64]) {
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let key = VerifyingKey::from_bytes(&identity).expect("the identity point decodes");
    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(&identity);
    (key, signature)
}

#[test]
fn a_checkpoint_or_countersignature_under_the_identity_key_fails() {
    let (key, universal) = identity_forgery();
    // The forgery is real under plain verification, whatever is signed...
    let signed = SignedCheckpoint { checkpoint: checkpoint(5, 9), signature: universal };
    let message = [b"ADI-CHECKPOINT-V1\0".as_slice(), &signed.checkpoint.to_bytes().unwrap()].concat();
    assert!(key.verify(&message, &Signature::from_bytes(&universal)).is_ok());
    // ...and strict verification refuses it, as a checkpoint and as a countersignature.
    assert_eq!(signed.verify(&key), Err(CheckpointError::BadSignature("PH".into())));
    let genuine = checkpoint(5, 9).sign(&SigningKey::from_bytes(&[1; 32])).unwrap();
    assert_eq!(
        genuine.verify_countersignature("CN", &key, &universal),
        Err(CheckpointError::BadCountersignature("CN".into()))
    );
}

#[test]
fn a_checkpoint_of_version_2_commits_to_each_chains_head_and_travels_as_exact_bytes() {
    let ph = SigningKey::from_bytes(&[1; 32]);
    let heads =
        vec![Head { sender: "CN".into(), seq: 4, hash: [4; 32] }, Head { sender: "PH".into(), seq: 9, hash: [9; 32] }];
    let signed = Checkpoint { heads: Some(heads.clone()), ..checkpoint(13, 3) }.sign(&ph).unwrap();
    signed.verify(&ph.verifying_key()).unwrap();
    let bytes = signed.to_bytes().unwrap();
    assert!(bytes.starts_with(b"ADCP\x02"));
    let back = SignedCheckpoint::from_bytes(&bytes).unwrap();
    assert_eq!(back, signed);
    assert_eq!(back.checkpoint.heads, Some(heads.clone()));
    // Any changed byte breaks the signature or the encoding: a head cannot be moved.
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x40;
        let ok = SignedCheckpoint::from_bytes(&bad).is_ok_and(|c| c.verify(&ph.verifying_key()).is_ok());
        assert!(!ok, "byte {i} changed and the checkpoint still verified");
    }
    // The same statement signed as version 1 is another signature: one cannot stand for the other.
    let v1 = checkpoint(13, 3).sign(&ph).unwrap();
    let swapped = SignedCheckpoint { checkpoint: signed.checkpoint.clone(), signature: v1.signature };
    assert!(swapped.verify(&ph.verifying_key()).is_err());
    // Heads out of order, or a sender named twice, are refused.
    let unordered = Checkpoint { heads: Some(heads.into_iter().rev().collect()), ..checkpoint(13, 3) };
    assert!(matches!(unordered.sign(&ph), Err(CheckpointError::BadHeads(_))));
    // The heads of a log: each sender's envelope of the highest sequence number.
    let entries = [([1; 32], "PH", 1), ([2; 32], "CN", 1), ([3; 32], "PH", 2), ([5; 32], "CN", 2)];
    let found = adi_record::checkpoint::heads(entries.iter().map(|(h, s, q)| (h, *s, *q)));
    assert_eq!(
        found,
        [Head { sender: "CN".into(), seq: 2, hash: [5; 32] }, Head { sender: "PH".into(), seq: 2, hash: [3; 32] }]
    );
}
