//! The JSON of the operator API: requests and views of lines, messages and their recipients and
//! receipts, drafts, envelopes, checkpoints, peers and the node's health, shared by the resources'
//! handlers (a resource's own types sit with its handlers).

use adi_core::{Draft, Line, RecipientState};
use adi_store::{DraftRow, MessageRow, ReceiptRow, RecipientRow};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::fed::checkpoints::Exchange;

/// A request for a new line.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLineRequest {
    /// Member codes, this node's member among them.
    #[schema(example = json!(["PH", "CN"]))]
    pub members: Vec<String>,
    /// `ADMM` or `ADMM-Plus`.
    #[schema(pattern = "^(ADMM|ADMM-Plus)$")]
    pub scope: String,
    pub title: Option<String>,
}

/// A line.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct LineView {
    pub id: String,
    pub scope: String,
    pub title: String,
    pub home: String,
    pub members: Vec<String>,
    pub direct: bool,
    pub created_ms: u64,
    /// The MLS epoch of the line's group at this node.
    pub epoch: Option<u64>,
}

impl From<&Line> for LineView {
    fn from(l: &Line) -> Self {
        LineView {
            id: l.id.to_hex(),
            scope: l.scope.as_str().to_string(),
            title: l.title.clone(),
            home: l.home.to_string(),
            members: l.members.iter().map(|m| m.to_string()).collect(),
            direct: l.is_direct(),
            created_ms: l.created_ms,
            epoch: None,
        }
    }
}

/// A message to send.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessageRequest {
    /// `FLASH`, `IMMEDIATE`, `PRIORITY` or `ROUTINE` (or `Z`, `O`, `P`, `R`).
    #[schema(pattern = "^(FLASH|IMMEDIATE|PRIORITY|ROUTINE|Z|O|P|R)$")]
    pub precedence: String,
    /// `OPERATIONAL` (default), `SERVICE` or `TEST`.
    #[schema(pattern = "^(OPERATIONAL|SERVICE|TEST)$")]
    pub class: Option<String>,
    /// Classification and handling marking; the node's default when absent.
    pub caveat: Option<String>,
    /// Required for free text; a report's subject defaults to its one-line summary.
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub body: String,
    /// Whether the recipients must acknowledge; true by default for OPERATIONAL.
    pub ack_required: Option<bool>,
    /// Declares a crisis use: where the establishment requires it, a principal releases it.
    pub crisis: Option<bool>,
    /// A structured report with its `kind` (`GET /api/v1/schemas`; `docs/FORMS.md`), checked
    /// field by field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub form: Option<serde_json::Value>,
    /// An Experts' Working Group tag, such as `maritime-security`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ewg: Option<String>,
    /// Files to attach: the SHA-256 (hex) of each, uploaded first (`POST /api/v1/attachments`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<String>,
}

impl NewMessageRequest {
    pub fn to_draft(&self) -> Draft {
        Draft {
            precedence: self.precedence.clone(),
            class: self.class.clone(),
            caveat: self.caveat.clone(),
            subject: self.subject.clone(),
            body: self.body.clone(),
            ack_required: self.ack_required,
            crisis: self.crisis,
            form: self.form.clone(),
            ewg: self.ewg.clone(),
        }
    }
}

/// One recipient's state of a message.
#[derive(Serialize, Deserialize, ToSchema, Clone)]
pub struct RecipientView {
    pub member: String,
    /// `sent` (committed here and queued), `delivered` (committed at the recipient's node) or
    /// `refused` (the recipient's node refused it, with `detail`).
    pub state: String,
    pub sent_ms: u64,
    pub delivered_ms: Option<u64>,
    /// When the recipient's node signed its `decrypted` receipt for this message.
    pub decrypted_ms: Option<u64>,
    pub seen_ms: Option<u64>,
    pub acknowledged_ms: Option<u64>,
    pub declined_ms: Option<u64>,
    /// Why the recipient's node refused it, why delivery waits, or why it was declined.
    pub detail: Option<String>,
    /// When the acknowledgement is due, if it is awaited.
    pub deadline_ms: Option<u64>,
}

impl RecipientView {
    fn from_row(row: RecipientRow, deadline_ms: Option<u64>) -> Self {
        let r = row.progress;
        // A refused message will not be acknowledged either: no deadline runs for it.
        let settled = r.acknowledged_ms.is_some() || r.declined_ms.is_some() || r.state == RecipientState::Refused;
        RecipientView {
            member: row.member.to_string(),
            state: r.state.as_str().to_string(),
            sent_ms: row.sent_ms,
            delivered_ms: r.delivered_ms,
            decrypted_ms: r.decrypted_ms,
            seen_ms: r.seen_ms,
            acknowledged_ms: r.acknowledged_ms,
            declined_ms: r.declined_ms,
            detail: r.detail,
            deadline_ms: deadline_ms.filter(|_| !settled),
        }
    }
}

