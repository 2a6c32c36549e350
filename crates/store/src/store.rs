//! The [`Store`] trait, written once over the SQL both backends speak: reads run on a reader
//! connection of the backend, writes are jobs for its writer, answered once their transaction
//! committed.

use std::sync::Arc;

use adi_core::{AlarmChange, Evidence, HeldEnvelope, MemberCode, Restored, WriteBatch};
use adi_wire::{EnvelopeHash, LineId};

use crate::postgres::lease::{Lease, LeaseHolder};
use crate::seal::{row_id, Sealer};
use crate::sql::{self, invariant, params, Connection, OptionalExtension};
use crate::{postgres, read, sqlite, write};
use crate::{
    AlarmAck, AlarmRow, ArchiveRow, AuditRow, CheckpointKey, CheckpointRow, Claimed, CommitStats, DecisionRow,
    DraftRow, EnvelopeRow, EventRow, HeldCount, MessageCursor, MessageQuery, MessageRow, Operator, OperatorRecord,
    OutboxItem, Outcome, Page, Pending, PruneRule, QueueStat, ReceiptRow, RecipientRow, ReportRows, RosterApplied,
    RosterProposalKept, SessionRow, Settlement, Store, StoreConfig, StoreError, TimeKey, TranslationRow, UploadRow,
};

/// An hour, the window of a peer's KeyPackage claims.
const HOUR_MS: u64 = 3_600_000;

/// A node's store on SQLite or PostgreSQL, as its configuration names. Cloning shares the
/// backend's writer and readers.
#[derive(Clone)]
pub struct SqlStore {
    inner: Arc<Inner>,
}

struct Inner {
    sealer: Sealer,
    engine: Engine,
    events_retained_max: u64,
}

/// The backend under a store.
enum Engine {
    Sqlite(sqlite::Sqlite),
    Postgres(postgres::Postgres),
}

impl SqlStore {
    /// Opens the store the configuration names (creating its tables if needed) and starts its
    /// writer.
    pub fn open(config: StoreConfig) -> Result<SqlStore, StoreError> {
        let sealer = Sealer::new(&config.master_key);
        let events_retained_max = config.events_retained_max;
        let engine = match &config.postgres {
            None => Engine::Sqlite(sqlite::Sqlite::open(config, &sealer)?),
            Some(_) => Engine::Postgres(postgres::Postgres::open(config, &sealer)?),
        };
        Ok(SqlStore { inner: Arc::new(Inner { sealer, engine, events_retained_max }) })
    }

    /// Jobs and transactions committed so far: with concurrent writers, fewer transactions than
    /// jobs shows that commits were grouped.
    pub fn commit_stats(&self) -> CommitStats {
        match &self.inner.engine {
            Engine::Sqlite(e) => e.commit_stats(),
            Engine::Postgres(e) => e.commit_stats(),
        }
    }

    /// Where the store is: the SQLite database's file, or the PostgreSQL database's address
    /// without its password.
    pub fn location(&self) -> String {
        match &self.inner.engine {
            Engine::Sqlite(e) => e.path().display().to_string(),
            Engine::Postgres(e) => e.location(),
        }
    }

    /// The SQLite database's file; `None` for a store on PostgreSQL.
    pub fn path(&self) -> Option<&std::path::Path> {
        match &self.inner.engine {
            Engine::Sqlite(e) => Some(e.path()),
            Engine::Postgres(_) => None,
        }
    }

    #[cfg(test)]
    pub(crate) fn sealer(&self) -> &Sealer {
        &self.inner.sealer
    }

    /// The SQLite backend under the store, for its own tests.
    #[cfg(test)]
    pub(crate) fn sqlite(&self) -> &sqlite::Sqlite {
        match &self.inner.engine {
            Engine::Sqlite(e) => e,
            Engine::Postgres(_) => panic!("a SQLite store was expected"),
        }
    }

    /// Takes the lease of an active/standby pair for `holder` if it is free or ran out
    /// (`postgres::lease`). A pair needs its store on PostgreSQL.
    pub fn claim_lease(&self, holder: &str, lease_ms: u64, api_url: &str) -> Result<Option<Lease>, StoreError> {
        self.postgres()?.claim_lease(holder, lease_ms, api_url)
    }

    /// Renews the lease held under `token`; `None` once another node took it or it ran out.
    pub fn renew_lease(&self, holder: &str, token: u64, lease_ms: u64) -> Result<Option<Lease>, StoreError> {
        self.postgres()?.renew_lease(holder, token, lease_ms)
    }

