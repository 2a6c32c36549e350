//! The federation: how a node talks with its peers' nodes over pinned mutual TLS ([`crate::tls`]). The
//! [`listener`] takes batches of envelopes, KeyPackage claims and checkpoint offers from peers;
//! the [`links`] drain the durable outbox towards each peer and make the node's single requests
//! of theirs; [`checkpoints`] are offered to a line's other members to countersign, and theirs
//! answered; [`roster`] exchanges roster versions and proposals with every peer and puts a
//! version in force when it meets its rule; [`rotation`] moves this member to new signing and TLS
//! keys while its lines run.

pub mod checkpoints;
pub mod links;
pub mod listener;
pub mod restore;
pub mod roster;
pub mod rotation;

/// The federation path for envelope batches.
pub const BATCH_PATH: &str = "/fed/v1/envelopes";
/// The federation path where a peer claims one of this node's one-time KeyPackages.
pub const KEY_PACKAGE_PATH: &str = "/fed/v1/key-packages/claim";
/// The federation path where a peer hands this node its checkpoint of a line to countersign.
pub const CHECKPOINT_PATH: &str = "/fed/v1/checkpoints";
/// The federation path where members' nodes exchange roster versions and proposals.
pub const ROSTER_PATH: &str = "/fed/v1/roster";
/// Where a peer's node says what it holds of each chain of the lines it shares with the asker
/// (`fed::restore`).
pub const HEADS_PATH: &str = "/fed/v1/heads";
/// Where a restored peer's node fetches, page by page, the envelopes of its own chain of a line
/// (with their contents) and of this member's (`fed::restore`).
pub const CHAIN_PATH: &str = "/fed/v1/chain";
