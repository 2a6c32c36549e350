//! The simulated network between nodes: latency with jitter (so reordering), loss, duplication,
//! and partitions of whole nodes or of single links, in one direction or both.

use std::collections::BTreeMap;

use crate::rng::Rng;

/// How the network misbehaves, before any partition.
#[derive(Clone, Debug)]
pub struct NetConfig {
    pub latency_ms_min: u64,
    pub latency_ms_max: u64,
    /// Chance that a message is lost.
    pub loss: f64,
    /// Chance that a message arrives twice (a resend the other end did not ask for).
    pub duplicate: f64,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig { latency_ms_min: 2, latency_ms_max: 250, loss: 0.02, duplicate: 0.02 }
    }
}

#[derive(Debug, Default)]
pub struct Net {
    pub config: NetConfig,
    /// Nodes cut off from every other node, until a time.
    isolated: BTreeMap<usize, u64>,
    /// Directed links cut, until a time.
    cut: BTreeMap<(usize, usize), u64>,
}

impl Net {
    pub fn new(config: NetConfig) -> Net {
        Net { config, ..Net::default() }
    }

    pub fn isolate(&mut self, node: usize, until: u64) {
        let e = self.isolated.entry(node).or_insert(until);
        *e = (*e).max(until);
    }

    pub fn cut(&mut self, from: usize, to: usize, until: u64) {
        let e = self.cut.entry((from, to)).or_insert(until);
        *e = (*e).max(until);
    }

    /// Ends every partition.
    pub fn heal(&mut self) {
        self.isolated.clear();
        self.cut.clear();
    }

    /// Whether a message from `from` can reach `to` at `now`.
    pub fn open(&self, from: usize, to: usize, now: u64) -> bool {
        let isolated = |n: usize| self.isolated.get(&n).is_some_and(|until| now < *until);
        !isolated(from) && !isolated(to) && self.cut.get(&(from, to)).is_none_or(|until| now >= *until)
    }

    /// When each copy of a message sent now arrives: none when lost, two when duplicated.
    pub fn arrivals(&self, rng: &mut Rng, from: usize, to: usize, now: u64) -> Vec<u64> {
        if !self.open(from, to, now) || rng.chance(self.config.loss) {
            return Vec::new();
        }
        let mut out = vec![now + rng.range(self.config.latency_ms_min, self.config.latency_ms_max)];
        if rng.chance(self.config.duplicate) {
            out.push(now + rng.range(self.config.latency_ms_min, self.config.latency_ms_max * 4));
        }
        out
    }
}
