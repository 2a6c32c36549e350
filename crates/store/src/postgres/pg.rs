//! The store's statements on a PostgreSQL connection: placeholders numbered as PostgreSQL numbers
//! them, arguments converted to the type each placeholder has, statements prepared once per
//! connection, and every error classified as a refusal of one write or a fault of the database.

use std::collections::HashMap;
use std::error::Error as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use bytes::BytesMut;
use tokio_postgres::types::{IsNull, ToSql, Type};
use tokio_postgres::{Client, Statement};

use super::block_on;
use crate::group::lock;
use crate::sql::{self, Arg, Db, Row, ToArg, Value};
use crate::WriteFault;

/// A connection to the database, with the statements prepared on it.
pub(crate) struct PgConn {
    client: Client,
    statements: Mutex<HashMap<String, Statement>>,
    /// Whether the server ends this connection's transactions left idle past a lease's length.
    idle_bounded: AtomicBool,
}

impl PgConn {
    pub(crate) fn new(client: Client) -> Self {
        PgConn { client, statements: Mutex::new(HashMap::new()), idle_bounded: AtomicBool::new(false) }
    }

    /// Has the server end a transaction of this connection left idle for `lease_ms`: a writer
    /// paused in the middle of one then holds the lease's row no longer than its lease.
    pub(crate) fn under_lease(&self, lease_ms: u64) -> Result<(), sql::Error> {
        if !self.idle_bounded.load(Ordering::Relaxed) {
            self.batch(&format!("SET idle_in_transaction_session_timeout = {}", lease_ms.max(1)))?;
            self.idle_bounded.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Whether the connection was lost: it is not used again.
    pub(crate) fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Runs statements without arguments (transaction control, schema changes).
    pub(crate) fn batch(&self, sql: &str) -> Result<(), sql::Error> {
        block_on(self.client.batch_execute(sql)).map_err(|e| error(&e))
    }

    fn statement(&self, sql: &str) -> Result<Statement, sql::Error> {
        if let Some(statement) = lock(&self.statements).get(sql) {
            return Ok(statement.clone());
        }
        let statement = block_on(self.client.prepare(&numbered(sql))).map_err(|e| error(&e))?;
        lock(&self.statements).insert(sql.to_string(), statement.clone());
        Ok(statement)
    }
}

/// A PostgreSQL error as the store's. A statement the database refuses for what it says (a
/// constraint, bad data, a malformed statement) fails its write alone; anything else (a lost
/// connection, a full disk, a database that is read-only or shutting down) is a fault.
pub(crate) fn error(e: &tokio_postgres::Error) -> sql::Error {
    let Some(db) = e.as_db_error() else {
        let cause = e.source().map(|s| format!(": {s}")).unwrap_or_default();
        return sql::Error::Fault(WriteFault::Failed(format!("{e}{cause}")));
    };
    let code = db.code().code();
    match code {
        "53100" => sql::Error::Fault(WriteFault::DiskFull),
        "25006" => sql::Error::Fault(WriteFault::ReadOnly),
        _ if code.starts_with("23") || code.starts_with("22") || code.starts_with("42") => {
            sql::Error::Db(format!("{}: {}", db.severity(), db.message()))
        }
        _ => sql::Error::Fault(WriteFault::Failed(format!("{} ({code})", db.message()))),
    }
}

/// A statement with `?N` placeholders as PostgreSQL takes it, `$N`; text in quotes is left alone.
pub(crate) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted && chars.peek().is_some_and(|n| n.is_ascii_digit()) => out.push('$'),
            c => out.push(c),
        }
    }
    out
}

/// An argument converted to the type PostgreSQL gave its placeholder.
#[derive(Debug)]
struct Bound<'a>(Arg<'a>);

type Failure = Box<dyn std::error::Error + Sync + Send>;

