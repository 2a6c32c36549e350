//! What an administrator of the PostgreSQL server does for nodes, as `adi demo` and `adi bench`
//! do it for the networks they set up: make a database for each node and drop it after, and read
//! how much a node's database holds.

use crate::StoreError;

/// Runs `work` on a connection to `url`, on a thread and runtime of its own, so that it may be
/// called from anywhere (a runtime's thread included).
fn on_server<T: Send + 'static>(
    url: String,
    work: impl FnOnce(
            tokio_postgres::Client,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, tokio_postgres::Error>> + Send>>
        + Send
        + 'static,
) -> Result<T, StoreError> {
    let shown = super::redacted(&url);
    let done = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Db(format!("cannot start a runtime: {e}")))?;
        runtime.block_on(async move {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .map_err(|e| StoreError::Db(format!("{shown}: {e}")))?;
            let served = tokio::spawn(connection);
            let out = work(client).await.map_err(|e| StoreError::Db(format!("{shown}: {e}")));
            let _ = served.await;
            out
        })
    });
    done.join().map_err(|_| StoreError::Db("the database task failed".into()))?
}

/// A database name the functions below take: lower-case letters, digits and `_`, as PostgreSQL
/// takes an identifier without quotes.
fn checked(name: &str) -> Result<&str, StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(name)
    } else {
        Err(StoreError::Db(format!("'{name}' is not a database name of lower-case letters, digits and _")))
    }
}

/// Makes an empty database `name` on the server at `server` (an address without a database),
/// connecting to its `postgres` database; fails if it exists.
pub fn create_database(server: &str, name: &str) -> Result<(), StoreError> {
    let sql = format!("CREATE DATABASE {}", checked(name)?);
    on_server(format!("{}/postgres", server.trim_end_matches('/')), move |c| {
        Box::pin(async move { c.batch_execute(&sql).await })
    })
}

/// Drops the database `name` on the server at `server`, closing its connections.
pub fn drop_database(server: &str, name: &str) -> Result<(), StoreError> {
    let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", checked(name)?);
    on_server(format!("{}/postgres", server.trim_end_matches('/')), move |c| {
        Box::pin(async move { c.batch_execute(&sql).await })
    })
}

/// Bytes the database at `url` takes on the server's disk (`pg_database_size`: its tables and
/// indexes, dead rows not yet vacuumed included; its share of the write-ahead log not).
pub fn database_bytes(url: &str) -> Result<u64, StoreError> {
    on_server(url.to_string(), |c| {
        Box::pin(async move {
            let row = c.query_one("SELECT pg_database_size(current_database())", &[]).await?;
            Ok(row.get::<_, i64>(0).max(0) as u64)
        })
    })
}

/// How many tables the database at `url` holds in its own schemas: 0 for an empty database.
pub fn table_count(url: &str) -> Result<u64, StoreError> {
    on_server(url.to_string(), |c| {
        Box::pin(async move {
            let row = c
                .query_one(
                    "SELECT count(*) FROM information_schema.tables
                     WHERE table_schema NOT IN ('pg_catalog', 'information_schema')",
                    &[],
                )
                .await?;
            Ok(row.get::<_, i64>(0).max(0) as u64)
        })
    })
}
