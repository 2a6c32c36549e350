//! The hotline state machine of one member's node.
//!
//! [`Hotline`] holds what the node must know to decide without I/O: the roster, the lines this
//! member is on, and for each line and sender the highest sequence number and chain head. Its
//! inputs are operator commands ([`Hotline::create_line`], [`Hotline::send`]) and envelope bytes
//! from an authenticated peer ([`Hotline::receive`]); its output is a [`Record`] for the runtime to
//! commit before it acknowledges anything. Time comes in as `now_ms`, randomness as a line id.

use std::collections::HashMap;

use adi_wire::envelope::{EnvelopeBody, CONTENT_PLAIN_V1, PRIORITY_CONTROL};
use adi_wire::payload::PayloadV1;
use adi_wire::{Envelope, EnvelopeHash, LineId, VerifiedEnvelope};
use ed25519_dalek::SigningKey;

use crate::error::CoreError;
use crate::limits::Limits;
use crate::line::{check_line, Line, NewLine, Scope};
use crate::message::{Class, Draft, Message, Precedence};
use crate::roster::{MemberCode, Roster};

/// What a node is configured with.
pub struct HotlineConfig {
    pub me: MemberCode,
    pub signing_key: SigningKey,
    pub roster: Roster,
    pub limits: Limits,
    /// The caveat applied to a message that names none.
    pub default_caveat: String,
}

/// The last envelope the store holds from one sender on one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnHead {
    pub line: LineId,
    pub sender: MemberCode,
    pub seq: u64,
    pub hash: EnvelopeHash,
}

/// What an envelope carries, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    LineSetup,
    Message(Message),
}

/// One envelope to commit, with what the store needs to index it.
#[derive(Clone, Debug)]
pub struct Record {
    pub envelope: VerifiedEnvelope,
    pub sender: MemberCode,
    /// The line the envelope belongs to; for a line setup, the line it creates.
    pub line: Line,
    pub content: Content,
    pub received_ms: u64,
    /// Members to forward this envelope to: the other members for this node's own envelopes,
    /// none for envelopes received from peers.
    pub recipients: Vec<MemberCode>,
}

/// Records to commit together.
#[derive(Clone, Debug, Default)]
pub struct WriteBatch {
    pub records: Vec<Record>,
}

/// Why an envelope from a peer was not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Whether the sender should try again later (the line may not be known here yet).
    pub retry: bool,
    pub reason: String,
}

impl Refusal {
    fn reject(reason: impl Into<String>) -> Self {
        Refusal { retry: false, reason: reason.into() }
    }

    fn defer(reason: impl Into<String>) -> Self {
        Refusal { retry: true, reason: reason.into() }
    }
}

/// The state machine.
pub struct Hotline {
    config: HotlineConfig,
    lines: HashMap<LineId, Line>,
    /// Highest sequence number and its hash, per line and sender.
    heads: HashMap<(LineId, MemberCode), (u64, EnvelopeHash)>,
}

impl Hotline {
    /// Builds the state machine from configuration and what the store holds.
    pub fn new(config: HotlineConfig, lines: Vec<Line>, heads: Vec<OwnHead>) -> Hotline {
        let lines = lines.into_iter().map(|l| (l.id, l)).collect();
        let heads = heads.into_iter().map(|h| ((h.line, h.sender), (h.seq, h.hash))).collect();
        Hotline { config, lines, heads }
    }

    pub fn me(&self) -> &MemberCode {
        &self.config.me
    }

    pub fn roster(&self) -> &Roster {
        &self.config.roster
    }

    pub fn limits(&self) -> &Limits {
        &self.config.limits
    }

    pub fn line(&self, id: &LineId) -> Option<&Line> {
        self.lines.get(id)
    }

    pub fn lines(&self) -> impl Iterator<Item = &Line> {
        self.lines.values()
    }

