//! Every limit the core enforces, with its default, gathered in one place.

/// Limits on what the core accepts from operators and peers. Units are last in the names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest encoded envelope accepted from a peer.
    pub envelope_bytes_max: usize,
    /// Largest payload inside an envelope.
    pub payload_bytes_max: usize,
    /// Most envelopes in one federation batch.
    pub batch_len_max: usize,
    /// Largest message body, in bytes of UTF-8.
    pub body_bytes_max: usize,
    /// Most words in a FLASH or IMMEDIATE body.
    pub urgent_body_words_max: usize,
    /// Longest deadline a decision may ask its parties for, in seconds (a year and a day).
    pub decision_deadline_s_max: u64,
    /// Longest subject, in characters.
    pub subject_chars_max: usize,
    /// Longest caveat (classification and handling marking), in characters.
    pub caveat_chars_max: usize,
    /// Longest line title, in characters.
    pub title_chars_max: usize,
    /// Most members on a conference.
    pub line_members_max: usize,
    /// Most lines a node holds.
    pub lines_max: usize,
    /// Most lines one peer may bring this node onto (as their home member) in a day; a set-up
    /// beyond it is deferred and a `quota` alarm names the peer.
    pub lines_per_peer_per_day_max: usize,
    /// The most bytes of envelopes this node accepts from one peer in a day (by when they
    /// arrived, in hourly steps): past it, that peer's envelopes are deferred (its node sends them
    /// again later) and a `quota` alarm names it, so that no member fills another's disk. Four
    /// times what a member's own operators may send of files in a day by default.
    pub peer_bytes_per_day_max: u64,
    /// How far ahead of the highest sequence number seen from a sender an envelope may be.
    pub seq_ahead_max: u64,
    /// Largest file attached to a message.
    pub attachment_bytes_max: u64,
    /// Largest piece of a file one `chunk` envelope carries (its base64 fits `payload_bytes_max`).
    pub attachment_chunk_bytes_max: usize,
    /// Most files attached to one message.
    pub attachments_per_message_max: usize,
    /// Longest name of an attached file, in characters.
    pub attachment_name_chars_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            envelope_bytes_max: 256 * 1024,
            payload_bytes_max: 192 * 1024,
            batch_len_max: 256,
            body_bytes_max: 64 * 1024,
            urgent_body_words_max: 200,
            decision_deadline_s_max: 366 * 24 * 3600,
            subject_chars_max: 200,
            caveat_chars_max: 64,
            title_chars_max: 200,
            line_members_max: 64,
            lines_max: 10_000,
            lines_per_peer_per_day_max: 100,
            peer_bytes_per_day_max: 4 * 1024 * 1024 * 1024,
            seq_ahead_max: 1_000_000,
            attachment_bytes_max: 25 * 1024 * 1024,
            attachment_chunk_bytes_max: 96 * 1024,
            attachments_per_message_max: 10,
            attachment_name_chars_max: 255,
        }
    }
}
