//! The lease of an active/standby pair: two nodes of one member share one PostgreSQL database, and
//! the one holding the lease is the active one. The lease is one row (`lease`), timed by the
//! database server's clock, so the two machines' clocks do not matter. Taking it raises its
//! fencing token; the holder renews it well before it runs out.
//!
//! Every write transaction of the holder's store starts by checking its token against the row and
//! that the lease has not run out (`fence`), taking the row's lock until it commits. A former
//! holder that was paused or cut off past its lease can therefore commit nothing more: its check
//! finds another token, or a lease run out, and its transaction fails whole; and a node taking the
//! lease waits for any transaction that checked before it to end. A holder paused inside a
//! transaction holds the row's lock only until the server ends its idle transaction
//! (`idle_in_transaction_session_timeout`, set to the lease's length on the writer's connection).

use super::pg::PgConn;
use crate::sql::{self, params, Connection};

/// The database server's clock in milliseconds since 1970.
const NOW_MS: &str = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";

/// The lease as one node of the pair holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// Raised by every take-over: the writes of a holder with an older token are refused.
    pub token: u64,
    /// When the lease runs out unless renewed, by the database server's clock.
    pub expires_ms: u64,
}

/// Who holds the lease, as the other node of the pair sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseHolder {
    /// The holder's name (its node's name and a number drawn at its start).
    pub holder: String,
    pub token: u64,
    /// Where operators reach the holder's API.
    pub api_url: String,
    /// Milliseconds left on the lease by the database server's clock; 0 once it ran out.
    pub remaining_ms: u64,
}

/// Takes the lease for `holder` if no one holds it or it ran out.
pub(crate) fn claim(conn: &PgConn, holder: &str, lease_ms: u64, api_url: &str) -> Result<Option<Lease>, sql::Error> {
    let c: &Connection<'_> = conn;
    // Waits no longer than a moment for a holder's transaction in progress: tried again at the
    // next poll.
    conn.batch("SET lock_timeout = '1s'")?;
    let sql = format!(
        "UPDATE lease SET holder = ?1, token = token + 1, expires_ms = {NOW_MS} + ?2, api_url = ?3
         WHERE id = 1 AND expires_ms < {NOW_MS} RETURNING token, expires_ms"
    );
    let rows = c.rows(&sql, params![holder, lease_ms as i64, api_url])?;
    rows.first()
        .map(|row| Ok(Lease { token: row.get::<_, i64>(0)? as u64, expires_ms: row.get::<_, i64>(1)? as u64 }))
        .transpose()
}

/// Renews the lease `holder` holds under `token`; `None` if it lost it (another node took it, or
/// it ran out).
pub(crate) fn renew(conn: &PgConn, holder: &str, token: u64, lease_ms: u64) -> Result<Option<Lease>, sql::Error> {
    let c: &Connection<'_> = conn;
    let sql = format!(
        "UPDATE lease SET expires_ms = {NOW_MS} + ?3
         WHERE id = 1 AND holder = ?1 AND token = ?2 AND expires_ms >= {NOW_MS} RETURNING token, expires_ms"
    );
    let rows = c.rows(&sql, params![holder, token as i64, lease_ms as i64])?;
    rows.first()
        .map(|row| Ok(Lease { token: row.get::<_, i64>(0)? as u64, expires_ms: row.get::<_, i64>(1)? as u64 }))
        .transpose()
}

/// Who holds the lease now.
pub(crate) fn holder(conn: &PgConn) -> Result<LeaseHolder, sql::Error> {
    let c: &Connection<'_> = conn;
    let sql = format!("SELECT holder, token, api_url, GREATEST(expires_ms - {NOW_MS}, 0) FROM lease WHERE id = 1");
    c.query_row(&sql, [], |row| {
        Ok(LeaseHolder {
            holder: row.get(0)?,
            token: row.get::<_, i64>(1)? as u64,
            api_url: row.get(2)?,
            remaining_ms: row.get::<_, i64>(3)? as u64,
        })
    })
}

/// The first statement of every write transaction of a node that holds the lease under `token`:
/// refused (a fault of the whole transaction) unless the token is still the lease's and the lease
/// has not run out. It locks the lease's row until the transaction ends.
pub(crate) fn fence(conn: &PgConn, token: u64) -> Result<(), sql::Error> {
    let c: &Connection<'_> = conn;
    let sql = format!(
        "UPDATE lease SET fenced_writes = fenced_writes + 1 WHERE id = 1 AND token = ?1 AND expires_ms >= {NOW_MS}"
    );
    match c.exec(&sql, params![token as i64])? {
        1 => Ok(()),
        _ => Err(sql::Error::Fault(crate::WriteFault::Failed(
            "this node no longer holds the lease of its pair: the other node took over, or the lease ran out".into(),
        ))),
    }
}
