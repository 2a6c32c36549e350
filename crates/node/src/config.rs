//! The node configuration file (TOML) and the files it points to.
//!
//! Paths in the file are relative to the file's own folder. Every error names the file and the
//! field, and a node whose configuration does not load does not start.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use adi_core::roster::{deadlines_from_file, RosterError};
use adi_core::{DisciplineConfig, Limits, MemberCode, Roster};
use adi_wire::files::RosterFile;
use ed25519_dalek::pkcs8::DecodePrivateKey;
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

pub const CONFIG_VERSION: u32 = 1;

/// The file form of a node's configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub version: u32,
    /// This node's member code.
    pub member: String,
    /// The roster file: the roster's first version, whose hash is the network's identity.
    pub roster: String,
    /// The roster's versions after the first, as JSON (an array of versions, in order), for a
    /// node that joins a network whose roster was amended since its first version: an admitted
    /// member's node starts from them. Versions the node applies while it runs are kept in its
    /// database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roster_versions: Option<String>,
    /// The SQLite database file, for the embedded store (the default).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub database: String,
    /// Where the store is when it is not the embedded SQLite file: a PostgreSQL database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreSection>,
    /// This node as one of an active/standby pair sharing the store on PostgreSQL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair: Option<PairSection>,
    /// The member's Ed25519 signing key (PKCS#8 PEM, mode 0600).
    pub signing_key: String,
    /// The node's TLS certificate and key (PEM; the key mode 0600).
    pub tls_cert: String,
    pub tls_key: String,
    /// The node master key (32 bytes in hex, mode 0600) under which message contents are sealed
    /// at rest; the environment variable `ADI_MASTER_KEY` (hex) takes precedence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_key: Option<String>,
    /// The caveat applied to messages that name none.
    #[serde(default = "default_caveat")]
    pub default_caveat: String,
    pub api: ApiSection,
    pub federation: FederationSection,
    #[serde(default)]
    pub discipline: DisciplineSection,
    #[serde(default)]
    pub limits: LimitsSection,
    /// How long each class of message keeps its content on this node once archived.
    #[serde(default, skip_serializing_if = "RetentionSection::is_default")]
    pub retention: RetentionSection,
}

/// Retention (`docs/OPERATIONS.md`, "Retention"): for each class of message, how many seconds
/// after this node accepted it its content may be pruned, once an export whose archiving was
/// confirmed holds it. A class left unset keeps its content for as long as the node runs; by
/// default TEST traffic is kept 30 days, SERVICE and OPERATIONAL traffic unset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSection {
    #[serde(default = "default_test_keep_s", skip_serializing_if = "Option::is_none")]
    pub test_keep_s: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_keep_s: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operational_keep_s: Option<u64>,
}

fn default_test_keep_s() -> Option<u64> {
    Some(30 * 24 * 3_600)
}

impl Default for RetentionSection {
    fn default() -> Self {
        RetentionSection { test_keep_s: default_test_keep_s(), service_keep_s: None, operational_keep_s: None }
    }
}

impl RetentionSection {
    fn is_default(&self) -> bool {
        *self == RetentionSection::default()
    }

    /// Each class the section gives a time, with it in milliseconds.
    pub fn rules(&self) -> Vec<(&'static str, u64)> {
        [("TEST", self.test_keep_s), ("SERVICE", self.service_keep_s), ("OPERATIONAL", self.operational_keep_s)]
            .into_iter()
            .filter_map(|(class, keep)| keep.map(|s| (class, s.saturating_mul(1000))))
            .collect()
    }
}

impl ConfigFile {
    /// Reads a configuration file as written, unchecked.
    pub fn read(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| cerr(path, "", format!("cannot read: {e}")))?;
        toml::from_str(&text).map_err(|e| cerr(path, "", format!("not a valid config: {e}")))
    }

    /// Writes the configuration file.
    pub fn write(&self, path: &Path) -> Result<(), ConfigError> {
        let text = toml::to_string_pretty(self).map_err(|e| cerr(path, "", e.to_string()))?;
        std::fs::write(path, text).map_err(|e| cerr(path, "", format!("cannot write: {e}")))
    }
}

/// Acknowledgement, escalation, release and link tests.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisciplineSection {
    /// Deadlines for this establishment; when absent, the roster's, else the defaults
    /// (10 min, 30 min, 3 h, 6 h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadlines: Option<adi_wire::files::DeadlinesFile>,
    /// How often an overdue acknowledgement is escalated again.
    #[serde(default = "default_escalation_repeat_s")]
    pub escalation_repeat_s: u64,
    /// Operators (names or roles) an escalation is addressed to besides the watch.
    #[serde(default)]
    pub alternates: Vec<String>,
    /// How often each direct line is tested, in seconds; 0 turns tests off.
    #[serde(default = "default_link_test_interval_s")]
    pub link_test_interval_s: u64,
    /// Whether a FLASH or crisis message drafted by a duty officer waits for a principal's release.
    #[serde(default = "default_true")]
    pub release_required: bool,
    /// How often this member refreshes its MLS keys on each line, in seconds; 0: never by time.
    #[serde(default = "default_key_update_interval_s")]
    pub key_update_interval_s: u64,
    /// After how many envelopes sent on a line this member refreshes its keys there.
    #[serde(default = "default_key_update_messages")]
    pub key_update_messages: u64,
    /// How often this node signs a checkpoint of each line whose log grew and offers it to the
    /// line's other members for countersigning, in seconds; 0: only on demand.
    #[serde(default = "default_checkpoint_interval_s")]
    pub checkpoint_interval_s: u64,
    /// How far, in milliseconds, a peer's clock (as link tests measure it) or this node's own
    /// clock (stepping while the node runs) may stray before a `clock` alarm.
    #[serde(default = "default_clock_offset_ms_max")]
    pub clock_offset_ms_max: u64,
}

fn default_clock_offset_ms_max() -> u64 {
    DisciplineConfig::default().clock_offset_ms_max
}

fn default_checkpoint_interval_s() -> u64 {
    600
}

fn default_key_update_interval_s() -> u64 {
    DisciplineConfig::default().key_update_interval_s
}

fn default_key_update_messages() -> u64 {
    DisciplineConfig::default().key_update_messages
}

fn default_escalation_repeat_s() -> u64 {
    DisciplineConfig::default().escalation_repeat_s
}

fn default_link_test_interval_s() -> u64 {
    DisciplineConfig::default().link_test_interval_s
}

fn default_true() -> bool {
    true
}

impl Default for DisciplineSection {
    fn default() -> Self {
        DisciplineSection {
            deadlines: None,
            escalation_repeat_s: default_escalation_repeat_s(),
            alternates: Vec::new(),
            link_test_interval_s: default_link_test_interval_s(),
            release_required: true,
            key_update_interval_s: default_key_update_interval_s(),
            key_update_messages: default_key_update_messages(),
            checkpoint_interval_s: default_checkpoint_interval_s(),
            clock_offset_ms_max: default_clock_offset_ms_max(),
        }
    }
}

fn default_caveat() -> String {
    "ADMM-PLUS RESTRICTED".to_string()
}

/// The store, when it is not the embedded SQLite file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// `sqlite` (the file `database` names) or `postgres`.
    pub kind: String,
    /// The PostgreSQL database, as `postgres://user@host:port/database` (or the key=value form).
    /// Better without its password, which `password_file` gives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A file (mode 0600) holding the database user's password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
}