impl ToSql for Bound<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Failure> {
        match (self.0, ty) {
            (Arg::Null, _) => Ok(IsNull::Yes),
            (Arg::Int(i), &Type::INT8) => i.to_sql(ty, out),
            (Arg::Int(i), &Type::INT4) => i32::try_from(i)?.to_sql(ty, out),
            (Arg::Int(i), &Type::INT2) => i16::try_from(i)?.to_sql(ty, out),
            (Arg::Int(i), &Type::BOOL) => (i != 0).to_sql(ty, out),
            (Arg::Int(i), &Type::TEXT) => i.to_string().as_str().to_sql(ty, out),
            (Arg::Bool(b), &Type::BOOL) => b.to_sql(ty, out),
            (Arg::Bool(b), &Type::INT8) => i64::from(b).to_sql(ty, out),
            (Arg::Bool(b), &Type::INT4) => i32::from(b).to_sql(ty, out),
            (Arg::Text(t), _) => t.to_sql(ty, out),
            (Arg::Bytes(b), &Type::BYTEA) => b.to_sql(ty, out),
            (arg, ty) => Err(format!("{arg:?} cannot be bound to a parameter of type {ty}").into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

fn value(row: &tokio_postgres::Row, i: usize) -> Result<Value, sql::Error> {
    let ty = row.columns()[i].type_();
    let read = |e: tokio_postgres::Error| sql::Error::Corrupt(format!("column {i}: {e}"));
    let v = match *ty {
        Type::INT8 => row.try_get::<_, Option<i64>>(i).map_err(read)?.map(Value::Int),
        Type::INT4 => row.try_get::<_, Option<i32>>(i).map_err(read)?.map(|v| Value::Int(v.into())),
        Type::INT2 => row.try_get::<_, Option<i16>>(i).map_err(read)?.map(|v| Value::Int(v.into())),
        Type::BOOL => row.try_get::<_, Option<bool>>(i).map_err(read)?.map(Value::Bool),
        Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(i).map_err(read)?.map(Value::Bytes),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
            row.try_get::<_, Option<String>>(i).map_err(read)?.map(Value::Text)
        }
        ref other => {
            return Err(sql::Error::Corrupt(format!("column {i} has type {other}, which the store never reads")))
        }
    };
    Ok(v.unwrap_or(Value::Null))
}

/// The arguments of a statement, bound.
fn bound<'a>(args: &'a [&'a dyn ToArg]) -> Vec<Bound<'a>> {
    args.iter().map(|a| Bound(a.to_arg())).collect()
}

fn refs<'a>(bound: &'a [Bound<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    bound.iter().map(|b| b as &(dyn ToSql + Sync)).collect()
}

impl Db for PgConn {
    fn exec(&self, sql: &str, args: &[&dyn ToArg]) -> Result<usize, sql::Error> {
        let statement = self.statement(sql)?;
        let bound = bound(args);
        let n = block_on(self.client.execute(&statement, &refs(&bound))).map_err(|e| error(&e))?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn rows(&self, sql: &str, args: &[&dyn ToArg]) -> Result<Vec<Row>, sql::Error> {
        let statement = self.statement(sql)?;
        let bound = bound(args);
        let rows = block_on(self.client.query(&statement, &refs(&bound))).map_err(|e| error(&e))?;
        rows.iter().map(|row| (0..row.len()).map(|i| value(row, i)).collect::<Result<Vec<_>, _>>().map(Row)).collect()
    }

    fn next_id(&self, table: &str) -> Result<i64, sql::Error> {
        let sql = format!("SELECT nextval('{table}_id_seq')");
        self.rows(&sql, &[])?.first().ok_or(sql::Error::NoRows).and_then(|row| row.get(0))
    }

    #[cfg(test)]
    fn execute_batch(&self, sql: &str) -> Result<(), sql::Error> {
        self.batch(sql)
    }
}

#[cfg(test)]
mod tests {
    use super::numbered;

    #[test]
    fn placeholders_are_numbered_as_postgresql_numbers_them_outside_quotes() {
        assert_eq!(numbered("SELECT a FROM t WHERE b = ?1 AND c = ?12"), "SELECT a FROM t WHERE b = $1 AND c = $12");
        assert_eq!(numbered("SELECT '?1' , ?2"), "SELECT '?1' , $2");
        assert_eq!(numbered("SELECT a ? b"), "SELECT a ? b");
    }
}