    /// Who holds the pair's lease.
    pub fn lease_holder(&self) -> Result<LeaseHolder, StoreError> {
        self.postgres()?.lease_holder()
    }

    /// From now on, every write this store commits first checks that the lease is still held
    /// under `token` and has not run out; a write that finds otherwise is not committed.
    pub fn write_under_lease(&self, token: u64, lease_ms: u64) -> Result<(), StoreError> {
        self.postgres()?.write_under_lease(token, lease_ms);
        Ok(())
    }

    /// When `adi restore` put this store back from a backup, until the node has checked it
    /// against its peers ([`SqlStore::clear_restored`]).
    pub fn restored_ms(&self) -> Result<Option<u64>, StoreError> {
        let value: Option<String> = self.read(|c| {
            c.query_row("SELECT value FROM meta WHERE key = 'restored_ms'", [], |row| row.get(0)).optional()
        })?;
        value
            .map(|v| v.parse().map_err(|_| StoreError::Corrupt(format!("meta.restored_ms '{v}' is no time"))))
            .transpose()
    }

    /// Marks the store as put back from a backup at `now_ms`: the node checks it against its
    /// peers at its next start.
    pub fn mark_restored(&self, now_ms: u64) -> Result<(), StoreError> {
        self.transact(|c| {
            c.execute(
                "INSERT INTO meta (key, value) VALUES ('restored_ms', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![now_ms.to_string()],
            )
            .map(|_| ())
        })
    }

    /// The restored store was checked against the peers: it is the node's store like any other.
    pub fn clear_restored(&self) -> Pending<()> {
        self.submit(|c| c.execute("DELETE FROM meta WHERE key = 'restored_ms'", []).map(|_| ()))
    }

    /// Writes a consistent copy of the SQLite database to `path` while the node may be running
    /// (`VACUUM INTO`: one read transaction, the copy compacted). A store on PostgreSQL is backed
    /// up with PostgreSQL's own tools.
    pub fn backup_to(&self, path: &std::path::Path) -> Result<(), StoreError> {
        if matches!(self.inner.engine, Engine::Postgres(_)) {
            return Err(StoreError::Db("a store on PostgreSQL is backed up with pg_dump".into()));
        }
        let target = path.to_str().ok_or_else(|| StoreError::Db(format!("{} is not UTF-8", path.display())))?;
        self.read(|c| c.execute("VACUUM INTO ?1", params![target]).map(|_| ()))
    }

    /// The copies of the member's key files kept for the nodes of its pair, by name, opened
    /// (`postgres` only).
    pub fn key_copies(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.postgres()?;
        let s = &self.inner.sealer;
        self.read(|c| {
            c.prepare("SELECT name, value FROM key_copies ORDER BY name")?
                .query_map([], |row| {
                    let name: String = row.get(0)?;
                    let value = read::open_bytes(s, "key_copies.value", name.as_bytes(), row.get(1)?)?;
                    Ok((name, value))
                })?
                .collect()
        })
    }

    /// Keeps sealed copies of the member's key files for the nodes of its pair, by name, and
    /// forgets those named in `forget`, in one transaction (`postgres` only).
    pub fn keep_key_copies(&self, keep: Vec<(String, Vec<u8>)>, forget: Vec<String>) -> Result<(), StoreError> {
        self.postgres()?;
        let s = &self.inner.sealer;
        self.transact(|c| {
            for (name, value) in &keep {
                c.execute(
                    "INSERT INTO key_copies (name, value) VALUES (?1, ?2)
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    params![name, s.seal("key_copies.value", name.as_bytes(), value)],
                )?;
            }
            for name in &forget {
                c.execute("DELETE FROM key_copies WHERE name = ?1", params![name])?;
            }
            Ok(())
        })
    }

    fn postgres(&self) -> Result<&postgres::Postgres, StoreError> {
        match &self.inner.engine {
            Engine::Postgres(e) => Ok(e),
            Engine::Sqlite(_) => Err(StoreError::Db("an active/standby pair needs its store on PostgreSQL".into())),
        }
    }