/// The origin (`https://10.0.0.2:7300`) of an operator's address of a node, or `None` unless it
/// is an http:// or https:// address whose host and port hold only the characters an address
/// has: the console's Content-Security-Policy names the other node of a pair by its origin.
pub fn origin_of(url: &str) -> Option<String> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']');
    if authority.is_empty() || !authority.chars().all(allowed) {
        return None;
    }
    Some(format!("{}{authority}", &url[..url.len() - rest.len()]))
}

/// One node of an active/standby pair: two `adi serve` of one member, on two machines, sharing
/// one PostgreSQL store; the one holding the store's lease is active.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairSection {
    /// This node's name within the pair, for logs and for the other node (`ph-a`).
    pub name: String,
    /// Where operators reach this node's API (`http://10.0.0.1:7300`): the other node, while it
    /// is the standby, sends them here.
    pub api_url: String,
    /// Where operators reach the other node's API: a console page left open on this node moves
    /// there when this node stops answering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_api_url: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// Where the operator API listens.
    pub listen: String,
    /// Serve the API over TLS with the node certificate. Required unless `listen` is loopback.
    #[serde(default)]
    pub tls: bool,
    /// Where Prometheus scrapes the node's metrics (`GET /metrics`, plain HTTP, no token): off
    /// unless set. Bind it to loopback or a management network; the series hold no content,
    /// but they show the traffic and the links' state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationSection {
    /// Addresses the federation listener binds, one per bearer path.
    pub listen: Vec<String>,
}

/// Optional overrides of the limits; anything left out keeps its default.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    pub envelope_bytes_max: Option<usize>,
    pub batch_len_max: Option<usize>,
    pub body_bytes_max: Option<usize>,
    pub urgent_body_words_max: Option<usize>,
    pub decision_deadline_s_max: Option<u64>,
    pub line_members_max: Option<usize>,
    pub api_body_bytes_max: Option<usize>,
    pub events_retained_max: Option<u64>,
    pub held_envelopes_max: Option<u64>,
    pub held_per_sender_max: Option<u64>,
    pub held_epochs_ahead_max: Option<u64>,
    pub held_expiry_ms: Option<u64>,
    pub key_package_claims_per_hour_max: Option<u64>,
    pub key_package_claimed_ttl_ms: Option<u64>,
    pub lines_per_peer_per_day_max: Option<usize>,
    pub peer_bytes_per_day_max: Option<u64>,
    pub retry_delay_ms_min: Option<u64>,
    pub retry_delay_ms_max: Option<u64>,
    pub connect_timeout_ms: Option<u64>,
    pub request_timeout_ms: Option<u64>,
    pub checkpoint_skew_ms: Option<u64>,
    pub checkpoint_heads_slack_ms: Option<u64>,
    pub checkpoint_heads_scan_max: Option<usize>,
    pub storage_probe_ms: Option<u64>,
    pub handshake_timeout_ms: Option<u64>,
    pub accept_retry_ms: Option<u64>,
    pub http_connections_max: Option<usize>,
    pub http_connections_per_address_max: Option<usize>,
    pub federation_connections_per_address_max: Option<usize>,
    pub http_header_timeout_ms: Option<u64>,
    pub http_body_timeout_ms: Option<u64>,
    pub files_reserved: Option<u64>,
    pub events_read_len_max: Option<usize>,
    pub list_len_max: Option<usize>,
    pub messages_page_len: Option<usize>,
    pub search_scan_max: Option<usize>,
    pub search_text_chars_max: Option<usize>,
    pub report_window_ms_max: Option<u64>,
    pub report_default_window_ms: Option<u64>,
    pub metrics_scrape_min_ms: Option<u64>,
    pub retention_interval_ms: Option<u64>,
    pub retention_batch_max: Option<usize>,
    pub archive_confirm_window_ms: Option<u64>,
    pub upload_keep_ms: Option<u64>,
    pub send_batch_bytes_max: Option<usize>,
    pub attachment_bytes_per_day_max: Option<u64>,
    pub preview_pages_max: Option<usize>,
    pub preview_width_px: Option<u32>,
    pub preview_pixels_max: Option<u64>,
    pub preview_seconds_max: Option<u64>,
    pub preview_memory_bytes_max: Option<u64>,
    pub preview_concurrency_max: Option<usize>,
    pub attachment_bytes_max: Option<u64>,
    pub attachments_per_message_max: Option<usize>,
    pub alarms_page_len: Option<usize>,
    pub evidence_page_len: Option<usize>,
    pub drafts_page_len: Option<usize>,
    pub events_poll_ms: Option<u64>,
    pub events_keepalive_ms: Option<u64>,
    pub session_idle_ms: Option<u64>,
    pub session_max_ms: Option<u64>,
    pub session_watch_ms: Option<u64>,
    pub urgent_watch_ms: Option<u64>,
    pub sign_in_failures_max: Option<usize>,
    pub sign_in_window_ms: Option<u64>,
    pub sign_in_delay_ms_max: Option<u64>,
    pub sign_in_checks_max: Option<usize>,
    pub sign_in_wait_ms: Option<u64>,
    pub sign_in_per_address_per_minute_max: Option<usize>,
    pub sign_in_per_minute_max: Option<usize>,
    pub sign_in_tracked_max: Option<usize>,
    pub unauthenticated_per_address_per_minute_max: Option<usize>,
    pub unauthenticated_tracked_max: Option<usize>,
    pub peer_reason_chars_max: Option<usize>,
    pub clock_sleep_ms_max: Option<u64>,
    pub clock_watch_ms: Option<u64>,
    pub roster_sync_ms: Option<u64>,
    pub roster_version_bytes_max: Option<usize>,
    pub roster_signatures_max: Option<usize>,
    pub roster_proposals_max: Option<usize>,
    pub roster_proposals_per_member_max: Option<usize>,
    pub roster_versions_per_exchange_max: Option<usize>,
    pub rotation_overlap_ms: Option<u64>,
    pub lease_ms: Option<u64>,
    pub lease_renew_ms: Option<u64>,
    pub standby_poll_ms: Option<u64>,
    pub restore_check_ms: Option<u64>,
    pub restore_page_len: Option<u64>,
    pub restore_page_bytes_max: Option<usize>,
    pub takeover_ms: Option<u64>,
}

