//! Connections to PostgreSQL: a small pool, statements prepared once per connection,
//! `timestamptz` as Unix microseconds, and errors that say what the server said.

use crate::error::{Result, StoreError};
use ::postgres::types::{FromSql, IsNull, ToSql, Type};
use ::postgres::{Client, Config, GenericClient, NoTls, Statement};
use bytes::{BufMut, BytesMut};
use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};

/// Connections one store keeps open at most (callers wait for one beyond that).
const POOL_SIZE: usize = 16;

/// Unix microseconds as a PostgreSQL `timestamptz` (binary: microseconds since 2000-01-01).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Micros(pub i64);

/// 2000-01-01T00:00:00Z in Unix microseconds.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

impl ToSql for Micros {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.put_i64(self.0.saturating_sub(PG_EPOCH_MICROS));
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ
    }

    ::postgres::types::to_sql_checked!();
}

impl<'a> FromSql<'a> for Micros {
    fn from_sql(
        _: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Micros, Box<dyn std::error::Error + Sync + Send>> {
        let raw: [u8; 8] = raw.try_into()?;
        Ok(Micros(
            i64::from_be_bytes(raw).saturating_add(PG_EPOCH_MICROS),
        ))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ
    }
}

impl From<::postgres::Error> for StoreError {
    fn from(e: ::postgres::Error) -> StoreError {
        StoreError::Postgres(e)
    }
}

/// An error of the PostgreSQL client on one line, with its cause: the server's message,
/// detail and hint, or why the connection failed (the client's own Display omits both).
pub fn describe(e: &::postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{}: {}", db.severity(), db.message());
        if let Some(detail) = db.detail() {
            s += &format!(" ({detail})");
        }
        if let Some(hint) = db.hint() {
            s += &format!(" (hint: {hint})");
        }
        return s;
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A connection and the statements prepared on it.
pub(crate) struct Conn {
    pub(crate) client: Client,
    pub(crate) cache: HashMap<&'static str, Statement>,
    /// The server process behind it (`pg_backend_pid()`).
    pub(crate) pid: i32,
}

/// `sql` prepared once per connection.
pub(crate) fn prepared<C: GenericClient>(
    client: &mut C,
    cache: &mut HashMap<&'static str, Statement>,
    sql: &'static str,
) -> Result<Statement> {
    if let Some(s) = cache.get(sql) {
        return Ok(s.clone());
    }
    let s = client.prepare(sql)?;
    cache.insert(sql, s.clone());
    Ok(s)
}

pub(crate) fn connect(config: &Config) -> Result<Conn> {
    let mut client = config.connect(NoTls)?;
    // Acknowledge a commit only once it is durable, whatever the server's default.
    client.batch_execute("SET synchronous_commit = on")?;
    let pid = client
        .query_one("SELECT pg_backend_pid()", &[])?
        .try_get(0)?;
    Ok(Conn {
        client,
        cache: HashMap::new(),
        pid,
    })
}

/// A few connections, opened on demand and reused; a closed one is replaced.
pub(crate) struct Pool {
    pub(crate) config: Config,
    pub(crate) state: Mutex<(Vec<Conn>, usize)>,
    pub(crate) freed: Condvar,
}

impl Pool {
    /// A connection: an idle one, a new one below `POOL_SIZE`, or the next one freed.
    pub(crate) fn get(&self) -> Result<Pooled<'_>> {
        match self.acquire(true) {
            Some(conn) => conn,
            None => unreachable!("acquire waits when asked to"),
        }
    }

    /// A connection only if one is idle or may be opened now; never waits (a caller that
    /// already holds one and waited for a second could deadlock with others doing the same).
    pub(crate) fn try_get(&self) -> Option<Pooled<'_>> {
        self.acquire(false)?.ok()
    }

    /// None only when every connection is in use and `wait` is false.
    fn acquire(&self, wait: bool) -> Option<Result<Pooled<'_>>> {
        let mut state = lock(&self.state);
        loop {
            if let Some(conn) = state.0.pop() {
                if conn.client.is_closed() {
                    state.1 -= 1;
                    continue;
                }
                return Some(Ok(Pooled {
                    pool: self,
                    conn: Some(conn),
                }));
            }
            if state.1 < POOL_SIZE {
                state.1 += 1;
                break;
            }
            if !wait {
                return None;
            }
            state = self.freed.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        drop(state);
        Some(match connect(&self.config) {
            Ok(conn) => Ok(Pooled {
                pool: self,
                conn: Some(conn),
            }),
            Err(e) => {
                lock(&self.state).1 -= 1;
                self.freed.notify_one();
                Err(e)
            }
        })
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let idle = std::mem::take(&mut lock(&self.state).0);
        if idle.is_empty() {
            return;
        }
        // A `postgres::Client` closes its connection by blocking on a runtime of its own,
        // which panics inside an async runtime (a server dropping its state on shutdown):
        // close them on a thread of their own.
        let _ = std::thread::spawn(move || drop(idle)).join();
    }
}

/// A connection borrowed from the pool, returned on drop.
pub(crate) struct Pooled<'a> {
    pool: &'a Pool,
    conn: Option<Conn>,
}

impl Pooled<'_> {
    /// Closes the connection instead of returning it to the pool (its state is unknown).
    pub(crate) fn close(&mut self) {
        drop(self.conn.take());
    }

    /// False once `close` was called.
    pub(crate) fn is_open(&self) -> bool {
        self.conn.is_some()
    }
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn.as_ref().expect("present until drop")
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("present until drop")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let mut state = lock(&self.pool.state);
        match self.conn.take() {
            Some(conn) if !conn.client.is_closed() => state.0.push(conn),
            _ => state.1 -= 1,
        }
        drop(state);
        self.pool.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_convert_at_the_postgres_epoch() {
        let mut buf = BytesMut::new();
        Micros(PG_EPOCH_MICROS + 5)
            .to_sql(&Type::TIMESTAMPTZ, &mut buf)
            .unwrap();
        assert_eq!(&buf[..], &5i64.to_be_bytes());
        let back = Micros::from_sql(&Type::TIMESTAMPTZ, &buf).unwrap();
        assert_eq!(back, Micros(PG_EPOCH_MICROS + 5));
        // infinity (i64::MAX) saturates instead of overflowing
        let inf = Micros::from_sql(&Type::TIMESTAMPTZ, &i64::MAX.to_be_bytes()).unwrap();
        assert_eq!(inf, Micros(i64::MAX));
        assert!(Micros::from_sql(&Type::TIMESTAMPTZ, &[1, 2]).is_err());
    }
}
