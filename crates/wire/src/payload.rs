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
    /// The home member announces a new line to its members.
    LineSetup { v: u8, scope: String, title: String, home: String, members: Vec<String> },
    /// An operator's message.
    Message {
        v: u8,
        precedence: String,
        class: String,
        caveat: String,
        subject: String,
        body: String,
        ack_required: bool,
    },
}

impl PayloadV1 {
    pub fn encode(&self) -> Vec<u8> {
        // Serialising these plain structs to a Vec cannot fail.
        serde_json::to_vec(self).expect("payload serialises")
    }

    pub fn decode(bytes: &[u8]) -> Result<PayloadV1, String> {
        let p: PayloadV1 = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let v = match &p {
            PayloadV1::LineSetup { v, .. } | PayloadV1::Message { v, .. } => *v,
        };
        if v != 1 {
            return Err(format!("unsupported payload version {v}"));
        }
        Ok(p)
    }
}
