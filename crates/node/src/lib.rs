//! The node runtime.
//!
//! A tokio process around the sans-IO core: the operator [`api`] (JSON over HTTP), the
//! [`federation`] listener and links over pinned mutual [`tls`], the node [`config`], and the
//! [`node`] that wires them to the store. Local [`setup`] (keys, cards, rosters, configs) and the
//! API [`client`] serve the `adi` command; the [`relay`] cuts links for `adi bench` and the tests.

#![forbid(unsafe_code)]

pub mod api;
pub mod client;
pub mod config;
pub mod console;
pub mod decisions_api;
pub mod discipline_api;
pub mod federation;
pub mod forms_api;
pub mod node;
pub mod record;
pub mod relay;
pub mod setup;
pub mod tls;
pub mod translations_api;

pub use config::NodeConfig;
pub use node::{Node, NodeState};
