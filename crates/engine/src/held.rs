//! Envelopes held for an epoch this node had not reached: once the commit that reaches it is
//! stored, they go through the core, and what it makes of them is committed together with their
//! release. A taken envelope may itself be a commit, so the driver goes round again with the
//! lines [`Engine::released`] returns; each round releases at least one held envelope or ends.

use adi_core::{Content, WriteBatch};
use adi_store::Store;
use adi_wire::LineId;

use crate::{Engine, EngineError, Place};

/// Held envelopes taken: what to commit, and what to do once it is.
pub struct Release {
    pub write: WriteBatch,
    places: Vec<Place>,
    generation: u64,
    /// Lines on which a taken envelope was a commit.
    commits: Vec<LineId>,
}

impl Engine {
    /// Hands the core the envelopes held for `lines` whose epoch its group has now reached.
    /// `None` when there is nothing to take or forget.
    pub fn release_held(
        &mut self,
        store: &dyn Store,
        mut lines: Vec<LineId>,
        now_ms: u64,
    ) -> Result<Option<Release>, EngineError> {
        lines.sort();
        lines.dedup();
        let generation = self.generation;
        let mut places = Vec::new();
        let mut batch = WriteBatch::default();
        for line in lines {
            let Some(epoch) = self.core.epoch(&line) else { continue };
            for h in store.held(&line, epoch)? {
                let place = (h.line, h.sender.to_string(), h.seq);
                if self.in_flight.contains_key(&place) {
                    continue;
                }
                batch.release.push(h.hash);
                // Taken already: the sender sent it again after the commit.
                if !matches!(store.envelope_at(&h.line, h.sender.as_str(), h.seq), Ok(None)) {
                    continue;
                }
                match self.core.receive(now_ms, &h.sender, &h.bytes) {
                    Ok(records) => {
                        tracing::info!(line = %h.line, sender = %h.sender, seq = h.seq, "held envelope taken");
                        self.in_flight.insert(place.clone(), (h.hash, generation));
                        places.push(place);
                        batch.records.extend(records);
                    }
                    Err(refusal) if refusal.hold.is_some() => {
                        batch.release.pop();
                    }
                    Err(refusal) => {
                        // The sender hears the reason when it sends the envelope again.
                        tracing::warn!(line = %h.line, sender = %h.sender, seq = h.seq, reason = %refusal.reason,
                            "held envelope refused");
                        batch.alarms.extend(refusal.alarm.map(|a| *a));
                    }
                }
            }
        }
        if batch.is_empty() {
            return Ok(None);
        }
        let commits =
            batch.records.iter().filter(|r| matches!(r.content, Content::Handshake(_))).map(|r| r.line.id).collect();
        let write = match self.seal(batch) {
            Ok(w) => w,
            Err(e) => {
                self.forget_in_flight(&places, generation);
                return Err(e);
            }
        };
        Ok(Some(Release { write, places, generation, commits }))
    }

    /// A release's write was committed (or not): the lines to release again.
    pub fn released(&mut self, release: ReleaseDone, committed: bool) -> Vec<LineId> {
        self.forget_in_flight(&release.places, release.generation);
        if committed {
            release.commits
        } else {
            Vec::new()
        }
    }
}

/// What remains of a [`Release`] once its write is handed to the store.
pub struct ReleaseDone {
    places: Vec<Place>,
    generation: u64,
    commits: Vec<LineId>,
}

impl Release {
    /// Splits the write to commit from what [`Engine::released`] needs afterwards.
    pub fn into_parts(self) -> (WriteBatch, ReleaseDone) {
        let Release { write, places, generation, commits } = self;
        (write, ReleaseDone { places, generation, commits })
    }
}