    /// `sqlite` or `postgres`.
    pub fn kind(&self) -> &'static str {
        match &self.inner.engine {
            Engine::Sqlite(_) => "sqlite",
            Engine::Postgres(_) => "postgres",
        }
    }

    /// Queues `work` for the writer; the answer comes once the transaction holding it committed.
    pub(crate) fn submit<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection<'_>) -> Result<T, sql::Error> + Send + 'static,
    ) -> Pending<T> {
        self.submit_job(false, work)
    }

    /// As [`SqlStore::submit`]; a `probe` runs even while writes are refused.
    pub(crate) fn submit_job<T: Send + 'static>(
        &self,
        probe: bool,
        work: impl FnOnce(&Connection<'_>) -> Result<T, sql::Error> + Send + 'static,
    ) -> Pending<T> {
        match &self.inner.engine {
            Engine::Sqlite(e) => e.submit_job(probe, work),
            Engine::Postgres(e) => e.submit_job(probe, work),
        }
    }

    /// Runs queries on a reader connection.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection<'_>) -> Result<T, sql::Error>) -> Result<T, StoreError> {
        match &self.inner.engine {
            Engine::Sqlite(e) => e.read(f),
            Engine::Postgres(e) => e.read(f),
        }
    }

    /// Runs `f` in a transaction of its own, outside the writer, and commits it: what the node's
    /// administrator does from the machine (`adi operator`), which may run while the node does.
    fn transact<T>(&self, f: impl FnOnce(&Connection<'_>) -> Result<T, sql::Error>) -> Result<T, StoreError> {
        match &self.inner.engine {
            Engine::Sqlite(e) => e.transact(f),
            Engine::Postgres(e) => e.transact(f),
        }
    }

    /// The newest event the writer saw committed.
    fn events_committed(&self) -> u64 {
        match &self.inner.engine {
            Engine::Sqlite(e) => e.events_committed(),
            Engine::Postgres(e) => e.events_committed(),
        }
    }
}

impl Store for SqlStore {
    fn load(&self, me: &MemberCode) -> Result<Restored, StoreError> {
        let me = me.clone();
        self.read(move |c| read::load(c, &self.inner.sealer, &me))
    }

    fn commit(&self, batch: WriteBatch) -> Pending<Vec<Outcome>> {
        let keep = self.inner.events_retained_max;
        let s = self.inner.sealer.clone();
        self.submit(move |c| {
            let out = write::commit_batch(c, &s, &batch)?;
            write::prune_events(c, keep)?;
            Ok(out)
        })
    }