/// Limits of the runtime, beside the core's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeLimits {
    /// Largest operator API request body.
    pub api_body_bytes_max: usize,
    /// Largest federation request body.
    pub batch_bytes_max: usize,
    /// First delay before retrying a peer, doubled per failure up to the maximum.
    pub retry_delay_ms_min: u64,
    pub retry_delay_ms_max: u64,
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
    /// How far a peer's checkpoint's time (of version 2) may be from this node's clock for this
    /// node to countersign it: its chain heads are judged by what its signer is known to have
    /// held by that time.
    pub checkpoint_skew_ms: u64,
    /// What a peer signed within this long before its checkpoint's time is not held against the
    /// checkpoint's chain heads: it may have signed a receipt for an envelope whose commit had
    /// not finished when it read its log (its next checkpoint, which must extend this one, is
    /// judged again).
    pub checkpoint_heads_slack_ms: u64,
    /// How many envelopes, in all, the check of one peer checkpoint's chain heads looks through
    /// (those beyond the heads it names, each sender's from its latest down), so that no offer
    /// costs more store reads than this; older ones are covered by the checkpoints countersigned
    /// before.
    pub checkpoint_heads_scan_max: usize,
    /// Most items one page of a list of the API holds: the highest `limit` a request may ask
    /// for. A list longer than its page says so with a link to the next page.
    pub list_len_max: usize,
    /// Items of a page of a line's messages and of the inbox when the request names no `limit`
    /// (the other lists' pages are `list_len_max` long by default, but for these three).
    pub messages_page_len: usize,
    /// Most messages one search reads (`GET /api/v1/search`), most urgent first: a search costs
    /// at most this many rows read and unsealed.
    pub search_scan_max: usize,
    /// Most characters of a search's text.
    pub search_text_chars_max: usize,
    /// The longest window one operations report covers (`GET /api/v1/report`): what it reads of
    /// the record grows with it.
    pub report_window_ms_max: u64,
    /// The window an operations report covers when the request names no start.
    pub report_default_window_ms: u64,
    /// How long the metrics listener serves what it last read before it reads the node again: a
    /// flood of scrapes from whoever reaches that port costs at most one read of the node's state
    /// in this time.
    pub metrics_scrape_min_ms: u64,
    /// How often retention looks for archived content past its class's time (`[retention]`).
    pub retention_interval_ms: u64,
    /// The most messages one transaction of retention prunes; a pass goes on in further
    /// transactions while there are more.
    pub retention_batch_max: usize,
    /// How long after serving an export the node accepts the confirmation that it was archived;
    /// an export never confirmed in that time is forgotten.
    pub archive_confirm_window_ms: u64,
    /// How long a file uploaded to attach is kept for a message to name it.
    pub upload_keep_ms: u64,
    /// The most bytes of envelopes this node sends a peer in one batch (within the peer's
    /// `batch_bytes_max`): a FLASH queued behind a file's chunks waits at most for one batch this
    /// size in flight.
    pub send_batch_bytes_max: usize,
    /// The most bytes of files this member's operators send in 24 hours, counted as the chunk
    /// envelopes that carry them (sealed, so a little more than the files); a message whose files
    /// would pass it is refused, `attachment_quota`.
    pub attachment_bytes_per_day_max: u64,
    /// The most pages of a PDF the console's preview draws; the rest are downloaded to be read.
    pub preview_pages_max: usize,
    /// The width a PDF's page is drawn at for a preview, in pixels.
    pub preview_width_px: u32,
    /// The most pixels of one page drawn for a preview (a page far taller than wide is drawn
    /// narrower).
    pub preview_pixels_max: u64,
    /// The most processor time, and twice that of time waited, that drawing one page may take;
    /// the drawing process is killed past it.
    pub preview_seconds_max: u64,
    /// The most memory (address space) the drawing process may take.
    pub preview_memory_bytes_max: u64,
    /// The most pages drawn at once; a preview asked for beyond it waits its turn.
    pub preview_concurrency_max: usize,
    /// Items of a page of the alarms when the request names no `limit`.
    pub alarms_page_len: usize,
    /// Items of a page of the evidence of tampering when the request names no `limit`.
    pub evidence_page_len: usize,
    /// Items of a page of the drafts held for release when the request names no `limit`.
    pub drafts_page_len: usize,
    /// How many of the newest events the live stream keeps for clients that reconnect.
    pub events_retained_max: u64,
    /// How many unclaimed one-time KeyPackages the node keeps for its peers.
    pub key_package_pool_len: u64,
    /// How many envelopes from an epoch not reached yet a node holds per line until the commit
    /// arrives; beyond it the sender keeps them queued.
    pub held_envelopes_max: u64,
    /// Of those, the most one sender may have held on one line.
    pub held_per_sender_max: u64,
    /// How many epochs ahead of this node's an envelope may be and still be held.
    pub held_epochs_ahead_max: u64,
    /// How long an envelope stays held before it is dropped (its sender sends it again).
    pub held_expiry_ms: u64,
    /// KeyPackages one peer may claim from this node in an hour; beyond it the claim is refused
    /// (429 `over_quota`) and a `quota` alarm names the peer.
    pub key_package_claims_per_hour_max: u64,
    /// How long a claimed KeyPackage no Welcome used is kept before it and its private key are
    /// deleted.
    pub key_package_claimed_ttl_ms: u64,
    /// While a failed commit makes the node refuse writes (a full disk, a read-only database), how
    /// often it tries a small durable write to find out whether it can take writes again.
    pub storage_probe_ms: u64,
    /// How long a client may take over its TLS handshake.
    pub handshake_timeout_ms: u64,
    /// How long a listener waits after a failed accept (out of file descriptors, say) before
    /// accepting again.
    pub accept_retry_ms: u64,
    /// Most connections each listener (the API's, each federation address's) holds open at once;
    /// fewer when the open-file limit, less `files_reserved`, shared among the listeners, allows
    /// fewer. A connection over it is closed as soon as it is accepted.
    pub http_connections_max: usize,
    /// Most connections one client address holds open on the API listener.
    pub http_connections_per_address_max: usize,
    /// Most connections one address holds open on a federation listener, before its TLS
    /// handshake says whose it is: a peer's node keeps one link and makes a few single requests
    /// (claims, checkpoint offers), so this leaves room for several members' nodes behind one
    /// address, and none for a flood of handshakes that never finish.
    pub federation_connections_per_address_max: usize,
    /// How long a client may take to send a request's headers, and how long a connection may
    /// wait idle for its next request.
    pub http_header_timeout_ms: u64,
    /// How long a client may take to send a request's body, from when its headers arrived, on
    /// the API and the federation listeners alike.
    pub http_body_timeout_ms: u64,
    /// Open files kept for the database, its journal, logs and outgoing links, whatever the
    /// listeners hold.
    pub files_reserved: u64,
    /// Most events sent to a live-stream client in one read of the store.
    pub events_read_len_max: usize,
    /// How long a live stream waits for new events before it looks again.
    pub events_poll_ms: u64,
    /// How often an idle live stream sends a keep-alive comment.
    pub events_keepalive_ms: u64,
    /// A console session unused this long is over.
    pub session_idle_ms: u64,
    /// A console session is over this long after sign-in, used or not.
    pub session_max_ms: u64,
    /// The watch length: how long a console session lasts, from sign-in, while its page holds the
    /// event stream open (the stream keeps it from going idle), beyond `session_max_ms`.
    pub session_watch_ms: u64,
    /// How long after sign-in the page's watch cookie lets it ask, its session ended, whether
    /// something urgent waits (`GET /console/urgent`): past the end of the watch, so that the
    /// desk still rings until someone signs in.
    pub urgent_watch_ms: u64,
    /// Failed console sign-ins per operator name within `sign_in_window_ms` after which each
    /// further attempt at that name waits, 1 s after the next failure and twice as long after
    /// each one more, up to `sign_in_delay_ms_max` (`throttle`).
    pub sign_in_failures_max: usize,
    /// How long failures of a name are remembered.
    pub sign_in_window_ms: u64,
    pub sign_in_delay_ms_max: u64,
    /// Password checks (argon2id, 19 MiB each) running at once, and how long an attempt waits
    /// for one before it is answered 503 `busy`.
    pub sign_in_checks_max: usize,
    pub sign_in_wait_ms: u64,
    /// Sign-in attempts a minute from one client address, and at the node in all.
    pub sign_in_per_address_per_minute_max: usize,
    pub sign_in_per_minute_max: usize,
    /// Entries kept in each table of names and addresses the sign-in bounds count.
    pub sign_in_tracked_max: usize,
    /// Requests a minute from one client address to the API that carry no credential, or whose
    /// credential was refused (401); past it such requests are answered 429 at once.
    pub unauthenticated_per_address_per_minute_max: usize,
    /// Client addresses whose requests without a credential are counted at once.
    pub unauthenticated_tracked_max: usize,
    /// Longest reason a peer's node may give for refusing an envelope, as it is kept and shown.
    pub peer_reason_chars_max: usize,
    /// The longest the node's timer loop sleeps without looking at the core's timers again.
    pub clock_sleep_ms_max: u64,
    /// How often the system's wall clock is compared with the node's own.
    pub clock_watch_ms: u64,
    /// How often the node exchanges roster versions and proposals with each peer, besides at once
    /// after a change of its own.
    pub roster_sync_ms: u64,
    /// Largest roster version or proposal the node takes from a peer or an operator, and largest
    /// exchange of them it reads.
    pub roster_version_bytes_max: usize,
    /// Most signatures a roster version may carry.
    pub roster_signatures_max: usize,
    /// Most proposed roster versions the node keeps at once; past it a new proposal is refused.
    pub roster_proposals_max: usize,
    /// Most of them one member may have proposed: no member fills the others' room.
    pub roster_proposals_per_member_max: usize,
    /// Most roster versions sent in one answer to a peer catching up; it asks again for the rest.
    pub roster_versions_per_exchange_max: usize,
    /// How long after a version that rotates a member's TLS key took effect here the member's
    /// retired TLS key is still admitted: its node moves to the new key once every peer holds the
    /// version, and is reached and admitted meanwhile.
    pub rotation_overlap_ms: u64,
    /// How long the lease of an active/standby pair runs unless renewed: after the active node
    /// dies, the standby takes over at most this long (plus `standby_poll_ms` and its own start)
    /// later, and a paused former active commits nothing past it.
    pub lease_ms: u64,
    /// How often the active node of a pair renews its lease.
    pub lease_renew_ms: u64,
    /// How often the standby node of a pair tries to take the lease.
    pub standby_poll_ms: u64,
    /// The bound on an active/standby pair's take-over: how long after the active node dies the
    /// standby is active. It must leave at least a second for the node's start after
    /// `lease_ms` and `standby_poll_ms`, the longest the standby can take to hold the lease.
    pub takeover_ms: u64,
    /// How long a node starting on a store restored from a backup waits for every peer to say
    /// what it holds of their lines (`fed::restore`) before it refuses to start.
    pub restore_check_ms: u64,
    /// Envelopes of one chain a node hands a restored peer in one answer (`POST /fed/v1/chain`),
    /// and asks for in one request when it catches up itself.
    pub restore_page_len: u64,
    /// Bytes of envelopes (and contents) in one such answer, beyond its first envelope; under the
    /// 4 MiB a federation reply may hold once encoded.
    pub restore_page_bytes_max: usize,
}