/// A signed receipt answering a message.
#[derive(Serialize, Deserialize, ToSchema, Clone)]
pub struct ReceiptView {
    /// The receipt's own envelope hash.
    pub id: String,
    pub member: String,
    /// `seen`, `acknowledged` or `declined`.
    pub kind: String,
    pub reason: Option<String>,
    /// When the answering member's node signed it.
    pub signed_ms: u64,
    /// Who on this member's desk made it: on this member's own receipts that an operator made
    /// (not on automatic ones, nor on other members', whose operators this node never learns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
}

impl From<ReceiptRow> for ReceiptView {
    fn from(r: ReceiptRow) -> Self {
        ReceiptView {
            id: r.hash.to_hex(),
            member: r.member.to_string(),
            kind: r.kind.as_str().to_string(),
            reason: r.reason,
            signed_ms: r.signed_ms,
            operator: r.operator,
        }
    }
}

/// A message with, for this node's own messages, each recipient's state.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct MessageView {
    /// The envelope hash, the same on every node.
    pub id: String,
    pub line: String,
    pub sender: String,
    /// The sender's sequence number on the line.
    pub seq: u64,
    /// The order in which this node accepted it.
    pub arrival: u64,
    pub precedence: String,
    pub class: String,
    pub caveat: String,
    pub subject: String,
    pub body: String,
    pub ack_required: bool,
    pub crisis: bool,
    /// When each recipient's acknowledgement is due, for OPERATIONAL messages that require it.
    pub deadline_ms: Option<u64>,
    /// The principal who released it.
    pub released_by: Option<String>,
    pub created_ms: u64,
    pub received_ms: u64,
    /// Each recipient's state, on the sender's node.
    pub recipients: Vec<RecipientView>,
    /// Every signed receipt that answers it, on any member's node.
    pub receipts: Vec<ReceiptView>,
    /// The structured report it carries, with its `kind`, as signed.
    #[schema(value_type = Option<Object>)]
    pub form: Option<serde_json::Value>,
    /// The report as plain text.
    pub form_text: Option<String>,
    /// The Experts' Working Group tag.
    pub ewg: Option<String>,
    /// For an encounter at sea, the approach of each other unit to the reporting unit, computed
    /// from the positions, courses and speeds reported; a suggestion, never part of the report.
    pub approaches: Vec<adi_forms::UnitApproach>,
    /// When this node's retention pruned its content (caveat, subject, body, report, tag and
    /// releaser, which then read empty), after an archived export held it; its signed envelope
    /// and receipts stay.
    #[serde(default)]
    pub pruned_ms: Option<u64>,
    /// The files attached, with how far each has come.
    #[serde(default)]
    pub attachments: Vec<AttachmentView>,
}

/// A file attached to a message.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct AttachmentView {
    /// SHA-256 of its bytes, hex, as the message signed it.
    pub sha256: String,
    pub name: String,
    pub media_type: String,
    pub size: u64,
    /// How many chunks carry it.
    pub chunks: u64,
    /// How many of them this node holds: all, once it has arrived (or, on the sender's node,
    /// once sent).
    pub held: u64,
    /// On the sender's node, each recipient's count of chunks its node said it decrypted: the
    /// file is delivered to it when that reaches `chunks`.
    pub delivered: Vec<AttachmentDelivery>,
}

/// How many chunks of a file one recipient's node decrypted.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct AttachmentDelivery {
    pub member: String,
    pub chunks: u64,
}

pub(crate) fn message_view(r: MessageRow, recipients: Vec<RecipientRow>, receipts: Vec<ReceiptRow>) -> MessageView {
    let deadline_ms = r.deadline_ms;
    let form: Option<serde_json::Value> = r.form.as_deref().and_then(|f| serde_json::from_str(f).ok());
    // Stored forms passed their checks before they were committed; read back, they are only read.
    let checked = form.as_ref().and_then(|f| adi_forms::Form::deserialize(f).ok());
    MessageView {
        id: r.hash.to_hex(),
        line: r.line.to_hex(),
        sender: r.sender.to_string(),
        seq: r.seq,
        arrival: r.arrival,
        precedence: r.precedence.unwrap_or_default(),
        class: r.class.unwrap_or_default(),
        caveat: r.caveat.unwrap_or_default(),
        subject: r.subject.unwrap_or_default(),
        body: r.body.unwrap_or_default(),
        ack_required: r.ack_required,
        crisis: r.crisis,
        deadline_ms,
        released_by: r.released_by,
        created_ms: r.created_ms,
        received_ms: r.received_ms,
        recipients: recipients.into_iter().map(|x| RecipientView::from_row(x, deadline_ms)).collect(),
        receipts: receipts.into_iter().map(ReceiptView::from).collect(),
        form_text: checked.as_ref().map(adi_forms::render),
        approaches: checked.as_ref().map(adi_forms::approaches).unwrap_or_default(),
        form,
        ewg: r.ewg,
        pruned_ms: r.pruned_ms,
        attachments: r
            .attachments
            .iter()
            .map(|a| AttachmentView {
                sha256: hex::encode(a.sha256),
                name: a.name.clone(),
                media_type: a.media_type.clone(),
                size: a.size,
                chunks: a.chunks,
                held: 0,
                delivered: Vec::new(),
            })
            .collect(),
    }
}

