//! Files attached to messages as this node holds them: a file put together from its chunks and
//! checked against what its message signed, and, as chunks and messages arrive from peers, each
//! file they make whole judged, so that one that is not what its message signed raises an alarm
//! naming its sender.

use std::sync::Arc;

use adi_wire::EnvelopeHash;
use axum::http::StatusCode;
use sha2::Digest;

use crate::clock::now_ms;
use crate::error::ApiError;
use crate::state::NodeState;

/// A file attached to `message`, from the chunks this node holds: every place from 0 to the count
/// the message signed, each chunk's signed content read back, and the whole checked against the
/// signed size and SHA-256.
pub(crate) fn put_together(
    node: &NodeState,
    message: &EnvelopeHash,
    a: &adi_core::Attachment,
) -> Result<Vec<u8>, ApiError> {
    let chunks = node.store.chunks(message, &a.sha256)?;
    let held = chunks.iter().filter(|(i, _)| *i < a.chunks).count() as u64;
    if held < a.chunks {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "incomplete",
            format!("{} of the {} chunks of {} have arrived", held, a.chunks, a.name),
        ));
    }
    let corrupt = |why: String| ApiError::new(StatusCode::CONFLICT, "corrupt", why);
    let mut bytes = Vec::with_capacity(usize::try_from(a.size).unwrap_or(0));
    for (_, hash) in chunks.iter().filter(|(i, _)| *i < a.chunks) {
        let row = node.store.envelope(hash)?.ok_or_else(|| corrupt(format!("chunk {hash} is missing")))?;
        let content = row.signed_content.ok_or_else(|| corrupt(format!("chunk {hash} holds no content")))?;
        let chunk = adi_wire::content::SignedContent::decode(&content)
            .map_err(|e| e.to_string())
            .and_then(|sc| adi_wire::payload::PayloadV1::decode(&sc.content))
            .and_then(adi_core::chunk_from_payload)
            .map_err(|e| corrupt(format!("chunk {hash}: {e}")))?;
        bytes.extend_from_slice(&chunk.data);
        if bytes.len() as u64 > a.size {
            return Err(corrupt(format!("the chunks of {} are longer than its signed size", a.name)));
        }
    }
    let sha: [u8; 32] = sha2::Sha256::digest(&bytes).into();
    if bytes.len() as u64 != a.size || sha != a.sha256 {
        return Err(corrupt(format!("the chunks of {} do not make the file its message signed", a.name)));
    }
    Ok(bytes)
}

/// A file that a record taken from a peer may have made whole.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Touched {
    message: EnvelopeHash,
    file: [u8; 32],
    sender: adi_core::MemberCode,
    /// For a chunk: its place and its envelope. None for the message that names the file.
    chunk: Option<(u64, EnvelopeHash)>,
}

/// The files that records taken from a peer may have made whole: each chunk's, and each file a
/// message names (its chunks may have come first), with the member who sent it.
pub(crate) fn files_touched(records: &[adi_core::Record]) -> Vec<Touched> {
    let mut files: Vec<_> = records
        .iter()
        .flat_map(|r| match &r.content {
            adi_core::Content::Chunk(c) => vec![Touched {
                message: c.message,
                file: c.file,
                sender: r.sender.clone(),
                chunk: Some((c.index, r.envelope.hash())),
            }],
            adi_core::Content::Message(m) => m
                .attachments
                .iter()
                .map(|a| Touched { message: r.envelope.hash(), file: a.sha256, sender: r.sender.clone(), chunk: None })
                .collect(),
            _ => Vec::new(),
        })
        .collect();
    files.sort();
    files.dedup();
    files
}

/// Judges the files that records just taken may have made whole: one whose every chunk is here
/// but which is not the file its message signed raises a `misconduct` alarm naming its sender
/// (an honest node cannot send one). A file still arriving, or whose message has not arrived,
/// is judged when the rest comes.
///
/// A chunk judges its file only when it is the one kept for a place the file has (the first for
/// that place): so a file is put together at most twice, when its message and when its last
/// place arrive, and chunks past its count or sent again for a place held cost no more than a
/// lookup, whatever a peer sends.
pub(crate) async fn judge_files(node: Arc<NodeState>, files: Vec<Touched>) {
    for Touched { message, file, sender, chunk } in files {
        let Ok(Some(row)) = node.store.message(&message) else { continue };
        let Some(attachment) = row.attachments.iter().find(|a| a.sha256 == file) else { continue };
        if row.sender != sender {
            continue;
        }
        if let Some((index, hash)) = chunk {
            let Ok(kept) = node.store.chunks(&message, &file) else { continue };
            if index >= attachment.chunks || !kept.iter().any(|(i, h)| *i == index && *h == hash) {
                continue;
            }
        }
        let why = match put_together(&node, &message, attachment) {
            Err(e) if e.code == "corrupt" => e.message,
            _ => continue,
        };
        let detail = format!("message {message} from {sender}: {why}");
        tracing::warn!(peer = %sender, message = %message, "a file's chunks do not make the file its message signed");
        let alarm = adi_core::AlarmChange::misconduct(&sender, now_ms(), detail);
        let batch = adi_core::WriteBatch { alarms: vec![alarm], ..adi_core::WriteBatch::default() };
        match node.store.commit(batch).wait().await {
            Ok(_) => node.committed(&[]),
            Err(e) => {
                node.fail_storage(&e);
            }
        }
    }
}