impl RuntimeLimits {
    /// The engine's share of these limits.
    pub fn engine(&self) -> adi_engine::EngineLimits {
        adi_engine::EngineLimits {
            held_envelopes_max: self.held_envelopes_max,
            held_per_sender_max: self.held_per_sender_max,
            held_epochs_ahead_max: self.held_epochs_ahead_max,
            held_expiry_ms: self.held_expiry_ms,
            retry_delay_ms_min: self.retry_delay_ms_min,
            retry_delay_ms_max: self.retry_delay_ms_max,
            key_package_pool_len: self.key_package_pool_len,
            key_package_claims_per_hour_max: self.key_package_claims_per_hour_max,
            key_package_claimed_ttl_ms: self.key_package_claimed_ttl_ms,
            peer_reason_chars_max: self.peer_reason_chars_max,
        }
    }
}

impl Default for RuntimeLimits {
    fn default() -> Self {
        let engine = adi_engine::EngineLimits::default();
        RuntimeLimits {
            api_body_bytes_max: 128 * 1024,
            batch_bytes_max: 8 * 1024 * 1024,
            retry_delay_ms_min: engine.retry_delay_ms_min,
            retry_delay_ms_max: engine.retry_delay_ms_max,
            connect_timeout_ms: 3_000,
            request_timeout_ms: 15_000,
            checkpoint_skew_ms: 300_000,
            checkpoint_heads_slack_ms: 30_000,
            checkpoint_heads_scan_max: 4_096,
            list_len_max: 10_000,
            messages_page_len: 100,
            search_scan_max: 20_000,
            search_text_chars_max: 200,
            report_window_ms_max: 400 * 24 * 3_600_000,
            report_default_window_ms: 30 * 24 * 3_600_000,
            metrics_scrape_min_ms: 1_000,
            retention_interval_ms: 3_600_000,
            retention_batch_max: 1_000,
            archive_confirm_window_ms: 24 * 3_600_000,
            upload_keep_ms: 24 * 3_600_000,
            send_batch_bytes_max: 256 * 1024,
            attachment_bytes_per_day_max: 1024 * 1024 * 1024,
            preview_pages_max: 100,
            preview_width_px: 1_000,
            preview_pixels_max: 4_000_000,
            preview_seconds_max: 20,
            preview_memory_bytes_max: 1024 * 1024 * 1024,
            preview_concurrency_max: 1,
            alarms_page_len: 500,
            evidence_page_len: 500,
            drafts_page_len: 1_000,
            events_retained_max: 100_000,
            key_package_pool_len: engine.key_package_pool_len,
            held_envelopes_max: engine.held_envelopes_max,
            held_per_sender_max: engine.held_per_sender_max,
            held_epochs_ahead_max: engine.held_epochs_ahead_max,
            held_expiry_ms: engine.held_expiry_ms,
            key_package_claims_per_hour_max: engine.key_package_claims_per_hour_max,
            key_package_claimed_ttl_ms: engine.key_package_claimed_ttl_ms,
            storage_probe_ms: 1_000,
            handshake_timeout_ms: 10_000,
            accept_retry_ms: 50,
            http_connections_max: 512,
            http_connections_per_address_max: 256,
            federation_connections_per_address_max: 64,
            http_header_timeout_ms: 10_000,
            http_body_timeout_ms: 30_000,
            files_reserved: 128,
            events_read_len_max: 500,
            events_poll_ms: 5_000,
            events_keepalive_ms: 15_000,
            session_idle_ms: 30 * 60 * 1000,
            session_max_ms: 12 * 60 * 60 * 1000,
            session_watch_ms: 24 * 60 * 60 * 1000,
            urgent_watch_ms: 48 * 60 * 60 * 1000,
            sign_in_failures_max: 5,
            sign_in_window_ms: 5 * 60 * 1000,
            sign_in_delay_ms_max: 60_000,
            sign_in_checks_max: 2,
            sign_in_wait_ms: 5_000,
            sign_in_per_address_per_minute_max: 20,
            sign_in_per_minute_max: 120,
            sign_in_tracked_max: 10_000,
            unauthenticated_per_address_per_minute_max: 300,
            unauthenticated_tracked_max: 10_000,
            peer_reason_chars_max: engine.peer_reason_chars_max,
            clock_sleep_ms_max: 60_000,
            clock_watch_ms: 5_000,
            roster_sync_ms: 5_000,
            roster_version_bytes_max: 256 * 1024,
            roster_signatures_max: 256,
            roster_proposals_max: 16,
            roster_proposals_per_member_max: 4,
            roster_versions_per_exchange_max: 64,
            rotation_overlap_ms: 24 * 60 * 60 * 1000,
            lease_ms: 3_000,
            lease_renew_ms: 1_000,
            standby_poll_ms: 250,
            restore_check_ms: 60_000,
            restore_page_len: 256,
            restore_page_bytes_max: 1024 * 1024,
            takeover_ms: 5_000,
        }
    }
}

