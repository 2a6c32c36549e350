//! Payloads: what an envelope carries, version 1, as JSON.
//!
//! Until lines are end-to-end encrypted, a payload travels as these bytes inside the signed
//! envelope (content type [`crate::envelope::CONTENT_PLAIN_V1`]). Federation code never looks
//! inside; only the core decodes a payload, after the envelope's signature has been verified.

use serde::{Deserialize, Serialize};

/// A payload, tagged by `type`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum PayloadV1 {
    /// The home member announces a new line to its members, with the MLS Welcome (hex) that
    /// lets them join its group.
    LineSetup {
        v: u8,
        scope: String,
        title: String,
        home: String,
        members: Vec<String>,
        #[serde(default)]
        welcome: Option<String>,
    },
    /// An operator's message.
    Message {
        v: u8,
        precedence: String,
        class: String,
        caveat: String,
        subject: String,
        body: String,
        ack_required: bool,
        /// Declared a crisis use by the drafter.
        #[serde(default)]
        crisis: bool,
        /// Seconds after `created_ms` by which each recipient must acknowledge, when required.
        #[serde(default)]
        deadline_s: Option<u64>,
        /// The principal who released the message, when release was required.
        #[serde(default)]
        released_by: Option<String>,
        /// A structured report (`docs/FORMS.md`), tagged by its `kind`; absent for free text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        form: Option<serde_json::Value>,
        /// The Experts' Working Group the message belongs to, such as `maritime-security`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ewg: Option<String>,
        /// The files attached, each carried by `chunk` envelopes of the same sender after it.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<AttachmentRef>,
    },
    /// A piece of a file attached to a message of the same sender on the line: its place in
    /// the file and its bytes.
    Chunk {
        v: u8,
        /// The message the file is attached to (envelope hash, hex).
        message: String,
        /// SHA-256 of the whole file, hex, as the message names it.
        file: String,
        /// Its place among the file's chunks, from 0.
        index: u64,
        /// Its bytes, base64 (standard alphabet, padded).
        data: String,
    },
    /// A recipient's signed answer to one envelope: `seen`, `acknowledged`, `declined` (with a
    /// reason) or `link_test_answer`.
    Receipt {
        v: u8,
        kind: String,
        /// Hash of the envelope answered, in hex.
        answers: String,
        /// Sender and sequence number of the envelope answered.
        answers_sender: String,
        answers_seq: u64,
        #[serde(default)]
        reason: Option<String>,
    },
    /// An automatic link test, answered by the peer's node with a `link_test_answer` receipt.
    LinkTest { v: u8 },
    /// A decision proposed on a line: its exact text, the members whose concurrence makes it
    /// final, an optional deadline, and the earlier version it replaces.
    Decision {
        v: u8,
        text: String,
        parties: Vec<String>,
        /// Seconds after `created_ms` by which the parties are asked to answer.
        #[serde(default)]
        deadline_s: Option<u64>,
        /// The decision (envelope hash, hex) this version replaces.
        #[serde(default)]
        supersedes: Option<String>,
    },
    /// A translation of a message, a record of its own that names the original; the original
    /// stays the authoritative record.
    Translation {
        v: u8,
        /// The message translated (envelope hash, hex).
        original: String,
        /// The language of the translation (a BCP 47 tag such as `en` or `zh-Hans`).
        language: String,
        text: String,
        /// The operator who translated.
        translator: String,
        /// The operator who reviewed the translation, when reviewed.
        #[serde(default)]
        reviewed_by: Option<String>,
        /// The earlier translation (envelope hash, hex) this one revises.
        #[serde(default)]
        revises: Option<String>,
    },
    /// A party's answer to a decision: it concurs with, or declines, the exact text whose
    /// SHA-256 it names.
    Concurrence {
        v: u8,
        /// The decision answered (envelope hash, hex).
        decision: String,
        /// SHA-256 of the decision's exact text (UTF-8), hex.
        text_sha256: String,
        concur: bool,
        #[serde(default)]
        reason: Option<String>,
    },
}

/// A file attached to a message, as the message's signed content names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentRef {
    /// SHA-256 of the file's bytes, hex.
    pub sha256: String,
    /// Its name, as its sender gave it.
    pub name: String,
    /// Its media type, as its sender gave it (`application/pdf`, `image/png`, ...).
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// How many `chunk` envelopes carry it.
    pub chunks: u64,
}

impl PayloadV1 {
    pub fn encode(&self) -> Vec<u8> {
        // Serialising these plain structs to a Vec cannot fail.
        serde_json::to_vec(self).expect("payload serialises")
    }

    pub fn decode(bytes: &[u8]) -> Result<PayloadV1, String> {
        let p: PayloadV1 = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let v = match &p {
            PayloadV1::LineSetup { v, .. }
            | PayloadV1::Message { v, .. }
            | PayloadV1::Receipt { v, .. }
            | PayloadV1::LinkTest { v }
            | PayloadV1::Decision { v, .. }
            | PayloadV1::Translation { v, .. }
            | PayloadV1::Concurrence { v, .. }
            | PayloadV1::Chunk { v, .. } => *v,
        };
        if v != 1 {
            return Err(format!("unsupported payload version {v}"));
        }
        Ok(p)
    }
}
