//! The SQLite backend's schema: the tables a new database is created with, the schema version
//! this build reads, and the migrations that bring an older database to it when it is opened.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use super::{db, write};
use crate::seal::Sealer;
use crate::StoreError;

const SCHEMA_VERSION: &str = "9";

/// The version before operators' tokens expired; such a database's operators gain the column
/// when it is opened, their tokens then never expiring until replaced.
const SCHEMA_VERSION_NO_TOKEN_EXPIRY: &str = "8";
/// The version before lines kept whether they are direct and members taken off a line kept where
/// they stopped; such a database gains both when it is opened.
const SCHEMA_VERSION_NO_REMOVALS: &str = "7";
/// The version before a refused envelope kept its recipient's refusal code; such a database's
/// recipients gain the column when it is opened.
const SCHEMA_VERSION_NO_REFUSAL: &str = "6";
/// The version before messages carried forms and working-group tags; such a database gains the
/// two columns when it is opened.
const SCHEMA_VERSION_NO_FORMS: &str = "5";
/// The version before the MLS state was stored entry by entry; such a database is migrated when
/// it is opened.
const SCHEMA_VERSION_WHOLE_MLS_STATE: &str = "4";

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lines (
    id BLOB PRIMARY KEY,
    scope TEXT NOT NULL,
    title TEXT NOT NULL,
    home TEXT NOT NULL,
    members TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    -- A direct line is made between two members and keeps them; a conference may change.
    direct INTEGER NOT NULL DEFAULT 0,
    -- When this node took the line, on its own clock.
    taken_ms INTEGER NOT NULL DEFAULT 0
);
-- Where each member taken off a line stopped (its last envelope accepted there, as the removal's
-- commit fixed it), and the epoch from which a later commit brought it back, if one did.
CREATE TABLE IF NOT EXISTS removals (
    line BLOB NOT NULL,
    member TEXT NOT NULL,
    seq INTEGER NOT NULL,
    hash BLOB NOT NULL,
    epoch INTEGER NOT NULL,
    readded_epoch INTEGER,
    PRIMARY KEY (line, member)
) WITHOUT ROWID;
-- Every member each line has had, as the records that changed its membership named them: a member
-- taken off since may still be read from an epoch it was on, and named a party to a decision made
-- then.
CREATE TABLE IF NOT EXISTS line_members_known (
    line BLOB NOT NULL,
    member TEXT NOT NULL,
    PRIMARY KEY (line, member)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS envelopes (
    arrival INTEGER PRIMARY KEY AUTOINCREMENT,
    hash BLOB NOT NULL UNIQUE,
    line BLOB NOT NULL REFERENCES lines(id),
    sender TEXT NOT NULL,
    seq INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    epoch INTEGER NOT NULL,
    content BLOB,
    kind TEXT NOT NULL,
    precedence TEXT,
    class TEXT,
    caveat BLOB,
    subject BLOB,
    body BLOB,
    ack_required INTEGER NOT NULL DEFAULT 0,
    crisis INTEGER NOT NULL DEFAULT 0,
    deadline_ms INTEGER,
    released_by TEXT,
    form BLOB,
    ewg BLOB,
    UNIQUE (line, sender, seq)
);
CREATE TABLE IF NOT EXISTS recipients (
    hash BLOB NOT NULL,
    member TEXT NOT NULL,
    state TEXT NOT NULL,
    sent_ms INTEGER NOT NULL,
    delivered_ms INTEGER,
    decrypted_ms INTEGER,
    seen_ms INTEGER,
    acknowledged_ms INTEGER,
    declined_ms INTEGER,
    detail BLOB,
    refusal TEXT,
    PRIMARY KEY (hash, member)
);
CREATE TABLE IF NOT EXISTS receipts (
    hash BLOB PRIMARY KEY,
    answers BLOB NOT NULL,
    member TEXT NOT NULL,
    kind TEXT NOT NULL,
    reason BLOB,
    signed_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS receipts_answers ON receipts (answers, member);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    peer TEXT NOT NULL,
    hash BLOB NOT NULL,
    priority INTEGER NOT NULL,
    enqueued_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try_ms INTEGER NOT NULL DEFAULT 0,
    UNIQUE (peer, hash)
);
CREATE INDEX IF NOT EXISTS outbox_order ON outbox (peer, priority, id);
CREATE TABLE IF NOT EXISTS alarms (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    line BLOB NOT NULL,
    member TEXT NOT NULL,
    message BLOB,
    raised_ms INTEGER NOT NULL,
    detail BLOB NOT NULL,
    addressed_to TEXT NOT NULL,
    repeats INTEGER NOT NULL DEFAULT 0,
    last_raised_ms INTEGER NOT NULL,
    acked_by TEXT,
    acked_ms INTEGER,
    cleared_ms INTEGER,
    clear_reason BLOB
);
CREATE INDEX IF NOT EXISTS alarms_open ON alarms (kind, line, member) WHERE cleared_ms IS NULL;
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    line BLOB,
    message BLOB,
    member TEXT,
    state TEXT,
    alarm INTEGER,
    detail BLOB
);
CREATE TABLE IF NOT EXISTS drafts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    line BLOB NOT NULL,
    draft BLOB NOT NULL,
    drafter TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    state TEXT NOT NULL,
    released_by TEXT,
    released_ms INTEGER,
    message BLOB
);
-- This member's MLS state, one row per entry of its key-value state; each commit writes only the
-- entries that changed. Values are sealed, bound to their key.
CREATE TABLE IF NOT EXISTS mls_entries (
    key BLOB PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS held (
    hash BLOB PRIMARY KEY,
    line BLOB NOT NULL,
    sender TEXT NOT NULL,
    seq INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    received_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS held_line ON held (line, epoch);
CREATE TABLE IF NOT EXISTS evidence (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    line BLOB NOT NULL,
    member TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    detail BLOB NOT NULL,
    held BLOB NOT NULL,
    offered BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    line BLOB NOT NULL,
    signer TEXT NOT NULL,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    time_ms INTEGER NOT NULL,
    signed BLOB NOT NULL,
    PRIMARY KEY (line, signer, size, root)
);
CREATE TABLE IF NOT EXISTS countersignatures (
    line BLOB NOT NULL,
    signer TEXT NOT NULL,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    member TEXT NOT NULL,
    signature BLOB NOT NULL,
    PRIMARY KEY (line, signer, size, root, member)
);
CREATE TABLE IF NOT EXISTS decisions (
    id BLOB PRIMARY KEY,
    line BLOB NOT NULL,
    proposer TEXT NOT NULL,
    text BLOB NOT NULL,
    text_sha256 BLOB NOT NULL,
    parties TEXT NOT NULL,
    deadline_ms INTEGER,
    supersedes BLOB,
    created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_line ON decisions (line, created_ms);
CREATE INDEX IF NOT EXISTS decisions_supersedes ON decisions (supersedes) WHERE supersedes IS NOT NULL;
CREATE TABLE IF NOT EXISTS concurrences (
    hash BLOB PRIMARY KEY,
    decision BLOB NOT NULL,
    member TEXT NOT NULL,
    text_sha256 BLOB NOT NULL,
    concur INTEGER NOT NULL,
    reason BLOB,
    signed_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS concurrences_decision ON concurrences (decision, member);
CREATE TABLE IF NOT EXISTS translations (
    hash BLOB PRIMARY KEY,
    original BLOB NOT NULL,
    member TEXT NOT NULL,
    language TEXT NOT NULL,
    text BLOB NOT NULL,
    translator TEXT NOT NULL,
    reviewed_by TEXT,
    revises BLOB,
    created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS translations_original ON translations (original, created_ms);
CREATE TABLE IF NOT EXISTS key_packages (
    reference BLOB PRIMARY KEY,
    bytes BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    claimed_by TEXT,
    claimed_ms INTEGER
);
-- Each KeyPackage claim a peer made within the last hour, for its quota
-- (`key_package_claims_per_hour_max`); older ones are deleted as claims are made.
CREATE TABLE IF NOT EXISTS key_package_claims (
    peer TEXT NOT NULL,
    claimed_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS key_package_claims_peer ON key_package_claims (peer, claimed_ms);
CREATE TABLE IF NOT EXISTS used_key_packages (
    reference BLOB PRIMARY KEY,
    member TEXT NOT NULL,
    used_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS operators (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL,
    password_hash TEXT,
    -- When the token stops being accepted (ms since 1970); NULL for a token that never expires.
    token_expires_ms INTEGER
);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash BLOB PRIMARY KEY,
    operator TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '9');
INSERT OR IGNORE INTO meta (key, value) VALUES ('database_id', lower(hex(randomblob(16))));
"#;

/// Creates what a new database lacks (the tables, its schema version and its id) and migrates a
/// database of an older version, each migration in one transaction; a database of any other
/// version is refused.
pub(super) fn prepare(conn: &mut Connection, sealer: &Sealer, path: &Path) -> Result<(), StoreError> {
    conn.execute_batch(SCHEMA).map_err(db)?;
    let mut version: String =
        conn.query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |row| row.get(0)).map_err(db)?;
    if version == SCHEMA_VERSION_WHOLE_MLS_STATE {
        migrate_whole_mls_state(conn, sealer)?;
        version = SCHEMA_VERSION_NO_FORMS.to_string();
    }
    if version == SCHEMA_VERSION_NO_FORMS {
        migrate_add_forms(conn)?;
        version = SCHEMA_VERSION_NO_REFUSAL.to_string();
    }
    if version == SCHEMA_VERSION_NO_REFUSAL {
        migrate_add_refusal(conn)?;
        version = SCHEMA_VERSION_NO_REMOVALS.to_string();
    }
    if version == SCHEMA_VERSION_NO_REMOVALS {
        migrate_add_direct(conn)?;
        version = SCHEMA_VERSION_NO_TOKEN_EXPIRY.to_string();
    }
    if version == SCHEMA_VERSION_NO_TOKEN_EXPIRY {
        migrate_add_token_expiry(conn)?;
        version = SCHEMA_VERSION.to_string();
    }
    if version != SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "{}: the database has schema version {version}; this build reads version {SCHEMA_VERSION}",
            path.display()
        )));
    }
    Ok(())
}

/// Moves the whole-state MLS snapshot of a version 4 database into one row per entry, in one
/// transaction.
fn migrate_whole_mls_state(conn: &mut Connection, sealer: &Sealer) -> Result<(), StoreError> {
    let tx = conn.transaction().map_err(db)?;
    let legacy: Option<Vec<u8>> =
        tx.query_row("SELECT snapshot FROM mls_state WHERE id = 1", [], |row| row.get(0)).optional().map_err(db)?;
    if let Some(sealed) = legacy {
        let whole = sealer.open("mls_state.snapshot", &sealed)?;
        let entries = adi_mls::decode_state(&whole).map_err(|e| StoreError::Corrupt(format!("mls_state: {e}")))?;
        let delta = adi_mls::StateDelta { put: entries.into_iter().collect(), delete: Vec::new() };
        write::mls_delta(&tx, sealer, &delta).map_err(db)?;
    }
    tx.execute_batch(&format!(
        "DROP TABLE IF EXISTS mls_state; UPDATE meta SET value = '{SCHEMA_VERSION_NO_FORMS}' WHERE key = 'schema_version';"
    ))
    .map_err(db)?;
    tx.commit().map_err(db)
}

/// Gives a version 5 database's envelopes the form and working-group columns, in one transaction.
fn migrate_add_forms(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction().map_err(db)?;
    let columns: Vec<String> = tx
        .prepare("SELECT name FROM pragma_table_info('envelopes')")
        .and_then(|mut st| st.query_map([], |row| row.get(0))?.collect())
        .map_err(db)?;
    for (column, kind) in [("form", "BLOB"), ("ewg", "BLOB")] {
        if !columns.iter().any(|c| c == column) {
            tx.execute_batch(&format!("ALTER TABLE envelopes ADD COLUMN {column} {kind};")).map_err(db)?;
        }
    }
    tx.execute_batch(&format!("UPDATE meta SET value = '{SCHEMA_VERSION_NO_REFUSAL}' WHERE key = 'schema_version';"))
        .map_err(db)?;
    tx.commit().map_err(db)
}

/// Gives a version 6 database's recipients the refusal code column, in one transaction. Refusals
/// stored before it keep their reason in words and read back with no code.
fn migrate_add_refusal(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction().map_err(db)?;
    let columns: Vec<String> = tx
        .prepare("SELECT name FROM pragma_table_info('recipients')")
        .and_then(|mut st| st.query_map([], |row| row.get(0))?.collect())
        .map_err(db)?;
    if !columns.iter().any(|c| c == "refusal") {
        tx.execute_batch("ALTER TABLE recipients ADD COLUMN refusal TEXT;").map_err(db)?;
    }
    tx.execute_batch(&format!("UPDATE meta SET value = '{SCHEMA_VERSION_NO_REMOVALS}' WHERE key = 'schema_version';"))
        .map_err(db)?;
    tx.commit().map_err(db)
}

/// Brings a version 7 database to version 8: its lines gain `taken_ms` (their home member's
/// `created_ms`, the nearest time such a database holds) and `direct`, set for every line of two
/// members (a version 7 node made a line of two members direct, and a conference it kept could
/// not shrink below three but by a removal, which such a database cannot tell apart), and the
/// `removals` table is created empty: a member taken off a line before the upgrade has no place
/// fixed, and its envelopes are judged by their epoch alone, as version 7 judged them.
fn migrate_add_direct(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction().map_err(db)?;
    let columns: Vec<String> = tx
        .prepare("SELECT name FROM pragma_table_info('lines')")
        .and_then(|mut st| st.query_map([], |row| row.get(0))?.collect())
        .map_err(db)?;
    if !columns.iter().any(|c| c == "direct") {
        tx.execute_batch(
            "ALTER TABLE lines ADD COLUMN direct INTEGER NOT NULL DEFAULT 0;
             UPDATE lines SET direct = 1 WHERE length(members) - length(replace(members, ',', '')) = 1;",
        )
        .map_err(db)?;
    }
    if !columns.iter().any(|c| c == "taken_ms") {
        tx.execute_batch(
            "ALTER TABLE lines ADD COLUMN taken_ms INTEGER NOT NULL DEFAULT 0;
             UPDATE lines SET taken_ms = created_ms;",
        )
        .map_err(db)?;
    }
    tx.execute_batch(&format!(
        "UPDATE meta SET value = '{SCHEMA_VERSION_NO_TOKEN_EXPIRY}' WHERE key = 'schema_version';"
    ))
    .map_err(db)?;
    tx.commit().map_err(db)
}

/// Gives a version 8 database's operators the token expiry column, in one transaction.
fn migrate_add_token_expiry(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction().map_err(db)?;
    let columns: Vec<String> = tx
        .prepare("SELECT name FROM pragma_table_info('operators')")
        .and_then(|mut st| st.query_map([], |row| row.get(0))?.collect())
        .map_err(db)?;
    if !columns.iter().any(|c| c == "token_expires_ms") {
        tx.execute_batch("ALTER TABLE operators ADD COLUMN token_expires_ms INTEGER;").map_err(db)?;
    }
    tx.execute_batch(&format!("UPDATE meta SET value = '{SCHEMA_VERSION}' WHERE key = 'schema_version';"))
        .map_err(db)?;
    tx.commit().map_err(db)
}

/// The database's identity (`meta.database_id`), made when it was created.
pub(super) fn database_id(conn: &Connection) -> Result<String, rusqlite::Error> {
    conn.query_row("SELECT value FROM meta WHERE key = 'database_id'", [], |row| row.get(0))
}

#[cfg(test)]
mod tests {
    use rusqlite::params;

    use super::*;
    use crate::sqlite::tests::{fresh, on_writer, MASTER_KEY};
    use crate::sqlite::{SqliteStore, StoreConfig};
    use crate::Store;

    #[test]
    fn a_version_5_database_gains_the_form_columns_when_opened() {
        let (dir, store) = fresh();
        let path = dir.path().join("adi.db");
        // The envelopes table as version 5 left it: no form and no working-group columns.
        on_writer(
            &store,
            "ALTER TABLE envelopes DROP COLUMN form; ALTER TABLE envelopes DROP COLUMN ewg;
             UPDATE meta SET value = '5' WHERE key = 'schema_version';",
        );
        let columns = |store: &SqliteStore| -> Vec<String> {
            store
                .read(|c| {
                    c.prepare("SELECT name FROM pragma_table_info('envelopes')")?.query_map([], |r| r.get(0))?.collect()
                })
                .unwrap()
        };
        assert!(!columns(&store).contains(&"form".to_string()));
        drop(store);
        let store = SqliteStore::open(StoreConfig::new(&path, MASTER_KEY)).unwrap();
        let cols = columns(&store);
        assert!(cols.contains(&"form".to_string()) && cols.contains(&"ewg".to_string()), "{cols:?}");
        let version: String = store
            .read(|c| c.prepare("SELECT value FROM meta WHERE key = 'schema_version'")?.query_row([], |row| row.get(0)))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        drop(store);
        // Opened again, nothing changes.
        let store = SqliteStore::open(StoreConfig::new(&path, MASTER_KEY)).unwrap();
        assert_eq!(columns(&store), cols);
    }

    #[test]
    fn a_version_8_database_gains_token_expiry_and_its_tokens_never_expire_until_replaced() {
        let (dir, store) = fresh();
        let path = dir.path().join("adi.db");
        let duty = crate::Operator { name: "duty-ph".into(), role: adi_core::Role::Duty, created_ms: 1 };
        store.add_operator(&duty, [7; 32], None).unwrap();
        on_writer(
            &store,
            "ALTER TABLE operators DROP COLUMN token_expires_ms; UPDATE meta SET value = '8' WHERE key = 'schema_version';",
        );
        drop(store);
        let store = SqliteStore::open(StoreConfig::new(&path, MASTER_KEY)).unwrap();
        assert_eq!(store.operator_by_token(&[7; 32]).unwrap(), Some((duty, None)));
        let version: String = store
            .read(|c| c.prepare("SELECT value FROM meta WHERE key = 'schema_version'")?.query_row([], |row| row.get(0)))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[test]
    fn a_version_6_database_gains_the_refusal_column_when_opened() {
        let (dir, store) = fresh();
        let path = dir.path().join("adi.db");
        // The recipients table as version 6 left it: refusals in words only.
        on_writer(
            &store,
            "ALTER TABLE recipients DROP COLUMN refusal; UPDATE meta SET value = '6' WHERE key = 'schema_version';",
        );
        let columns = |store: &SqliteStore| -> Vec<String> {
            store
                .read(|c| {
                    c.prepare("SELECT name FROM pragma_table_info('recipients')")?
                        .query_map([], |r| r.get(0))?
                        .collect()
                })
                .unwrap()
        };
        assert!(!columns(&store).contains(&"refusal".to_string()));
        drop(store);
        let store = SqliteStore::open(StoreConfig::new(&path, MASTER_KEY)).unwrap();
        assert!(columns(&store).contains(&"refusal".to_string()));
        let version: String = store
            .read(|c| c.prepare("SELECT value FROM meta WHERE key = 'schema_version'")?.query_row([], |row| row.get(0)))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[test]
    fn a_version_7_database_marks_its_lines_of_two_direct_and_gains_removals_when_opened() {
        let (dir, store) = fresh();
        let path = dir.path().join("adi.db");
        // The lines table as version 7 left it, with a line of two members and one of three.
        on_writer(
            &store,
            "ALTER TABLE lines DROP COLUMN direct; ALTER TABLE lines DROP COLUMN taken_ms; DROP TABLE removals;
             INSERT INTO lines (id, scope, title, home, members, created_ms)
                 VALUES (x'01', 'ADMM-Plus', '', 'PH', 'CN,PH', 1), (x'02', 'ADMM', '', 'PH', 'PH,SG,VN', 1);
             UPDATE meta SET value = '7' WHERE key = 'schema_version';",
        );
        drop(store);
        let store = SqliteStore::open(StoreConfig::new(&path, MASTER_KEY)).unwrap();
        let direct: Vec<(Vec<u8>, bool)> = store
            .read(|c| {
                c.prepare("SELECT id, direct FROM lines ORDER BY id")?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })
            .unwrap();
        assert_eq!(direct, [(vec![1], true), (vec![2], false)]);
        let removals: i64 = store.read(|c| c.query_row("SELECT COUNT(*) FROM removals", [], |r| r.get(0))).unwrap();
        assert_eq!(removals, 0);
        let version: String = store
            .read(|c| c.prepare("SELECT value FROM meta WHERE key = 'schema_version'")?.query_row([], |row| row.get(0)))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[test]
    fn a_version_4_database_moves_its_whole_mls_state_into_entries_when_opened() {
        let (dir, store) = fresh();
        let path = dir.path().join("adi.db");
        let mut member = adi_mls::LineMember::new("PH", [3; 32], adi_mls::MlsConfig::default()).unwrap();
        member.key_packages(2).unwrap();
        let whole = member.snapshot().unwrap();
        // The database as version 4 left it: one sealed snapshot of the whole state.
        let sealed = store.inner.sealer.seal("mls_state.snapshot", &whole);
        on_writer(
            &store,
            "CREATE TABLE mls_state (id INTEGER PRIMARY KEY CHECK (id = 1), snapshot BLOB NOT NULL);
             UPDATE meta SET value = '4' WHERE key = 'schema_version';",
        );
        store
            .submit(move |c| {
                c.prepare_cached("INSERT INTO mls_state (id, snapshot) VALUES (1, ?1)")?.execute(params![sealed])?;
                Ok(())
            })
            .wait_blocking()
            .unwrap();
        drop(store);

        let store = SqliteStore::open(StoreConfig::new(&path, MASTER_KEY)).unwrap();
        let mut expected: Vec<(Vec<u8>, Vec<u8>)> = adi_mls::decode_state(&whole).unwrap().into_iter().collect();
        expected.sort();
        assert!(expected.len() > 2);
        assert_eq!(store.mls_state().unwrap(), expected);
        let version: String = store
            .read(|c| {
                c.prepare_cached("SELECT value FROM meta WHERE key = 'schema_version'")?.query_row([], |row| row.get(0))
            })
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let legacy: i64 = store
            .read(|c| {
                c.prepare_cached("SELECT count(*) FROM sqlite_master WHERE name = 'mls_state'")?
                    .query_row([], |row| row.get(0))
            })
            .unwrap();
        assert_eq!(legacy, 0, "the whole-state table is gone");
        drop(store);

        // Opened again, nothing changes; the member restored from the entries is the one saved.
        let store = SqliteStore::open(StoreConfig::new(&path, MASTER_KEY)).unwrap();
        let entries = store.mls_state().unwrap();
        assert_eq!(entries, expected);
        let restored =
            adi_mls::LineMember::restore("PH", [3; 32], adi_mls::MlsConfig::default(), entries, &[]).unwrap();
        assert_eq!(restored.snapshot().unwrap(), whole);
    }
}
