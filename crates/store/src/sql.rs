//! The SQL both backends speak: a narrow connection trait ([`Db`]), the values bound to and read
//! from statements, and the errors a statement ends in. The queries and writes of the store
//! (`read`, `write`, `store`) are written once against it; each backend supplies a [`Db`] over its
//! own driver (`sqlite::lite`, `postgres::pg`).
//!
//! The statements use the dialect both databases share: numbered placeholders (`?1`, which the
//! PostgreSQL side numbers `$1`), `ON CONFLICT`, `IS NOT DISTINCT FROM`, integers for flags, and no
//! database-specific functions. What differs (ids taken before a row is written, how a failure is
//! classified) is a method of [`Db`].

use crate::WriteFault;

/// One argument bound to a statement, borrowed from what the caller holds.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Arg<'a> {
    Null,
    Int(i64),
    /// A flag: stored as an integer 0 or 1 by both backends.
    Bool(bool),
    Text(&'a str),
    Bytes(&'a [u8]),
}

/// A value that can be bound to a statement.
pub(crate) trait ToArg {
    fn to_arg(&self) -> Arg<'_>;
}

impl ToArg for i64 {
    fn to_arg(&self) -> Arg<'_> {
        Arg::Int(*self)
    }
}

impl ToArg for i32 {
    fn to_arg(&self) -> Arg<'_> {
        Arg::Int(i64::from(*self))
    }
}

impl ToArg for u8 {
    fn to_arg(&self) -> Arg<'_> {
        Arg::Int(i64::from(*self))
    }
}

impl ToArg for bool {
    fn to_arg(&self) -> Arg<'_> {
        Arg::Bool(*self)
    }
}

impl ToArg for str {
    fn to_arg(&self) -> Arg<'_> {
        Arg::Text(self)
    }
}

impl ToArg for String {
    fn to_arg(&self) -> Arg<'_> {
        Arg::Text(self)
    }
}

impl ToArg for [u8] {
    fn to_arg(&self) -> Arg<'_> {
        Arg::Bytes(self)
    }
}

impl ToArg for Vec<u8> {
    fn to_arg(&self) -> Arg<'_> {
        Arg::Bytes(self)
    }
}

impl<T: ToArg + ?Sized> ToArg for &T {
    fn to_arg(&self) -> Arg<'_> {
        (**self).to_arg()
    }
}

impl<T: ToArg> ToArg for Option<T> {
    fn to_arg(&self) -> Arg<'_> {
        match self {
            Some(v) => v.to_arg(),
            None => Arg::Null,
        }
    }
}

/// The arguments of a statement, in placeholder order.
macro_rules! params {
    ($($arg:expr),* $(,)?) => {
        &[$(&$arg as &dyn $crate::sql::ToArg),*] as &[&dyn $crate::sql::ToArg]
    };
}
pub(crate) use params;

/// What can be passed as a statement's arguments: a list made by [`params!`], or `[]`.
pub(crate) trait Args {
    fn args(&self) -> &[&dyn ToArg];
}

impl Args for &[&dyn ToArg] {
    fn args(&self) -> &[&dyn ToArg] {
        self
    }
}

impl Args for [&dyn ToArg; 0] {
    fn args(&self) -> &[&dyn ToArg] {
        &[]
    }
}

/// A value read from a row.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Bool(bool),
    Text(String),
    Bytes(Vec<u8>),
}

impl ToArg for Value {
    fn to_arg(&self) -> Arg<'_> {
        match self {
            Value::Null => Arg::Null,
            Value::Int(i) => Arg::Int(*i),
            Value::Bool(b) => Arg::Bool(*b),
            Value::Text(t) => Arg::Text(t),
            Value::Bytes(b) => Arg::Bytes(b),
        }
    }
}

/// One row of a result, read whole.
#[derive(Debug)]
pub(crate) struct Row(pub(crate) Vec<Value>);

/// A column's place in a row.
pub(crate) trait ColumnIndex {
    fn index(self) -> usize;
}

impl ColumnIndex for usize {
    fn index(self) -> usize {
        self
    }
}

impl Row {
    /// The value of column `i` as a `T`.
    pub(crate) fn get<I: ColumnIndex, T: FromValue>(&self, i: I) -> Result<T, Error> {
        let i = i.index();
        let value = self.0.get(i).ok_or_else(|| Error::Corrupt(format!("a row has no column {i}")))?;
        T::from_value(value).ok_or_else(|| Error::Corrupt(format!("column {i} holds {value:?}, not the type read")))
    }
}

/// A type a column's value can be read as.
pub(crate) trait FromValue: Sized {
    fn from_value(v: &Value) -> Option<Self>;
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }
}

impl FromValue for u8 {
    fn from_value(v: &Value) -> Option<Self> {
        i64::from_value(v).and_then(|i| u8::try_from(i).ok())
    }
}

