//! Converting what lines carry to and from the wire's payloads.

use adi_wire::commit::{Membership, Place};

use super::*;

pub(super) fn message_to_payload(m: &Message) -> PayloadV1 {
    PayloadV1::Message {
        v: 1,
        precedence: m.precedence.as_str().to_string(),
        class: m.class.as_str().to_string(),
        caveat: m.caveat.clone(),
        subject: m.subject.clone(),
        body: m.body.clone(),
        ack_required: m.ack_required,
        crisis: m.crisis,
        deadline_s: m.deadline_s,
        released_by: m.released_by.clone(),
        form: m.form.clone(),
        ewg: m.ewg.clone(),
        attachments: m
            .attachments
            .iter()
            .map(|a| adi_wire::payload::AttachmentRef {
                sha256: hex::encode(a.sha256),
                name: a.name.clone(),
                media_type: a.media_type.clone(),
                size: a.size,
                chunks: a.chunks,
            })
            .collect(),
    }
}

pub(super) fn chunk_to_payload(c: &Chunk) -> PayloadV1 {
    use base64::Engine;
    PayloadV1::Chunk {
        v: 1,
        message: c.message.to_hex(),
        file: hex::encode(c.file),
        index: c.index,
        data: base64::engine::general_purpose::STANDARD.encode(&c.data),
    }
}

/// Reads a chunk payload; the caller checks the limits.
pub fn chunk_from_payload(p: PayloadV1) -> Result<Chunk, String> {
    use base64::Engine;
    let PayloadV1::Chunk { message, file, index, data, .. } = p else { return Err("not a chunk".into()) };
    let message = EnvelopeHash::from_hex(&message).ok_or("the chunk's message is not 32 bytes of hex")?;
    let mut sha = [0u8; 32];
    hex::decode_to_slice(&file, &mut sha).map_err(|_| "the chunk's file is not a SHA-256 in hex")?;
    let data = base64::engine::general_purpose::STANDARD.decode(data).map_err(|e| format!("the chunk's data: {e}"))?;
    Ok(Chunk { message, file: sha, index, data })
}

/// Reads a message payload; the caller checks the limits.
pub fn message_from_payload(p: PayloadV1) -> Result<Message, String> {
    match p {
        PayloadV1::Message {
            precedence,
            class,
            caveat,
            subject,
            body,
            ack_required,
            crisis,
            deadline_s,
            released_by,
            form,
            ewg,
            attachments,
            ..
        } => Ok(Message {
            precedence: Precedence::parse(&precedence).ok_or_else(|| format!("unknown precedence '{precedence}'"))?,
            class: Class::parse(&class).ok_or_else(|| format!("unknown class '{class}'"))?,
            caveat,
            subject,
            body,
            ack_required,
            crisis,
            deadline_s,
            released_by,
            form,
            ewg,
            attachments: attachments
                .into_iter()
                .map(|a| {
                    let mut sha256 = [0u8; 32];
                    hex::decode_to_slice(&a.sha256, &mut sha256)
                        .map_err(|_| format!("the attachment {}'s SHA-256 is not 32 bytes of hex", a.name))?;
                    Ok(Attachment { sha256, name: a.name, media_type: a.media_type, size: a.size, chunks: a.chunks })
                })
                .collect::<Result<_, String>>()?,
        }),
        _ => Err("not a message".into()),
    }
}

pub(super) fn decision_to_payload(d: &Decision) -> PayloadV1 {
    PayloadV1::Decision {
        v: 1,
        text: d.text.clone(),
        parties: d.parties.iter().map(|p| p.to_string()).collect(),
        deadline_s: d.deadline_s,
        supersedes: d.supersedes.map(|h| h.to_hex()),
    }
}

pub(super) fn decision_from_payload(p: PayloadV1) -> Result<Decision, String> {
    match p {
        PayloadV1::Decision { text, parties, deadline_s, supersedes, .. } => Ok(Decision {
            text,
            parties: parties.iter().map(|p| MemberCode::parse(p)).collect::<Result<_, _>>()?,
            deadline_s,
            supersedes: supersedes
                .map(|s| EnvelopeHash::from_hex(&s).ok_or("the replaced decision is not a 32-byte hex hash"))
                .transpose()?,
        }),
        _ => Err("not a decision".into()),
    }
}

pub(super) fn concurrence_from_payload(p: PayloadV1) -> Result<Concurrence, String> {
    match p {
        PayloadV1::Concurrence { decision, text_sha256, concur, reason, .. } => {
            let decision = EnvelopeHash::from_hex(&decision).ok_or("the decision is not a 32-byte hex hash")?;
            let text = EnvelopeHash::from_hex(&text_sha256).ok_or("the text hash is not 32 bytes of hex")?;
            if !concur && reason.is_none() {
                return Err("declining a decision needs a reason".into());
            }
            Ok(Concurrence { decision, text_sha256: text.0, concur, reason })
        }
        _ => Err("not an answer to a decision".into()),
    }
}

pub(super) fn receipt_to_payload(r: &Receipt) -> PayloadV1 {
    PayloadV1::Receipt {
        v: 1,
        kind: r.kind.as_str().to_string(),
        answers: r.answers.hash.to_hex(),
        answers_sender: r.answers.sender.to_string(),
        answers_seq: r.answers.seq,
        reason: r.reason.clone(),
    }
}

pub(super) fn receipt_from_payload(p: PayloadV1) -> Result<Receipt, String> {
    match p {
        PayloadV1::Receipt { kind, answers, answers_sender, answers_seq, reason, .. } => {
            let kind = ReceiptKind::parse(&kind).ok_or_else(|| format!("unknown receipt kind '{kind}'"))?;
            let hash = EnvelopeHash::from_hex(&answers).ok_or("the answered hash is not 32 bytes of hex")?;
            let sender = MemberCode::parse(&answers_sender)?;
            if answers_seq == 0 {
                return Err("the answered sequence number is 0".into());
            }
            if reason.as_ref().is_some_and(|r| r.chars().count() > 1_000) {
                return Err("a reason is at most 1000 characters".into());
            }
            Ok(Receipt { kind, answers: Answered { hash, sender, seq: answers_seq }, reason })
        }
        _ => Err("not a receipt".into()),
    }
}

/// The removals a commit carries in its MLS authenticated data ([`Membership::Removals`]):
/// nothing for a commit that takes no one off.
pub(super) fn encode_removals(removals: &[Removal]) -> Vec<u8> {
    if removals.is_empty() {
        return Vec::new();
    }
    let places = removals.iter().map(|r| Place { member: r.member.to_string(), seq: r.seq, hash: r.hash }).collect();
    Membership::Removals(places).encode()
}

/// Reads the removals of [`encode_removals`]; a commit that adds members, or changes none, takes
/// no one off.
pub(super) fn decode_removals(aad: &[u8]) -> Result<Vec<Removal>, String> {
    match Membership::decode(aad)? {
        Membership::Removals(places) => places
            .into_iter()
            .map(|p| Ok(Removal { member: MemberCode::parse(&p.member)?, seq: p.seq, hash: p.hash }))
            .collect(),
        Membership::Unchanged | Membership::Additions(_) => Ok(Vec::new()),
    }
}
