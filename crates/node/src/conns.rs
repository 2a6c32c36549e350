//! The connections a listener takes: at most so many at once, at most so many from one client
//! address, so that nobody who can reach a port (a member's node or anyone off the roster) can
//! take the node's open files from its database, its links or the other listeners.
//!
//! At start the node raises its open-file limit to the most the system allows it, keeps
//! `files_reserved` of them for everything that is not a listener's connection, and shares the
//! rest among its listeners ([`per_listener`]). A connection over a bound is closed as soon as it
//! is accepted, so that it holds no descriptor: the kernel's backlog never fills with callers
//! nobody answers, and the node goes on answering everyone else.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::config::RuntimeLimits;

/// The address a request's connection came from, which the listener attaches to each request.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub IpAddr);

/// Raises the soft open-file limit to the hard one; returns the soft limit in force.
pub fn raise_open_files() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let now = getrlimit(Resource::Nofile);
    let (soft, hard) = (now.current, now.maximum);
    if soft != hard {
        let raised = rustix::process::Rlimit { current: hard, maximum: hard };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// How many connections each of `listeners` may hold: `http_connections_max`, or fewer when the
/// open-file limit less `files_reserved`, shared among them, allows fewer (at least one each).
pub fn per_listener(limits: &RuntimeLimits, open_files: u64, listeners: usize) -> usize {
    let spare = open_files.saturating_sub(limits.files_reserved) / listeners.max(1) as u64;
    limits.http_connections_max.min(usize::try_from(spare).unwrap_or(usize::MAX)).max(1)
}

/// The connections one listener holds, in all and by client address.
pub struct Admission {
    max: usize,
    per_address_max: usize,
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    total: usize,
    /// Only addresses with a connection open: at most `max` entries.
    by_address: HashMap<IpAddr, usize>,
    /// Connections closed at once for being over a bound, since start.
    refused: u64,
}

impl Admission {
    pub fn new(max: usize, per_address_max: usize) -> Arc<Admission> {
        Arc::new(Admission { max, per_address_max, held: Mutex::new(Held::default()) })
    }

    /// A place for a connection from `address`, held until the [`Slot`] is dropped; `None` when
    /// the listener or the address holds its most.
    pub fn admit(self: &Arc<Admission>, address: IpAddr) -> Option<Slot> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let mine = held.by_address.get(&address).copied().unwrap_or(0);
        if held.total >= self.max || mine >= self.per_address_max {
            held.refused += 1;
            let refused = held.refused;
            drop(held);
            // One line per 1,000, so that a flood does not flood the log too.
            if refused % 1_000 == 1 {
                tracing::warn!(
                    remote = %address,
                    refused,
                    max = self.max,
                    per_address_max = self.per_address_max,
                    "connection closed: over http_connections_max or http_connections_per_address_max"
                );
            }
            return None;
        }
        held.total += 1;
        *held.by_address.entry(address).or_default() += 1;
        Some(Slot { admission: self.clone(), address })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).total
    }
}

/// A connection's place on its listener.
pub struct Slot {
    admission: Arc<Admission>,
    address: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.admission.held.lock().unwrap_or_else(|p| p.into_inner());
        held.total = held.total.saturating_sub(1);
        if let Some(n) = held.by_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                held.by_address.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_holds_its_most_in_all_and_by_address_and_frees_places_as_connections_end() {
        let a = Admission::new(3, 2);
        let (one, two) = ("127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap());
        let first = a.admit(one).expect("room");
        let second = a.admit(one).expect("room");
        assert!(a.admit(one).is_none(), "two from one address at most");
        let third = a.admit(two).expect("another address");
        assert!(a.admit(two).is_none(), "three in all at most");
        assert_eq!(a.open(), 3);
        drop(first);
        assert!(a.admit(one).is_some(), "a place freed");
        drop((second, third));
        assert_eq!(a.open(), 0);
        assert!(a.held.lock().unwrap().by_address.is_empty(), "no address is kept without a connection");
    }

    #[test]
    fn the_open_file_limit_less_the_reserve_is_shared_among_the_listeners() {
        let limits = RuntimeLimits::default();
        assert_eq!(per_listener(&limits, 1_024, 2), (1_024 - 128) / 2);
        assert_eq!(per_listener(&limits, 1 << 20, 2), limits.http_connections_max);
        assert_eq!(per_listener(&limits, 100, 2), 1);
    }
}