impl FromValue for u32 {
    fn from_value(v: &Value) -> Option<Self> {
        i64::from_value(v).and_then(|i| u32::try_from(i).ok())
    }
}

impl FromValue for bool {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Bool(b) => Some(*b),
            Value::Int(i) => Some(*i != 0),
            _ => None,
        }
    }
}

impl FromValue for String {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Text(t) => Some(t.clone()),
            _ => None,
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Bytes(b) => Some(b.clone()),
            _ => None,
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Null => Some(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// How a statement failed.
#[derive(Debug)]
pub(crate) enum Error {
    /// A query that must return a row returned none.
    NoRows,
    /// The database refused the statement (a constraint, a malformed statement): this write alone
    /// fails.
    Db(String),
    /// The database cannot take writes: the whole transaction fails and the store refuses writes
    /// until resumed.
    Fault(WriteFault),
    /// What is about to be stored, or what was read back, is not what the code that made it
    /// promises.
    Invariant(String),
    /// A stored value cannot be read as what it must be.
    Corrupt(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::NoRows => f.write_str("Query returned no rows"),
            Error::Db(text) => f.write_str(text),
            Error::Fault(fault) => write!(f, "{fault}"),
            Error::Invariant(what) => f.write_str(what),
            Error::Corrupt(what) => write!(f, "corrupt stored value: {what}"),
        }
    }
}

impl From<Error> for crate::StoreError {
    fn from(e: Error) -> Self {
        match e {
            Error::Invariant(what) => crate::StoreError::Corrupt(what),
            e => crate::StoreError::Db(e.to_string()),
        }
    }
}

/// A failed assertion at the store's boundary, as the error a write or a read returns.
pub(crate) fn invariant(what: String) -> Error {
    Error::Invariant(what)
}

/// A statement's error as the store reports it.
pub(crate) fn db(e: Error) -> crate::StoreError {
    e.into()
}

/// A connection, or a transaction or savepoint on one: what the store's statements run on.
pub(crate) trait Db {
    /// Runs a statement; the number of rows it changed.
    fn exec(&self, sql: &str, args: &[&dyn ToArg]) -> Result<usize, Error>;
    /// Runs a query; every row it returns.
    fn rows(&self, sql: &str, args: &[&dyn ToArg]) -> Result<Vec<Row>, Error>;
    /// The id the next row of `table` will have: one past the largest it ever had. Only the
    /// writer inserts, so the id is known before the row is written, and its sealed values are
    /// bound to it.
    fn next_id(&self, table: &str) -> Result<i64, Error>;
    /// Runs statements separated by semicolons, with no arguments.
    #[cfg(test)]
    fn execute_batch(&self, sql: &str) -> Result<(), Error>;
}

/// What the store's code holds: any backend's connection.
pub(crate) type Connection<'a> = dyn Db + 'a;

/// A statement to run, as `prepare_cached` returns it: each backend keeps its statements parsed.
pub(crate) struct Statement<'c, 'a> {
    conn: &'c Connection<'a>,
    sql: &'c str,
}

impl<'a> dyn Db + 'a {
    pub(crate) fn prepare_cached<'c>(&'c self, sql: &'c str) -> Result<Statement<'c, 'a>, Error> {
        Ok(Statement { conn: self, sql })
    }

    pub(crate) fn prepare<'c>(&'c self, sql: &'c str) -> Result<Statement<'c, 'a>, Error> {
        self.prepare_cached(sql)
    }

    pub(crate) fn execute(&self, sql: &str, args: impl Args) -> Result<usize, Error> {
        self.exec(sql, args.args())
    }

    pub(crate) fn query_row<T>(
        &self,
        sql: &str,
        args: impl Args,
        f: impl FnOnce(&Row) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let rows = self.rows(sql, args.args())?;
        rows.first().map_or(Err(Error::NoRows), f)
    }
}

impl Statement<'_, '_> {
    pub(crate) fn execute(&mut self, args: impl Args) -> Result<usize, Error> {
        self.conn.exec(self.sql, args.args())
    }

    pub(crate) fn query_row<T>(
        &mut self,
        args: impl Args,
        f: impl FnOnce(&Row) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.conn.query_row(self.sql, args, f)
    }

    pub(crate) fn query_map<T, F: FnMut(&Row) -> Result<T, Error>>(
        &mut self,
        args: impl Args,
        mut f: F,
    ) -> Result<impl Iterator<Item = Result<T, Error>>, Error> {
        let rows = self.conn.rows(self.sql, args.args())?;
        Ok(rows.into_iter().map(move |row| f(&row)))
    }
}

/// `Ok(None)` for a query that returned no row.
pub(crate) trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>, Error>;
}

impl<T> OptionalExtension<T> for Result<T, Error> {
    fn optional(self) -> Result<Option<T>, Error> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(Error::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
