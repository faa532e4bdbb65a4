//! Subjects' data keys: the key table outside the chain, and what is built on it (shared by
//! every backend): creating a subject's key before the events that use it commit, opening
//! sealed content for readers, and erasure by destroying the key (crypto-shredding).
//!
//! The key table is the one place where aitrail deletes: an erasure deletes the subject's
//! row, and the backend scrubs what the deletion left behind (SQLite: secure_delete and a
//! WAL checkpoint(TRUNCATE); PostgreSQL: VACUUM of the table). The entries, whose hashes the
//! chain and the Merkle tree commit to, are never touched: their ciphertext simply has no
//! key any more, so `verify` still passes and readers see `{"erased": true}`.

use crate::audit::{Reader, AUDIT_TASK};
use crate::error::{Result, StoreError};
use crate::sequencer::Sequencer;
use crate::store::Store;
use aitrail_core::entry::{PreparedEvent, Receipt};
use aitrail_core::event::{format_time, Event, Origin};
use aitrail_core::pii::seal::{self, DataKey};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// A row of the key table: a subject's data key, wrapped under the tenant's key-encryption
/// key (`seal::wrap`), so the database alone does not open the content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredKey {
    pub subject_ref: String,
    /// Random, hex; a subject erased and seen again gets a new key with a new id.
    pub key_id: String,
    pub wrapped: Vec<u8>,
    /// Unix microseconds.
    pub created_at: i64,
}

/// What a backend did to destroy a key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shredded {
    /// The id of the key deleted, or None when the subject had no key.
    pub key_id: Option<String>,
    /// What could not be scrubbed, for the operator (empty when everything was).
    pub warnings: Vec<String>,
}

pub(crate) fn random<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b)
        .map_err(|e| StoreError::Commit(format!("no random bytes from the system: {e}")))?;
    Ok(b)
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn unwrap_row(kek: &[u8; 32], row: &StoredKey) -> Result<DataKey> {
    seal::unwrap(kek, &row.subject_ref, &row.key_id, &row.wrapped).ok_or_else(|| {
        StoreError::Corrupt(format!(
            "the key of subject {} does not open with this tenant key (another data directory's key, or an altered row)",
            row.subject_ref
        ))
    })
}

/// The data keys of `refs`, created (and committed) first for subjects without one. Runs
/// before the events that use them are appended; when that append is then refused, the new
/// keys stay behind unused, which is harmless (they seal nothing).
pub fn ensure_keys(
    store: &dyn Store,
    log: &str,
    kek: &[u8; 32],
    refs: &[String],
) -> Result<HashMap<String, DataKey>> {
    let mut refs = refs.to_vec();
    refs.sort_unstable();
    refs.dedup();
    let mut out = HashMap::with_capacity(refs.len());
    if refs.is_empty() {
        return Ok(out);
    }
    for row in store.subject_keys(log, &refs)? {
        out.insert(row.subject_ref.clone(), unwrap_row(kek, &row)?);
    }
    let missing: Vec<&String> = refs.iter().filter(|r| !out.contains_key(*r)).collect();
    if missing.is_empty() {
        return Ok(out);
    }
    let mut new = Vec::with_capacity(missing.len());
    for r in missing {
        let key = DataKey {
            subject_ref: r.clone(),
            key_id: hex::encode(random::<8>()?),
            key: random::<32>()?,
        };
        new.push(StoredKey {
            subject_ref: r.clone(),
            key_id: key.key_id.clone(),
            wrapped: seal::wrap(kek, &key),
            created_at: now_micros(),
        });
    }
    // Another process may have created some of them meanwhile: the stored row wins.
    store.add_subject_keys(log, &new)?;
    let created: Vec<String> = new.into_iter().map(|k| k.subject_ref).collect();
    for row in store.subject_keys(log, &created)? {
        out.insert(row.subject_ref.clone(), unwrap_row(kek, &row)?);
    }
    Ok(out)
}

/// Opens sealed content for readers of one log, caching the keys it reads.
pub struct Keyring<'a> {
    store: &'a dyn Store,
    log: String,
    kek: [u8; 32],
    cache: HashMap<String, Option<DataKey>>,
}

