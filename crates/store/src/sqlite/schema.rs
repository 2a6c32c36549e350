//! The SQLite backend's schema: the tables a new database is created with, the schema version
//! this build reads, and the migrations that bring an older database to it when it is opened.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use super::{db, Lite};
use crate::seal::Sealer;
use crate::StoreError;
use crate::{sql, write};

const SCHEMA_VERSION: &str = "13";

/// The version before attachments: its envelopes gain the files a message names, and the
/// `chunks` and `uploads` tables are created, when it is opened.
const SCHEMA_VERSION_NO_ATTACHMENTS: &str = "12";

/// The version before retention: its envelopes gain the time their content was pruned, and the
/// `archives` table is created, when it is opened.
const SCHEMA_VERSION_NO_RETENTION: &str = "11";

/// The version before a receipt of this member's kept which operator of its desk made it; such a
/// database's receipts gain the column when it is opened.
const SCHEMA_VERSION_NO_ANSWERER: &str = "10";

/// The version whose sealed values were bound to their column only, and whose line titles,
/// operators' names in records, decision parties, translators and KeyPackage claimants were in
/// the clear; such a database is sealed again, row by row, when it is opened.
const SCHEMA_VERSION_COLUMN_SEALS: &str = "9";

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
    title BLOB NOT NULL,
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
    released_by BLOB,
    form BLOB,
    ewg BLOB,
    -- When retention emptied its sealed content columns (content, caveat, subject, body, form, ewg,
    -- released_by); its signed bytes stay.
    pruned_ms INTEGER,
    -- The files a message names (sealed): SHA-256, size, chunks, media type, name, a line each.
    attachments BLOB,
    UNIQUE (line, sender, seq)
);
-- Each chunk of a file attached to a message, by its place: the chunk envelope that carries it.
CREATE TABLE IF NOT EXISTS chunks (
    message BLOB NOT NULL,
    file BLOB NOT NULL,
    idx INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (message, file, idx)
) WITHOUT ROWID;
-- Files operators uploaded to attach, sealed, until sent or forgotten.
CREATE TABLE IF NOT EXISTS uploads (
    sha256 BLOB PRIMARY KEY,
    name BLOB NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    uploader BLOB NOT NULL,
    created_ms INTEGER NOT NULL
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
    signed_ms INTEGER NOT NULL,
    operator BLOB
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
    acked_by BLOB,
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
    drafter BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    state TEXT NOT NULL,
    released_by BLOB,
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
    parties BLOB NOT NULL,
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
    translator BLOB NOT NULL,
    reviewed_by BLOB,
    revises BLOB,
    created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS translations_original ON translations (original, created_ms);
CREATE TABLE IF NOT EXISTS key_packages (
    reference BLOB PRIMARY KEY,
    bytes BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    claimed_by BLOB,
    claimed_ms INTEGER
);
-- Each KeyPackage claim a peer made within the last hour, for its quota
-- (`key_package_claims_per_hour_max`); older ones are deleted as claims are made. The peer is
-- kept as a blind index: claims by one peer can be counted, not named.
CREATE TABLE IF NOT EXISTS key_package_claims (
    peer BLOB NOT NULL,
    claimed_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS key_package_claims_peer ON key_package_claims (peer, claimed_ms);
CREATE TABLE IF NOT EXISTS used_key_packages (
    reference BLOB PRIMARY KEY,
    member BLOB NOT NULL,
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
-- Administrative actions (operators added, changed or removed, passwords set, configuration
-- changes), newest last; who acted, on whom, and the detail are sealed, bound to the row.
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    action TEXT NOT NULL,
    actor BLOB NOT NULL,
    subject BLOB,
    detail BLOB NOT NULL
);
-- The roster's versions after the first, as this node applied them, in order; each version's
-- file (public keys, endpoints and signatures, as every member holds them) sealed, bound to its
-- number.
CREATE TABLE IF NOT EXISTS roster_versions (
    number INTEGER PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    body BLOB NOT NULL,
    applied_ms INTEGER NOT NULL
);
-- Proposed roster versions that lack signatures yet, with those collected so far; forgotten once
-- a version of their number is applied.
CREATE TABLE IF NOT EXISTS roster_proposals (
    hash BLOB PRIMARY KEY,
    number INTEGER NOT NULL,
    body BLOB NOT NULL,
    seen_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash BLOB PRIMARY KEY,
    operator TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL
);
-- Exports of a line this node served, by the SHA-256 of their bytes: one whose archiving was
-- confirmed holds, with their content, every envelope of its line accepted from first_arrival to
-- last_arrival, which retention may then prune here. Those never confirmed are forgotten.
CREATE TABLE IF NOT EXISTS archives (
    line BLOB NOT NULL,
    sha256 BLOB NOT NULL,
    first_arrival INTEGER NOT NULL,
    last_arrival INTEGER NOT NULL,
    envelopes INTEGER NOT NULL,
    served_ms INTEGER NOT NULL,
    confirmed_ms INTEGER,
    PRIMARY KEY (line, sha256)
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '13');
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
        migrate_whole_mls_state(conn, sealer, path)?;
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
        version = SCHEMA_VERSION_COLUMN_SEALS.to_string();
    }
    if version == SCHEMA_VERSION_COLUMN_SEALS {
        migrate_seal_rows(conn, sealer)?;
        // The old values stay in freed pages and the journal until both are rewritten.
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM; PRAGMA wal_checkpoint(TRUNCATE);").map_err(db)?;
        version = SCHEMA_VERSION_NO_ANSWERER.to_string();
    }
    if version == SCHEMA_VERSION_NO_ANSWERER {
        migrate_add_answerer(conn)?;
        version = SCHEMA_VERSION_NO_RETENTION.to_string();
    }
    if version == SCHEMA_VERSION_NO_RETENTION {
        migrate_add_retention(conn)?;
        version = SCHEMA_VERSION_NO_ATTACHMENTS.to_string();
    }
    if version == SCHEMA_VERSION_NO_ATTACHMENTS {
        migrate_add_attachments(conn)?;
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
fn migrate_whole_mls_state(conn: &mut Connection, sealer: &Sealer, path: &Path) -> Result<(), StoreError> {
    let tx = conn.transaction().map_err(db)?;
    let legacy: Option<Vec<u8>> =
        tx.query_row("SELECT snapshot FROM mls_state WHERE id = 1", [], |row| row.get(0)).optional().map_err(db)?;
    if let Some(sealed) = legacy {
        let whole = sealer.open_column_bound("mls_state.snapshot", &sealed)?;
        let entries = adi_mls::decode_state(&whole).map_err(|e| StoreError::Corrupt(format!("mls_state: {e}")))?;
        let delta = adi_mls::StateDelta { put: entries.into_iter().collect(), delete: Vec::new() };
        write::mls_delta(&Lite::new(&tx, path), sealer, &delta).map_err(sql::db)?;
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
    tx.execute_batch(&format!("UPDATE meta SET value = '{SCHEMA_VERSION_COLUMN_SEALS}' WHERE key = 'schema_version';"))
        .map_err(db)?;
    tx.commit().map_err(db)
}

/// What a column of a version 9 database holds.
#[derive(Clone, Copy)]
enum Was {
    /// A value sealed bound to its column only.
    Sealed,
    /// Text in the clear.
    Clear,
}

/// The columns of version 9 that version 10 seals bound to their row: each table, the columns of
/// its primary key (their values, integers as eight big-endian bytes, make the row's key), and
/// the columns to seal.
/// A table, the columns of its primary key, and its columns that version 10 seals.
type SealedTable = (&'static str, &'static [&'static str], &'static [(&'static str, Was)]);

const SEALED_ROWS: &[SealedTable] = &[
    ("lines", &["id"], &[("title", Was::Clear)]),
    (
        "envelopes",
        &["hash"],
        &[
            ("bytes", Was::Sealed),
            ("content", Was::Sealed),
            ("caveat", Was::Sealed),
            ("subject", Was::Sealed),
            ("body", Was::Sealed),
            ("form", Was::Sealed),
            ("ewg", Was::Sealed),
            ("released_by", Was::Clear),
        ],
    ),
    ("recipients", &["hash", "member"], &[("detail", Was::Sealed)]),
    ("receipts", &["hash"], &[("reason", Was::Sealed)]),
    ("alarms", &["id"], &[("detail", Was::Sealed), ("clear_reason", Was::Sealed), ("acked_by", Was::Clear)]),
    ("events", &["id"], &[("detail", Was::Sealed)]),
    ("drafts", &["id"], &[("draft", Was::Sealed), ("drafter", Was::Clear), ("released_by", Was::Clear)]),
    ("mls_entries", &["key"], &[("value", Was::Sealed)]),
    ("held", &["hash"], &[("bytes", Was::Sealed)]),
    ("evidence", &["id"], &[("detail", Was::Sealed), ("held", Was::Sealed), ("offered", Was::Sealed)]),
    ("decisions", &["id"], &[("text", Was::Sealed), ("parties", Was::Clear)]),
    ("concurrences", &["hash"], &[("reason", Was::Sealed)]),
    ("translations", &["hash"], &[("text", Was::Sealed), ("translator", Was::Clear), ("reviewed_by", Was::Clear)]),
    ("key_packages", &["reference"], &[("claimed_by", Was::Clear)]),
    ("used_key_packages", &["reference"], &[("member", Was::Clear)]),
];

/// How many rows the migration to version 10 reads at a time.
const RESEAL_PAGE_ROWS: i64 = 512;

/// Brings a version 9 database to version 10, in one transaction: every sealed value is opened
/// and sealed again bound to its row, the metadata that version 9 kept in the clear is sealed
/// the same way, and the peers of KeyPackage claims become blind indexes.
fn migrate_seal_rows(conn: &mut Connection, sealer: &Sealer) -> Result<(), StoreError> {
    use rusqlite::types::Value;
    let tx = conn.transaction().map_err(db)?;
    for (table, key, columns) in SEALED_ROWS {
        // Rows are read in pages, in the order of their rowid (or of their key, for the one table
        // without rowids), each page after the last one read.
        let order = if *table == "mls_entries" { "key" } else { "rowid" };
        let select = format!(
            "SELECT {order}, {keys}, {cols} FROM {table} WHERE ?1 IS NULL OR {order} > ?1 ORDER BY {order} LIMIT ?2",
            keys = key.join(", "),
            cols = columns.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", "),
        );
        let update = format!(
            "UPDATE {table} SET {sets} WHERE {wheres}",
            sets = columns
                .iter()
                .enumerate()
                .map(|(i, (c, _))| format!("{c} = ?{}", i + 1))
                .collect::<Vec<_>>()
                .join(", "),
            wheres = key
                .iter()
                .enumerate()
                .map(|(i, k)| format!("{k} = ?{}", columns.len() + i + 1))
                .collect::<Vec<_>>()
                .join(" AND "),
        );
        let mut after = Value::Null;
        let mut resealed = 0u64;
        loop {
            let rows: Vec<Vec<Value>> = {
                let mut stmt = tx.prepare(&select).map_err(db)?;
                let n = 1 + key.len() + columns.len();
                let rows = stmt
                    .query_map(rusqlite::params![after, RESEAL_PAGE_ROWS], |row| {
                        (0..n).map(|i| row.get::<_, Value>(i)).collect::<Result<Vec<_>, _>>()
                    })
                    .map_err(db)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(db)?;
                rows
            };
            for row in &rows {
                let (keys, values) = row[1..].split_at(key.len());
                let row_key = row_key(table, keys)?;
                let mut params: Vec<Value> = Vec::with_capacity(row.len());
                for ((column, was), value) in columns.iter().zip(values) {
                    let label = format!("{table}.{column}");
                    params.push(match (was, value) {
                        (_, Value::Null) => Value::Null,
                        // The migration of a version 4 database already wrote its MLS entries so.
                        (Was::Sealed, Value::Blob(v)) if sealer.is_row_bound(v) => Value::Blob(v.clone()),
                        (Was::Sealed, Value::Blob(v)) => {
                            let old_label = if *table == "mls_entries" {
                                write::mls_entry_label_column_bound(&row_key)
                            } else {
                                label.clone()
                            };
                            Value::Blob(sealer.seal(&label, &row_key, &sealer.open_column_bound(&old_label, v)?))
                        }
                        (Was::Clear, Value::Text(t)) => Value::Blob(sealer.seal_str(&label, &row_key, t)),
                        _ => return Err(StoreError::Corrupt(format!("{label}: a value of an unexpected type"))),
                    });
                }
                params.extend(keys.iter().cloned());
                tx.execute(&update, rusqlite::params_from_iter(params)).map_err(db)?;
                resealed += 1;
            }
            match rows.last() {
                Some(last) if rows.len() as i64 == RESEAL_PAGE_ROWS => after = last[0].clone(),
                _ => break,
            }
        }
        tracing::info!(table, rows = resealed, "sealed again, bound to each row");
    }
    let peers: Vec<String> = tx
        .prepare("SELECT DISTINCT peer FROM key_package_claims WHERE typeof(peer) = 'text'")
        .and_then(|mut st| st.query_map([], |row| row.get(0))?.collect())
        .map_err(db)?;
    for peer in peers {
        tx.execute(
            "UPDATE key_package_claims SET peer = ?2 WHERE peer = ?1",
            rusqlite::params![peer, sealer.blind("key_package_claims.peer", peer.as_bytes())],
        )
        .map_err(db)?;
    }
    tx.execute_batch(&format!("UPDATE meta SET value = '{SCHEMA_VERSION_NO_ANSWERER}' WHERE key = 'schema_version';"))
        .map_err(db)?;
    tx.commit().map_err(db)
}

/// Gives the receipts the column of the operator who made each of this member's own.
fn migrate_add_answerer(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction().map_err(db)?;
    let columns: Vec<String> = tx
        .prepare("SELECT name FROM pragma_table_info('receipts')")
        .and_then(|mut st| st.query_map([], |row| row.get(0))?.collect())
        .map_err(db)?;
    if !columns.iter().any(|c| c == "operator") {
        tx.execute_batch("ALTER TABLE receipts ADD COLUMN operator BLOB;").map_err(db)?;
    }
    tx.execute_batch(&format!("UPDATE meta SET value = '{SCHEMA_VERSION_NO_RETENTION}' WHERE key = 'schema_version';"))
        .map_err(db)?;
    tx.commit().map_err(db)
}

/// Gives a version 11 database's envelopes the column retention notes its pruning in (the
/// `archives` table the schema creates), in one transaction: nothing of it was pruned.
fn migrate_add_retention(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction().map_err(db)?;
    let columns: Vec<String> = tx
        .prepare("SELECT name FROM pragma_table_info('envelopes')")
        .and_then(|mut st| st.query_map([], |row| row.get(0))?.collect())
        .map_err(db)?;
    if !columns.iter().any(|c| c == "pruned_ms") {
        tx.execute_batch("ALTER TABLE envelopes ADD COLUMN pruned_ms INTEGER;").map_err(db)?;
    }
    tx.execute_batch(&format!(
        "UPDATE meta SET value = '{SCHEMA_VERSION_NO_ATTACHMENTS}' WHERE key = 'schema_version';"
    ))
    .map_err(db)?;
    tx.commit().map_err(db)
}

/// Gives a version 12 database's envelopes the column of the files a message names (the `chunks`
/// and `uploads` tables the schema creates), in one transaction: no message of it had any.
fn migrate_add_attachments(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction().map_err(db)?;
    let columns: Vec<String> = tx
        .prepare("SELECT name FROM pragma_table_info('envelopes')")
        .and_then(|mut st| st.query_map([], |row| row.get(0))?.collect())
        .map_err(db)?;
    if !columns.iter().any(|c| c == "attachments") {
        tx.execute_batch("ALTER TABLE envelopes ADD COLUMN attachments BLOB;").map_err(db)?;
    }
    tx.execute_batch(&format!("UPDATE meta SET value = '{SCHEMA_VERSION}' WHERE key = 'schema_version';"))
        .map_err(db)?;
    tx.commit().map_err(db)
}

/// The key a sealed value of a row is bound to: its primary key's values, integers as eight
/// big-endian bytes, blobs and texts as their bytes, one after the other.
fn row_key(table: &str, keys: &[rusqlite::types::Value]) -> Result<Vec<u8>, StoreError> {
    use rusqlite::types::Value;
    let mut out = Vec::new();
    for k in keys {
        match k {
            Value::Integer(i) => out.extend_from_slice(&crate::seal::row_id(*i)),
            Value::Blob(b) => out.extend_from_slice(b),
            Value::Text(t) => out.extend_from_slice(t.as_bytes()),
            _ => return Err(StoreError::Corrupt(format!("{table}: a primary key of an unexpected type"))),
        }
    }
    Ok(out)
}

/// The database's identity (`meta.database_id`), made when it was created.
pub(super) fn database_id(conn: &Connection) -> Result<String, rusqlite::Error> {
    conn.query_row("SELECT value FROM meta WHERE key = 'database_id'", [], |row| row.get(0))
}

#[cfg(test)]
mod tests {
    use crate::sql::params;

    use super::*;
    use crate::sqlite::tests::{fresh, on_writer, MASTER_KEY};
    use crate::{SqlStore, Store, StoreConfig};

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
        let columns = |store: &SqlStore| -> Vec<String> {
            store
                .read(|c| {
                    c.prepare("SELECT name FROM pragma_table_info('envelopes')")?.query_map([], |r| r.get(0))?.collect()
                })
                .unwrap()
        };
        assert!(!columns(&store).contains(&"form".to_string()));
        drop(store);
        let store = SqlStore::open(StoreConfig::new(&path, MASTER_KEY)).unwrap();
        let cols = columns(&store);
        assert!(cols.contains(&"form".to_string()) && cols.contains(&"ewg".to_string()), "{cols:?}");
        let version: String = store
            .read(|c| c.prepare("SELECT value FROM meta WHERE key = 'schema_version'")?.query_row([], |row| row.get(0)))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        drop(store);
        // Opened again, nothing changes.
        let store = SqlStore::open(StoreConfig::new(&path, MASTER_KEY)).unwrap();
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
        let store = SqlStore::open(StoreConfig::new(&path, MASTER_KEY)).unwrap();
        assert_eq!(store.operator_by_token(&[7; 32]).unwrap(), Some((duty, None)));
        let version: String = store
            .read(|c| c.prepare("SELECT value FROM meta WHERE key = 'schema_version'")?.query_row([], |row| row.get(0)))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[test]
    fn a_version_10_database_gains_the_answering_operator_column_when_opened() {
        let (dir, store) = fresh();
        let path = dir.path().join("adi.db");
        on_writer(
            &store,
            "ALTER TABLE receipts DROP COLUMN operator; UPDATE meta SET value = '10' WHERE key = 'schema_version';",
        );
        let columns = |store: &SqlStore| -> Vec<String> {
            store
                .read(|c| {
                    c.prepare("SELECT name FROM pragma_table_info('receipts')")?.query_map([], |r| r.get(0))?.collect()
                })
                .unwrap()
        };
        assert!(!columns(&store).contains(&"operator".to_string()));
        drop(store);
        let store = SqlStore::open(StoreConfig::new(&path, MASTER_KEY)).unwrap();
        assert!(columns(&store).contains(&"operator".to_string()));
        let version: String = store
            .read(|c| c.prepare("SELECT value FROM meta WHERE key = 'schema_version'")?.query_row([], |row| row.get(0)))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[test]
    fn a_version_11_database_gains_retention_when_opened() {
        let (dir, store) = fresh();
        let path = dir.path().join("adi.db");
        on_writer(
            &store,
            "ALTER TABLE envelopes DROP COLUMN pruned_ms; ALTER TABLE envelopes DROP COLUMN attachments; DROP TABLE archives; \
             DROP TABLE chunks; DROP TABLE uploads; UPDATE meta SET value = '11' WHERE key = 'schema_version';",
        );
        let columns = |store: &SqlStore| -> Vec<String> {
            store
                .read(|c| {
                    c.prepare("SELECT name FROM pragma_table_info('envelopes')")?.query_map([], |r| r.get(0))?.collect()
                })
                .unwrap()
        };
        assert!(!columns(&store).contains(&"pruned_ms".to_string()));
        drop(store);
        let store = SqlStore::open(StoreConfig::new(&path, MASTER_KEY)).unwrap();
        assert!(columns(&store).contains(&"pruned_ms".to_string()));
        assert!(columns(&store).contains(&"attachments".to_string()), "version 11 was not brought to 13");
        assert_eq!(store.upload(&[4; 32]).unwrap(), None, "the uploads table is there, empty");
        let line = adi_wire::LineId([3; 16]);
        assert_eq!(store.archives(&line).unwrap(), Vec::new(), "the archives table is there, empty");
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
        let columns = |store: &SqlStore| -> Vec<String> {
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
        let store = SqlStore::open(StoreConfig::new(&path, MASTER_KEY)).unwrap();
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
        let store = SqlStore::open(StoreConfig::new(&path, MASTER_KEY)).unwrap();
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
        let sealed = store.sealer().seal_column_bound("mls_state.snapshot", &whole);
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

        let store = SqlStore::open(StoreConfig::new(&path, MASTER_KEY)).unwrap();
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
        let store = SqlStore::open(StoreConfig::new(&path, MASTER_KEY)).unwrap();
        let entries = store.mls_state().unwrap();
        assert_eq!(entries, expected);
        let restored =
            adi_mls::LineMember::restore("PH", [3; 32], adi_mls::MlsConfig::default(), entries, &[]).unwrap();
        assert_eq!(restored.snapshot().unwrap(), whole);
    }

    const T0: u64 = 1_700_000_000_000;

    /// A store holding one of everything a node seals: a line and its title, a message released
    /// by a principal, a decision and an answer with a reason, a reviewed translation, an alarm
    /// acknowledged and cleared, a draft released, an MLS entry, and a KeyPackage claimed and
    /// used.
    fn populated() -> (tempfile::TempDir, SqlStore) {
        use adi_core::{fixtures, AlarmChange, AlarmKind, AlarmOp, Concurrence, Decision, Draft, NewLine, Translation};
        let (dir, store) = fresh();
        let line = adi_wire::LineId([9; 16]);
        let mut ph = fixtures::hotline("PH");
        let mut cn = fixtures::hotline("CN");
        let request = NewLine {
            members: vec!["PH".into(), "CN".into()],
            scope: "ADMM-Plus".into(),
            title: Some("Scarborough Shoal incident line".into()),
        };
        let setup = ph.create_line(T0, line, request, fixtures::key_packages_of(&mut [&mut cn])).unwrap();
        let draft = Draft {
            precedence: "FLASH".into(),
            subject: "vessels at the shoal".into(),
            body: "two vessels hold station".into(),
            ..Draft::default()
        };
        let message = ph.send(T0 + 1, line, draft, Some("principal-ph".into())).unwrap();
        let decision = Decision {
            text: "both sides withdraw two miles".into(),
            parties: vec![adi_core::MemberCode::parse("PH").unwrap(), adi_core::MemberCode::parse("CN").unwrap()],
            deadline_s: None,
            supersedes: None,
        };
        let sha = decision.text_sha256();
        let proposed = ph.propose_decision(T0 + 2, line, decision).unwrap();
        let answer = Concurrence {
            decision: proposed.envelope.hash(),
            text_sha256: sha,
            concur: false,
            reason: Some("the distance is too short".into()),
        };
        let answered = ph.answer_decision(T0 + 3, line, answer).unwrap();
        let translation = Translation {
            original: message.envelope.hash(),
            language: "zh".into(),
            text: "两艘船只保持位置".into(),
            translator: "translator-ph".into(),
            reviewed_by: Some("reviewer-ph".into()),
            revises: None,
        };
        let translated = ph.translate(T0 + 4, line, translation).unwrap();
        let records = vec![setup, message, proposed, answered, translated];
        store.commit(adi_core::WriteBatch { records, ..Default::default() }).wait_blocking().unwrap();
        let delta = adi_mls::StateDelta { put: vec![(b"k".to_vec(), b"secret of k".to_vec())], delete: Vec::new() };
        store.commit(adi_core::WriteBatch { mls_state: Some(delta), ..Default::default() }).wait_blocking().unwrap();
        let alarm = |op, at_ms, detail: &str| AlarmChange {
            kind: AlarmKind::LinkNoAnswer,
            op,
            line,
            member: adi_core::MemberCode::parse("CN").unwrap(),
            message: None,
            at_ms,
            detail: detail.into(),
            addressed_to: vec!["duty".into()],
        };
        store.probe(vec![alarm(AlarmOp::Raise, T0 + 5, "CN has not answered the link test")]).wait_blocking().unwrap();
        let id = store.alarms(false, crate::Page::first(10)).unwrap()[0].id;
        store.ack_alarm(id, "duty-ph".into(), T0 + 6).wait_blocking().unwrap();
        store.probe(vec![alarm(AlarmOp::Clear, T0 + 7, "CN answered")]).wait_blocking().unwrap();
        let draft = store.add_draft(line, "{\"subject\":\"held for release\"}".into(), "drafter-ph".into(), T0 + 8);
        let draft = draft.wait_blocking().unwrap();
        let reply = ph
            .send(
                T0 + 9,
                line,
                Draft { precedence: "ROUTINE".into(), subject: "held for release".into(), ..Draft::default() },
                Some("principal-ph".into()),
            )
            .unwrap();
        let batch = adi_core::WriteBatch { records: vec![reply], ..Default::default() };
        store.commit_release(batch, draft, "principal-ph".into(), T0 + 10).wait_blocking().unwrap();
        let empty = adi_mls::StateDelta::default();
        store.add_key_packages(empty, vec![(b"ref-1".to_vec(), b"key package".to_vec())], T0).wait_blocking().unwrap();
        let cn_code = adi_core::MemberCode::parse("CN").unwrap();
        let claimed = store.claim_key_package(&cn_code, T0 + 11, 1).wait_blocking().unwrap();
        assert!(matches!(claimed, crate::Claimed::KeyPackage(_)), "{claimed:?}");
        assert!(store.use_key_package(b"ref-1".to_vec(), &cn_code, T0 + 12).wait_blocking().unwrap());
        (dir, store)
    }

    /// Everything the store reads back of what [`populated`] wrote.
    fn read_back(store: &SqlStore) -> String {
        let me = adi_core::MemberCode::parse("PH").unwrap();
        let all = crate::MessageQuery { limit: 100, ..crate::MessageQuery::default() };
        let messages = store.messages(&all).unwrap();
        let mut out = format!("{:?}\n{messages:?}\n", store.load(&me).unwrap().lines);
        for m in &messages {
            out += &format!(
                "{:?}\n{:?}\n{:?}\n",
                store.recipients(&m.hash),
                store.receipts(&m.hash),
                store.envelope(&m.hash)
            );
        }
        out += &format!("{:?}\n", store.decisions(None, None, crate::Page::all()).unwrap());
        out += &format!("{:?}\n", store.translations(None, None, crate::Page::all()).unwrap());
        out += &format!("{:?}\n", store.alarms(false, crate::Page::first(100)).unwrap());
        out += &format!("{:?}\n", store.drafts(false, crate::Page::first(100)).unwrap());
        out += &format!("{:?}\n", store.events_after(0, 1000).unwrap());
        out += &format!("{:?}\n", store.mls_state().unwrap());
        out
    }

    /// Seals every value of `store` as schema version 9 did, bound to its column only, and puts
    /// back in the clear what version 9 kept so.
    fn as_version_9(store: &SqlStore) {
        let sealer = store.sealer().clone();
        store
            .submit_job(true, move |c| {
                use crate::sql::Value;
                for (table, key, columns) in SEALED_ROWS {
                    let order = if *table == "mls_entries" { "key" } else { "rowid" };
                    let cols: Vec<&str> = columns.iter().map(|(c, _)| *c).collect();
                    let sql = format!("SELECT {order}, {}, {} FROM {table}", key.join(", "), cols.join(", "));
                    let n = 1 + key.len() + cols.len();
                    let rows: Vec<Vec<Value>> =
                        c.prepare(&sql)?.query_map([], |row| Ok(row.0[..n].to_vec()))?.collect::<Result<_, _>>()?;
                    for row in rows {
                        let keys: Vec<rusqlite::types::Value> = row[1..1 + key.len()]
                            .iter()
                            .map(|v| match v {
                                Value::Int(i) => rusqlite::types::Value::Integer(*i),
                                Value::Text(t) => rusqlite::types::Value::Text(t.clone()),
                                Value::Bytes(b) => rusqlite::types::Value::Blob(b.clone()),
                                _ => rusqlite::types::Value::Null,
                            })
                            .collect();
                        let row_key = row_key(table, &keys).unwrap();
                        for ((column, was), value) in columns.iter().zip(&row[1 + key.len()..]) {
                            let Value::Bytes(v) = value else { continue };
                            let label = format!("{table}.{column}");
                            let plain = sealer.open(&label, &row_key, v).unwrap();
                            let old = match was {
                                Was::Sealed if *table == "mls_entries" => Value::Bytes(
                                    sealer.seal_column_bound(&write::mls_entry_label_column_bound(&row_key), &plain),
                                ),
                                Was::Sealed => Value::Bytes(sealer.seal_column_bound(&label, &plain)),
                                Was::Clear => Value::Text(String::from_utf8(plain).unwrap()),
                            };
                            c.execute(&format!("UPDATE {table} SET {column} = ?1 WHERE {order} = ?2"), params![old, row[0]])?;
                        }
                    }
                }
                c.execute_batch("UPDATE key_package_claims SET peer = 'CN'; UPDATE meta SET value = '9' WHERE key = 'schema_version';")
            })
            .wait_blocking()
            .unwrap();
    }

    #[test]
    fn a_version_9_database_is_sealed_again_row_by_row_when_opened() {
        let (dir, store) = populated();
        let before = read_back(&store);
        for needle in ["Scarborough Shoal", "principal-ph", "translator-ph", "reviewer-ph", "drafter-ph", "duty-ph"] {
            assert!(before.contains(needle), "the store reads back {needle}");
        }
        as_version_9(&store);
        // As version 9 left it: metadata in the clear, values that the rows' keys do not open.
        assert!(store.alarms(false, crate::Page::first(10)).is_err(), "a version 9 value opens as a version 10 one");
        drop(store);
        let raw = std::fs::read(dir.path().join("adi.db")).unwrap();
        assert!(
            raw.windows(17).any(|w| w == b"Scarborough Shoal"),
            "the version 9 database holds the title in the clear"
        );

        let store = SqlStore::open(StoreConfig::new(dir.path().join("adi.db"), MASTER_KEY)).unwrap();
        assert_eq!(read_back(&store), before, "the migration changes nothing the store reads");
        let version: String = store
            .read(|c| c.query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        // Every value is now of the version bound to its row, and nothing is left in the clear.
        for (table, _, columns) in SEALED_ROWS {
            for (column, _) in *columns {
                let sql = format!(
                    "SELECT COUNT(*) FROM {table} WHERE {column} IS NOT NULL AND (typeof({column}) != 'blob' OR substr({column}, 1, 1) != X'02')"
                );
                let left: i64 = store.read(|c| c.query_row(&sql, [], |r| r.get(0))).unwrap();
                assert_eq!(left, 0, "{table}.{column}: values not sealed bound to their row");
            }
        }
        // The columns the test must have filled for it to show them migrated.
        for (table, column) in [
            ("lines", "title"),
            ("envelopes", "subject"),
            ("envelopes", "released_by"),
            ("alarms", "acked_by"),
            ("alarms", "clear_reason"),
            ("drafts", "drafter"),
            ("drafts", "released_by"),
            ("decisions", "parties"),
            ("concurrences", "reason"),
            ("translations", "translator"),
            ("translations", "reviewed_by"),
            ("key_packages", "claimed_by"),
            ("used_key_packages", "member"),
            ("mls_entries", "value"),
            ("events", "detail"),
        ] {
            let sql = format!("SELECT COUNT(*) FROM {table} WHERE {column} IS NOT NULL");
            let held: i64 = store.read(|c| c.query_row(&sql, [], |r| r.get(0))).unwrap();
            assert!(held > 0, "{table}.{column} holds nothing: the test would not see it migrated");
        }
        // The quota still counts the claim made before the upgrade, by a blind index.
        let peer: Vec<u8> =
            store.read(|c| c.query_row("SELECT peer FROM key_package_claims", [], |r| r.get(0))).unwrap();
        assert_eq!(peer, store.sealer().blind("key_package_claims.peer", b"CN"));
        let cn = adi_core::MemberCode::parse("CN").unwrap();
        let again = store.claim_key_package(&cn, T0 + 13, 1).wait_blocking().unwrap();
        assert!(matches!(again, crate::Claimed::OverQuota { claims: 1 }), "{again:?}");
        drop(store);
        // Nor in the files: the migration leaves no page of the old values behind.
        for file in ["adi.db", "adi.db-wal"] {
            let Ok(raw) = std::fs::read(dir.path().join(file)) else { continue };
            for needle in ["Scarborough Shoal", "principal-ph", "translator-ph", "reviewer-ph", "drafter-ph", "duty-ph"]
            {
                assert!(
                    !raw.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "{file} holds {needle} in the clear"
                );
            }
        }
    }

    #[test]
    fn a_sealed_value_moved_to_another_row_does_not_open() {
        let (_dir, store) = populated();
        assert!(read_back(&store).contains("vessels at the shoal"));
        // Two messages' subjects swapped.
        on_writer(&store, "UPDATE envelopes SET subject = (SELECT subject FROM envelopes WHERE kind = 'message' ORDER BY arrival LIMIT 1) WHERE arrival = (SELECT MAX(arrival) FROM envelopes WHERE kind = 'message')");
        let all = crate::MessageQuery { limit: 100, ..crate::MessageQuery::default() };
        let err = store.messages(&all).expect_err("a subject moved to another message opened").to_string();
        assert!(err.contains("envelopes.subject"), "{err}");
        // Rows with an integer id: one event's detail copied onto another.
        on_writer(&store, "UPDATE events SET detail = (SELECT detail FROM events WHERE detail IS NOT NULL ORDER BY id LIMIT 1) WHERE id = (SELECT MAX(id) FROM events WHERE detail IS NOT NULL)");
        let err = store.events_after(0, 1000).expect_err("an event's detail moved to another event opened").to_string();
        assert!(err.contains("events.detail"), "{err}");
    }
}
