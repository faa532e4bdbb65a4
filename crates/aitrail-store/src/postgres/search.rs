//! Searches (`Store::query`) as SQL: the same filters, order and keyset pagination as the
//! SQLite backend, over the partitioned entries table (a `recorded_at` range prunes days).

use super::conn::Micros;
use super::{seq_param, ENTRY_COLUMNS};
use crate::error::Result;
use crate::query::{Order, Query, TimeField};
use ::postgres::types::ToSql;

/// A parameter of a built query.
pub(crate) type Param = Box<dyn ToSql + Sync>;

/// The SQL of a search (the same filters, order and keyset as the SQLite backend).
pub(crate) fn query_sql(log_id: i32, q: &Query) -> Result<(String, Vec<Param>)> {
    let mut sql =
        format!("SELECT {ENTRY_COLUMNS}, occurred_at FROM aitrail.entries WHERE log_id = $1");
    let mut params: Vec<Param> = vec![Box::new(log_id)];
    let mut push = |sql: &mut String, clause: &str, p: Param| {
        params.push(p);
        sql.push_str(&clause.replace("$?", &format!("${}", params.len())));
    };
    if let Some(from) = q.from_seq {
        push(&mut sql, " AND seq >= $?", Box::new(seq_param(from)?));
    }
    let f = &q.filter;
    for (col, value) in [
        ("task_id", &f.task_id),
        ("actor_id", &f.actor_id),
        ("model_name", &f.model_name),
        ("model_version", &f.model_version),
        ("prompt_version", &f.prompt_version),
        ("decision", &f.decision),
        ("subject_ref", &f.subject_ref),
    ] {
        if let Some(v) = value {
            push(&mut sql, &format!(" AND {col} = $?"), Box::new(v.clone()));
        }
    }
    if !f.types.is_empty() {
        push(&mut sql, " AND type = ANY($?)", Box::new(f.types.clone()));
    }
    let time_col = match f.time {
        TimeField::Occurred => "occurred_at",
        TimeField::Recorded => "recorded_at",
    };
    if let Some(from) = f.from {
        push(
            &mut sql,
            &format!(" AND {time_col} >= $?"),
            Box::new(Micros(from)),
        );
    }
    if let Some(to) = f.to {
        push(
            &mut sql,
            &format!(" AND {time_col} < $?"),
            Box::new(Micros(to)),
        );
    }
    let (cmp, dir) = match q.order {
        Order::Asc => (">", "ASC"),
        Order::Desc => ("<", "DESC"),
    };
    if let Some(c) = q.after {
        let seq = seq_param(c.seq)?;
        match f.time {
            TimeField::Occurred => {
                push(
                    &mut sql,
                    &format!(" AND (occurred_at, seq) {cmp} ($?"),
                    Box::new(Micros(c.at)),
                );
                push(&mut sql, ", $?)", Box::new(seq));
            }
            TimeField::Recorded => push(&mut sql, &format!(" AND seq {cmp} $?"), Box::new(seq)),
        }
    }
    match f.time {
        TimeField::Occurred => sql.push_str(&format!(" ORDER BY occurred_at {dir}, seq {dir}")),
        TimeField::Recorded => sql.push_str(&format!(" ORDER BY seq {dir}")),
    }
    if let Some(limit) = q.limit {
        sql.push_str(&format!(" LIMIT {limit}"));
    }
    Ok((sql, params))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{Cursor, Filter};

    #[test]
    fn query_sql_numbers_its_parameters_in_order() {
        let q = Query {
            filter: Filter {
                task_id: Some("t".into()),
                types: vec!["a.b".into(), "c.d".into()],
                from: Some(1),
                to: Some(2),
                ..Default::default()
            },
            order: Order::Desc,
            after: Some(Cursor { at: 5, seq: 7 }),
            limit: Some(10),
            from_seq: None,
        };
        let (sql, params) = query_sql(3, &q).unwrap();
        assert_eq!(
            sql,
            "SELECT seq, event_id, recorded_at, entry, leaf_hash, chain_hash, occurred_at FROM aitrail.entries \
             WHERE log_id = $1 AND task_id = $2 AND type = ANY($3) AND occurred_at >= $4 AND occurred_at < $5 \
             AND (occurred_at, seq) < ($6, $7) ORDER BY occurred_at DESC, seq DESC LIMIT 10"
        );
        assert_eq!(params.len(), 7);
    }
}
