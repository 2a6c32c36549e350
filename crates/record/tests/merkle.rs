//! The Merkle log against RFC 9162: known values, and for random logs every inclusion and
//! consistency proof verifies while any corrupted proof, root, index or size fails.

use adi_record::merkle::{
    consistency_proof, inclusion_proof, leaf_hash, node_hash, root, verify_consistency, verify_inclusion, Hash,
};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

fn leaves(n: usize) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&(i as u64).to_be_bytes())).collect()
}

#[test]
fn hashing_follows_rfc_9162() {
    // The empty tree, one leaf, and the split at the largest power of two below the size.
    assert_eq!(root(&[]), <[u8; 32]>::from(Sha256::digest([])));
    let mut expected_leaf = Sha256::new();
    expected_leaf.update([0u8]);
    expected_leaf.update(b"entry");
    assert_eq!(leaf_hash(b"entry"), <[u8; 32]>::from(expected_leaf.finalize()));
    let l = leaves(3);
    assert_eq!(root(&l[..1]), l[0]);
    assert_eq!(root(&l), node_hash(&node_hash(&l[0], &l[1]), &l[2]));
    let l = leaves(5);
    let left = node_hash(&node_hash(&l[0], &l[1]), &node_hash(&l[2], &l[3]));
    assert_eq!(root(&l), node_hash(&left, &l[4]));
    // The proofs of RFC 9162's example tree of 7 leaves (section 2.1.5); its g, h, i, j, k, l are
    // h, i, j, g, k, lnode here.
    let l = leaves(7);
    let (a, b, c, d, e, f, g) = (l[0], l[1], l[2], l[3], l[4], l[5], l[6]);
    let (h, i, j) = (node_hash(&a, &b), node_hash(&c, &d), node_hash(&e, &f));
    let (k, lnode) = (node_hash(&h, &i), node_hash(&j, &g));
    assert_eq!(inclusion_proof(&l, 0), vec![b, i, lnode]);
    assert_eq!(inclusion_proof(&l, 3), vec![c, h, lnode]);
    assert_eq!(inclusion_proof(&l, 4), vec![f, g, k]);
    assert_eq!(inclusion_proof(&l, 6), vec![j, k]);
    assert_eq!(consistency_proof(&l, 3), vec![c, d, h, lnode]);
    assert_eq!(consistency_proof(&l, 4), vec![lnode]);
    assert_eq!(consistency_proof(&l, 6), vec![j, g, k]);
    assert_eq!(consistency_proof(&l, 7), Vec::<Hash>::new());
}

fn flip(h: &mut Hash, bit: usize) {
    h[bit / 8 % 32] ^= 1 << (bit % 8);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn inclusion_proofs_verify_and_corrupted_ones_fail(n in 1usize..70, pick in any::<usize>(), bit in any::<usize>()) {
        let l = leaves(n);
        let r = root(&l);
        let index = pick % n;
        let proof = inclusion_proof(&l, index);
        prop_assert!(verify_inclusion(index as u64, n as u64, &l[index], &proof, &r).is_ok());
        // A changed proof hash, leaf, root, index or size fails.
        if !proof.is_empty() {
            let mut bad = proof.clone();
            let at = bit % bad.len();
            flip(&mut bad[at], bit);
            prop_assert!(verify_inclusion(index as u64, n as u64, &l[index], &bad, &r).is_err());
            let mut short = proof.clone();
            short.pop();
            prop_assert!(verify_inclusion(index as u64, n as u64, &l[index], &short, &r).is_err());
        }
        let mut longer = proof.clone();
        longer.push(r);
        prop_assert!(verify_inclusion(index as u64, n as u64, &l[index], &longer, &r).is_err());
        let mut leaf = l[index];
        flip(&mut leaf, bit);
        prop_assert!(verify_inclusion(index as u64, n as u64, &leaf, &proof, &r).is_err());
        let mut bad_root = r;
        flip(&mut bad_root, bit);
        prop_assert!(verify_inclusion(index as u64, n as u64, &l[index], &proof, &bad_root).is_err());
        if n > 1 {
            let other = (index + 1 + bit % (n - 1)) % n;
            prop_assert!(verify_inclusion(other as u64, n as u64, &l[index], &proof, &r).is_err());
        }
        prop_assert!(verify_inclusion(n as u64, n as u64, &l[index], &proof, &r).is_err());
    }

    #[test]
    fn consistency_proofs_verify_and_corrupted_ones_fail(n in 1usize..70, pick in any::<usize>(), bit in any::<usize>()) {
        let l = leaves(n);
        let m = 1 + pick % n;
        let (old, new) = (root(&l[..m]), root(&l));
        let proof = consistency_proof(&l, m);
        prop_assert!(verify_consistency(m as u64, n as u64, &old, &new, &proof).is_ok());
        // Each appended log is consistent with every earlier one, the empty log included.
        prop_assert!(verify_consistency(0, n as u64, &root(&[]), &new, &[]).is_ok());
        if !proof.is_empty() {
            let mut bad = proof.clone();
            let at = bit % bad.len();
            flip(&mut bad[at], bit);
            prop_assert!(verify_consistency(m as u64, n as u64, &old, &new, &bad).is_err());
            let mut short = proof.clone();
            short.pop();
            prop_assert!(verify_consistency(m as u64, n as u64, &old, &new, &short).is_err());
        }
        let mut bad_old = old;
        flip(&mut bad_old, bit);
        prop_assert!(verify_consistency(m as u64, n as u64, &bad_old, &new, &proof).is_err());
        let mut bad_new = new;
        flip(&mut bad_new, bit);
        prop_assert!(verify_consistency(m as u64, n as u64, &old, &bad_new, &proof).is_err());
        prop_assert!(verify_consistency(n as u64 + 1, n as u64, &new, &old, &proof).is_err());
        // A rewritten history: one entry of the old log changed, its new root proves nothing.
        let mut rewritten = l.clone();
        let at = bit % m;
        flip(&mut rewritten[at], bit);
        let forged_new = root(&rewritten);
        if m < n {
            prop_assert!(verify_consistency(m as u64, n as u64, &old, &forged_new, &consistency_proof(&rewritten, m)).is_err());
        }
    }
}
