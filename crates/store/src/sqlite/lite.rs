//! The store's statements on a SQLite connection: arguments bound as SQLite values, rows read
//! whole, ids taken from `sqlite_sequence`, and every error classified as a refusal of one write
//! or a fault of the database.

use std::path::Path;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::OptionalExtension as _;

use crate::sql::{self, Arg, Db, Row, ToArg, Value};

/// A SQLite connection (or a transaction or savepoint on one) as the store's statements take it.
pub(crate) struct Lite<'a> {
    conn: &'a rusqlite::Connection,
    /// The database's file, asked of the system when an error does not say why a write failed.
    path: &'a Path,
}

impl<'a> Lite<'a> {
    pub(crate) fn new(conn: &'a rusqlite::Connection, path: &'a Path) -> Self {
        Lite { conn, path }
    }

    fn error(&self, e: rusqlite::Error) -> sql::Error {
        error(e, self.path)
    }
}

/// A SQLite error as the store's: a write the database cannot take is a fault, named as the
/// system names it.
pub(crate) fn error(e: rusqlite::Error, path: &Path) -> sql::Error {
    match e {
        rusqlite::Error::QueryReturnedNoRows => sql::Error::NoRows,
        e if super::writer::is_fault(&e) => sql::Error::Fault(super::writer::fault_of(&e, path)),
        e => sql::Error::Db(e.to_string()),
    }
}

/// An argument as SQLite binds it, borrowed.
struct Bound<'a>(Arg<'a>);

impl rusqlite::ToSql for Bound<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            Arg::Null => ValueRef::Null,
            Arg::Int(i) => ValueRef::Integer(i),
            Arg::Bool(b) => ValueRef::Integer(i64::from(b)),
            Arg::Text(t) => ValueRef::Text(t.as_bytes()),
            Arg::Bytes(b) => ValueRef::Blob(b),
        }))
    }
}

fn bind<'a>(args: &'a [&'a dyn ToArg]) -> impl Iterator<Item = Bound<'a>> {
    args.iter().map(|a| Bound(a.to_arg()))
}

fn value(v: ValueRef<'_>) -> Result<Value, sql::Error> {
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Text(t) => Value::Text(
            String::from_utf8(t.to_vec()).map_err(|_| sql::Error::Corrupt("a stored text is not UTF-8".into()))?,
        ),
        ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
        ValueRef::Real(_) => return Err(sql::Error::Corrupt("a stored value is a real number".into())),
    })
}

impl Db for Lite<'_> {
    fn exec(&self, sql: &str, args: &[&dyn ToArg]) -> Result<usize, sql::Error> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.error(e))?;
        stmt.execute(rusqlite::params_from_iter(bind(args))).map_err(|e| self.error(e))
    }

    fn rows(&self, sql: &str, args: &[&dyn ToArg]) -> Result<Vec<Row>, sql::Error> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.error(e))?;
        let columns = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(bind(args))).map_err(|e| self.error(e))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.error(e))? {
            let values = (0..columns)
                .map(|i| row.get_ref(i).map_err(|e| self.error(e)).and_then(value))
                .collect::<Result<Vec<_>, _>>()?;
            out.push(Row(values));
        }
        Ok(out)
    }

    fn next_id(&self, table: &str) -> Result<i64, sql::Error> {
        let last: Option<i64> = self
            .conn
            .prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = ?1")
            .and_then(|mut s| s.query_row([table], |row| row.get(0)).optional())
            .map_err(|e| self.error(e))?;
        Ok(last.unwrap_or(0) + 1)
    }

    #[cfg(test)]
    fn execute_batch(&self, sql: &str) -> Result<(), sql::Error> {
        self.conn.execute_batch(sql).map_err(|e| self.error(e))
    }
}