/// A page of a list ordered oldest first.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Most items of the page: 1 to the node's `list_len_max` (the default is the operation's).
    #[param(minimum = 1)]
    pub limit: Option<usize>,
    /// Where the page before ended: the cursor its `Link` header gives. Left out for the first
    /// page.
    pub after: Option<String>,
}

/// A page of the inbox.
/// What a search asks for: every filter given must hold.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// Words to find, as written, in the subject, the text or the report (letter case aside):
    /// at most the node's `search_text_chars_max` characters.
    pub q: Option<String>,
    /// Only this line's messages: its id, 32 hex digits.
    pub line: Option<String>,
    /// Only messages of this precedence: FLASH, IMMEDIATE, PRIORITY or ROUTINE.
    pub precedence: Option<String>,
    /// Only messages of this class: OPERATIONAL, SERVICE or TEST.
    pub class: Option<String>,
    /// Only messages from this member (its code; this member's own code for what it sent).
    pub sender: Option<String>,
    /// Only messages written at or after this time (ms since the Unix epoch, the sender's clock).
    pub since_ms: Option<u64>,
    /// Only messages written before this time.
    pub until_ms: Option<u64>,
    /// Most messages the answer lists, newest first: 1 to the node's `list_len_max` (default
    /// `messages_page_len`).
    #[param(minimum = 1)]
    pub limit: Option<usize>,
}

/// What a search found: the newest matches first, how many matched in all, how many messages it
/// read, and whether it read every message there is (`false`: it stopped at the node's
/// `search_scan_max`, in the inbox's order, most urgent first, so older routine traffic may hold
/// more matches).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct SearchView {
    pub messages: Vec<MessageView>,
    pub found: usize,
    pub scanned: usize,
    pub complete: bool,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InboxParams {
    /// Most items of the page: 1 to the node's `list_len_max` (the default is the operation's).
    #[param(minimum = 1)]
    pub limit: Option<usize>,
    /// Where the page before ended: the cursor its `Link` header gives. Left out for the first
    /// page.
    pub after: Option<String>,
    /// `true`: only the messages that wait for this member's answer (with a deadline, neither
    /// acknowledged nor declined here), in the inbox's order.
    pub waiting: Option<bool>,
}

/// A page of a list ordered newest first.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct NewestFirstParams {
    /// Most items of the page: 1 to the node's `list_len_max` (the default is the operation's).
    #[param(minimum = 1)]
    pub limit: Option<usize>,
    /// Where the page before ended: the cursor its `Link` header gives (the id of its last
    /// item). Left out for the first page.
    pub before: Option<String>,
}

/// A peer link's state and backlog.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct PeerView {
    pub member: String,
    pub queue_len: u64,
    pub oldest_queued_age_ms: Option<u64>,
    pub endpoint: Option<String>,
    pub last_error: Option<String>,
    pub last_delivery_ms: Option<u64>,
    pub failures: u32,
}

/// Liveness.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`, or `storage_failed` while the node refuses writes because its database cannot be
    /// written.
    pub status: String,
    pub member: String,
    /// Why writes are refused, while they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageView>,
    /// Faults injected on purpose (`ADI_ENGINE_BUG`, for tests only): a node that shows any
    /// breaks its promises by design.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub injected_faults: Vec<String>,
    /// Where operators reach the nodes of this member's active/standby pair, this one first
    /// (`[pair]` in the configuration); absent for a node run alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pair: Vec<String>,
}

/// Why the node refuses writes: its database cannot be written. Reads go on, and the node takes
/// writes again by itself once its database does.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct StorageView {
    /// `storage_full`, `storage_read_only` or `storage_failed`.
    pub error: String,
    pub message: String,
    /// When the first write failed.
    pub since_ms: u64,
}