/// A loaded, checked configuration.
pub struct NodeConfig {
    pub path: PathBuf,
    pub member: MemberCode,
    /// The roster in effect as the configuration gives it: after `roster_versions`, if any; at
    /// start, after the versions the database holds.
    pub roster: Roster,
    /// The roster file's roster: the first version.
    pub first_roster: Roster,
    /// The versions after the first that the configuration names, in order, unchecked.
    pub roster_versions: Vec<adi_wire::files::RosterVersionFile>,
    pub database: PathBuf,
    /// The PostgreSQL database the store is on, when it is not the SQLite file `database`.
    pub postgres: Option<PostgresStore>,
    /// This node as one of an active/standby pair.
    pub pair: Option<PairSection>,
    /// The key in the signing key file. The node starts with it if the roster in force gives it
    /// to this member, or if a rotation the roster put in force is under way (the file beside
    /// it, [`next_key_file`], holds the new key).
    pub signing_key: SigningKey,
    pub signing_key_file: PathBuf,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// Seals message contents at rest; never stored in the database.
    pub master_key: [u8; 32],
    pub default_caveat: String,
    pub api_listen: SocketAddr,
    pub api_tls: bool,
    /// Where the metrics listener binds (`[api] metrics_listen`), if anywhere.
    pub metrics_listen: Option<SocketAddr>,
    pub federation_listen: Vec<SocketAddr>,
    pub limits: Limits,
    pub runtime_limits: RuntimeLimits,
    pub discipline: DisciplineConfig,
    /// Whether a FLASH or crisis message drafted by a duty officer waits for a principal.
    pub release_required: bool,
    /// How often the node checkpoints lines whose log grew, in seconds; 0: only on demand.
    pub checkpoint_interval_s: u64,
    /// How long each class keeps its content once archived (`[retention]`).
    pub retention: RetentionSection,
    /// The program that draws a PDF's pages for the console's preview, in a process of its own;
    /// none (as `load` leaves it), and previews of PDFs are refused. `adi serve` names itself.
    pub previewer: Option<crate::preview::Previewer>,
}

/// A store on PostgreSQL, as the configuration names it.
#[derive(Clone)]
pub struct PostgresStore {
    pub url: String,
    /// From the configuration's password file.
    pub password: Option<String>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").field("url", &self.url).finish_non_exhaustive()
    }
}

/// A configuration error, naming the file and the field.
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}: field `{}`: {}", self.file.display(), self.field, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

fn cerr(file: &Path, field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError { file: file.to_path_buf(), field: field.to_string(), message: message.into() }
}

/// The roster file a node's configuration names (relative paths are the configuration's
/// folder's): the roster this establishment trusts.
pub fn configured_roster(config: &Path) -> Result<PathBuf, ConfigError> {
    let text = std::fs::read_to_string(config).map_err(|e| cerr(config, "", format!("cannot read: {e}")))?;
    let file: ConfigFile = toml::from_str(&text).map_err(|e| cerr(config, "", format!("not a valid config: {e}")))?;
    Ok(config.parent().unwrap_or(Path::new(".")).join(file.roster))
}

/// Reads a file of roster versions (a JSON array, in order) and checks them as the chain after
/// the first version `first`; the roster in effect after the last, and the versions.
pub fn load_roster_versions(
    path: &Path,
    first: &Roster,
) -> Result<(Roster, Vec<adi_wire::files::RosterVersionFile>), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| cerr(path, "", format!("cannot read: {e}")))?;
    let versions: Vec<adi_wire::files::RosterVersionFile> =
        serde_json::from_str(&text).map_err(|e| cerr(path, "", format!("not an array of roster versions: {e}")))?;
    let mut current = adi_core::amendment::check_first(&adi_core::amendment::first(first))
        .map_err(|RosterError { field, message }| cerr(path, &field, message))?;
    for (i, v) in versions.iter().enumerate() {
        current = adi_core::amendment::check_amendment(&current, v)
            .map_err(|RosterError { field, message }| cerr(path, &format!("[{i}].{field}"), message))?;
    }
    Ok((current.roster, versions))
}

/// Reads and checks a roster file.
pub fn load_roster(path: &Path) -> Result<Roster, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| cerr(path, "", format!("cannot read: {e}")))?;
    let file = RosterFile::from_toml(&text).map_err(|e| cerr(path, "", format!("not a valid roster: {e}")))?;
    Roster::from_file(&file).map_err(|RosterError { field, message }| cerr(path, &field, message))
}

/// The file beside `file` that holds its rotated successor until the node moves to it.
pub fn next_key_file(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_os_string();
    name.push(".next");
    PathBuf::from(name)
}

/// The keys a node moves to in a rotation: its new signing key and its new TLS certificate and
/// key, kept in the files beside its key files ([`next_key_file`]) until it has moved.
#[derive(Debug)]
pub struct NextKeys {
    pub signing_key: SigningKey,
    pub cert: rustls::pki_types::CertificateDer<'static>,
    pub key: rustls::pki_types::PrivateKeyDer<'static>,
}

impl Clone for NextKeys {
    fn clone(&self) -> NextKeys {
        NextKeys { signing_key: self.signing_key.clone(), cert: self.cert.clone(), key: self.key.clone_key() }
    }
}

/// A node's key files: its signing key, its TLS certificate and its TLS key.
#[derive(Clone, Debug)]
pub struct KeyFiles {
    pub signing_key: PathBuf,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
}

impl KeyFiles {
    fn all(&self) -> [&Path; 3] {
        [&self.signing_key, &self.tls_cert, &self.tls_key]
    }

    /// The next keys the files beside the key files hold ([`next_key_file`]), if all three are
    /// there.
    pub fn next(&self) -> Result<Option<NextKeys>, ConfigError> {
        if !self.all().iter().all(|f| next_key_file(f).exists()) {
            return Ok(None);
        }
        let signing_key = load_signing_key(&next_key_file(&self.signing_key))?;
        let cert = next_key_file(&self.tls_cert);
        let (cert, key) = crate::tls::load_identity(&cert, &next_key_file(&self.tls_key))
            .map_err(|e| cerr(&cert, "", e.to_string()))?;
        Ok(Some(NextKeys { signing_key, cert, key }))
    }

