//! Rows for PostgreSQL's binary COPY, encoded ahead into one buffer and sent as one COPY
//! statement (PostgreSQL docs, "COPY", section "Binary Format": an 11-byte signature, flags
//! and header-extension words, then per row a 16-bit field count and per field a 32-bit
//! length, -1 for NULL, followed by the value in the type's binary send format; a -1 word
//! ends the data).
//!
//! A group commit arrives in chunks from the sequencer; encoding each chunk as it comes and
//! sending the whole group in one statement per table costs the server one COPY setup
//! (partition routing, six indexes opened) instead of one per chunk. A large group's entries
//! go out chunk by chunk into that one COPY (`send_part`, `finish_parts`) while the sequencer
//! still hashes the next chunks, so the client's work hides behind the server's.

use crate::error::{Result, StoreError};
use ::postgres::types::{IsNull, ToSql, Type};
use ::postgres::{CopyInWriter, ToStatement, Transaction};
use bytes::{BufMut, BytesMut};
use std::io::Write;

/// The binary COPY signature (PostgreSQL docs, COPY, "File Header").
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
/// Bytes handed to the connection per write while sending.
const SEND_CHUNK: usize = 256 * 1024;
/// The bytes of a part sent last, on their own (see `send_part`). Shorter than any entry row
/// (its two hashes alone take 64 bytes with their length words), so the tail holds back at
/// most the part's last row.
const PART_TAIL: usize = 64;

/// Encoded rows of one COPY, not sent yet.
pub(crate) struct CopyBuffer {
    types: &'static [Type],
    buf: BytesMut,
    rows: u64,
}

impl CopyBuffer {
    pub(crate) fn new(types: &'static [Type]) -> CopyBuffer {
        let mut buf = BytesMut::with_capacity(64 * 1024);
        buf.put_slice(SIGNATURE);
        buf.put_i32(0); // flags: no OIDs
        buf.put_i32(0); // header extension length
        CopyBuffer {
            types,
            buf,
            rows: 0,
        }
    }

    pub(crate) fn rows(&self) -> u64 {
        self.rows
    }

    /// Appends one row; `values` follow the buffer's column types.
    pub(crate) fn push(&mut self, values: &[&(dyn ToSql + Sync)]) -> Result<()> {
        if values.len() != self.types.len() {
            return Err(StoreError::Schema(format!(
                "a COPY row has {} values for {} columns",
                values.len(),
                self.types.len()
            )));
        }
        let start = self.buf.len();
        let encoded = self.encode(values);
        if encoded.is_err() {
            self.buf.truncate(start); // never leave half a row behind
        }
        encoded
    }

    fn encode(&mut self, values: &[&(dyn ToSql + Sync)]) -> Result<()> {
        self.buf.put_i16(self.types.len() as i16);
        for (value, ty) in values.iter().zip(self.types) {
            let at = self.buf.len();
            self.buf.put_i32(0); // length, filled in below
            let null = value
                .to_sql_checked(ty, &mut self.buf)
                .map_err(|e| StoreError::Schema(format!("encoding a {ty} for COPY: {e}")))?;
            let len = match null {
                IsNull::Yes => -1,
                IsNull::No => i32::try_from(self.buf.len() - at - 4).map_err(|_| {
                    StoreError::Schema("a value of over 2 GiB does not fit a COPY field".into())
                })?,
            };
            self.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
        self.rows += 1;
        Ok(())
    }

    /// Sends the rows with `copy` (a `COPY ... FROM STDIN (FORMAT binary)` statement, as text
    /// or prepared) inside `tx`; returns the rows the server stored.
    pub(crate) fn send<S: ToStatement + ?Sized>(
        self,
        tx: &mut Transaction<'_>,
        copy: &S,
    ) -> Result<u64> {
        let writer = tx.copy_in(copy)?;
        self.finish_parts(writer)
    }

    /// Sends the rows encoded so far into `writer`, an open COPY of this buffer's columns
    /// (the signature goes with the first rows), and on success empties the buffer: a group's
    /// rows stream into one COPY while its later rows are still being built.
    ///
    /// A connection of the `postgres` crate writes queued data onto its socket only when it
    /// is next polled, and a flush (or a write once the writer holds over 4 kB) polls it
    /// before it queues its own data: what is queued last waits for the next write. So the
    /// part goes in large pieces and then a short tail: the flush that queues the tail hands
    /// the pieces to the socket, and the tail delays only the part's last row until the next
    /// part. (Should the socket be full, up to one piece waits in the connection's buffer,
    /// behind the megabytes the server has not read yet.) Sent whole, the first part of a
    /// group reached the server only with the second; sent in 16 kB pieces, the last piece
    /// of each part waited for the next part.
    pub(crate) fn send_part(&mut self, writer: &mut CopyInWriter<'_>) -> Result<()> {
        let (body, tail) = self.buf.split_at(self.buf.len().saturating_sub(PART_TAIL));
        for piece in [body, tail] {
            write_data(writer, piece)?;
            writer.flush().map_err(copy_error)?;
        }
        self.buf.clear();
        Ok(())
    }

    /// Ends a COPY, just opened or fed by `send_part`: the rest of the rows and the trailer;
    /// returns the rows the server stored.
    pub(crate) fn finish_parts(mut self, mut writer: CopyInWriter<'_>) -> Result<u64> {
        self.buf.put_i16(-1); // file trailer
        write_data(&mut writer, &self.buf)?;
        Ok(writer.finish()?)
    }
}

fn write_data(writer: &mut CopyInWriter<'_>, data: &[u8]) -> Result<()> {
    for chunk in data.chunks(SEND_CHUNK) {
        writer.write_all(chunk).map_err(copy_error)?;
    }
    Ok(())
}

/// The server refused the data (a unique key, say): the error it sent.
fn copy_error(e: std::io::Error) -> StoreError {
    match e.into_inner().map(|b| b.downcast::<::postgres::Error>()) {
        Some(Ok(pg)) => StoreError::Postgres(*pg),
        Some(Err(other)) => StoreError::Commit(format!("sending COPY data: {other}")),
        None => StoreError::Commit("sending COPY data failed".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_encoded_in_the_binary_copy_format() {
        const TYPES: &[Type] = &[Type::INT4, Type::TEXT, Type::BYTEA];
        let mut copy = CopyBuffer::new(TYPES);
        copy.push(&[&7i32, &None::<String>, &vec![0xabu8, 0xcd]])
            .unwrap();
        assert_eq!(copy.rows(), 1);
        let mut expected = b"PGCOPY\n\xff\r\n\0".to_vec();
        expected.extend([0, 0, 0, 0, 0, 0, 0, 0]); // flags, extension
        expected.extend([0, 3]); // fields
        expected.extend([0, 0, 0, 4, 0, 0, 0, 7]); // int4 7
        expected.extend([0xff, 0xff, 0xff, 0xff]); // NULL
        expected.extend([0, 0, 0, 2, 0xab, 0xcd]); // bytea
        assert_eq!(&copy.buf[..], &expected[..]);
        assert!(copy.push(&[&1i32]).is_err(), "a row of the wrong width");
        // A value of the wrong type is refused, not sent.
        assert!(copy.push(&[&"x", &None::<String>, &vec![1u8]]).is_err());
        assert_eq!(
            &copy.buf[..],
            &expected[..],
            "nothing of a refused row stays"
        );
        assert_eq!(copy.rows(), 1);
    }
}
