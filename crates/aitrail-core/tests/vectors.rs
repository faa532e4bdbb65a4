//! Third-party vectors (tests/data, each folder with its SOURCE.txt) and property tests
//! against a naive reference. A new vector file gets a test here; a new property goes with
//! the others at the end.

use aitrail_core::canonical::canonicalize_str;
use aitrail_core::checkpoint::{open_note, Checkpoint, Signer, Verifier};
use aitrail_core::merkle::{
    consistency_proof, empty_root, inclusion_proof, leaf_hash, node_hash, root_at,
    root_from_inclusion, verify_consistency, verify_inclusion, Frontier, Hash, MemoryTree,
};
use proptest::prelude::*;
use serde_json::Value;
use std::path::PathBuf;

fn data(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

fn h(s: &str) -> Hash {
    aitrail_core::hexser::parse(s).unwrap()
}

// ---- RFC 8785 (jcs/) ----

#[test]
fn jcs_vectors_canonicalize_exactly() {
    let mut n = 0;
    for entry in std::fs::read_dir(data("jcs/testdata/input")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let input = std::fs::read_to_string(&path).unwrap();
        let want = std::fs::read(data(&format!("jcs/testdata/output/{name}"))).unwrap();
        let got = canonicalize_str(&input).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "{name}"
        );
        let outhex = std::fs::read_to_string(data(&format!(
            "jcs/testdata/outhex/{}",
            name.replace(".json", ".txt")
        )))
        .unwrap();
        let hexbytes: String = outhex.split_whitespace().collect();
        assert_eq!(hex::encode(&got), hexbytes, "{name} (outhex)");
        n += 1;
    }
    assert_eq!(n, 6);
}

// ---- RFC 6962 (rfc6962/) ----

fn standard() -> (Value, Vec<Hash>) {
    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(data("rfc6962/standard-vectors.json")).unwrap(),
    )
    .unwrap();
    let leaves = v["leaves_hex"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| leaf_hash(&hex::decode(l.as_str().unwrap()).unwrap()))
        .collect();
    (v, leaves)
}

#[test]
fn rfc6962_roots_for_every_size() {
    let (v, leaves) = standard();
    let mut tree = MemoryTree::new();
    assert_eq!(
        hex::encode(tree.root()),
        v["roots_by_size"]["0"].as_str().unwrap()
    );
    assert_eq!(tree.root(), empty_root());
    for (i, leaf) in leaves.iter().enumerate() {
        tree.push(*leaf);
        let size = i + 1;
        let want = v["roots_by_size"][size.to_string()].as_str().unwrap();
        assert_eq!(hex::encode(tree.root()), want, "size {size}");
        assert_eq!(
            hex::encode(root_at(&mut tree, size as u64).unwrap()),
            want,
            "root_at {size}"
        );
    }
    let roots = std::fs::read_to_string(data("rfc6962/roots.txt")).unwrap();
    for line in roots.lines().filter(|l| !l.starts_with('#')) {
        let (size, root) = line.split_once(' ').unwrap();
        assert_eq!(
            hex::encode(root_at(&mut tree, size.parse().unwrap()).unwrap()),
            root
        );
    }
}