/// A member to add to a line.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMemberRequest {
    /// A member code: 2 to 8 characters of A-Z, 0-9 and `-`.
    #[schema(pattern = "^[A-Z0-9-]{2,8}$")]
    pub member: String,
}

/// A signed checkpoint of a member's log of a line, with its countersignatures.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct CheckpointView {
    pub signer: String,
    pub size: u64,
    /// Merkle root of the signer's log, hex.
    pub root: String,
    pub time_ms: u64,
    /// The signed checkpoint bytes (`docs/RECORD.md`), hex.
    pub signed: String,
    pub countersignatures: Vec<CountersignatureView>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct CountersignatureView {
    pub member: String,
    /// Ed25519 signature, hex.
    pub signature: String,
}

impl From<adi_store::CheckpointRow> for CheckpointView {
    fn from(r: adi_store::CheckpointRow) -> Self {
        let c = &r.checkpoint.checkpoint;
        CheckpointView {
            signer: c.signer.clone(),
            size: c.size,
            root: hex::encode(c.root),
            time_ms: c.time_ms,
            signed: r.checkpoint.to_bytes().map(hex::encode).unwrap_or_default(),
            countersignatures: r
                .countersignatures
                .into_iter()
                .map(|(m, s)| CountersignatureView { member: m.to_string(), signature: hex::encode(s) })
                .collect(),
        }
    }
}

/// The window of a line to export, by the time this node accepted each envelope.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// Milliseconds since 1970-01-01T00:00Z: the first envelope accepted at or after it.
    pub from_ms: Option<u64>,
    /// The last envelope accepted at or before it.
    pub to_ms: Option<u64>,
    /// Leaves out the bytes of attached files (each file's SHA-256 stays in its signed message);
    /// such an export cannot be confirmed archived.
    #[serde(default)]
    pub without_files: bool,
}

/// The confirmation that an export was archived.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArchiveRequest {
    /// SHA-256 of the export's bytes exactly as the node served them, 64 hex digits.
    pub sha256: String,
}

/// An export whose archiving was confirmed.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ArchiveView {
    pub line: String,
    /// SHA-256 of the export's bytes, hex.
    pub sha256: String,
    /// How many envelopes of the line it holds.
    pub envelopes: u64,
    pub served_ms: u64,
    pub confirmed_ms: Option<u64>,
}

impl From<adi_store::ArchiveRow> for ArchiveView {
    fn from(a: adi_store::ArchiveRow) -> Self {
        ArchiveView {
            line: a.line.to_hex(),
            sha256: hex::encode(a.sha256),
            envelopes: a.envelopes,
            served_ms: a.served_ms,
            confirmed_ms: a.confirmed_ms,
        }
    }
}

/// A new checkpoint and what each member answered to it.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct NewCheckpointView {
    pub checkpoint: CheckpointView,
    pub exchanges: Vec<Exchange>,
}

/// A stored envelope exactly as it travelled, for audit and offline verification.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct EnvelopeView {
    pub id: String,
    pub line: String,
    pub sender: String,
    pub seq: u64,
    /// Hash of the sender's previous envelope on the line.
    pub prev: String,
    pub created_ms: u64,
    pub received_ms: u64,
    /// `line_setup`, `message`, `receipt` or `link_test`.
    pub kind: String,
    /// The signed bytes, base64 (standard alphabet, padded); `docs/WIRE.md` specifies them.
    pub bytes_base64: String,
    /// For an MLS application message: the content as its author signed it, decrypted, base64
    /// (`docs/RECORD.md`, "Signed content"); it verifies under the author's roster key and
    /// matches the envelope's `content_hash` without any MLS key.
    pub content_base64: Option<String>,
    /// The hash of the signed content the envelope names, hex (zeros when it carries none).
    pub content_hash: String,
}

/// A message held for a principal's release.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct DraftView {
    pub id: u64,
    pub line: String,
    pub drafter: String,
    pub created_ms: u64,
    /// `awaiting_release` or `released`.
    pub state: String,
    pub released_by: Option<String>,
    pub released_ms: Option<u64>,
    /// The message id once released.
    pub message: Option<String>,
    pub draft: Option<NewMessageRequest>,
}

impl From<DraftRow> for DraftView {
    fn from(d: DraftRow) -> Self {
        DraftView {
            id: d.id,
            line: d.line.to_hex(),
            drafter: d.drafter,
            created_ms: d.created_ms,
            state: d.state,
            released_by: d.released_by,
            released_ms: d.released_ms,
            message: d.message.map(|m| m.to_hex()),
            draft: serde_json::from_str(&d.draft_json).ok(),
        }
    }
}
