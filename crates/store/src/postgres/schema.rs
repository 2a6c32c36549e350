//! The PostgreSQL backend's schema: its migrations, each applied once, in order, in a transaction
//! of its own, under an advisory lock so that two nodes of an active/standby pair starting together
//! do not both apply one. The tables are those of the SQLite backend, in PostgreSQL's types:
//! `BIGINT` for integers and flags, `BYTEA` for blobs and sealed values, and `BIGSERIAL` ids whose
//! sequences the writer draws from before it writes a row (`Db::next_id`).

use super::pg::PgConn;
use crate::sql::{self, OptionalExtension};
use crate::StoreError;

/// The migrations, by the schema version each brings the database to.
const MIGRATIONS: &[(u32, &str)] =
    &[(1, VERSION_1), (2, VERSION_2), (3, VERSION_3), (4, VERSION_4), (5, VERSION_5), (6, VERSION_6)];

/// The advisory lock held while the schema is brought up to date (any number the database's
/// other users do not take: "ADI" in ASCII).
const MIGRATION_LOCK: i64 = 0x41_44_49;

const VERSION_1: &str = r#"
CREATE TABLE lines (
    id BYTEA PRIMARY KEY,
    scope TEXT NOT NULL,
    title BYTEA NOT NULL,
    home TEXT NOT NULL,
    members TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    -- A direct line is made between two members and keeps them; a conference may change.
    direct BIGINT NOT NULL DEFAULT 0,
    -- When this node took the line, on its own clock.
    taken_ms BIGINT NOT NULL DEFAULT 0
);
-- Where each member taken off a line stopped (its last envelope accepted there, as the removal's
-- commit fixed it), and the epoch from which a later commit brought it back, if one did.
CREATE TABLE removals (
    line BYTEA NOT NULL,
    member TEXT NOT NULL,
    seq BIGINT NOT NULL,
    hash BYTEA NOT NULL,
    epoch BIGINT NOT NULL,
    readded_epoch BIGINT,
    PRIMARY KEY (line, member)
);
-- Every member each line has had, as the records that changed its membership named them: a member
-- taken off since may still be read from an epoch it was on, and named a party to a decision made
-- then.
CREATE TABLE line_members_known (
    line BYTEA NOT NULL,
    member TEXT NOT NULL,
    PRIMARY KEY (line, member)
);
CREATE TABLE envelopes (
    arrival BIGSERIAL PRIMARY KEY,
    hash BYTEA NOT NULL UNIQUE,
    line BYTEA NOT NULL REFERENCES lines(id),
    sender TEXT NOT NULL,
    seq BIGINT NOT NULL,
    priority BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    received_ms BIGINT NOT NULL,
    bytes BYTEA NOT NULL,
    epoch BIGINT NOT NULL,
    content BYTEA,
    kind TEXT NOT NULL,
    precedence TEXT,
    class TEXT,
    caveat BYTEA,
    subject BYTEA,
    body BYTEA,
    ack_required BIGINT NOT NULL DEFAULT 0,
    crisis BIGINT NOT NULL DEFAULT 0,
    deadline_ms BIGINT,
    released_by BYTEA,
    form BYTEA,
    ewg BYTEA,
    UNIQUE (line, sender, seq)
);
CREATE TABLE recipients (
    hash BYTEA NOT NULL,
    member TEXT NOT NULL,
    state TEXT NOT NULL,
    sent_ms BIGINT NOT NULL,
    delivered_ms BIGINT,
    decrypted_ms BIGINT,
    seen_ms BIGINT,
    acknowledged_ms BIGINT,
    declined_ms BIGINT,
    detail BYTEA,
    refusal TEXT,
    PRIMARY KEY (hash, member)
);
CREATE TABLE receipts (
    hash BYTEA PRIMARY KEY,
    answers BYTEA NOT NULL,
    member TEXT NOT NULL,
    kind TEXT NOT NULL,
    reason BYTEA,
    signed_ms BIGINT NOT NULL
);
CREATE INDEX receipts_answers ON receipts (answers, member);
CREATE TABLE outbox (
    id BIGSERIAL PRIMARY KEY,
    peer TEXT NOT NULL,
    hash BYTEA NOT NULL,
    priority BIGINT NOT NULL,
    enqueued_ms BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_try_ms BIGINT NOT NULL DEFAULT 0,
    UNIQUE (peer, hash)
);
CREATE INDEX outbox_order ON outbox (peer, priority, id);
CREATE TABLE alarms (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    line BYTEA NOT NULL,
    member TEXT NOT NULL,
    message BYTEA,
    raised_ms BIGINT NOT NULL,
    detail BYTEA NOT NULL,
    addressed_to TEXT NOT NULL,
    repeats BIGINT NOT NULL DEFAULT 0,
    last_raised_ms BIGINT NOT NULL,
    acked_by BYTEA,
    acked_ms BIGINT,
    cleared_ms BIGINT,
    clear_reason BYTEA
);
CREATE INDEX alarms_open ON alarms (kind, line, member) WHERE cleared_ms IS NULL;
CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    kind TEXT NOT NULL,
    line BYTEA,
    message BYTEA,
    member TEXT,
    state TEXT,
    alarm BIGINT,
    detail BYTEA
);
CREATE TABLE drafts (
    id BIGSERIAL PRIMARY KEY,
    line BYTEA NOT NULL,
    draft BYTEA NOT NULL,
    drafter BYTEA NOT NULL,
    created_ms BIGINT NOT NULL,
    state TEXT NOT NULL,
    released_by BYTEA,
    released_ms BIGINT,
    message BYTEA
);
-- This member's MLS state, one row per entry of its key-value state; each commit writes only the
-- entries that changed. Values are sealed, bound to their key.
CREATE TABLE mls_entries (
    key BYTEA PRIMARY KEY,
    value BYTEA NOT NULL
);
CREATE TABLE held (
    hash BYTEA PRIMARY KEY,
    line BYTEA NOT NULL,
    sender TEXT NOT NULL,
    seq BIGINT NOT NULL,
    epoch BIGINT NOT NULL,
    bytes BYTEA NOT NULL,
    received_ms BIGINT NOT NULL
);
CREATE INDEX held_line ON held (line, epoch);
CREATE TABLE evidence (
    id BIGSERIAL PRIMARY KEY,
    line BYTEA NOT NULL,
    member TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    detail BYTEA NOT NULL,
    held BYTEA NOT NULL,
    offered BYTEA NOT NULL
);
CREATE TABLE checkpoints (
    line BYTEA NOT NULL,
    signer TEXT NOT NULL,
    size BIGINT NOT NULL,
    root BYTEA NOT NULL,
    time_ms BIGINT NOT NULL,
    signed BYTEA NOT NULL,
    PRIMARY KEY (line, signer, size, root)
);
CREATE TABLE countersignatures (
    line BYTEA NOT NULL,
    signer TEXT NOT NULL,
    size BIGINT NOT NULL,
    root BYTEA NOT NULL,
    member TEXT NOT NULL,
    signature BYTEA NOT NULL,
    PRIMARY KEY (line, signer, size, root, member)
);
CREATE TABLE decisions (
    id BYTEA PRIMARY KEY,
    line BYTEA NOT NULL,
    proposer TEXT NOT NULL,
    text BYTEA NOT NULL,
    text_sha256 BYTEA NOT NULL,
    parties BYTEA NOT NULL,
    deadline_ms BIGINT,
    supersedes BYTEA,
    created_ms BIGINT NOT NULL
);
CREATE INDEX decisions_line ON decisions (line, created_ms);
CREATE INDEX decisions_supersedes ON decisions (supersedes) WHERE supersedes IS NOT NULL;
CREATE TABLE concurrences (
    hash BYTEA PRIMARY KEY,
    decision BYTEA NOT NULL,
    member TEXT NOT NULL,
    text_sha256 BYTEA NOT NULL,
    concur BIGINT NOT NULL,
    reason BYTEA,
    signed_ms BIGINT NOT NULL
);
CREATE INDEX concurrences_decision ON concurrences (decision, member);
CREATE TABLE translations (
    hash BYTEA PRIMARY KEY,
    original BYTEA NOT NULL,
    member TEXT NOT NULL,
    language TEXT NOT NULL,
    text BYTEA NOT NULL,
    translator BYTEA NOT NULL,
    reviewed_by BYTEA,
    revises BYTEA,
    created_ms BIGINT NOT NULL
);
CREATE INDEX translations_original ON translations (original, created_ms);
CREATE TABLE key_packages (
    reference BYTEA PRIMARY KEY,
    bytes BYTEA NOT NULL,
    created_ms BIGINT NOT NULL,
    claimed_by BYTEA,
    claimed_ms BIGINT
);
-- Each KeyPackage claim a peer made within the last hour, for its quota
-- (`key_package_claims_per_hour_max`); older ones are deleted as claims are made. The peer is
-- kept as a blind index: claims by one peer can be counted, not named.
CREATE TABLE key_package_claims (
    peer BYTEA NOT NULL,
    claimed_ms BIGINT NOT NULL
);
CREATE INDEX key_package_claims_peer ON key_package_claims (peer, claimed_ms);
CREATE TABLE used_key_packages (
    reference BYTEA PRIMARY KEY,
    member BYTEA NOT NULL,
    used_ms BIGINT NOT NULL
);
CREATE TABLE operators (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    token_hash BYTEA NOT NULL UNIQUE,
    created_ms BIGINT NOT NULL,
    password_hash TEXT,
    -- When the token stops being accepted (ms since 1970); NULL for a token that never expires.
    token_expires_ms BIGINT
);
-- Administrative actions (operators added, changed or removed, passwords set, configuration
-- changes), newest last; who acted, on whom, and the detail are sealed, bound to the row.
CREATE TABLE audit (
    id BIGSERIAL PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    action TEXT NOT NULL,
    actor BYTEA NOT NULL,
    subject BYTEA,
    detail BYTEA NOT NULL
);
-- The roster's versions after the first, as this node applied them, in order; each version's
-- file (public keys, endpoints and signatures, as every member holds them) sealed, bound to its
-- number.
CREATE TABLE roster_versions (
    number BIGINT PRIMARY KEY,
    hash BYTEA NOT NULL UNIQUE,
    body BYTEA NOT NULL,
    applied_ms BIGINT NOT NULL
);
-- Proposed roster versions that lack signatures yet, with those collected so far; forgotten once
-- a version of their number is applied.
CREATE TABLE roster_proposals (
    hash BYTEA PRIMARY KEY,
    number BIGINT NOT NULL,
    body BYTEA NOT NULL,
    seen_ms BIGINT NOT NULL
);
CREATE TABLE sessions (
    id_hash BYTEA PRIMARY KEY,
    operator TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('database_id', replace(gen_random_uuid()::text, '-', ''));
"#;

/// The lease of an active/standby pair (`lease.rs`): one row, free until a node takes it.
const VERSION_2: &str = r#"
CREATE TABLE lease (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    holder TEXT NOT NULL,
    token BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    api_url TEXT NOT NULL,
    fenced_writes BIGINT NOT NULL
);
INSERT INTO lease (id, holder, token, expires_ms, api_url, fenced_writes) VALUES (1, '', 0, 0, '', 0);
"#;

/// The key files of an active/standby pair's member, sealed (`SqlStore::key_copies`): the node
/// that takes over starts with the keys the roster gives the member, whichever node rotated them.
const VERSION_3: &str = r#"
CREATE TABLE key_copies (
    name TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
"#;

/// Which operator of this member's desk made each of its own receipts (sealed).
const VERSION_4: &str = r#"
ALTER TABLE receipts ADD COLUMN operator BYTEA;
"#;

/// Retention: when each envelope's sealed content columns were emptied, and the exports served
/// whose archiving may be confirmed (the SQLite schema says what each holds).
const VERSION_5: &str = r#"
ALTER TABLE envelopes ADD COLUMN pruned_ms BIGINT;
CREATE TABLE archives (
    line BYTEA NOT NULL,
    sha256 BYTEA NOT NULL,
    first_arrival BIGINT NOT NULL,
    last_arrival BIGINT NOT NULL,
    envelopes BIGINT NOT NULL,
    served_ms BIGINT NOT NULL,
    confirmed_ms BIGINT,
    PRIMARY KEY (line, sha256)
);
"#;

/// Files attached to messages: what each message names, each chunk by its place, and the files
/// operators uploaded to attach (the SQLite schema says what each holds).
const VERSION_6: &str = r#"
ALTER TABLE envelopes ADD COLUMN attachments BYTEA;
CREATE TABLE chunks (
    message BYTEA NOT NULL,
    file BYTEA NOT NULL,
    idx BIGINT NOT NULL,
    hash BYTEA NOT NULL,
    PRIMARY KEY (message, file, idx)
);
CREATE TABLE uploads (
    sha256 BYTEA PRIMARY KEY,
    name BYTEA NOT NULL,
    media_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    bytes BYTEA NOT NULL,
    uploader BYTEA NOT NULL,
    created_ms BIGINT NOT NULL
);
"#;

/// Brings the database's schema to this build's version; refuses a database that a newer build
/// has migrated further.
pub(super) fn prepare(conn: &PgConn) -> Result<(), StoreError> {
    conn.batch(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})")).map_err(sql::db)?;
    let out = migrate(conn);
    let _ = conn.batch(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"));
    out
}

fn migrate(conn: &PgConn) -> Result<(), StoreError> {
    let c: &sql::Connection<'_> = conn;
    conn.batch("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)").map_err(sql::db)?;
    let version: Option<String> = c
        .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |row| row.get(0))
        .optional()
        .map_err(sql::db)?;
    let version: u32 = match version {
        None => 0,
        Some(v) => v.parse().map_err(|_| StoreError::Corrupt(format!("the schema version '{v}' is no number")))?,
    };
    let latest = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if version > latest {
        return Err(StoreError::Corrupt(format!(
            "the database has schema version {version}; this build reads version {latest}"
        )));
    }
    for (to, steps) in MIGRATIONS.iter().filter(|(v, _)| *v > version) {
        let applied = conn.batch("BEGIN").and_then(|()| conn.batch(steps)).and_then(|()| {
            c.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                crate::sql::params![to.to_string()],
            )
            .map(|_| ())
        });
        match applied.and_then(|()| conn.batch("COMMIT")) {
            Ok(()) => tracing::info!(version = to, "the database's schema was brought to a new version"),
            Err(e) => {
                let _ = conn.batch("ROLLBACK");
                return Err(StoreError::Db(format!("cannot bring the schema to version {to}: {e}")));
            }
        }
    }
    Ok(())
}