#[test]
fn rfc6962_inclusion_vectors() {
    let (v, leaves) = standard();
    let mut tree = MemoryTree::new();
    leaves.iter().for_each(|l| tree.push(*l));
    for case in v["inclusion"].as_array().unwrap() {
        let index = case["leaf_index_0based"].as_u64().unwrap();
        let size = case["tree_size"].as_u64().unwrap();
        let proof: Vec<Hash> = case["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| h(p.as_str().unwrap()))
            .collect();
        let root = h(case["root"].as_str().unwrap());
        let leaf = h(case["leaf_hash"].as_str().unwrap());
        assert_eq!(
            inclusion_proof(&mut tree, index, size).unwrap(),
            proof,
            "generate {index}/{size}"
        );
        verify_inclusion(index, size, &leaf, &proof, &root).unwrap();
        let mut bad = proof.clone();
        if let Some(first) = bad.first_mut() {
            first[0] ^= 1;
            assert!(verify_inclusion(index, size, &leaf, &bad, &root).is_err());
        }
    }
}

#[test]
fn rfc6962_consistency_vectors() {
    let (v, leaves) = standard();
    let mut tree = MemoryTree::new();
    leaves.iter().for_each(|l| tree.push(*l));
    for case in v["consistency"].as_array().unwrap() {
        let (m, n) = (
            case["size1"].as_u64().unwrap(),
            case["size2"].as_u64().unwrap(),
        );
        let proof: Vec<Hash> = case["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| h(p.as_str().unwrap()))
            .collect();
        let (r1, r2) = (
            h(case["root1"].as_str().unwrap()),
            h(case["root2"].as_str().unwrap()),
        );
        assert_eq!(
            consistency_proof(&mut tree, m, n).unwrap(),
            proof,
            "generate {m}->{n}"
        );
        verify_consistency(m, n, &r1, &r2, &proof).unwrap();
        if !proof.is_empty() {
            let mut bad = proof.clone();
            bad.pop();
            assert!(verify_consistency(m, n, &r1, &r2, &bad).is_err());
        }
    }
}

// ---- C2SP signed-note (signed-note/) ----

/// (vkey, note) pairs from vectors.txt.
fn note_vectors() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(data("signed-note/vectors.txt")).unwrap();
    text.split("=== vkey: ")
        .skip(1)
        .map(|block| {
            let (vkey, note) = block.split_once('\n').unwrap();
            // Notes are separated by one blank line after the signature line.
            let note = note.trim_end_matches('\n').to_owned() + "\n";
            (vkey.to_owned(), note)
        })
        .collect()
}

#[test]
fn signed_note_vectors_verify() {
    let vectors = note_vectors();
    assert_eq!(vectors.len(), 3);
    for (vkey, note) in &vectors {
        let v = Verifier::parse(vkey).unwrap();
        assert_eq!(&v.to_vkey(), vkey);
        let body = open_note(note, &v).unwrap();
        assert!(note.starts_with(body));
        let tampered = note.replacen("is", "was", 1);
        assert!(open_note(&tampered, &v).is_err(), "{vkey}");
    }
    // A valid signature by another key does not count.
    let other = Verifier::parse(&vectors[1].0).unwrap();
    assert!(open_note(&vectors[0].1, &other).is_err());
}

#[test]
fn signed_note_signer_key_reproduces_signature() {
    let text = std::fs::read_to_string(data("signed-note/vectors.txt")).unwrap();
    let skey = text
        .lines()
        .find_map(|l| l.split_once("signer key (from note_test.go TestSign): "))
        .unwrap()
        .1;
    let signer = Signer::parse(skey).unwrap();
    let (vkey, note) = &note_vectors()[0];
    assert_eq!(&signer.verifier().to_vkey(), vkey);
    assert_eq!(signer.to_skey(), skey);
    let body = &note[..note.rfind("\n\n").unwrap() + 1];
    // Ed25519 is deterministic: signing the same text gives the published note.
    assert_eq!(&signer.sign_note(body).unwrap(), note);
}

#[test]
fn checkpoint_layout_matches_c2sp_example() {
    let text = std::fs::read_to_string(data("signed-note/c2sp-format-examples.txt")).unwrap();
    let example = text
        .split("--- tlog-checkpoint.md example ---\n")
        .nth(1)
        .unwrap();
    let body = &example[..example.find("\n\n").unwrap() + 1];
    let cp = Checkpoint::parse_body(body).unwrap();
    assert_eq!(
        (cp.origin.as_str(), cp.size),
        ("example.com/behind-the-sofa", 20852163)
    );
    assert_eq!(cp.body(), body);
}

// ---- Properties against a naive reference ----

/// MTH by the recursive definition of RFC 6962 §2.1, straight from the leaves.
fn naive_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = 1 << (usize::BITS - 1 - (n - 1).leading_zeros());
            node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
        }
    }
}

fn leaves(n: usize) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(format!("entry {i}").as_bytes()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn tree_matches_naive_reference(size in 0usize..=300, a in 0usize..300, b in 0usize..300) {
        let all = leaves(size);
        let mut tree = MemoryTree::new();
        let mut frontier = Frontier::new();
        for l in &all {
            tree.push(*l);
            frontier.push(*l, |_, _, _| {});
        }
        let root = naive_root(&all);
        prop_assert_eq!(tree.root(), root);
        prop_assert_eq!(frontier.root(), root);
        prop_assert_eq!(root_at(&mut tree, size as u64).unwrap(), root);
        if size > 0 {
            // Inclusion: generated proofs verify, lead to the naive root, and fail elsewhere.
            let i = (a % size) as u64;
            let path = inclusion_proof(&mut tree, i, size as u64).unwrap();
            prop_assert_eq!(root_from_inclusion(i, size as u64, &all[i as usize], &path).unwrap(), root);
            let wrong = leaf_hash(b"not in the tree");
            prop_assert!(verify_inclusion(i, size as u64, &wrong, &path, &root).is_err());
            // Consistency between any two sizes, against naive roots of both.
            let (m, n) = {
                let (x, y) = (a % size + 1, b % size + 1);
                (x.min(y), x.max(y))
            };
            let proof = consistency_proof(&mut tree, m as u64, n as u64).unwrap();
            let (r1, r2) = (naive_root(&all[..m]), naive_root(&all[..n]));
            prop_assert!(verify_consistency(m as u64, n as u64, &r1, &r2, &proof).is_ok());
            if m < n {
                prop_assert!(verify_consistency(m as u64, n as u64, &r1, &naive_root(&all[1..n]), &proof).is_err());
            }
            // The frontier rebuilt from stored nodes is the same as the one grown by appends.
            let rebuilt = Frontier::from_source(&mut tree, size as u64).unwrap();
            prop_assert_eq!(rebuilt, frontier);
        }
    }
}

/// Arbitrary JSON: strings with any characters, integers and doubles of every size.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| serde_json::json!(i)),
        any::<u64>().prop_map(|u| serde_json::json!(u)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| serde_json::json!(f)),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn canonical_matches_reference_crate(v in json_value()) {
        let ours = aitrail_core::canonical::to_canonical(&v).unwrap();
        let reference = serde_json_canonicalizer::to_vec(&v).unwrap();
        prop_assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(reference).unwrap());
    }
}

proptest! {
    /// Entry bytes parsed back and canonicalized again give the same bytes: duplicate
    /// detection and verification depend on it (it needs exact float parsing).
    #[test]
    fn canonical_bytes_survive_a_reparse(v in json_value()) {
        let once = aitrail_core::canonical::to_canonical(&v).unwrap();
        let back: Value = serde_json::from_slice(&once).unwrap();
        prop_assert_eq!(aitrail_core::canonical::to_canonical(&back).unwrap(), once);
    }
}