impl<'a> Keyring<'a> {
    pub fn new(store: &'a dyn Store, log: &str, tenant_key: &[u8]) -> Keyring<'a> {
        Keyring {
            store,
            log: log.to_owned(),
            kek: seal::kek(tenant_key),
            cache: HashMap::new(),
        }
    }

    fn key(&mut self, subject_ref: &str) -> Result<Option<DataKey>> {
        if let Some(k) = self.cache.get(subject_ref) {
            return Ok(k.clone());
        }
        let row = self
            .store
            .subject_keys(&self.log, &[subject_ref.to_owned()])?
            .pop();
        let key = row.map(|r| unwrap_row(&self.kek, &r)).transpose()?;
        self.cache.insert(subject_ref.to_owned(), key.clone());
        Ok(key)
    }

    /// Replaces each sealed content field of `event` by its plaintext, or by
    /// `{"erased": true}` when the subject's key (of that id) was destroyed.
    pub fn reveal(&mut self, event: &mut Map<String, Value>) -> Result<()> {
        let mut failure = None;
        seal::reveal(event, &mut |subject_ref, kid| match self.key(subject_ref) {
            Ok(Some(k)) if k.key_id == kid => Some(k),
            Ok(_) => None,
            Err(e) => {
                failure = Some(e);
                None
            }
        })
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        failure.map_or(Ok(()), Err)
    }
}

/// What an erasure did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Erasure {
    pub subject_ref: String,
    pub key_id: String,
    /// Entries of the subject whose content the key sealed (now unreadable).
    pub entries: u64,
    /// The `audit.erased` event recording it.
    pub receipt: Receipt,
    pub warnings: Vec<String>,
}

/// Erases a subject (GDPR Art. 17) by destroying its data key, then records the erasure as
/// an `audit.erased` event that holds the subject's reference, never its id. Fails with
/// `NotFound` when the subject has no key (never seen with sealed content, or erased).
pub fn erase_subject(
    seq: &Sequencer,
    log: &str,
    reader: &Reader,
    subject_ref: &str,
    reason: Option<&str>,
) -> Result<Erasure> {
    let store = seq.store().as_ref();
    // The entries this erasure concerns: those naming the subject, and those of its tasks
    // sealed under its key without naming it (see `task_subjects`).
    let mut seqs = std::collections::BTreeSet::new();
    let mut tasks = std::collections::BTreeSet::new();
    let query = |filter| crate::query::Query {
        filter,
        ..Default::default()
    };
    store.query(
        log,
        &query(crate::query::Filter {
            subject_ref: Some(subject_ref.to_owned()),
            ..Default::default()
        }),
        &mut |row| {
            seqs.insert(row.entry.seq);
            let record = aitrail_core::entry::Record::parse(&row.entry.entry)?;
            if let Some(task) = record.event.get("task_id").and_then(Value::as_str) {
                tasks.insert(task.to_owned());
            }
            Ok(true)
        },
    )?;
    let sealed_with = format!("\"key\":\"{subject_ref}\"");
    for task in tasks {
        let filter = crate::query::Filter {
            task_id: Some(task),
            ..Default::default()
        };
        store.query(log, &query(filter), &mut |row| {
            let bytes = &row.entry.entry;
            if bytes
                .windows(sealed_with.len())
                .any(|w| w == sealed_with.as_bytes())
            {
                seqs.insert(row.entry.seq);
            }
            Ok(true)
        })?;
    }
    let entries = seqs.len() as u64;
    let shredded = store.erase_subject_key(log, subject_ref)?;
    let Some(key_id) = shredded.key_id else {
        return Err(StoreError::NotFound(format!(
            "subject {subject_ref} has no data key in log {log:?}: nothing of it was sealed, or it was erased already"
        )));
    };
    let value = json!({
        "type": "audit.erased",
        "task_id": AUDIT_TASK,
        "occurred_at": format_time(now_micros()),
        "actor": {"kind": reader.kind, "id": reader.id, "role": reader.role},
        "rationale": {"code": "gdpr-art-17", "note": reason.unwrap_or("erasure requested")},
        "attributes": {"key_id": key_id, "entries": entries, "method": "data key destroyed"}
    });
    let mut event = Event::from_value(value, Origin::Aitrail)
        .map_err(|e| StoreError::Corrupt(format!("audit.erased invalid: {}", e[0])))?;
    // The reference goes in `subject.ref` directly, so a search by subject finds the erasure.
    event
        .value
        .insert("subject".into(), json!({"ref": subject_ref}));
    let prepared = PreparedEvent::new(event, &[])?;
    let receipt = seq.append(log, vec![prepared])?[0].receipt().clone();
    Ok(Erasure {
        subject_ref: subject_ref.to_owned(),
        key_id,
        entries,
        receipt,
        warnings: shredded.warnings,
    })
}