    /// Writes the next keys beside the key files, readable by their owner only and on disk before
    /// this returns: the signing key, the certificate and the TLS key, PEM-encoded.
    pub fn write_next(&self, signing_key_pem: &str, cert_pem: &str, key_pem: &str) -> anyhow::Result<()> {
        for (file, pem) in self.all().into_iter().zip([signing_key_pem, cert_pem, key_pem]) {
            crate::files::write_private(&next_key_file(file), pem.as_bytes())?;
        }
        self.sync_folders()
    }

    /// Puts the next keys in the key files' place, each by one rename, and on disk before this
    /// returns: the node starts with them from now on. A file moved already is left alone.
    pub fn move_to_next(&self) -> anyhow::Result<()> {
        for file in self.all().into_iter().filter(|f| next_key_file(f).exists()) {
            std::fs::rename(next_key_file(file), file).map_err(|e| {
                anyhow::anyhow!("cannot move {} to {}: {e}", next_key_file(file).display(), file.display())
            })?;
        }
        self.sync_folders()
    }

    fn sync_folders(&self) -> anyhow::Result<()> {
        for file in self.all() {
            let folder = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            std::fs::File::open(folder)
                .and_then(|f| f.sync_all())
                .map_err(|e| anyhow::anyhow!("cannot sync {}: {e}", folder.display()))?;
        }
        Ok(())
    }
}

impl NodeConfig {
    pub fn key_files(&self) -> KeyFiles {
        KeyFiles {
            signing_key: self.signing_key_file.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
        }
    }
}

/// Reads a PKCS#8 PEM signing key.
pub fn load_signing_key(path: &Path) -> Result<SigningKey, ConfigError> {
    let pem = std::fs::read_to_string(path).map_err(|e| cerr(path, "", format!("cannot read: {e}")))?;
    SigningKey::from_pkcs8_pem(&pem).map_err(|_| cerr(path, "", "not an Ed25519 PKCS#8 PEM private key"))
}

/// The environment variable that may hold the master key, in hex.
pub const MASTER_KEY_ENV: &str = "ADI_MASTER_KEY";

/// Reads the master key from `ADI_MASTER_KEY`, or else from the file the config names, which must
/// be readable by its owner only.
fn load_master_key(config: &Path, file: Option<&Path>) -> Result<[u8; 32], ConfigError> {
    let parse = |text: &str, field: &str, at: &Path| {
        let mut key = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut key)
            .map_err(|_| cerr(at, field, "the master key is 32 bytes in hex"))?;
        Ok(key)
    };
    if let Ok(text) = std::env::var(MASTER_KEY_ENV) {
        return parse(&text, MASTER_KEY_ENV, config);
    }
    let Some(file) = file else {
        return Err(cerr(config, "master_key", format!("a master key file, or {MASTER_KEY_ENV}, is required")));
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(file).map_err(|e| cerr(file, "", format!("cannot read: {e}")))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(cerr(file, "", "the master key file must be readable by its owner only (mode 0600)"));
        }
    }
    let text = std::fs::read_to_string(file).map_err(|e| cerr(file, "", format!("cannot read: {e}")))?;
    parse(&text, "", file)
}

/// Reads a secret from a file that only its owner may read.
fn read_private(file: &Path, field: &str) -> Result<String, ConfigError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(file).map_err(|e| cerr(file, field, format!("cannot read: {e}")))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(cerr(file, field, "the file must be readable by its owner only (mode 0600)"));
        }
    }
    std::fs::read_to_string(file).map_err(|e| cerr(file, field, format!("cannot read: {e}")))
}

impl NodeConfig {
    /// Where the store is, as logs and errors name it: the SQLite file, or the PostgreSQL address.
    pub fn store_name(&self) -> String {
        match &self.postgres {
            Some(pg) => adi_store::redacted(&pg.url),
            None => self.database.display().to_string(),
        }
    }

    pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| cerr(path, "", format!("cannot read: {e}")))?;
        let file: ConfigFile = toml::from_str(&text).map_err(|e| cerr(path, "", format!("not a valid config: {e}")))?;
        if file.version != CONFIG_VERSION {
            return Err(cerr(
                path,
                "version",
                format!("unsupported version {}, expected {CONFIG_VERSION}", file.version),
            ));
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let rel = |p: &str| dir.join(p);
        let member = MemberCode::parse(&file.member).map_err(|e| cerr(path, "member", e))?;
        let first_roster = load_roster(&rel(&file.roster))?;
        let (roster, roster_versions) = match &file.roster_versions {
            None => (first_roster.clone(), Vec::new()),
            Some(versions) => load_roster_versions(&rel(versions), &first_roster)?,
        };
        if roster.member(&member).is_none() {
            return Err(cerr(path, "member", format!("{member} is not in the roster {}", file.roster)));
        }
        // Whether it is this member's key in the roster in force is checked as the node starts,
        // on the whole chain: a rotation moves it after the configuration's versions.
        let signing_key = load_signing_key(&rel(&file.signing_key))?;
        let master_key = load_master_key(path, file.master_key.as_deref().map(rel).as_deref())?;
        let postgres = match &file.store {
            None => None,
            Some(store) if store.kind == "sqlite" => None,
            Some(store) if store.kind == "postgres" => {
                let url = store
                    .url
                    .clone()
                    .filter(|u| !u.trim().is_empty())
                    .ok_or_else(|| cerr(path, "store.url", "a store on PostgreSQL needs the database's address"))?;
                let password = match &store.password_file {
                    None => None,
                    Some(f) => {
                        Some(read_private(&rel(f), "store.password_file")?.trim_end_matches(['\n', '\r']).to_string())
                    }
                };
                Some(PostgresStore { url, password })
            }
            Some(store) => {
                return Err(cerr(path, "store.kind", format!("'{}' is no store: sqlite or postgres", store.kind)))
            }
        };
        if let Some(pair) = &file.pair {
            if postgres.is_none() {
                return Err(cerr(
                    path,
                    "pair",
                    "the two nodes of a pair share a store on PostgreSQL ([store] kind = \"postgres\")",
                ));
            }
            if pair.name.trim().is_empty() || pair.name.len() > 64 {
                return Err(cerr(path, "pair.name", "a name of 1 to 64 characters"));
            }
            for (field, url) in
                [("pair.api_url", Some(&pair.api_url)), ("pair.other_api_url", pair.other_api_url.as_ref())]
            {
                if url.is_some_and(|u| origin_of(u).is_none()) {
                    return Err(cerr(path, field, "an http:// or https:// address such as https://10.0.0.2:7300"));
                }
            }
        }
        if postgres.is_none() && file.database.trim().is_empty() {
            return Err(cerr(path, "database", "the embedded store needs its database file"));
        }
        let api_listen: SocketAddr = file
            .api
            .listen
            .parse()
            .map_err(|_| cerr(path, "api.listen", "expected an address such as 127.0.0.1:7300"))?;
        if !file.api.tls && !api_listen.ip().is_loopback() {
            return Err(cerr(path, "api.tls", "the API may be served without TLS only on a loopback address"));
        }
        let metrics_listen = match &file.api.metrics_listen {
            Some(a) => Some(
                a.parse::<SocketAddr>()
                    .map_err(|_| cerr(path, "api.metrics_listen", "expected an address such as 127.0.0.1:9464"))?,
            ),
            None => None,
        };
        if file.federation.listen.is_empty() {
            return Err(cerr(path, "federation.listen", "at least one address is needed"));
        }
        let mut federation_listen = Vec::new();
        for (i, a) in file.federation.listen.iter().enumerate() {
            let addr = a.parse().map_err(|_| {
                cerr(path, &format!("federation.listen[{i}]"), "expected an address such as 127.0.0.1:7100")
            })?;
            federation_listen.push(addr);
        }
        if file.default_caveat.trim().is_empty() {
            return Err(cerr(path, "default_caveat", "must not be empty"));
        }
        let d = &file.discipline;
        let deadlines = match &d.deadlines {
            Some(f) => {
                deadlines_from_file(f).map_err(|(field, m)| cerr(path, &format!("discipline.deadlines.{field}"), m))?
            }
            None => roster.deadlines().cloned().unwrap_or_default(),
        };
        if d.escalation_repeat_s == 0 {
            return Err(cerr(path, "discipline.escalation_repeat_s", "must be at least 1 second"));
        }
        let discipline = DisciplineConfig {
            deadlines,
            escalation_repeat_s: d.escalation_repeat_s,
            alternates: d.alternates.clone(),
            link_test_interval_s: d.link_test_interval_s,
            key_update_interval_s: d.key_update_interval_s,
            key_update_messages: d.key_update_messages.max(1),
            clock_offset_ms_max: d.clock_offset_ms_max,
        };
        let mut limits = Limits::default();
        let mut runtime_limits = RuntimeLimits::default();
        let l = &file.limits;
        let set = |v: Option<usize>, d: &mut usize| {
            if let Some(v) = v {
                *d = v;
            }
        };
        set(l.envelope_bytes_max, &mut limits.envelope_bytes_max);
        set(l.batch_len_max, &mut limits.batch_len_max);
        set(l.body_bytes_max, &mut limits.body_bytes_max);
        set(l.urgent_body_words_max, &mut limits.urgent_body_words_max);
        if let Some(v) = l.decision_deadline_s_max {
            limits.decision_deadline_s_max = v;
        }
        set(l.line_members_max, &mut limits.line_members_max);
        set(l.lines_per_peer_per_day_max, &mut limits.lines_per_peer_per_day_max);
        if let Some(v) = l.peer_bytes_per_day_max {
            limits.peer_bytes_per_day_max = v.max(1);
        }
        set(l.attachments_per_message_max, &mut limits.attachments_per_message_max);
        if let Some(v) = l.attachment_bytes_max {
            limits.attachment_bytes_max = v.max(1);
        }
        set(l.api_body_bytes_max, &mut runtime_limits.api_body_bytes_max);
        if let Some(v) = l.retry_delay_ms_min {
            runtime_limits.retry_delay_ms_min = v.max(1);
        }
        if let Some(v) = l.retry_delay_ms_max {
            runtime_limits.retry_delay_ms_max = v.max(runtime_limits.retry_delay_ms_min);
        }
        if let Some(v) = l.events_retained_max {
            runtime_limits.events_retained_max = v.max(1);
        }
        if let Some(v) = l.held_envelopes_max {
            runtime_limits.held_envelopes_max = v;
        }
        if let Some(v) = l.held_per_sender_max {
            runtime_limits.held_per_sender_max = v;
        }
        if let Some(v) = l.held_epochs_ahead_max {
            runtime_limits.held_epochs_ahead_max = v;
        }
        if let Some(v) = l.held_expiry_ms {
            runtime_limits.held_expiry_ms = v.max(1);
        }
        if let Some(v) = l.key_package_claims_per_hour_max {
            runtime_limits.key_package_claims_per_hour_max = v;
        }
        if let Some(v) = l.key_package_claimed_ttl_ms {
            runtime_limits.key_package_claimed_ttl_ms = v;
        }
        if let Some(v) = l.connect_timeout_ms {
            runtime_limits.connect_timeout_ms = v;
        }
        if let Some(v) = l.request_timeout_ms {
            runtime_limits.request_timeout_ms = v;
        }
        if let Some(v) = l.checkpoint_skew_ms {
            runtime_limits.checkpoint_skew_ms = v;
        }
        if let Some(v) = l.checkpoint_heads_slack_ms {
            runtime_limits.checkpoint_heads_slack_ms = v;
        }
        if let Some(v) = l.checkpoint_heads_scan_max {
            runtime_limits.checkpoint_heads_scan_max = v.max(1);
        }
        if let Some(v) = l.storage_probe_ms {
            runtime_limits.storage_probe_ms = v.max(1);
        }
        if let Some(v) = l.handshake_timeout_ms {
            runtime_limits.handshake_timeout_ms = v.max(1);
        }
        if let Some(v) = l.accept_retry_ms {
            runtime_limits.accept_retry_ms = v.max(1);
        }
        if let Some(v) = l.http_connections_max {
            runtime_limits.http_connections_max = v.max(1);
        }
        if let Some(v) = l.http_connections_per_address_max {
            runtime_limits.http_connections_per_address_max = v.max(1);
        }
        if let Some(v) = l.federation_connections_per_address_max {
            runtime_limits.federation_connections_per_address_max = v.max(1);
        }
        if let Some(v) = l.http_header_timeout_ms {
            runtime_limits.http_header_timeout_ms = v.max(1);
        }
        if let Some(v) = l.http_body_timeout_ms {
            runtime_limits.http_body_timeout_ms = v.max(1);
        }
        if let Some(v) = l.files_reserved {
            runtime_limits.files_reserved = v;
        }
        if let Some(v) = l.events_read_len_max {
            runtime_limits.events_read_len_max = v.max(1);
        }
        if let Some(v) = l.list_len_max {
            runtime_limits.list_len_max = v.max(1);
        }
        if let Some(v) = l.messages_page_len {
            runtime_limits.messages_page_len = v.max(1);
        }
        if let Some(v) = l.search_scan_max {
            runtime_limits.search_scan_max = v.max(1);
        }
        if let Some(v) = l.search_text_chars_max {
            runtime_limits.search_text_chars_max = v.max(1);
        }
        if let Some(v) = l.report_window_ms_max {
            runtime_limits.report_window_ms_max = v.max(1);
        }
        if let Some(v) = l.report_default_window_ms {
            runtime_limits.report_default_window_ms = v.max(1);
        }
        if let Some(v) = l.metrics_scrape_min_ms {
            runtime_limits.metrics_scrape_min_ms = v;
        }
        if let Some(v) = l.retention_interval_ms {
            runtime_limits.retention_interval_ms = v.max(1);
        }
        if let Some(v) = l.retention_batch_max {
            runtime_limits.retention_batch_max = v.max(1);
        }
        if let Some(v) = l.archive_confirm_window_ms {
            runtime_limits.archive_confirm_window_ms = v.max(1);
        }
        if let Some(v) = l.upload_keep_ms {
            runtime_limits.upload_keep_ms = v.max(1);
        }
        if let Some(v) = l.send_batch_bytes_max {
            runtime_limits.send_batch_bytes_max = v.max(1);
        }
        if let Some(v) = l.attachment_bytes_per_day_max {
            runtime_limits.attachment_bytes_per_day_max = v;
        }
        if let Some(v) = l.preview_pages_max {
            runtime_limits.preview_pages_max = v;
        }
        if let Some(v) = l.preview_width_px {
            runtime_limits.preview_width_px = v.clamp(1, 65_535);
        }
        if let Some(v) = l.preview_pixels_max {
            runtime_limits.preview_pixels_max = v.max(1);
        }
        if let Some(v) = l.preview_seconds_max {
            runtime_limits.preview_seconds_max = v.max(1);
        }
        if let Some(v) = l.preview_memory_bytes_max {
            runtime_limits.preview_memory_bytes_max = v.max(64 * 1024 * 1024);
        }
        if let Some(v) = l.preview_concurrency_max {
            runtime_limits.preview_concurrency_max = v.max(1);
        }
        if let Some(v) = l.alarms_page_len {
            runtime_limits.alarms_page_len = v.max(1);
        }
        if let Some(v) = l.evidence_page_len {
            runtime_limits.evidence_page_len = v.max(1);
        }
        if let Some(v) = l.drafts_page_len {
            runtime_limits.drafts_page_len = v.max(1);
        }
        if let Some(v) = l.events_poll_ms {
            runtime_limits.events_poll_ms = v.max(1);
        }
        if let Some(v) = l.events_keepalive_ms {
            runtime_limits.events_keepalive_ms = v.max(1);
        }
        if let Some(v) = l.session_idle_ms {
            runtime_limits.session_idle_ms = v.max(1);
        }
        if let Some(v) = l.session_max_ms {
            runtime_limits.session_max_ms = v.max(1);
        }
        if let Some(v) = l.session_watch_ms {
            runtime_limits.session_watch_ms = v.max(1);
        }
        if let Some(v) = l.urgent_watch_ms {
            runtime_limits.urgent_watch_ms = v.max(1);
        }
        if let Some(v) = l.sign_in_failures_max {
            runtime_limits.sign_in_failures_max = v.max(1);
        }
        if let Some(v) = l.sign_in_window_ms {
            runtime_limits.sign_in_window_ms = v.max(1);
        }
        if let Some(v) = l.sign_in_delay_ms_max {
            runtime_limits.sign_in_delay_ms_max = v.max(1);
        }
        if let Some(v) = l.sign_in_checks_max {
            runtime_limits.sign_in_checks_max = v.max(1);
        }
        if let Some(v) = l.sign_in_wait_ms {
            runtime_limits.sign_in_wait_ms = v.max(1);
        }
        if let Some(v) = l.sign_in_per_address_per_minute_max {
            runtime_limits.sign_in_per_address_per_minute_max = v.max(1);
        }
        if let Some(v) = l.sign_in_per_minute_max {
            runtime_limits.sign_in_per_minute_max = v.max(1);
        }
        if let Some(v) = l.sign_in_tracked_max {
            runtime_limits.sign_in_tracked_max = v.max(1);
        }
        if let Some(v) = l.unauthenticated_per_address_per_minute_max {
            runtime_limits.unauthenticated_per_address_per_minute_max = v.max(1);
        }
        if let Some(v) = l.unauthenticated_tracked_max {
            runtime_limits.unauthenticated_tracked_max = v.max(1);
        }
        if let Some(v) = l.peer_reason_chars_max {
            runtime_limits.peer_reason_chars_max = v.max(1);
        }
        if let Some(v) = l.clock_sleep_ms_max {
            runtime_limits.clock_sleep_ms_max = v.max(1);
        }
        if let Some(v) = l.clock_watch_ms {
            runtime_limits.clock_watch_ms = v.max(1);
        }
        if let Some(v) = l.roster_sync_ms {
            runtime_limits.roster_sync_ms = v.max(1);
        }
        if let Some(v) = l.roster_version_bytes_max {
            runtime_limits.roster_version_bytes_max = v.max(1);
        }
        if let Some(v) = l.roster_signatures_max {
            runtime_limits.roster_signatures_max = v.max(1);
        }
        if let Some(v) = l.roster_proposals_max {
            runtime_limits.roster_proposals_max = v.max(1);
        }
        if let Some(v) = l.roster_proposals_per_member_max {
            runtime_limits.roster_proposals_per_member_max = v.max(1);
        }
        if let Some(v) = l.roster_versions_per_exchange_max {
            runtime_limits.roster_versions_per_exchange_max = v.max(1);
        }
        if let Some(v) = l.rotation_overlap_ms {
            runtime_limits.rotation_overlap_ms = v;
        }
        if let Some(v) = l.lease_ms {
            runtime_limits.lease_ms = v.max(1);
        }
        if let Some(v) = l.lease_renew_ms {
            runtime_limits.lease_renew_ms = v.max(1);
        }
        if let Some(v) = l.standby_poll_ms {
            runtime_limits.standby_poll_ms = v.max(1);
        }
        if let Some(v) = l.restore_check_ms {
            runtime_limits.restore_check_ms = v;
        }
        if let Some(v) = l.restore_page_len {
            runtime_limits.restore_page_len = v.max(1);
        }
        if let Some(v) = l.restore_page_bytes_max {
            runtime_limits.restore_page_bytes_max = v;
        }
        if let Some(v) = l.takeover_ms {
            runtime_limits.takeover_ms = v;
        }
        let holding_ms = runtime_limits.lease_ms.saturating_add(runtime_limits.standby_poll_ms);
        if holding_ms.saturating_add(1_000) > runtime_limits.takeover_ms {
            return Err(cerr(
                path,
                "limits.takeover_ms",
                format!(
                    "a take-over within {} ms leaves the node no second to start after the lease ({} ms) and a poll ({} ms)",
                    runtime_limits.takeover_ms, runtime_limits.lease_ms, runtime_limits.standby_poll_ms
                ),
            ));
        }
        if runtime_limits.lease_renew_ms >= runtime_limits.lease_ms {
            return Err(cerr(path, "limits.lease_renew_ms", "the lease must be renewed more often than it runs out"));
        }
        Ok(NodeConfig {
            path: path.to_path_buf(),
            member,
            roster,
            first_roster,
            roster_versions,
            database: rel(&file.database),
            postgres,
            pair: file.pair.clone(),
            signing_key,
            signing_key_file: rel(&file.signing_key),
            tls_cert: rel(&file.tls_cert),
            tls_key: rel(&file.tls_key),
            master_key,
            default_caveat: file.default_caveat,
            api_listen,
            api_tls: file.api.tls,
            metrics_listen,
            federation_listen,
            limits,
            runtime_limits,
            discipline,
            release_required: file.discipline.release_required,
            checkpoint_interval_s: file.discipline.checkpoint_interval_s,
            retention: file.retention.clone(),
            previewer: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::origin_of;

    #[test]
    fn an_origin_is_the_scheme_host_and_port_of_an_address_and_nothing_else_passes() {
        assert_eq!(origin_of("https://10.0.0.2:7300").as_deref(), Some("https://10.0.0.2:7300"));
        assert_eq!(
            origin_of("http://cn-b.mod.example:7300/console?x=1").as_deref(),
            Some("http://cn-b.mod.example:7300")
        );
        assert_eq!(origin_of("http://[::1]:7300/").as_deref(), Some("http://[::1]:7300"));
        // What would end a policy's list, or start another directive, is refused.
        for bad in
            ["ftp://10.0.0.2", "http://", "http://a b:7300", "http://a;script-src *", "https://x,y", "10.0.0.2:7300"]
        {
            assert_eq!(origin_of(bad), None, "{bad}");
        }
    }
}
