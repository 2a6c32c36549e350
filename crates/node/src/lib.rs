//! The node runtime.
//!
//! A tokio process around the sans-IO core, in layers, each of which imports only those below it:
//!
//! - leaves: the node [`config`], the runtime's [`clock`], the bounds on the [`conns`] each
//!   listener holds and on sign-in attempts ([`throttle`]), [`files`] kept private, and the
//!   node's pinned [`tls`];
//! - [`state`]: what every task of a running node shares ([`NodeState`]), the store opened, and
//!   the refuse-writes state after a failed commit, with its own error;
//! - [`error`]: the error every HTTP answer of the node carries, and [`driver`]: the tokio driver
//!   of the engine (commits, held envelopes, the clock, the storage probe); [`record`]: the node's
//!   own log checked against its checkpoints, and export bundles;
//! - [`fed`]: the federation over pinned mutual TLS: its listener, the links to each peer and the
//!   checkpoints exchanged with them;
//! - [`http`]: the operator API (JSON over HTTP) and the console page;
//! - [`start`]: [`Node::start`] wires it all together.
//!
//! Local [`setup`] (keys, cards, rosters, configs) and the API [`client`] serve the `adi` command;
//! the [`relay`] cuts links for `adi bench` and the tests.

#![forbid(unsafe_code)]

pub mod client;
pub mod clock;
pub mod config;
pub mod conns;
pub mod documents;
pub mod driver;
pub mod error;
pub mod fed;
pub mod files;
pub mod http;
pub mod metrics;
pub mod monitor;
pub mod pair;
pub mod preview;
pub mod record;
pub mod relay;
pub mod report;
pub mod retention;
pub mod setup;
pub mod start;
pub mod state;
pub mod throttle;
pub mod tls;

pub use config::NodeConfig;
pub use start::Node;
pub use state::NodeState;