/// The subject whose key seals `e`'s content: its own, or else its task's (`task_subjects`).
fn subject_of_event(
    e: &Event,
    tenant_key: &[u8],
    task_subjects: &HashMap<String, String>,
) -> Option<String> {
    aitrail_core::pii::subject_of(&e.value, tenant_key)
        .or_else(|| task_subjects.get(&e.task_id).cloned())
}

/// The subject reference of each task that has, in `events`, an event naming no subject of
/// its own: the first subject the task's events in this batch name, or else the first one its
/// stored events name (one indexed query per such task). The content of such an event (a
/// reviewer's changes, say) is about that subject, so it is sealed under the subject's key
/// and erased with it.
fn task_subjects(
    store: &dyn Store,
    log: &str,
    events: &[Event],
    tenant_key: &[u8],
) -> Result<HashMap<String, String>> {
    use crate::query::{Filter, Query};
    let mut named: HashMap<&str, String> = HashMap::new();
    let mut unnamed: Vec<&str> = Vec::new();
    for e in events {
        match aitrail_core::pii::subject_of(&e.value, tenant_key) {
            Some(r) => {
                named.entry(e.task_id.as_str()).or_insert(r);
            }
            None => unnamed.push(&e.task_id),
        }
    }
    unnamed.sort_unstable();
    unnamed.dedup();
    let mut out = HashMap::new();
    for task in unnamed {
        if let Some(r) = named.get(task) {
            out.insert(task.to_owned(), r.clone());
            continue;
        }
        let query = Query {
            filter: Filter {
                task_id: Some(task.to_owned()),
                ..Filter::default()
            },
            ..Query::default()
        };
        store.query(log, &query, &mut |row| {
            let record = aitrail_core::entry::Record::parse(&row.entry.entry)?;
            let r = record
                .event
                .get("subject")
                .and_then(|s| s.get("ref"))
                .and_then(Value::as_str);
            match r {
                Some(r) => {
                    out.insert(task.to_owned(), r.to_owned());
                    Ok(false)
                }
                None => Ok(true),
            }
        })?;
    }
    Ok(out)
}

/// Prepares validated events under a tenant's policy: the data keys of their subjects are
/// created first when the policy encrypts (`ensure_keys`), then every event is protected
/// (`aitrail_core::pii::protect`) and canonicalized, on several threads for large batches.
/// Events prepared here go to `Sequencer::append`.
pub fn prepare_events(
    store: &dyn Store,
    log: &str,
    events: Vec<Event>,
    policy: &aitrail_core::pii::Policy,
    tenant_key: &[u8],
) -> Result<Vec<PreparedEvent>> {
    let (keys, task_subjects) = if policy.encrypt {
        let task_subjects = task_subjects(store, log, &events, tenant_key)?;
        let refs: Vec<String> = events
            .iter()
            .filter_map(|e| subject_of_event(e, tenant_key, &task_subjects))
            .collect();
        let keys = ensure_keys(store, log, &seal::kek(tenant_key), &refs)?;
        (keys, task_subjects)
    } else {
        (HashMap::new(), HashMap::new())
    };
    let prepare = |e: Event| -> Result<PreparedEvent> {
        let key = subject_of_event(&e, tenant_key, &task_subjects).and_then(|r| keys.get(&r));
        Ok(PreparedEvent::protected(e, policy, tenant_key, key)?)
    };
    const PARALLEL_MIN: usize = 512;
    if events.len() < PARALLEL_MIN {
        return events.into_iter().map(prepare).collect();
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let chunk = events.len().div_ceil(threads);
    let mut events = events;
    let mut parts = Vec::new();
    while events.len() > chunk {
        let rest = events.split_off(chunk);
        parts.push(std::mem::replace(&mut events, rest));
    }
    parts.push(events);
    std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| s.spawn(|| part.into_iter().map(prepare).collect::<Result<Vec<_>>>()))
            .collect();
        let mut out = Vec::new();
        for h in handles {
            out.extend(
                h.join()
                    .map_err(|_| StoreError::Commit("a preparing thread panicked".into()))??,
            );
        }
        Ok(out)
    })
}