    /// Creates a line with this member as its home, announcing it to the other members.
    pub fn create_line(&mut self, now_ms: u64, id: LineId, req: NewLine) -> Result<Record, CoreError> {
        let scope = Scope::parse(&req.scope).ok_or_else(|| {
            CoreError::invalid("bad_scope", format!("unknown scope '{}', expected ADMM or ADMM-Plus", req.scope))
        })?;
        if self.lines.len() >= self.config.limits.lines_max {
            return Err(CoreError::conflict(
                "too_many_lines",
                format!("this node holds the most lines it may ({})", self.config.limits.lines_max),
            ));
        }
        let title = req.title.unwrap_or_default();
        let me = self.config.me.clone();
        let members = check_line(&self.config.roster, &self.config.limits, scope, &me, &req.members, &title)?;
        if members.len() == 2 {
            let existing = self.lines.values().find(|l| l.scope == scope && l.members == members);
            if let Some(l) = existing {
                return Err(CoreError::conflict(
                    "line_exists",
                    format!(
                        "a direct line of scope {} between {} and {} exists: {}",
                        scope.as_str(),
                        members[0],
                        members[1],
                        l.id
                    ),
                ));
            }
        }
        if self.lines.contains_key(&id) {
            return Err(CoreError::conflict("line_exists", format!("line {id} exists")));
        }
        let line = Line { id, scope, title, home: me.clone(), members, created_ms: now_ms };
        let payload = PayloadV1::LineSetup {
            v: 1,
            scope: scope.as_str().to_string(),
            title: line.title.clone(),
            home: me.to_string(),
            members: line.members.iter().map(|m| m.to_string()).collect(),
        };
        self.lines.insert(id, line.clone());
        Ok(self.seal(now_ms, line, PRIORITY_CONTROL, payload, Content::LineSetup))
    }

    /// Sends an operator's message on a line.
    pub fn send(&mut self, now_ms: u64, line: LineId, draft: Draft) -> Result<Record, CoreError> {
        let line = self
            .lines
            .get(&line)
            .cloned()
            .ok_or_else(|| CoreError::not_found("unknown_line", format!("no line {line} here")))?;
        let message = Message::from_draft(draft, &self.config.default_caveat, &self.config.limits)?;
        let payload = message_to_payload(&message);
        if payload.encode().len() > self.config.limits.payload_bytes_max {
            return Err(CoreError::invalid(
                "message_too_large",
                format!("a message is at most {} bytes encoded", self.config.limits.payload_bytes_max),
            ));
        }
        let priority = message.precedence.priority();
        Ok(self.seal(now_ms, line, priority, payload, Content::Message(message)))
    }

    /// Signs this member's next envelope on a line and advances the chain head.
    fn seal(&mut self, now_ms: u64, line: Line, priority: u8, payload: PayloadV1, content: Content) -> Record {
        let me = self.config.me.clone();
        let (seq, prev) = self.heads.get(&(line.id, me.clone())).copied().unwrap_or((0, EnvelopeHash::NONE));
        let body = EnvelopeBody {
            line: line.id,
            sender: me.to_string(),
            seq: seq + 1,
            prev,
            epoch: 0,
            created_ms: now_ms,
            priority,
            content_type: CONTENT_PLAIN_V1,
            payload: payload.encode(),
        };
        let envelope = body.sign(&self.config.signing_key);
        self.heads.insert((line.id, me.clone()), (seq + 1, envelope.hash()));
        let recipients = line.members.iter().filter(|m| **m != me).cloned().collect();
        Record { envelope, sender: me, line, content, received_ms: now_ms, recipients }
    }

