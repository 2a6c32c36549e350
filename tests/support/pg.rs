//! A database of its own on the PostgreSQL server the tests use, for every test that runs a store
//! on PostgreSQL (the store's contract suite includes this file too). The server is the one
//! `ADI_TEST_POSTGRES` names, `postgres://postgres@127.0.0.1:5432` when unset; the test script
//! makes sure one runs.

/// The PostgreSQL server the tests use, as an address without a database.
pub fn pg_server() -> String {
    std::env::var("ADI_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// Runs a statement on the server's `postgres` database, as its administrator (on a thread of
/// its own, so that a test running in a runtime may call it).
pub fn pg_admin(sql: &str) {
    let url = format!("{}/postgres", pg_server());
    let sql = sql.to_string();
    let done = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("cannot reach the PostgreSQL server at {url} (set ADI_TEST_POSTGRES): {e}"));
            let served = tokio::spawn(connection);
            client.batch_execute(&sql).await.unwrap_or_else(|e| panic!("{sql}: {e:?}"));
            drop(client);
            let _ = served.await;
        })
    })
    .join();
    if let Err(panic) = done {
        std::panic::resume_unwind(panic);
    }
}

/// A database of its own on the test server, dropped with this value.
pub struct PgDatabase {
    pub name: String,
}

impl PgDatabase {
    pub fn create() -> PgDatabase {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("adi_test_{}_{n}", std::process::id());
        pg_admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        pg_admin(&format!("CREATE DATABASE {name}"));
        PgDatabase { name }
    }

    pub fn url(&self) -> String {
        format!("{}/{}", pg_server(), self.name)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        pg_admin(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

/// The databases on the test server whose names are LIKE `pattern`.
pub fn databases_named_like(pattern: &str) -> Vec<String> {
    let url = format!("{}/postgres", pg_server());
    let pattern = pattern.to_string();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("the server");
            let served = tokio::spawn(connection);
            let rows =
                client.query("SELECT datname FROM pg_database WHERE datname LIKE $1", &[&pattern]).await.unwrap();
            drop(client);
            let _ = served.await;
            rows.iter().map(|r| r.get::<_, String>(0)).collect()
        })
    })
    .join()
    .unwrap()
}

/// The first column of every row `sql` returns on the database at `url`, as bytes (`bytea`).
pub fn query_bytes(url: &str, sql: &str) -> Vec<Vec<u8>> {
    let (url, sql) = (url.to_string(), sql.to_string());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("the server");
            let served = tokio::spawn(connection);
            let rows = client.query(sql.as_str(), &[]).await.unwrap_or_else(|e| panic!("{sql}: {e:?}"));
            drop(client);
            let _ = served.await;
            rows.iter().map(|r| r.get::<_, Vec<u8>>(0)).collect()
        })
    })
    .join()
    .unwrap()
}
