//! SQL views for people who query the database directly (analysts, auditors with a SQL
//! client): `task_timeline`, `reviewer_decisions` and `model_overrides`, the same columns on
//! SQLite and PostgreSQL (README, "Querying the database directly").
//!
//! The views read the stored records themselves (`entries.entry`, the RFC 8785 bytes that are
//! hashed), so what they show is what `verify` checks; the indexed columns serve the filters.
//! A review decision names its reviewer, not always its model: its model, model version and
//! prompt version are its own when it has them, otherwise those of the task's latest
//! `ai.inference` at or before the decision.
//!
//! Views are read-only by nature; creating them changes no stored byte.

/// The SQLite views (in the main schema; times as RFC 3339 text, UTC, milliseconds).
pub const SQLITE: &str = r#"
CREATE VIEW IF NOT EXISTS task_timeline AS
SELECT l.name AS log, e.task_id, e.seq, e.event_id,
       strftime('%Y-%m-%dT%H:%M:%fZ', e.occurred_at / 1000000.0, 'unixepoch') AS occurred_at,
       strftime('%Y-%m-%dT%H:%M:%fZ', e.recorded_at / 1000000.0, 'unixepoch') AS recorded_at,
       e.type,
       json_extract(e.doc, '$.event.actor.kind') AS actor_kind,
       e.actor_id, e.model_name, e.model_version, e.prompt_version, e.decision,
       json_extract(e.doc, '$.event.rationale.code') AS rationale_code,
       json_extract(e.doc, '$.event.review.duration_ms') AS duration_ms,
       json_extract(e.doc, '$.event.escalation.to') AS escalated_to,
       json_extract(e.doc, '$.event.escalation.reason') AS escalation_reason,
       json_extract(e.doc, '$.event.resolution.outcome') AS resolution,
       e.subject_ref, lower(hex(e.leaf_hash)) AS leaf_hash
FROM (SELECT *, CAST(entry AS TEXT) AS doc FROM entries) e JOIN logs l ON l.id = e.log_id;

CREATE VIEW IF NOT EXISTS reviewer_decisions AS
SELECT l.name AS log, e.actor_id AS reviewer_id, e.task_id, e.seq, e.event_id,
       strftime('%Y-%m-%dT%H:%M:%fZ', e.occurred_at / 1000000.0, 'unixepoch') AS occurred_at,
       e.decision,
       json_extract(e.doc, '$.event.rationale.code') AS rationale_code,
       json_extract(e.doc, '$.event.rationale.category') AS rationale_category,
       json_extract(e.doc, '$.event.review.duration_ms') AS duration_ms,
       json_extract(e.doc, '$.event.review.changes') AS changes,
       coalesce(e.model_name, m.model_name) AS model_name,
       coalesce(e.model_version, m.model_version) AS model_version,
       coalesce(e.prompt_version, m.prompt_version) AS prompt_version
FROM (SELECT *, CAST(entry AS TEXT) AS doc FROM entries WHERE type = 'review.decision') e
JOIN logs l ON l.id = e.log_id
-- The task's latest model answer at or before the decision, found once per decision.
LEFT JOIN entries m ON m.id = (
    SELECT i.id FROM entries i
    WHERE i.log_id = e.log_id AND i.task_id = e.task_id AND i.type = 'ai.inference'
      AND i.occurred_at <= e.occurred_at
    ORDER BY i.occurred_at DESC, i.id DESC LIMIT 1);

CREATE VIEW IF NOT EXISTS model_overrides AS
SELECT * FROM reviewer_decisions WHERE decision IN ('reject', 'modify');
"#;

/// The PostgreSQL views (schema `aitrail`; times as timestamptz). Part of migration 2.
pub const POSTGRES: &str = r#"
CREATE VIEW aitrail.task_timeline AS
SELECT l.name AS log, e.task_id, e.seq, e.event_id, e.occurred_at, e.recorded_at, e.type,
       r.ev #>> '{actor,kind}' AS actor_kind,
       e.actor_id, e.model_name, e.model_version, e.prompt_version, e.decision,
       r.ev #>> '{rationale,code}' AS rationale_code,
       (r.ev #>> '{review,duration_ms}')::numeric AS duration_ms,
       r.ev #>> '{escalation,to}' AS escalated_to,
       r.ev #>> '{escalation,reason}' AS escalation_reason,
       r.ev #>> '{resolution,outcome}' AS resolution,
       e.subject_ref, encode(e.leaf_hash, 'hex') AS leaf_hash
FROM aitrail.entries e
JOIN aitrail.logs l ON l.id = e.log_id
CROSS JOIN LATERAL (SELECT convert_from(e.entry, 'UTF8')::jsonb -> 'event' AS ev) r;

CREATE VIEW aitrail.reviewer_decisions AS
SELECT l.name AS log, e.actor_id AS reviewer_id, e.task_id, e.seq, e.event_id, e.occurred_at,
       e.decision,
       r.ev #>> '{rationale,code}' AS rationale_code,
       r.ev #>> '{rationale,category}' AS rationale_category,
       (r.ev #>> '{review,duration_ms}')::numeric AS duration_ms,
       r.ev #> '{review,changes}' AS changes,
       coalesce(e.model_name, m.model_name) AS model_name,
       coalesce(e.model_version, m.model_version) AS model_version,
       coalesce(e.prompt_version, m.prompt_version) AS prompt_version
FROM aitrail.entries e
JOIN aitrail.logs l ON l.id = e.log_id
CROSS JOIN LATERAL (SELECT convert_from(e.entry, 'UTF8')::jsonb -> 'event' AS ev) r
LEFT JOIN LATERAL (
    SELECT i.model_name, i.model_version, i.prompt_version FROM aitrail.entries i
    WHERE i.log_id = e.log_id AND i.task_id = e.task_id AND i.type = 'ai.inference'
      AND i.occurred_at <= e.occurred_at
    ORDER BY i.occurred_at DESC, i.seq DESC LIMIT 1
) m ON true
WHERE e.type = 'review.decision';

CREATE VIEW aitrail.model_overrides AS
SELECT * FROM aitrail.reviewer_decisions WHERE decision IN ('reject', 'modify');
"#;

/// The views' names, for grants and documentation.
pub const NAMES: &[&str] = &["task_timeline", "reviewer_decisions", "model_overrides"];