    /// Decides on one envelope from `peer`, the member authenticated by the TLS connection.
    ///
    /// Idempotence on (line, sender, sequence) is the store's to enforce when it commits: this
    /// decides whether the envelope is acceptable at all.
    pub fn receive(&mut self, now_ms: u64, peer: &MemberCode, bytes: &[u8]) -> Result<Record, Refusal> {
        let limits = &self.config.limits;
        let envelope = Envelope::decode(bytes, limits.envelope_bytes_max, limits.payload_bytes_max)
            .map_err(|e| Refusal::reject(format!("malformed envelope: {e}")))?;
        let body = envelope.body();
        if body.sender != peer.as_str() {
            return Err(Refusal::reject(format!(
                "envelope from {} arrived over {peer}'s connection; relaying is not supported",
                body.sender
            )));
        }
        let sender = peer.clone();
        let member = self
            .config
            .roster
            .member(&sender)
            .ok_or_else(|| Refusal::reject(format!("{sender} is not in the roster")))?;
        let envelope = envelope.verify(&member.signing_key).map_err(|e| Refusal::reject(e.to_string()))?;
        let body = envelope.body();
        if body.content_type != CONTENT_PLAIN_V1 || body.epoch != 0 {
            return Err(Refusal::reject(format!("unsupported content type {}", body.content_type)));
        }
        let payload = PayloadV1::decode(&body.payload).map_err(|e| Refusal::reject(format!("bad payload: {e}")))?;
        let (line, content) = match payload {
            PayloadV1::LineSetup { scope, title, home, members, .. } => {
                let line = self.check_setup(&sender, &envelope, &scope, title, &home, &members)?;
                (line, Content::LineSetup)
            }
            PayloadV1::Message { .. } => {
                let line = match self.lines.get(&body.line) {
                    Some(l) => l.clone(),
                    None => return Err(Refusal::defer(format!("line {} is not known here yet", body.line))),
                };
                if !line.has_member(&sender) {
                    return Err(Refusal::reject(format!("{sender} is not a member of line {}", line.id)));
                }
                let message = message_from_payload(payload).map_err(Refusal::reject)?;
                message.check(&self.config.limits).map_err(|e| Refusal::reject(e.message))?;
                if message.precedence.priority() != body.priority {
                    return Err(Refusal::reject("the envelope's priority does not match the message's precedence"));
                }
                (line, Content::Message(message))
            }
        };
        let key = (line.id, sender.clone());
        let (seen, _) = self.heads.get(&key).copied().unwrap_or((0, EnvelopeHash::NONE));
        if body.seq > seen.saturating_add(self.config.limits.seq_ahead_max) {
            return Err(Refusal::reject(format!(
                "sequence number {} is too far ahead of {seen} (limit seq_ahead_max = {})",
                body.seq, self.config.limits.seq_ahead_max
            )));
        }
        if body.seq > seen {
            self.heads.insert(key, (body.seq, envelope.hash()));
        }
        if matches!(content, Content::LineSetup) {
            self.lines.entry(line.id).or_insert_with(|| line.clone());
        }
        Ok(Record { envelope, sender, line, content, received_ms: now_ms, recipients: Vec::new() })
    }

    fn check_setup(
        &self,
        sender: &MemberCode,
        envelope: &VerifiedEnvelope,
        scope: &str,
        title: String,
        home: &str,
        members: &[String],
    ) -> Result<Line, Refusal> {
        let body = envelope.body();
        if home != sender.as_str() {
            return Err(Refusal::reject("only a line's home member may set it up"));
        }
        if body.seq != 1 || body.prev != EnvelopeHash::NONE {
            return Err(Refusal::reject("a line setup is the home member's first envelope on the line"));
        }
        let scope = Scope::parse(scope).ok_or_else(|| Refusal::reject(format!("unknown scope '{scope}'")))?;
        let members = check_line(&self.config.roster, &self.config.limits, scope, sender, members, &title)
            .map_err(|e| Refusal::reject(format!("line refused: {}", e.message)))?;
        if !members.contains(&self.config.me) {
            return Err(Refusal::reject(format!("{} is not a member of this line", self.config.me)));
        }
        let line = Line { id: body.line, scope, title, home: sender.clone(), members, created_ms: body.created_ms };
        if let Some(existing) = self.lines.get(&line.id) {
            let same = existing.scope == line.scope && existing.members == line.members && existing.home == line.home;
            if !same {
                return Err(Refusal::reject(format!("line {} exists here with another definition", line.id)));
            }
            return Ok(existing.clone());
        }
        if self.lines.len() >= self.config.limits.lines_max {
            return Err(Refusal::defer("this node holds the most lines it may"));
        }
        Ok(line)
    }
}

fn message_to_payload(m: &Message) -> PayloadV1 {
    PayloadV1::Message {
        v: 1,
        precedence: m.precedence.as_str().to_string(),
        class: m.class.as_str().to_string(),
        caveat: m.caveat.clone(),
        subject: m.subject.clone(),
        body: m.body.clone(),
        ack_required: m.ack_required,
    }
}

/// Reads a message payload; the caller checks the limits.
pub fn message_from_payload(p: PayloadV1) -> Result<Message, String> {
    match p {
        PayloadV1::Message { precedence, class, caveat, subject, body, ack_required, .. } => Ok(Message {
            precedence: Precedence::parse(&precedence).ok_or_else(|| format!("unknown precedence '{precedence}'"))?,
            class: Class::parse(&class).ok_or_else(|| format!("unknown class '{class}'"))?,
            caveat,
            subject,
            body,
            ack_required,
        }),
        PayloadV1::LineSetup { .. } => Err("not a message".into()),
    }
}

/// Decodes the content of an envelope this node stored after accepting it.
pub fn content_of(envelope: &VerifiedEnvelope) -> Result<Content, String> {
    match PayloadV1::decode(&envelope.body().payload)? {
        PayloadV1::LineSetup { .. } => Ok(Content::LineSetup),
        p => message_from_payload(p).map(Content::Message),
    }
}
