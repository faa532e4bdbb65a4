//! The scenarios every anchor must pass, each a function of `&dyn Anchor` (the object_store
//! integration pattern): a new anchor is done when its test in `main.rs` runs them all.
//! Each scenario uses logs of its own, so one anchor instance can run them all.

use aitrail_anchor::{Anchor, AnchorError};
use aitrail_core::checkpoint::{Checkpoint, Signer};

/// The key every scenario signs with, and a second key under the same name.
pub fn signer(seed: u8) -> Signer {
    Signer::from_seed("test.example/anchor-suite", [seed; 32]).unwrap()
}

/// A signed checkpoint of `size` with a root derived from it.
pub fn note(signer: &Signer, size: u64) -> String {
    Checkpoint {
        origin: signer.name.clone(),
        size,
        root: [size as u8; 32],
    }
    .sign(signer)
    .unwrap()
}

fn log_name(scenario: &str) -> String {
    format!("{scenario}-{}", crate::servers::unique())
}

/// Runs every scenario against `anchor`.
pub fn run_all(anchor: &dyn Anchor) {
    put_then_list_returns_the_note(anchor);
    the_same_note_again_writes_nothing(anchor);
    notes_are_listed_smallest_tree_first(anchor);
    logs_are_kept_apart(anchor);
    another_note_for_the_same_tree_is_refused(anchor);
    what_is_not_a_checkpoint_is_refused(anchor);
}

pub fn put_then_list_returns_the_note(anchor: &dyn Anchor) {
    let log = log_name("put");
    let n = note(&signer(1), 3);
    let receipt = anchor.put(&log, &n).unwrap();
    assert!(receipt.created, "{}: first put must write", anchor.name());
    let listed = anchor.list(&log).unwrap();
    assert_eq!(listed.len(), 1, "{}: {listed:?}", anchor.name());
    assert_eq!(listed[0].note, n);
    assert_eq!(listed[0].location, receipt.location);
    assert_eq!(listed[0].fault, None);
    assert_eq!(listed[0].timestamp, receipt.timestamp);
}

pub fn the_same_note_again_writes_nothing(anchor: &dyn Anchor) {
    let log = log_name("again");
    let n = note(&signer(1), 5);
    let first = anchor.put(&log, &n).unwrap();
    let second = anchor.put(&log, &n).unwrap();
    assert!(
        !second.created,
        "{}: a second put wrote again",
        anchor.name()
    );
    assert_eq!(second.location, first.location);
    assert_eq!(anchor.list(&log).unwrap().len(), 1);
}

pub fn notes_are_listed_smallest_tree_first(anchor: &dyn Anchor) {
    let log = log_name("order");
    let s = signer(1);
    for size in [10, 2, 7, 100] {
        anchor.put(&log, &note(&s, size)).unwrap();
    }
    let sizes: Vec<u64> = anchor
        .list(&log)
        .unwrap()
        .iter()
        .map(|a| aitrail_anchor::note_checkpoint(&a.note).unwrap().size)
        .collect();
    assert_eq!(sizes, [2, 7, 10, 100], "{}", anchor.name());
}

pub fn logs_are_kept_apart(anchor: &dyn Anchor) {
    let (a, b, c) = (log_name("a"), log_name("b"), log_name("c"));
    let s = signer(1);
    anchor.put(&a, &note(&s, 1)).unwrap();
    anchor.put(&b, &note(&s, 2)).unwrap();
    let listed = anchor.list(&a).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].note, note(&s, 1));
    assert!(anchor.list(&c).unwrap().is_empty(), "{}", anchor.name());
}

pub fn another_note_for_the_same_tree_is_refused(anchor: &dyn Anchor) {
    // Same origin, size and root, signed by another key: the same name, other bytes.
    let log = log_name("conflict");
    let first = note(&signer(1), 4);
    let other = note(&signer(2), 4);
    assert_ne!(first, other);
    anchor.put(&log, &first).unwrap();
    let err = anchor.put(&log, &other).unwrap_err();
    assert!(
        matches!(err, AnchorError::Conflict { .. }),
        "{}: {err}",
        anchor.name()
    );
    assert!(err.to_string().contains("never overwritten"), "{err}");
    let listed = anchor.list(&log).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].note,
        first,
        "{}: the first note must stay",
        anchor.name()
    );
}

pub fn what_is_not_a_checkpoint_is_refused(anchor: &dyn Anchor) {
    let err = anchor.put(&log_name("junk"), "hello\n").unwrap_err();
    assert!(
        matches!(err, AnchorError::BadNote(_)),
        "{}: {err}",
        anchor.name()
    );
    let n = note(&signer(1), 1);
    for bad in ["../escape", "a/b", ".hidden", ""] {
        let err = anchor.put(bad, &n).unwrap_err();
        assert!(matches!(err, AnchorError::LogName(_)), "{bad:?}: {err}");
        assert!(matches!(anchor.list(bad), Err(AnchorError::LogName(_))));
    }
}
