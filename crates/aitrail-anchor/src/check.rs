//! Checking a log against an anchored checkpoint: the note must be signed by the log's key
//! (C2SP signed-note), and the log's current tree must extend the anchored one, shown by an
//! RFC 6962 consistency proof (RFC 6962 §2.1.2, verified by RFC 9162 §2.1.4.2).
//!
//! The proof may come from an untrusted source (the store's kept nodes): it is only accepted
//! when it links the anchored root to the log's root recomputed from the entries, which
//! nobody can fake without a SHA-256 collision.

use aitrail_core::checkpoint::{Checkpoint, Verifier};
use aitrail_core::merkle::{verify_consistency, Hash};

/// What an anchored checkpoint says about the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The log's tree extends the anchored checkpoint.
    Consistent(Checkpoint),
    /// The anchored note is not a checkpoint signed by the log's key (or not for this log).
    BadNote(String),
    /// The anchored checkpoint covers entries the log no longer has.
    Truncated {
        checkpoint: Checkpoint,
        log_size: u64,
    },
    /// The log's tree does not contain the anchored tree: entries it covers were changed.
    Rewritten {
        checkpoint: Checkpoint,
        detail: String,
    },
}

impl Verdict {
    /// The checkpoint the note carries, when its signature verified.
    pub fn checkpoint(&self) -> Option<&Checkpoint> {
        match self {
            Verdict::Consistent(cp)
            | Verdict::Truncated { checkpoint: cp, .. }
            | Verdict::Rewritten { checkpoint: cp, .. } => Some(cp),
            Verdict::BadNote(_) => None,
        }
    }
}

/// Checks `note` against the log whose first `log_size` entries hash to `log_root`.
/// `proof(from, to)` gives the consistency proof between two tree sizes (0 < from < to).
/// Without a `verifier` (no key at hand) the note's signature is not checked.
pub fn check(
    note: &str,
    verifier: Option<&Verifier>,
    log_size: u64,
    log_root: &Hash,
    proof: &mut dyn FnMut(u64, u64) -> Result<Vec<Hash>, String>,
) -> Verdict {
    let opened = match verifier {
        Some(v) => Checkpoint::open(note, v).map_err(|e| {
            format!(
                "not a checkpoint signed by the log's key {}: {e}",
                v.to_vkey()
            )
        }),
        None => crate::note_checkpoint(note).map_err(|e| e.to_string()),
    };
    let checkpoint = match opened {
        Ok(cp) => cp,
        Err(e) => return Verdict::BadNote(e),
    };
    let size = checkpoint.size;
    if size > log_size {
        return Verdict::Truncated {
            checkpoint,
            log_size,
        };
    }
    let path = if size == 0 || size == log_size {
        Vec::new()
    } else {
        match proof(size, log_size) {
            Ok(p) => p,
            Err(e) => {
                return Verdict::Rewritten {
                    checkpoint,
                    detail: format!(
                        "no consistency proof from size {size} to {log_size} could be built: {e}"
                    ),
                }
            }
        }
    };
    match verify_consistency(size, log_size, &checkpoint.root, log_root, &path) {
        Ok(()) => Verdict::Consistent(checkpoint),
        Err(e) => Verdict::Rewritten {
            checkpoint,
            detail: format!("the consistency proof from size {size} to {log_size} fails: {e}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aitrail_core::checkpoint::Signer;
    use aitrail_core::merkle::{consistency_proof, leaf_hash, MemoryTree};

    fn tree(leaves: &[&str]) -> MemoryTree {
        let mut t = MemoryTree::new();
        for l in leaves {
            t.push(leaf_hash(l.as_bytes()));
        }
        t
    }

    fn note_of(signer: &Signer, t: &MemoryTree) -> String {
        Checkpoint {
            origin: signer.name.clone(),
            size: t.size(),
            root: t.root(),
        }
        .sign(signer)
        .unwrap()
    }

    fn run(note: &str, v: &Verifier, log: &mut MemoryTree) -> Verdict {
        let (size, root) = (log.size(), log.root());
        check(note, Some(v), size, &root, &mut |a, b| {
            consistency_proof(log, a, b).map_err(|e| e.to_string())
        })
    }

    #[test]
    fn verdicts() {
        let s = Signer::from_seed("example.com/log", [9; 32]).unwrap();
        let v = s.verifier();
        let anchored = note_of(&s, &tree(&["a", "b", "c"]));
        // The log grew: consistent, whatever the sizes.
        for grown in [
            vec!["a", "b", "c"],
            vec!["a", "b", "c", "d"],
            vec!["a", "b", "c", "d", "e", "f", "g", "h", "i"],
        ] {
            assert!(matches!(
                run(&anchored, &v, &mut tree(&grown)),
                Verdict::Consistent(_)
            ));
        }
        // "b" rewritten, even with the log re-signed by the same key.
        let rewritten = run(&anchored, &v, &mut tree(&["a", "B", "c", "d"]));
        assert!(
            matches!(&rewritten, Verdict::Rewritten { checkpoint, .. } if checkpoint.size == 3),
            "{rewritten:?}"
        );
        assert!(matches!(
            run(&anchored, &v, &mut tree(&["a", "B", "c"])),
            Verdict::Rewritten { .. }
        ));
        // Truncated below the anchored size.
        assert!(matches!(
            run(&anchored, &v, &mut tree(&["a", "b"])),
            Verdict::Truncated { log_size: 2, .. }
        ));
        // A note by another key, or edited, is not evidence.
        let other = Signer::from_seed("example.com/log", [8; 32]).unwrap();
        let forged = note_of(&other, &tree(&["a", "b", "c"]));
        assert!(matches!(
            run(&forged, &v, &mut tree(&["a", "b", "c"])),
            Verdict::BadNote(_)
        ));
        let edited = anchored.replace("\n3\n", "\n2\n");
        assert!(matches!(
            run(&edited, &v, &mut tree(&["a", "b", "c"])),
            Verdict::BadNote(_)
        ));
    }

    #[test]
    fn a_proof_that_cannot_be_built_is_a_rewrite() {
        let s = Signer::from_seed("example.com/log", [9; 32]).unwrap();
        let anchored = note_of(&s, &tree(&["a", "b"]));
        let log = tree(&["a", "b", "c"]);
        let verdict = check(
            &anchored,
            Some(&s.verifier()),
            3,
            &log.root(),
            &mut |_, _| Err("node missing".into()),
        );
        assert!(
            matches!(&verdict, Verdict::Rewritten { detail, .. } if detail.contains("node missing")),
            "{verdict:?}"
        );
    }
}
