//! The hotline, sans-IO.
//!
//! This crate owns the rules: the [`roster`] and its line policy, [`line`]s, [`message`]s and
//! their precedence, and the [`hotline::Hotline`] state machine that turns operator commands and
//! peer envelopes into records to commit. It never opens a socket, reads the clock, sleeps or runs
//! SQL: time and randomness come in as arguments, and what must be stored comes out as a
//! [`hotline::WriteBatch`] for the runtime to commit before it acknowledges anything.

#![forbid(unsafe_code)]

pub mod amendment;
pub mod decision;
pub mod discipline;
pub mod error;
pub mod fixtures;
pub mod hotline;
pub mod limits;
pub mod line;
pub mod message;
pub mod receipt;
pub mod recipient;
pub mod role;
pub mod roster;
pub mod text;

pub use decision::{Concurrence, Decision, Translation};
pub use discipline::{
    AlarmChange, AlarmKind, AlarmOp, Deadlines, DisciplineConfig, LinkHealth, LinkState, PendingAck, Side,
};
pub use error::{CoreError, ErrorKind};
pub use hotline::{
    chunk_from_payload, Content, Evidence, HeldEnvelope, Hotline, HotlineConfig, OwnHead, Record, Refusal, Removal,
    Restored, StoredRemoval, WriteBatch,
};
pub use limits::Limits;
pub use line::{Line, NewLine, Scope};
pub use message::{Attachment, Chunk, Class, Draft, Message, Precedence};
pub use receipt::{Answered, Receipt, ReceiptKind};
pub use recipient::{RecipientEvent, RecipientProgress, RecipientState};
pub use role::Role;
pub use roster::{Community, Member, MemberCode, Roster};
pub use text::{check_text, count_words, TextKind};
