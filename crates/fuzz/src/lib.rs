//! Fuzz targets for every decoder of bytes that reach a node from outside.
//!
//! Each target is a function from arbitrary bytes to nothing that must never panic. Where a
//! decoder accepts its input, the target also asserts what the format promises: a decoded value
//! encodes back to the bytes it came from where the format has one encoding, an accepted envelope
//! is exactly the bytes that arrived, a KeyPackage is taken once, an accepted line set-up leaves
//! the line held, a refused request is answered in the API's error shape. The same functions run
//! under cargo-fuzz (`fuzz/`, nightly Rust) and in the corpus replay on stable
//! (`tests/corpus.rs`), which replays `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/`
//! and then mutates those inputs for a bounded, seeded number of executions.
//!
//! Fixtures that are expensive to build (cores holding MLS groups, a running node) are built once
//! per process. The core targets start every execution from the same saved state, so an input
//! behaves the same whatever ran before it; the node targets share one running node.

#![forbid(unsafe_code)]

mod formats;
mod hotline;
mod node;
pub mod seeds;

pub use formats::{batch, bundle, checkpoint, envelope, key_package, payload, peer_json, roster, signed_content};
pub use hotline::{line_content, line_setup, mls_message, receive, LIVE_WELCOME};
pub use node::{api, federation, stop_node};

/// A named fuzz target.
#[derive(Clone, Copy)]
pub struct Target {
    /// The target's name: its cargo-fuzz binary, and its folders under `fuzz/corpus/` and
    /// `fuzz/regressions/`.
    pub name: &'static str,
    pub run: fn(&[u8]),
}

/// Every target, in the order the replay runs them.
pub const TARGETS: [Target; 15] = [
    Target { name: "envelope", run: envelope },
    Target { name: "batch", run: batch },
    Target { name: "peer_json", run: peer_json },
    Target { name: "payload", run: payload },
    Target { name: "signed_content", run: signed_content },
    Target { name: "checkpoint", run: checkpoint },
    Target { name: "bundle", run: bundle },
    Target { name: "key_package", run: key_package },
    Target { name: "roster", run: roster },
    Target { name: "receive", run: receive },
    Target { name: "line_setup", run: line_setup },
    Target { name: "mls_message", run: mls_message },
    Target { name: "line_content", run: line_content },
    Target { name: "api", run: api },
    Target { name: "federation", run: federation },
];

/// The target of this name.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().copied().find(|t| t.name == name)
}