    fn probe(&self, alarms: Vec<AlarmChange>) -> Pending<()> {
        let s = self.inner.sealer.clone();
        self.submit_job(true, move |c| {
            alarms.iter().try_for_each(|a| write::apply_alarm(c, &s, a))?;
            // Counted, so that the probe always writes a page: an alarm raised already writes
            // nothing, and a transaction that writes nothing commits on a full disk too.
            c.execute(
                "INSERT INTO meta (key, value) VALUES ('storage_probes', '1')
                 ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(meta.value AS INTEGER) + 1 AS TEXT)",
                [],
            )?;
            Ok(())
        })
    }

    fn resume(&self) -> u64 {
        match &self.inner.engine {
            Engine::Sqlite(e) => e.resume(),
            Engine::Postgres(e) => e.resume(),
        }
    }

    fn commit_release(&self, batch: WriteBatch, draft: u64, principal: String, now_ms: u64) -> Pending<Vec<Outcome>> {
        let s = self.inner.sealer.clone();
        self.submit(move |c| {
            let out = write::commit_batch(c, &s, &batch)?;
            let message = batch.records.first().map(|r| r.envelope.hash()).unwrap_or_default();
            write::release_draft(c, &s, draft, &principal, message, now_ms)?;
            Ok(out)
        })
    }

    fn add_draft(&self, line: LineId, draft_json: String, drafter: String, now_ms: u64) -> Pending<u64> {
        let s = self.inner.sealer.clone();
        self.submit(move |c| write::add_draft(c, &s, line, &draft_json, &drafter, now_ms))
    }

    fn drafts(&self, awaiting_only: bool, page: Page<u64>) -> Result<Vec<DraftRow>, StoreError> {
        self.read(|c| read::drafts(c, &self.inner.sealer, awaiting_only, &page))
    }

    fn draft(&self, id: u64) -> Result<Option<DraftRow>, StoreError> {
        self.read(|c| read::draft(c, &self.inner.sealer, id))
    }

    fn settle(&self, peer: &MemberCode, results: Vec<(EnvelopeHash, Settlement)>, now_ms: u64) -> Pending<()> {
        let peer = peer.clone();
        let s = self.inner.sealer.clone();
        self.submit(move |c| write::settle(c, &s, &peer, &results, now_ms))
    }

    fn outbox(&self, peer: &MemberCode, now_ms: u64, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
        self.read(|c| read::outbox(c, &self.inner.sealer, peer, now_ms, limit))
    }

    fn outbox_within(
        &self,
        peer: &MemberCode,
        now_ms: u64,
        limit: usize,
        bytes_max: usize,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        self.read(|c| {
            let fits = read::outbox_fits(c, peer, now_ms, limit, bytes_max)?;
            read::outbox(c, &self.inner.sealer, peer, now_ms, fits)
        })
    }

    fn outbox_next_due(&self, peer: &MemberCode) -> Result<Option<u64>, StoreError> {
        self.read(|c| read::outbox_next_due(c, peer))
    }

    fn queue_stats(&self) -> Result<Vec<QueueStat>, StoreError> {
        self.read(read::queue_stats)
    }

    fn report_rows(&self, me: &MemberCode, from_ms: u64, to_ms: u64) -> Result<ReportRows, StoreError> {
        self.read(|c| read::report_rows(c, me, from_ms, to_ms))
    }

    fn messages(&self, q: &MessageQuery) -> Result<Vec<MessageRow>, StoreError> {
        match q.after {
            Some(MessageCursor::Message(after)) if !q.by_precedence => {
                // The record order is worked out in memory over every message listed (a sender's
                // clock may have stepped back): the page is taken from it, just after the
                // cursor's message.
                let all = MessageQuery { limit: usize::MAX, after: None, ..q.clone() };
                let rows = self.read(|c| read::messages(c, &self.inner.sealer, &all))?;
                Ok(rows.into_iter().skip_while(|r| r.hash != after).skip(1).take(q.limit).collect())
            }
            Some(MessageCursor::Message(_)) => {
                Err(StoreError::Db("a message as a place in the inbox order, which places by sort key".into()))
            }
            Some(MessageCursor::Inbox(_)) if !q.by_precedence => {
                Err(StoreError::Db("an inbox sort key as a place in the record order, which places by message".into()))
            }
            _ => self.read(|c| read::messages(c, &self.inner.sealer, q)),
        }
    }

    fn message(&self, hash: &EnvelopeHash) -> Result<Option<MessageRow>, StoreError> {
        self.read(|c| read::message(c, &self.inner.sealer, hash))
    }

    fn envelope_at(&self, line: &LineId, sender: &str, seq: u64) -> Result<Option<EnvelopeHash>, StoreError> {
        self.read(|c| read::envelope_at(c, line, sender, seq))
    }

    fn application_epochs(&self, sender: &str) -> Result<Vec<(LineId, u64, u64)>, StoreError> {
        self.read(|c| read::application_epochs(c, sender))
    }

    fn held(&self, line: &LineId, epoch: u64) -> Result<Vec<HeldEnvelope>, StoreError> {
        self.read(|c| read::held(c, &self.inner.sealer, line, epoch))
    }

    fn line_log(&self, line: &LineId) -> Result<Vec<EnvelopeHash>, StoreError> {
        self.read(|c| read::line_log(c, line))
    }

    fn line_places(&self, line: &LineId) -> Result<Vec<(EnvelopeHash, String, u64)>, StoreError> {
        self.read(|c| read::line_places(c, line))
    }

    fn checkpoints(
        &self,
        line: &LineId,
        signer: Option<&str>,
        page: Page<CheckpointKey>,
    ) -> Result<Vec<CheckpointRow>, StoreError> {
        self.read(|c| read::checkpoints(c, line, signer, &page))
    }

    fn decisions(
        &self,
        line: Option<&LineId>,
        id: Option<&EnvelopeHash>,
        page: Page<TimeKey>,
    ) -> Result<Vec<DecisionRow>, StoreError> {
        self.read(|c| read::decisions(c, &self.inner.sealer, line, id, &page))
    }

    fn translations(
        &self,
        original: Option<&EnvelopeHash>,
        id: Option<&EnvelopeHash>,
        page: Page<TimeKey>,
    ) -> Result<Vec<TranslationRow>, StoreError> {
        self.read(|c| read::translations(c, &self.inner.sealer, original, id, &page))
    }

    fn evidence(&self, page: Page<u64>) -> Result<Vec<(u64, Evidence)>, StoreError> {
        self.read(|c| read::evidence(c, &self.inner.sealer, &page))
    }

    fn held_counts(&self, received_since_ms: u64) -> Result<Vec<HeldCount>, StoreError> {
        self.read(|c| read::held_counts(c, received_since_ms))
    }

    fn held_expired(&self, received_before_ms: u64) -> Result<Vec<EnvelopeHash>, StoreError> {
        self.read(|c| read::held_expired(c, received_before_ms))
    }

    fn envelope(&self, hash: &EnvelopeHash) -> Result<Option<EnvelopeRow>, StoreError> {
        self.read(|c| read::envelope(c, &self.inner.sealer, hash))
    }

    fn recipients(&self, hash: &EnvelopeHash) -> Result<Vec<RecipientRow>, StoreError> {
        self.read(|c| read::recipients(c, &self.inner.sealer, hash))
    }

    fn add_upload(&self, upload: UploadRow, bytes: Vec<u8>, forget_before_ms: u64) -> Pending<()> {
        let s = self.inner.sealer.clone();
        self.submit(move |c| write::add_upload(c, &s, &upload, &bytes, forget_before_ms))
    }

    fn upload(&self, sha256: &[u8; 32]) -> Result<Option<(UploadRow, Vec<u8>)>, StoreError> {
        self.read(|c| read::upload(c, &self.inner.sealer, sha256))
    }

    fn chunks(&self, message: &EnvelopeHash, file: &[u8; 32]) -> Result<Vec<(u64, EnvelopeHash)>, StoreError> {
        self.read(|c| read::chunks(c, message, file))
    }

    fn chunk_bytes_since(&self, sender: &MemberCode, since_ms: u64) -> Result<u64, StoreError> {
        self.read(|c| read::chunk_bytes_since(c, sender, since_ms))
    }

    fn chunks_decrypted(&self, message: &EnvelopeHash) -> Result<Vec<([u8; 32], MemberCode, u64)>, StoreError> {
        self.read(|c| read::chunks_decrypted(c, message))
    }

    fn add_archive(&self, archive: ArchiveRow, forget_before_ms: u64) -> Pending<()> {
        self.submit(move |c| write::add_archive(c, &archive, forget_before_ms))
    }

    fn confirm_archive(
        &self,
        line: LineId,
        sha256: [u8; 32],
        served_since_ms: u64,
        operator: String,
        now_ms: u64,
    ) -> Pending<Option<ArchiveRow>> {
        let s = self.inner.sealer.clone();
        self.submit(move |c| write::confirm_archive(c, &s, (line, sha256, served_since_ms), &operator, now_ms))
    }

    fn archives(&self, line: &LineId) -> Result<Vec<ArchiveRow>, StoreError> {
        self.read(|c| read::archives(c, line))
    }

    fn prune(&self, rules: Vec<PruneRule>, now_ms: u64, limit: usize) -> Pending<Vec<EnvelopeHash>> {
        let s = self.inner.sealer.clone();
        self.submit(move |c| write::prune(c, &s, &rules, now_ms, limit))
    }

    fn receipts(&self, answers: &EnvelopeHash) -> Result<Vec<ReceiptRow>, StoreError> {
        self.read(|c| read::receipts(c, &self.inner.sealer, answers))
    }

    fn alarms(&self, open_only: bool, page: Page<u64>) -> Result<Vec<AlarmRow>, StoreError> {
        self.read(|c| read::alarms(c, &self.inner.sealer, open_only, &page))
    }

    fn ack_alarm(&self, id: u64, operator: String, now_ms: u64) -> Pending<AlarmAck> {
        let s = self.inner.sealer.clone();
        self.submit(move |c| write::ack_alarm(c, &s, id, &operator, now_ms))
    }

    fn events_after(&self, after: u64, limit: usize) -> Result<Vec<EventRow>, StoreError> {
        let through = self.events_committed();
        self.read(|c| read::events_after(c, &self.inner.sealer, after, through, limit))
    }

    fn event_bounds(&self) -> Result<(u64, u64), StoreError> {
        let through = self.events_committed();
        let (oldest, newest) = self.read(read::event_bounds)?;
        Ok((oldest.min(through), newest.min(through)))
    }

    fn add_operator(
        &self,
        op: &Operator,
        token_hash: [u8; 32],
        token_expires_ms: Option<u64>,
    ) -> Result<(), StoreError> {
        let s = &self.inner.sealer;
        self.transact(|tx| {
            let before: Option<String> = tx
                .query_row("SELECT role FROM operators WHERE name = ?1", params![op.name], |row| row.get(0))
                .optional()?;
            let expiry = match token_expires_ms {
                Some(t) => format!("expires at {t} ms since 1970"),
                None => "never expires".to_string(),
            };
            let (action, detail) = match &before {
                None => ("operator_added", format!("role {}; a token that {expiry}", op.role.as_str())),
                Some(was) => (
                    "operator_changed",
                    format!("role {} (was {was}); a new token that {expiry}; its sessions ended", op.role.as_str()),
                ),
            };
            write::audit(tx, s, wall_ms(), action, Some(&op.name), &detail)?;
            tx.execute(
                "INSERT INTO operators (name, role, token_hash, created_ms, token_expires_ms) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (name) DO UPDATE SET role = excluded.role, token_hash = excluded.token_hash,
                 token_expires_ms = excluded.token_expires_ms",
                params![
                    op.name,
                    op.role.as_str(),
                    &token_hash[..],
                    op.created_ms as i64,
                    token_expires_ms.map(|t| t as i64)
                ],
            )?;
            tx.execute("DELETE FROM sessions WHERE operator = ?1", params![op.name])?;
            Ok(())
        })
    }

    fn remove_operator(&self, name: &str) -> Result<bool, StoreError> {
        let s = &self.inner.sealer;
        self.transact(|tx| {
            tx.execute("DELETE FROM sessions WHERE operator = ?1", params![name])?;
            let n = tx.execute("DELETE FROM operators WHERE name = ?1", params![name])?;
            if n == 1 {
                let detail = "its token, password and sessions ended";
                write::audit(tx, s, wall_ms(), "operator_removed", Some(name), detail)?;
            }
            Ok(n == 1)
        })
    }

    fn operators(&self) -> Result<Vec<OperatorRecord>, StoreError> {
        self.read(|c| {
            c.prepare(
                "SELECT o.name, o.role, o.created_ms, o.token_expires_ms, o.password_hash IS NOT NULL,
                 (SELECT count(*) FROM sessions s WHERE s.operator = o.name) FROM operators o ORDER BY o.name",
            )?
            .query_map([], |row| {
                Ok(OperatorRecord {
                    operator: Operator {
                        name: row.get(0)?,
                        role: read::role_of(row.get(1)?)?,
                        created_ms: row.get::<_, i64>(2)?.max(0) as u64,
                    },
                    token_expires_ms: row.get::<_, Option<i64>>(3)?.map(|t| t.max(0) as u64),
                    has_password: row.get(4)?,
                    sessions: row.get::<_, i64>(5)?.max(0) as u64,
                })
            })?
            .collect()
        })
    }

    fn set_password(&self, name: &str, password_hash: &str) -> Result<bool, StoreError> {
        let s = &self.inner.sealer;
        self.transact(|tx| {
            let n =
                tx.execute("UPDATE operators SET password_hash = ?2 WHERE name = ?1", params![name, password_hash])?;
            if n == 1 {
                let detail = "a new console password; its sessions ended";
                write::audit(tx, s, wall_ms(), "password_set", Some(name), detail)?;
            }
            tx.execute("DELETE FROM sessions WHERE operator = ?1", params![name])?;
            Ok(n == 1)
        })
    }

    fn audit(&self, page: Page<u64>) -> Result<Vec<AuditRow>, StoreError> {
        self.read(|c| read::audit(c, &self.inner.sealer, &page))
    }

    fn configuration_seen(&self, sha256: [u8; 32], now_ms: u64) -> Pending<bool> {
        let s = self.inner.sealer.clone();
        self.submit(move |c| {
            let seen = hex::encode(sha256);
            let before: Option<String> =
                c.query_row("SELECT value FROM meta WHERE key = 'config_sha256'", [], |row| row.get(0)).optional()?;
            if before.as_deref() == Some(seen.as_str()) {
                return Ok(false);
            }
            let (action, detail) = match &before {
                None => ("configuration_first", format!("the node started with configuration SHA-256 {seen}")),
                Some(was) => {
                    ("configuration_changed", format!("the node started with configuration SHA-256 {seen} (was {was})"))
                }
            };
            write::audit(c, &s, now_ms, action, None, &detail)?;
            c.execute(
                "INSERT INTO meta (key, value) VALUES ('config_sha256', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![seen],
            )?;
            Ok(true)
        })
    }

    fn roster_versions(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT number, body FROM roster_versions ORDER BY number")?;
            let rows = stmt
                .query_map([], |row| {
                    let number: i64 = row.get(0)?;
                    read::open_bytes(&self.inner.sealer, "roster_versions.body", &row_id(number), row.get(1)?)
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn roster_version_applied(&self, v: RosterApplied) -> Pending<bool> {
        let s = self.inner.sealer.clone();
        self.submit(move |c| {
            let held: Option<Vec<u8>> = c
                .query_row("SELECT hash FROM roster_versions WHERE number = ?1", params![v.number as i64], |row| {
                    row.get(0)
                })
                .optional()?;
            match held {
                Some(h) if h == v.hash => return Ok(false),
                Some(_) => return Err(invariant(format!("another roster version {} was applied already", v.number))),
                None => {}
            }
            c.execute(
                "INSERT INTO roster_versions (number, hash, body, applied_ms) VALUES (?1, ?2, ?3, ?4)",
                params![
                    v.number as i64,
                    &v.hash[..],
                    s.seal("roster_versions.body", &row_id(v.number as i64), &v.body),
                    v.now_ms as i64
                ],
            )?;
            c.execute("DELETE FROM roster_proposals WHERE number <= ?1", params![v.number as i64])?;
            write::audit_by(c, &s, v.now_ms, &v.actor, "roster_amended", None, &v.detail)?;
            Ok(true)
        })
    }

    fn roster_applied_times(&self) -> Result<Vec<(u64, u64)>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT number, applied_ms FROM roster_versions ORDER BY number")?;
            let rows = stmt
                .query_map([], |row| Ok((row.get::<_, i64>(0)?.max(0) as u64, row.get::<_, i64>(1)?.max(0) as u64)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn roster_proposals(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT hash, body FROM roster_proposals ORDER BY seen_ms, hash")?;
            let rows = stmt
                .query_map([], |row| {
                    let hash: Vec<u8> = row.get(0)?;
                    read::open_bytes(&self.inner.sealer, "roster_proposals.body", &hash, row.get(1)?)
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn roster_proposal_kept(&self, p: RosterProposalKept) -> Pending<()> {
        let s = self.inner.sealer.clone();
        self.submit(move |c| {
            let body = s.seal("roster_proposals.body", &p.hash, &p.body);
            c.execute(
                "INSERT INTO roster_proposals (hash, number, body, seen_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (hash) DO UPDATE SET body = excluded.body",
                params![&p.hash[..], p.number as i64, body, p.now_ms as i64],
            )?;
            if let Some((action, actor, detail)) = &p.audit {
                write::audit_by(c, &s, p.now_ms, actor, action, None, detail)?;
            }
            Ok(())
        })
    }

    fn operator_password(&self, name: &str) -> Result<Option<(Operator, Option<String>)>, StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT name, role, created_ms, password_hash FROM operators WHERE name = ?1",
                params![name],
                |row| {
                    Ok((
                        Operator {
                            name: row.get(0)?,
                            role: read::role_of(row.get(1)?)?,
                            created_ms: row.get::<_, i64>(2)?.max(0) as u64,
                        },
                        row.get(3)?,
                    ))
                },
            )
            .optional()
        })
    }

    fn start_session(&self, id_hash: [u8; 32], operator: String, csrf: String, now_ms: u64) -> Pending<()> {
        self.submit(move |c| {
            c.execute(
                "INSERT INTO sessions (id_hash, operator, csrf, created_ms, last_seen_ms) VALUES (?1, ?2, ?3, ?4, ?4)",
                params![&id_hash[..], operator, csrf, now_ms as i64],
            )?;
            Ok(())
        })
    }

    fn session(&self, id_hash: &[u8; 32]) -> Result<Option<SessionRow>, StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT s.operator, o.role, s.csrf, s.created_ms, s.last_seen_ms FROM sessions s
                 JOIN operators o ON o.name = s.operator WHERE s.id_hash = ?1",
                params![&id_hash[..]],
                |row| {
                    Ok(SessionRow {
                        operator: Operator { name: row.get(0)?, role: read::role_of(row.get(1)?)?, created_ms: 0 },
                        csrf: row.get(2)?,
                        created_ms: row.get::<_, i64>(3)?.max(0) as u64,
                        last_seen_ms: row.get::<_, i64>(4)?.max(0) as u64,
                    })
                },
            )
            .optional()
        })
    }

    fn touch_session(&self, id_hash: [u8; 32], now_ms: u64) -> Pending<()> {
        self.submit(move |c| {
            c.execute(
                "UPDATE sessions SET last_seen_ms = ?2 WHERE id_hash = ?1",
                params![&id_hash[..], now_ms as i64],
            )?;
            Ok(())
        })
    }

    fn end_session(&self, id_hash: [u8; 32]) -> Pending<()> {
        self.submit(move |c| {
            c.execute("DELETE FROM sessions WHERE id_hash = ?1", params![&id_hash[..]])?;
            Ok(())
        })
    }

    fn mls_state(&self) -> Result<adi_mls::StateEntries, StoreError> {
        let sealer = &self.inner.sealer;
        self.read(|c| read::mls_entries(c, sealer))
    }

    fn add_key_packages(
        &self,
        state: adi_mls::StateDelta,
        key_packages: Vec<(Vec<u8>, Vec<u8>)>,
        now_ms: u64,
    ) -> Pending<()> {
        let sealer = self.inner.sealer.clone();
        self.submit(move |c| {
            write::mls_delta(c, &sealer, &state)?;
            for (reference, bytes) in &key_packages {
                c.execute(
                    "INSERT INTO key_packages (reference, bytes, created_ms) VALUES (?1, ?2, ?3)",
                    params![reference, bytes, now_ms as i64],
                )?;
            }
            Ok(())
        })
    }

    fn key_packages_claimed_before(&self, before_ms: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT reference FROM key_packages WHERE claimed_by IS NOT NULL AND claimed_ms < ?1 ORDER BY reference",
            )?;
            let rows = stmt.query_map(params![before_ms as i64], |row| row.get(0))?.collect();
            rows
        })
    }

    fn drop_key_packages(&self, state: adi_mls::StateDelta, references: Vec<Vec<u8>>) -> Pending<()> {
        let sealer = self.inner.sealer.clone();
        self.submit(move |c| {
            write::mls_delta(c, &sealer, &state)?;
            for reference in &references {
                c.execute("DELETE FROM key_packages WHERE reference = ?1", params![reference])?;
            }
            Ok(())
        })
    }

    fn key_packages_available(&self) -> Result<u64, StoreError> {
        self.read(|c| {
            c.query_row("SELECT COUNT(*) FROM key_packages WHERE claimed_by IS NULL", [], |row| row.get::<_, i64>(0))
                .map(|n| n.max(0) as u64)
        })
    }

    fn key_packages_unclaimed(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.read(|c| {
            let mut stmt =
                c.prepare_cached("SELECT reference FROM key_packages WHERE claimed_by IS NULL ORDER BY reference")?;
            let rows = stmt.query_map([], |row| row.get(0))?.collect();
            rows
        })
    }

    fn claim_key_package(&self, peer: &MemberCode, now_ms: u64, per_hour_max: u64) -> Pending<Claimed> {
        // Who claimed is sealed and the quota counts a blind index of the peer: the database does
        // not say who set up lines with whom.
        let claimant = peer.to_string();
        let peer = self.inner.sealer.blind("key_package_claims.peer", peer.as_str().as_bytes());
        let s = self.inner.sealer.clone();
        self.submit(move |c| {
            let hour_ago = now_ms.saturating_sub(HOUR_MS) as i64;
            c.execute("DELETE FROM key_package_claims WHERE claimed_ms <= ?1", params![hour_ago])?;
            let claims: i64 = c.query_row(
                "SELECT COUNT(*) FROM key_package_claims WHERE peer = ?1",
                params![peer],
                |row| row.get(0),
            )?;
            if claims as u64 >= per_hour_max {
                return Ok(Claimed::OverQuota { claims: claims as u64 });
            }
            let next: Option<(Vec<u8>, Vec<u8>)> = c
                .query_row(
                    "SELECT reference, bytes FROM key_packages WHERE claimed_by IS NULL ORDER BY created_ms, reference LIMIT 1",
                    [],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            let Some((reference, bytes)) = next else { return Ok(Claimed::Empty) };
            c.execute(
                "UPDATE key_packages SET claimed_by = ?2, claimed_ms = ?3 WHERE reference = ?1",
                params![reference, s.seal_str("key_packages.claimed_by", &reference, &claimant), now_ms as i64],
            )?;
            c.execute(
                "INSERT INTO key_package_claims (peer, claimed_ms) VALUES (?1, ?2)",
                params![peer, now_ms as i64],
            )?;
            Ok(Claimed::KeyPackage(bytes))
        })
    }

    fn operator_by_token(&self, token_hash: &[u8; 32]) -> Result<Option<(Operator, Option<u64>)>, StoreError> {
        self.read(|c| read::operator_by_token(c, token_hash))
    }

    fn use_key_package(&self, reference: Vec<u8>, member: &MemberCode, now_ms: u64) -> Pending<bool> {
        let member = self.inner.sealer.seal_str("used_key_packages.member", &reference, member.as_str());
        self.submit(move |c| {
            let n = c.execute(
                "INSERT INTO used_key_packages (reference, member, used_ms) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                params![reference, member, now_ms as i64],
            )?;
            Ok(n == 1)
        })
    }

    fn used_key_packages(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare("SELECT reference FROM used_key_packages")?;
            let rows = stmt.query_map([], |row| row.get(0))?.collect::<Result<Vec<Vec<u8>>, _>>()?;
            Ok(rows)
        })
    }
}

/// The time on this machine, for the audit entries of what its administrator does with
/// `adi operator` (the writer's callers pass their own clock's time).
fn wall_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
