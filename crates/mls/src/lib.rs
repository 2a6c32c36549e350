//! ADI's MLS profile (RFC 9420), on openmls.
//!
//! One MLS group per line, identified by the line id. The ciphersuite is fixed
//! ([`CIPHERSUITE`]). A member's credential is a basic credential holding its member code, and its
//! MLS signature key is its roster signing key: [`check_credential`] refuses any KeyPackage,
//! Welcome, update or commit whose credential does not match the roster, and any leaf change that
//! would give a member another member's identity. Only a line's home member commits
//! ([`LineMember::create_line`], [`LineMember::add`], [`LineMember::remove`],
//! [`LineMember::commit_proposals`]); the others send proposals ([`LineMember::propose_update`]).
//! [`LineMember::process`] reads a message only as the [`Claim`] of the envelope that carried it
//! says: from the member who signed the envelope, at the epoch it names.
//! Both the create and the join configuration keep [`MlsConfig::past_epochs_max`] past epochs, so
//! a message that crosses a commit still decrypts; a message from a future epoch is buffered, up to
//! [`MlsConfig::future_buffer_len_max`], until its commit arrives.
//!
//! The whole state of a member (every group, its own KeyPackages) lives in one in-memory
//! provider; [`LineMember::snapshot`] serialises it for the node to seal and store, and
//! [`LineMember::restore`] takes it back.

#![forbid(unsafe_code)]

use std::collections::{HashMap, HashSet, VecDeque};

use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls::treesync::LeafNodeParameters;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use openmls_traits::storage::StorageProvider as _;
use thiserror::Error;

/// A checked KeyPackage, as [`check_key_package`] returns it.
pub use openmls::prelude::KeyPackage;

/// MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, the only ciphersuite ADI speaks.
pub const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// Limits and windows of the MLS profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MlsConfig {
    /// Past epochs whose secrets are kept so that messages crossing a commit still decrypt. Set
    /// in both the create and the join configuration.
    pub past_epochs_max: usize,
    /// Messages from future epochs held per line until their commit arrives.
    pub future_buffer_len_max: usize,
    /// How far out of order a sender's messages may arrive within one epoch.
    pub out_of_order_tolerance: u32,
    /// How many messages of one sender may be skipped within one epoch.
    pub forward_distance_max: u32,
    /// Application messages kept, decrypted, after a member carried them in its own envelope
    /// under another member's name (decrypting spent their keys): each is read from here when its
    /// real sender's envelope brings it, so that the rewrapping cannot make it unreadable.
    pub rewrapped_len_max: usize,
}

impl Default for MlsConfig {
    fn default() -> Self {
        // Precedence reorders a sender's envelopes (a FLASH overtakes a queued backlog), so the
        // out-of-order window must cover the longest backlog a link is expected to hold; and
        // with a key update every 1,000 envelopes, 16 past epochs keep a backlog of about
        // 16,000 messages readable after the commits that overtook it.
        MlsConfig {
            past_epochs_max: 16,
            future_buffer_len_max: 256,
            out_of_order_tolerance: 10_000,
            forward_distance_max: 100_000,
            rewrapped_len_max: 64,
        }
    }
}

/// Why an MLS operation failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MlsError {
    #[error("malformed MLS message: {0}")]
    Malformed(String),
    #[error("credential refused: {0}")]
    Credential(String),
    #[error("this member holds no group for line {0}")]
    NoGroup(String),
    #[error("only the line's home member commits")]
    NotHome,
    /// The MLS message is not of the epoch its envelope names.
    #[error("the envelope names epoch {claimed} but carries an MLS message of epoch {actual}")]
    EpochMismatch { claimed: u64, actual: u64 },
    /// The MLS message's sender is not the member that signed its envelope.
    #[error("the MLS sender {actual} is not the envelope's sender {claimed}")]
    SenderMismatch { claimed: String, actual: String },
    /// A leaf change (an update proposal, a commit's update path) that does not keep its
    /// member's identity and roster key.
    #[error("leaf refused: {0}")]
    Leaf(String),
    /// A commit that adds a member to a direct line.
    #[error("a direct line keeps its two members: a commit may not add one")]
    DirectLine,
    #[error("proposal refused: {0}")]
    Proposal(String),
    #[error("KeyPackage refused: {0}")]
    KeyPackage(String),
    #[error("the message is from epoch {epoch}, older than the {window} past epochs kept (current {current})")]
    TooOld { epoch: u64, current: u64, window: usize },
    #[error(
        "a proposal from epoch {epoch} crossed a commit (current {current}): a proposal is valid only in its epoch"
    )]
    StaleProposal { epoch: u64, current: u64 },
    /// A commit names a proposal this member has not received yet (it travels on another
    /// member's link): the commit is read once the proposal arrives; nothing was consumed.
    #[error("the commit names a proposal that has not arrived here yet")]
    MissingProposal,
    #[error("the future-epoch buffer of this line is full ({0} messages)")]
    BufferFull(usize),
    #[error("cannot decrypt: {0}")]
    Decrypt(String),
    #[error("MLS failure: {0}")]
    Library(String),
}

fn lib<E: std::fmt::Display>(e: E) -> MlsError {
    MlsError::Library(e.to_string())
}

/// Looks up a member's roster signing key (Ed25519, 32 bytes) by member code.
pub trait RosterKeys {
    fn signing_key(&self, member: &str) -> Option<[u8; 32]>;

    /// Whether a credential of `member`'s may carry `key`: its roster key, unless the
    /// implementation also takes keys a rotation retired (a leaf made before its member moved to
    /// its new key).
    fn accepts(&self, member: &str, key: &[u8]) -> bool {
        self.signing_key(member).is_some_and(|k| k.as_slice() == key)
    }
}

impl<F: Fn(&str) -> Option<[u8; 32]>> RosterKeys for F {
    fn signing_key(&self, member: &str) -> Option<[u8; 32]> {
        self(member)
    }
}

/// Checks that a credential names a roster member and carries that member's roster key; returns
/// the member code.
pub fn check_credential(
    credential: &Credential,
    signature_key: &[u8],
    roster: &impl RosterKeys,
) -> Result<String, MlsError> {
    let basic = BasicCredential::try_from(credential.clone())
        .map_err(|_| MlsError::Credential("not a basic credential".into()))?;
    let code = std::str::from_utf8(basic.identity())
        .map_err(|_| MlsError::Credential("the identity is not a member code".into()))?
        .to_string();
    if roster.signing_key(&code).is_none() {
        return Err(MlsError::Credential(format!("{code} is not in the roster")));
    }
    if !roster.accepts(&code, signature_key) {
        return Err(MlsError::Credential(format!("the signature key is not {code}'s roster key")));
    }
    Ok(code)
}

/// What the envelope that carries an MLS message says of it, authenticated by the envelope's
/// signature: who sent it and at which epoch. [`LineMember::process`] refuses a message that
/// disagrees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim<'a> {
    pub sender: &'a str,
    pub epoch: u64,
}

/// What a line's own rules say of the commits its group takes: who its home member is (the only
/// member that commits), and whether it is a direct line (no commit adds a member).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineRules<'a> {
    pub home: &'a str,
    pub direct: bool,
}

/// The epoch an MLS message (a proposal, commit or application message) is of.
pub fn message_epoch(bytes: &[u8]) -> Result<u64, MlsError> {
    let message = MlsMessageIn::tls_deserialize_exact(bytes).map_err(|e| MlsError::Malformed(e.to_string()))?;
    let protocol = message.try_into_protocol_message().map_err(|e| MlsError::Malformed(e.to_string()))?;
    Ok(protocol.epoch().as_u64())
}

/// The member code a credential names, or the empty string if it is not a basic credential.
fn identity(credential: &Credential) -> String {
    BasicCredential::try_from(credential.clone())
        .map(|b| String::from_utf8_lossy(b.identity()).into_owned())
        .unwrap_or_default()
}

/// Checks a changed leaf: it holds a roster credential, and that credential is `member`'s (the
/// member whose leaf it replaces keeps its identity).
fn check_leaf(leaf: &LeafNode, member: &str, roster: &impl RosterKeys) -> Result<(), MlsError> {
    let code = check_credential(leaf.credential(), leaf.signature_key().as_slice(), roster)
        .map_err(|e| MlsError::Leaf(e.to_string()))?;
    if code != member {
        return Err(MlsError::Leaf(format!("{member}'s leaf may not be given {code}'s identity")));
    }
    Ok(())
}

/// What decrypting or processing a line's MLS message gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    /// An application message and the member who sent it.
    Application { sender: String, epoch: u64, plaintext: Vec<u8> },
    /// A commit was merged; the line is now at `epoch`. `removed`: the members it took off the
    /// line; `aad`: what the home member sent with it. Buffered messages that became readable
    /// follow in `released`. `update_dropped`: this member had proposed a key update that the
    /// commit did not include (it crossed the commit), so it should propose again.
    Commit { epoch: u64, removed: Vec<String>, aad: Vec<u8>, released: Vec<Processed>, update_dropped: bool },
    /// A proposal was stored for the home member's next commit: the sender's key update, or
    /// (`leaving`) its removal of itself.
    Proposal { sender: String, leaving: bool },
    /// The message is from a future epoch and waits for its commit.
    Buffered { epoch: u64 },
}

/// The outcome of a commit made by the home member.
#[derive(Debug, Clone)]
pub struct CommitOut {
    pub commit: Vec<u8>,
    /// The Welcome for added members, to send once the commit is accepted.
    pub welcome: Option<Vec<u8>>,
    pub epoch: u64,
}

/// A member's MLS state as the entries of its key-value state.
pub type StateEntries = Vec<(Vec<u8>, Vec<u8>)>;

/// The changes to a member's MLS state since it was last handed out for storing: entries of the
/// provider's key-value state to write (secrets included: the caller seals them before they touch
/// a disk) and keys to delete. Each commit stores only what changed, not the whole state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateDelta {
    pub put: Vec<(Vec<u8>, Vec<u8>)>,
    pub delete: Vec<Vec<u8>>,
}

impl StateDelta {
    pub fn is_empty(&self) -> bool {
        self.put.is_empty() && self.delete.is_empty()
    }
}

/// One member's MLS state across all its lines.
pub struct LineMember {
    code: String,
    provider: OpenMlsRustCrypto,
    signer: SignatureKeyPair,
    /// Signers of keys a rotation retired, kept while a line's leaf of this member still carries
    /// one: that line's messages are signed with it until the leaf is renewed
    /// ([`LineMember::renew_leaf`]).
    retired: Vec<SignatureKeyPair>,
    credential: CredentialWithKey,
    config: MlsConfig,
    groups: HashMap<[u8; 16], MlsGroup>,
    /// Messages from future epochs, per line, in arrival order, with the sender their envelope
    /// named.
    future: HashMap<[u8; 16], VecDeque<(String, Vec<u8>)>>,
    /// Lines where this member proposed a key update not committed yet.
    proposed: HashSet<[u8; 16]>,
    /// References of this member's KeyPackages that a Welcome used since they were last taken
    /// ([`LineMember::take_used_key_packages`]): their private keys are gone from the state.
    used_key_packages: Vec<Vec<u8>>,
    /// Application messages one member carried under another's name, decrypted, by the hash of
    /// their bytes, oldest first (at most [`MlsConfig::rewrapped_len_max`]): the sender they are
    /// really from, their epoch and their plaintext. Each is also an entry of the state
    /// ([`REWRAPPED_PREFIX`]), so that it is stored, sealed, with the rest.
    rewrapped: VecDeque<(Vec<u8>, String, u64, Vec<u8>)>,
    /// The state as of the last [`LineMember::delta`] (or as restored): what the store holds
    /// once that delta is committed.
    stored: HashMap<Vec<u8>, Vec<u8>>,
}

/// What opens the key under which a rewrapped message is kept in the member's state, beside
/// openmls's own entries: `ADI-REWRAPPED 0x00 || SHA-256 of the MLS message`. Its value is the
/// real sender's code (a length byte and the code), the epoch (8 bytes) and the plaintext. Kept
/// in the state, it is sealed and stored with it, so a restart does not lose it.
const REWRAPPED_PREFIX: &[u8] = b"ADI-REWRAPPED\0";

fn rewrapped_key(digest: &[u8]) -> Vec<u8> {
    [REWRAPPED_PREFIX, digest].concat()
}

fn encode_rewrapped(sender: &str, epoch: u64, plaintext: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(1 + sender.len() + 8 + plaintext.len());
    v.push(sender.len() as u8);
    v.extend_from_slice(sender.as_bytes());
    v.extend_from_slice(&epoch.to_be_bytes());
    v.extend_from_slice(plaintext);
    v
}

/// A rewrapped message from its state entry: (digest, sender, epoch, plaintext).
fn decode_rewrapped(key: &[u8], value: &[u8]) -> Option<(Vec<u8>, String, u64, Vec<u8>)> {
    let digest = key.strip_prefix(REWRAPPED_PREFIX)?.to_vec();
    let (&len, rest) = value.split_first()?;
    let (sender, rest) = (rest.get(..len as usize)?, rest.get(len as usize..)?);
    let epoch = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    Some((digest, std::str::from_utf8(sender).ok()?.to_string(), epoch, rest.get(8..)?.to_vec()))
}

fn group_id(line: &[u8; 16]) -> GroupId {
    GroupId::from_slice(line)
}

/// The signer whose key a group's leaf of this member carries: the current one, or one a rotation
/// retired whose leaf on that line is not renewed yet.
fn signer_of<'a>(
    current: &'a SignatureKeyPair,
    retired: &'a [SignatureKeyPair],
    group: &MlsGroup,
) -> &'a SignatureKeyPair {
    let Some(leaf) = group.own_leaf_node() else { return current };
    let key = leaf.signature_key().as_slice();
    std::iter::once(current).chain(retired.iter()).find(|s| s.public() == key).unwrap_or(current)
}

/// What renewing this member's leaf on a line came to.
#[derive(Debug)]
pub enum Renewed {
    /// The leaf carries the current key already.
    Current,
    /// As the home member: committed with the new key, to send to the others.
    Committed(CommitOut),
    /// As another member: proposed, for the home member to commit.
    Proposed(Vec<u8>),
}

impl LineMember {
    /// A member with no lines, signing with its roster key (the 32-byte Ed25519 seed).
    pub fn new(code: &str, seed: [u8; 32], config: MlsConfig) -> Result<LineMember, MlsError> {
        LineMember::with_provider(code, seed, config, OpenMlsRustCrypto::default())
    }

    fn with_provider(
        code: &str,
        seed: [u8; 32],
        config: MlsConfig,
        provider: OpenMlsRustCrypto,
    ) -> Result<LineMember, MlsError> {
        let public = derive_public(&seed)?;
        let signer = SignatureKeyPair::from_raw(CIPHERSUITE.signature_algorithm(), seed.to_vec(), public.to_vec());
        signer.store(provider.storage()).map_err(lib)?;
        let credential = CredentialWithKey {
            credential: BasicCredential::new(code.as_bytes().to_vec()).into(),
            signature_key: public.to_vec().into(),
        };
        Ok(LineMember {
            code: code.to_string(),
            provider,
            signer,
            retired: Vec::new(),
            credential,
            config,
            groups: HashMap::new(),
            future: HashMap::new(),
            proposed: HashSet::new(),
            rewrapped: VecDeque::new(),
            used_key_packages: Vec::new(),
            stored: HashMap::new(),
        })
    }

    /// Rebuilds a member from the entries of its stored state (every [`StateDelta`] applied in
    /// order) and the ids of its lines.
    pub fn restore(
        code: &str,
        seed: [u8; 32],
        config: MlsConfig,
        entries: StateEntries,
        lines: &[[u8; 16]],
    ) -> Result<LineMember, MlsError> {
        let restored: HashMap<Vec<u8>, Vec<u8>> = entries.into_iter().collect();
        let provider = OpenMlsRustCrypto::default();
        provider.storage().values.write().map_err(lib)?.extend(restored.clone());
        let mut member = LineMember::with_provider(code, seed, config, provider)?;
        let mut rewrapped: Vec<_> = restored.iter().filter_map(|(k, v)| decode_rewrapped(k, v)).collect();
        rewrapped.sort();
        member.rewrapped = rewrapped.into();
        member.stored = restored;
        for line in lines {
            if let Some(group) = MlsGroup::load(member.provider.storage(), &group_id(line)).map_err(lib)? {
                // A leaf not renewed since a rotation: its signer, stored with the state.
                if let Some(leaf) = group.own_leaf_node() {
                    let key = leaf.signature_key().as_slice().to_vec();
                    let known = member.signer.public() == key || member.retired.iter().any(|r| r.public() == key);
                    if !known {
                        let scheme = CIPHERSUITE.signature_algorithm();
                        if let Some(old) = SignatureKeyPair::read(member.provider.storage(), &key, scheme) {
                            member.retired.push(old);
                        }
                    }
                }
                member.groups.insert(*line, group);
            }
        }
        Ok(member)
    }

    /// Everything this member's MLS state holds, serialised: secrets included, so the caller
    /// seals it before it touches a disk.
    pub fn snapshot(&self) -> Result<Vec<u8>, MlsError> {
        let values = self.provider.storage().values.read().map_err(lib)?;
        Ok(encode_state(&values))
    }

    /// What changed since the last delta (or the restore), in key order; from now on the state is
    /// taken to be stored as it is. The caller commits the delta or, if the commit fails,
    /// rebuilds the member from what the store holds.
    pub fn delta(&mut self) -> Result<StateDelta, MlsError> {
        let values = self.provider.storage().values.read().map_err(lib)?;
        let mut put: Vec<(Vec<u8>, Vec<u8>)> = values
            .iter()
            .filter(|(k, v)| self.stored.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut delete: Vec<Vec<u8>> = self.stored.keys().filter(|k| !values.contains_key(*k)).cloned().collect();
        drop(values);
        put.sort();
        delete.sort();
        for (k, v) in &put {
            self.stored.insert(k.clone(), v.clone());
        }
        for k in &delete {
            self.stored.remove(k);
        }
        Ok(StateDelta { put, delete })
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    /// Whether this member is still in the line's group (not removed from it, nor left).
    pub fn is_active(&self, line: &[u8; 16]) -> bool {
        self.groups.get(line).is_some_and(MlsGroup::is_active)
    }

    /// Deletes a line's group this member is no longer in, so that it can join the line again.
    pub fn forget(&mut self, line: &[u8; 16]) -> Result<(), MlsError> {
        if let Some(mut group) = self.groups.remove(line) {
            if group.is_active() {
                self.groups.insert(*line, group);
                return Err(MlsError::Library("this member is still in the line's group".into()));
            }
            group.delete(self.provider.storage()).map_err(lib)?;
        }
        self.future.remove(line);
        Ok(())
    }

    /// Whether this member holds the line's group.
    pub fn has_line(&self, line: &[u8; 16]) -> bool {
        self.groups.contains_key(line)
    }

    pub fn epoch(&self, line: &[u8; 16]) -> Option<u64> {
        self.groups.get(line).map(|g| g.epoch().as_u64())
    }

    /// The signature key of `member`'s leaf in a line's group, as this member holds the group.
    pub fn leaf_key(&self, line: &[u8; 16], member: &str) -> Option<Vec<u8>> {
        let group = self.groups.get(line)?;
        group.members().find(|m| identity(&m.credential) == member).map(|m| m.signature_key)
    }

    /// The member codes of a line's group, in leaf order.
    pub fn members(&self, line: &[u8; 16]) -> Vec<String> {
        self.groups
            .get(line)
            .map(|g| {
                g.members()
                    .filter_map(|m| BasicCredential::try_from(m.credential).ok())
                    .map(|c| String::from_utf8_lossy(c.identity()).into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Makes `n` one-time KeyPackages to publish.
    pub fn key_packages(&mut self, n: usize) -> Result<Vec<Vec<u8>>, MlsError> {
        (0..n)
            .map(|_| {
                let bundle = KeyPackage::builder()
                    .build(CIPHERSUITE, &self.provider, &self.signer, self.credential.clone())
                    .map_err(lib)?;
                bundle.key_package().tls_serialize_detached().map_err(lib)
            })
            .collect()
    }

    fn ratchet(&self) -> SenderRatchetConfiguration {
        SenderRatchetConfiguration::new(self.config.out_of_order_tolerance, self.config.forward_distance_max)
    }

    /// The configuration a line's group is created with; the window of past epochs and the
    /// out-of-order window are the same as in [`LineMember::join_config`].
    fn create_config(&self) -> MlsGroupCreateConfig {
        MlsGroupCreateConfig::builder()
            .ciphersuite(CIPHERSUITE)
            .max_past_epochs(self.config.past_epochs_max)
            .sender_ratchet_configuration(self.ratchet())
            .use_ratchet_tree_extension(true)
            .build()
    }

    fn join_config(&self) -> MlsGroupJoinConfig {
        MlsGroupJoinConfig::builder()
            .max_past_epochs(self.config.past_epochs_max)
            .sender_ratchet_configuration(self.ratchet())
            .use_ratchet_tree_extension(true)
            .build()
    }

    /// Creates a line's group as its home member, adding the members whose KeyPackages are given
    /// (already checked with [`check_key_package`]).
    pub fn create_line(&mut self, line: [u8; 16], key_packages: Vec<KeyPackage>) -> Result<CommitOut, MlsError> {
        let group = MlsGroup::new_with_group_id(
            &self.provider,
            &self.signer,
            &self.create_config(),
            group_id(&line),
            self.credential.clone(),
        )
        .map_err(lib)?;
        self.groups.insert(line, group);
        self.add(&line, key_packages, Vec::new())
    }

    /// Adds members to a line (home member only); `aad` travels with the commit, authenticated
    /// but not encrypted; the Welcome goes out once the commit is accepted.
    pub fn add(&mut self, line: &[u8; 16], key_packages: Vec<KeyPackage>, aad: Vec<u8>) -> Result<CommitOut, MlsError> {
        let group = self.groups.get_mut(line).ok_or_else(|| MlsError::NoGroup(hex(line)))?;
        group.set_aad(aad);
        let signer = signer_of(&self.signer, &self.retired, group);
        let (commit, welcome, _) = group.add_members(&self.provider, signer, &key_packages).map_err(lib)?;
        group.merge_pending_commit(&self.provider).map_err(lib)?;
        Ok(CommitOut {
            commit: commit.tls_serialize_detached().map_err(lib)?,
            welcome: Some(welcome.tls_serialize_detached().map_err(lib)?),
            epoch: group.epoch().as_u64(),
        })
    }

    /// Removes members from a line (home member only); `aad` travels with the commit,
    /// authenticated but not encrypted.
    pub fn remove(&mut self, line: &[u8; 16], members: &[&str], aad: Vec<u8>) -> Result<CommitOut, MlsError> {
        let group = self.groups.get_mut(line).ok_or_else(|| MlsError::NoGroup(hex(line)))?;
        group.set_aad(aad);
        let leaves: Vec<LeafNodeIndex> = group
            .members()
            .filter(|m| {
                BasicCredential::try_from(m.credential.clone())
                    .is_ok_and(|c| members.iter().any(|code| code.as_bytes() == c.identity()))
            })
            .map(|m| m.index)
            .collect();
        if leaves.len() != members.len() {
            return Err(MlsError::Library("a member to remove is not in the group".into()));
        }
        let signer = signer_of(&self.signer, &self.retired, group);
        let (commit, _, _) = group.remove_members(&self.provider, signer, &leaves).map_err(lib)?;
        group.merge_pending_commit(&self.provider).map_err(lib)?;
        Ok(CommitOut {
            commit: commit.tls_serialize_detached().map_err(lib)?,
            welcome: None,
            epoch: group.epoch().as_u64(),
        })
    }

    /// Proposes a fresh leaf key for post-compromise security; the home member commits it.
    pub fn propose_update(&mut self, line: &[u8; 16]) -> Result<Vec<u8>, MlsError> {
        let group = self.groups.get_mut(line).ok_or_else(|| MlsError::NoGroup(hex(line)))?;
        let signer = signer_of(&self.signer, &self.retired, group);
        // A leaf still under a key this member rotated away from moves to the new key with it.
        let (proposal, _) = if signer.public() == self.signer.public() {
            group.propose_self_update(&self.provider, signer, LeafNodeParameters::default()).map_err(lib)?
        } else {
            let new = NewSignerBundle { signer: &self.signer, credential_with_key: self.credential.clone() };
            group
                .propose_self_update_with_new_signer(&self.provider, signer, new, LeafNodeParameters::default())
                .map_err(lib)?
        };
        self.proposed.insert(*line);
        proposal.tls_serialize_detached().map_err(lib)
    }

    /// Proposes removing another member, which ADI's profile does not allow a member to do.
    /// Tests use it to play a member that breaks the rules; nodes never call it.
    #[doc(hidden)]
    pub fn propose_remove_unchecked(&mut self, line: &[u8; 16], member: &str) -> Result<Vec<u8>, MlsError> {
        let group = self.groups.get_mut(line).ok_or_else(|| MlsError::NoGroup(hex(line)))?;
        let leaf = group
            .members()
            .find(|m| BasicCredential::try_from(m.credential.clone()).is_ok_and(|c| c.identity() == member.as_bytes()))
            .map(|m| m.index)
            .ok_or_else(|| MlsError::Library(format!("{member} is not in the group")))?;
        let (proposal, reference) = group.propose_remove_member(&self.provider, &self.signer, leaf).map_err(lib)?;
        // Not kept for a commit of this member's own: the proposal only travels.
        group.remove_pending_proposal(self.provider.storage(), &reference).map_err(lib)?;
        proposal.tls_serialize_detached().map_err(lib)
    }

    /// Proposes a fresh leaf that names `identity` instead of this member, with this member's
    /// own key: what a hostile member would send to take another member's place. Tests use it to
    /// play that member; nodes never call it.
    #[doc(hidden)]
    pub fn propose_update_as_unchecked(&mut self, line: &[u8; 16], identity: &str) -> Result<Vec<u8>, MlsError> {
        let parameters = LeafNodeParameters::builder().with_credential_with_key(self.named(identity)).build();
        let group = self.groups.get_mut(line).ok_or_else(|| MlsError::NoGroup(hex(line)))?;
        let (proposal, reference) = group.propose_self_update(&self.provider, &self.signer, parameters).map_err(lib)?;
        // Not kept for a commit of this member's own: the proposal only travels.
        group.remove_pending_proposal(self.provider.storage(), &reference).map_err(lib)?;
        proposal.tls_serialize_detached().map_err(lib)
    }

    /// Commits the pending proposals with a fresh leaf of this member's, whether or not it is the
    /// line's home member, optionally giving its leaf `identity`'s name. Tests use it to play a
    /// member that breaks the rules; nodes never call it.
    #[doc(hidden)]
    pub fn commit_unchecked(&mut self, line: &[u8; 16], identity: Option<&str>) -> Result<CommitOut, MlsError> {
        let parameters = match identity {
            Some(identity) => LeafNodeParameters::builder().with_credential_with_key(self.named(identity)).build(),
            None => LeafNodeParameters::default(),
        };
        self.commit_with_leaf(line, parameters, Vec::new())
    }

    /// This member's signature key under a credential naming `identity`: what a leaf that takes
    /// another member's name carries.
    fn named(&self, identity: &str) -> CredentialWithKey {
        CredentialWithKey {
            credential: BasicCredential::new(identity.as_bytes().to_vec()).into(),
            signature_key: self.credential.signature_key.clone(),
        }
    }

    /// Commits every pending proposal with a fresh leaf of this member's made from `parameters`,
    /// `aad` travelling with the commit, and merges the commit.
    fn commit_with_leaf(
        &mut self,
        line: &[u8; 16],
        parameters: LeafNodeParameters,
        aad: Vec<u8>,
    ) -> Result<CommitOut, MlsError> {
        let group = self.groups.get_mut(line).ok_or_else(|| MlsError::NoGroup(hex(line)))?;
        group.set_aad(aad);
        let signer = signer_of(&self.signer, &self.retired, group);
        // A leaf still under a key this member rotated away from moves to the new key with it.
        let bundle = if signer.public() == self.signer.public() {
            group.self_update(&self.provider, signer, parameters).map_err(lib)?
        } else {
            let new = NewSignerBundle { signer: &self.signer, credential_with_key: self.credential.clone() };
            group.self_update_with_new_signer(&self.provider, signer, new, parameters).map_err(lib)?
        };
        let (commit, welcome, _) = bundle.into_contents();
        group.merge_pending_commit(&self.provider).map_err(lib)?;
        Ok(CommitOut {
            commit: commit.tls_serialize_detached().map_err(lib)?,
            welcome: welcome.map(|w| w.tls_serialize_detached()).transpose().map_err(lib)?,
            epoch: group.epoch().as_u64(),
        })
    }

    /// Takes a new signing key (the 32-byte Ed25519 seed), after a roster version gave it to this
    /// member: KeyPackages made from now on carry it, and each line moves to it when its leaf is
    /// renewed ([`LineMember::renew_leaf`]); until then that line's messages are still signed
    /// with the key its leaf carries, which is kept.
    pub fn rotate_signer(&mut self, seed: [u8; 32]) -> Result<(), MlsError> {
        let public = derive_public(&seed)?;
        let signer = SignatureKeyPair::from_raw(CIPHERSUITE.signature_algorithm(), seed.to_vec(), public.to_vec());
        signer.store(self.provider.storage()).map_err(lib)?;
        let old = std::mem::replace(&mut self.signer, signer);
        self.retired.push(old);
        self.credential = CredentialWithKey {
            credential: BasicCredential::new(self.code.as_bytes().to_vec()).into(),
            signature_key: public.to_vec().into(),
        };
        Ok(())
    }

    /// Moves this member's leaf on a line to its current key: as the line's home member by a
    /// commit (`aad` travelling with it), otherwise by a proposal the home member commits. The
    /// others accept the new leaf once their roster gives this member that key.
    pub fn renew_leaf(&mut self, line: &[u8; 16], home: bool, aad: Vec<u8>) -> Result<Renewed, MlsError> {
        let group = self.groups.get_mut(line).ok_or_else(|| MlsError::NoGroup(hex(line)))?;
        let old = signer_of(&self.signer, &self.retired, group);
        if old.public() == self.signer.public() {
            return Ok(Renewed::Current);
        }
        let new = NewSignerBundle { signer: &self.signer, credential_with_key: self.credential.clone() };
        if home {
            group.set_aad(aad);
            let bundle = group
                .self_update_with_new_signer(&self.provider, old, new, LeafNodeParameters::default())
                .map_err(lib)?;
            let (commit, welcome, _) = bundle.into_contents();
            group.merge_pending_commit(&self.provider).map_err(lib)?;
            return Ok(Renewed::Committed(CommitOut {
                commit: commit.tls_serialize_detached().map_err(lib)?,
                welcome: welcome.map(|w| w.tls_serialize_detached()).transpose().map_err(lib)?,
                epoch: group.epoch().as_u64(),
            }));
        }
        let (proposal, _) = group
            .propose_self_update_with_new_signer(&self.provider, old, new, LeafNodeParameters::default())
            .map_err(lib)?;
        self.proposed.insert(*line);
        Ok(Renewed::Proposed(proposal.tls_serialize_detached().map_err(lib)?))
    }

    /// Proposes this member's leaving the line's group, for the home member to commit.
    pub fn propose_leave(&mut self, line: &[u8; 16]) -> Result<Vec<u8>, MlsError> {
        let group = self.groups.get_mut(line).ok_or_else(|| MlsError::NoGroup(hex(line)))?;
        let signer = signer_of(&self.signer, &self.retired, group);
        let proposal = group.leave_group(&self.provider, signer).map_err(lib)?;
        proposal.tls_serialize_detached().map_err(lib)
    }

    /// The members whose leaving is proposed and waits for the home member's commit.
    pub fn pending_leaving(&self, line: &[u8; 16]) -> Vec<String> {
        let Some(group) = self.groups.get(line) else { return Vec::new() };
        group
            .pending_proposals()
            .filter_map(|p| match p.proposal() {
                Proposal::Remove(r) => group.member(r.removed()).map(identity),
                _ => None,
            })
            .collect()
    }

    /// Updates the home member's own leaf and commits every pending proposal (home member only);
    /// `aad` travels with the commit, authenticated but not encrypted.
    pub fn commit_proposals(&mut self, line: &[u8; 16], aad: Vec<u8>) -> Result<CommitOut, MlsError> {
        self.commit_with_leaf(line, LeafNodeParameters::default(), aad)
    }

    /// Joins a line from a Welcome whose sender and members all hold roster credentials.
    pub fn join(&mut self, welcome: &[u8], roster: &impl RosterKeys) -> Result<[u8; 16], MlsError> {
        let message = MlsMessageIn::tls_deserialize_exact(welcome).map_err(|e| MlsError::Malformed(e.to_string()))?;
        let welcome = match message.extract() {
            MlsMessageBodyIn::Welcome(w) => w,
            _ => return Err(MlsError::Malformed("not a Welcome".into())),
        };
        // The KeyPackage of this member's the Welcome is sealed to: joining deletes its private
        // key, and the caller deletes its published copy once the join is stored.
        let used: Option<Vec<u8>> = welcome.secrets().iter().map(|s| s.new_member()).find_map(|r| {
            let held: Option<KeyPackageBundle> = self.provider.storage().key_package(&r).ok().flatten();
            held.map(|_| r.as_slice().to_vec())
        });
        let staged =
            StagedWelcome::new_from_welcome(&self.provider, &self.join_config(), welcome, None).map_err(lib)?;
        for m in staged.members() {
            check_credential(&m.credential, &m.signature_key, roster)?;
        }
        let group = staged.into_group(&self.provider).map_err(lib)?;
        let id = group.group_id().as_slice();
        let line: [u8; 16] = id.try_into().map_err(|_| MlsError::Malformed("the group id is not a line id".into()))?;
        self.groups.insert(line, group);
        self.used_key_packages.extend(used);
        Ok(line)
    }

    /// The references of this member's KeyPackages that Welcomes used since the last call.
    pub fn take_used_key_packages(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.used_key_packages)
    }

    /// Deletes this member's KeyPackages (their private keys) by reference: ones claimed long
    /// ago and never used. The deletion is in the next [`LineMember::delta`].
    pub fn forget_key_packages(&mut self, references: &[Vec<u8>]) -> Result<(), MlsError> {
        for r in references {
            self.provider.storage().delete_key_package(&key_package_ref(r)?).map_err(lib)?;
        }
        Ok(())
    }

    /// Whether this member still holds the private key of a KeyPackage of its own.
    pub fn holds_key_package(&self, reference: &[u8]) -> bool {
        let Ok(hash_ref) = key_package_ref(reference) else { return false };
        let held: Option<KeyPackageBundle> = self.provider.storage().key_package(&hash_ref).ok().flatten();
        held.is_some()
    }

    /// Encrypts an application message on a line.
    pub fn encrypt(&mut self, line: &[u8; 16], plaintext: &[u8]) -> Result<(u64, Vec<u8>), MlsError> {
        let group = self.groups.get_mut(line).ok_or_else(|| MlsError::NoGroup(hex(line)))?;
        // openmls sends nothing while proposals wait for a commit. A hotline cannot go quiet until
        // the home member commits (its node may be down, or holding updates back), so pending
        // proposals are set aside for the message and put back, in order, after it: the message
        // is of the current epoch and is read within the window like any other.
        let pending: Vec<QueuedProposal> = group.pending_proposals().cloned().collect();
        group.clear_pending_proposals(self.provider.storage()).map_err(lib)?;
        let signer = signer_of(&self.signer, &self.retired, group);
        let out = group.create_message(&self.provider, signer, plaintext);
        for p in pending {
            group.store_pending_proposal(self.provider.storage(), p).map_err(lib)?;
        }
        let out = out.map_err(lib)?;
        Ok((group.epoch().as_u64(), out.tls_serialize_detached().map_err(lib)?))
    }

    /// Spends the next `n` keys of this member's own application ratchet on a line, in its
    /// current epoch, sending nothing: a store put back from a backup holds the ratchet as it was,
    /// and the keys this member used since (for envelopes its peers hold) must never encrypt
    /// again. Each key is spent by encrypting an empty message and dropping it; the receivers
    /// skip those generations within [`MlsConfig::forward_distance_max`].
    pub fn skip_own(&mut self, line: &[u8; 16], n: u64) -> Result<(), MlsError> {
        for _ in 0..n {
            self.encrypt(line, &[])?;
        }
        Ok(())
    }

    /// Processes a line's MLS message as its envelope's `claim` names it: decrypts an application
    /// message, merges a commit from the home member, stores a proposal, or buffers a message from
    /// a future epoch. The message's epoch must be the claimed one and its sender the claimed
    /// sender; a commit must come from the line's home member and, on a direct line, add no one;
    /// every leaf it or a proposal changes must keep its
    /// member's identity and roster key. A refused message changes nothing.
    pub fn process(
        &mut self,
        line: &[u8; 16],
        rules: LineRules<'_>,
        claim: Claim<'_>,
        bytes: &[u8],
        roster: &impl RosterKeys,
    ) -> Result<Processed, MlsError> {
        let group = self.groups.get(line).ok_or_else(|| MlsError::NoGroup(hex(line)))?;
        let current = group.epoch().as_u64();
        let message = MlsMessageIn::tls_deserialize_exact(bytes).map_err(|e| MlsError::Malformed(e.to_string()))?;
        let protocol = message.try_into_protocol_message().map_err(|e| MlsError::Malformed(e.to_string()))?;
        let epoch = protocol.epoch().as_u64();
        if epoch != claim.epoch {
            return Err(MlsError::EpochMismatch { claimed: claim.epoch, actual: epoch });
        }
        // Only the home member commits, as the envelope's signature says who sent it: checked
        // before any key is spent, and again on the committer's leaf below.
        let home = rules.home;
        if protocol.content_type() == ContentType::Commit && claim.sender != home {
            return Err(MlsError::NotHome);
        }
        if epoch > current {
            let buffer = self.future.entry(*line).or_default();
            if buffer.len() >= self.config.future_buffer_len_max {
                return Err(MlsError::BufferFull(buffer.len()));
            }
            buffer.push_back((claim.sender.to_string(), bytes.to_vec()));
            return Ok(Processed::Buffered { epoch });
        }
        if epoch + (self.config.past_epochs_max as u64) < current {
            return Err(MlsError::TooOld { epoch, current, window: self.config.past_epochs_max });
        }
        if epoch < current && protocol.content_type() == ContentType::Proposal {
            return Err(MlsError::StaleProposal { epoch, current });
        }
        if !self.rewrapped.is_empty() {
            let digest = self.digest(bytes)?;
            if let Some(i) = self.rewrapped.iter().position(|(d, s, ..)| *d == digest && s == claim.sender) {
                if let Some((digest, sender, epoch, plaintext)) = self.rewrapped.remove(i) {
                    self.provider.storage().values.write().map_err(lib)?.remove(&rewrapped_key(&digest));
                    return Ok(Processed::Application { sender, epoch, plaintext });
                }
            }
        }
        let group = self.groups.get_mut(line).ok_or_else(|| MlsError::NoGroup(hex(line)))?;
        let processed = group.process_message(&self.provider, protocol).map_err(|e| match e {
            ProcessMessageError::InvalidCommit(StageCommitError::MissingProposal) => MlsError::MissingProposal,
            e => MlsError::Decrypt(e.to_string()),
        })?;
        let sender = identity(processed.credential());
        let aad = processed.aad().to_vec();
        if sender != claim.sender {
            // A staged commit and a proposal change nothing until merged or stored. An
            // application message's keys are spent: it is kept for its real sender's envelope.
            if let ProcessedMessageContent::ApplicationMessage(m) = processed.into_content() {
                let digest = self.digest(bytes)?;
                let plaintext = m.into_bytes();
                let mut values = self.provider.storage().values.write().map_err(lib)?;
                if self.rewrapped.len() >= self.config.rewrapped_len_max {
                    if let Some((oldest, ..)) = self.rewrapped.pop_front() {
                        values.remove(&rewrapped_key(&oldest));
                    }
                }
                values.insert(rewrapped_key(&digest), encode_rewrapped(&sender, epoch, &plaintext));
                drop(values);
                self.rewrapped.push_back((digest, sender.clone(), epoch, plaintext));
            }
            return Err(MlsError::SenderMismatch { claimed: claim.sender.to_string(), actual: sender });
        }
        match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(m) => {
                Ok(Processed::Application { sender, epoch, plaintext: m.into_bytes() })
            }
            ProcessedMessageContent::ProposalMessage(p) => {
                // A member proposes only for itself: a fresh leaf that keeps its identity and
                // roster key, or leaving. Adding and removing others is the home member's, by
                // commit.
                let leaving = match (p.proposal(), p.sender()) {
                    (Proposal::Update(u), Sender::Member(_)) => {
                        check_leaf(u.leaf_node(), &sender, roster)?;
                        false
                    }
                    (Proposal::Remove(r), Sender::Member(by)) if r.removed() == *by => true,
                    _ => return Err(MlsError::Proposal("a member proposes only its own update or leaving".into())),
                };
                group.store_pending_proposal(self.provider.storage(), *p).map_err(lib)?;
                Ok(Processed::Proposal { sender, leaving })
            }
            ProcessedMessageContent::StagedCommitMessage(staged) => {
                if sender != home {
                    return Err(MlsError::NotHome);
                }
                if rules.direct && staged.add_proposals().next().is_some() {
                    return Err(MlsError::DirectLine);
                }
                for add in staged.add_proposals() {
                    let leaf = add.add_proposal().key_package().leaf_node();
                    check_credential(leaf.credential(), leaf.signature_key().as_slice(), roster)?;
                }
                // Every leaf the commit changes keeps its member: the committer's own (its update
                // path) and each member's whose update it includes.
                if let Some(leaf) = staged.update_path_leaf_node() {
                    check_leaf(leaf, home, roster)?;
                }
                for update in staged.update_proposals() {
                    let Sender::Member(index) = update.sender() else {
                        return Err(MlsError::Proposal("an update from outside the group".into()));
                    };
                    let owner = group.member(*index).map(identity).unwrap_or_default();
                    check_leaf(update.update_proposal().leaf_node(), &owner, roster)?;
                }
                let removed: Vec<String> = staged
                    .remove_proposals()
                    .filter_map(|r| group.member(r.remove_proposal().removed()).map(identity))
                    .collect();
                let own = group.own_leaf_index();
                let included = staged.update_proposals().any(|u| matches!(u.sender(), Sender::Member(i) if *i == own));
                group.merge_staged_commit(&self.provider, *staged).map_err(lib)?;
                let epoch = group.epoch().as_u64();
                let update_dropped = self.proposed.remove(line) && !included;
                let released = self.release_buffered(line, rules, roster);
                Ok(Processed::Commit { epoch, removed, aad, released, update_dropped })
            }
            ProcessedMessageContent::ExternalJoinProposalMessage(_) => {
                Err(MlsError::Decrypt("external joins are not part of ADI's profile".into()))
            }
            _ => Err(MlsError::Decrypt("a member's own message came back".into())),
        }
    }

    fn digest(&self, bytes: &[u8]) -> Result<Vec<u8>, MlsError> {
        self.provider.crypto().hash(HashType::Sha2_256, bytes).map_err(lib)
    }

    /// Processes buffered messages that the current epoch can now read.
    fn release_buffered(&mut self, line: &[u8; 16], rules: LineRules<'_>, roster: &impl RosterKeys) -> Vec<Processed> {
        let pending: Vec<(String, Vec<u8>)> = self.future.remove(line).map(Vec::from).unwrap_or_default();
        let mut out = Vec::new();
        for (sender, bytes) in pending {
            let Ok(epoch) = message_epoch(&bytes) else { continue };
            match self.process(line, rules, Claim { sender: &sender, epoch }, &bytes, roster) {
                Ok(Processed::Buffered { .. }) => {}
                Ok(p) => out.push(p),
                Err(_) => {}
            }
        }
        out
    }

    /// The out-of-order window a line's group applies.
    pub fn out_of_order_tolerance(&self, line: &[u8; 16]) -> Option<u32> {
        self.groups.get(line).map(|g| g.configuration().sender_ratchet_configuration().out_of_order_tolerance())
    }

    /// Messages waiting for a future epoch on a line.
    pub fn buffered(&self, line: &[u8; 16]) -> usize {
        self.future.get(line).map_or(0, VecDeque::len)
    }
}

/// Checks a KeyPackage from a peer: well formed, of ADI's ciphersuite, validly signed, with a
/// roster credential, and not seen before (`seen` holds the references of KeyPackages already
/// used). Returns the member code and the KeyPackage.
pub fn check_key_package(
    bytes: &[u8],
    roster: &impl RosterKeys,
    seen: &mut HashSet<Vec<u8>>,
) -> Result<(String, KeyPackage), MlsError> {
    let provider = OpenMlsRustCrypto::default();
    let kp_in = KeyPackageIn::tls_deserialize_exact(bytes).map_err(|e| MlsError::KeyPackage(e.to_string()))?;
    let kp =
        kp_in.validate(provider.crypto(), ProtocolVersion::Mls10).map_err(|e| MlsError::KeyPackage(e.to_string()))?;
    if kp.ciphersuite() != CIPHERSUITE {
        return Err(MlsError::KeyPackage("another ciphersuite".into()));
    }
    let leaf = kp.leaf_node();
    let code = check_credential(leaf.credential(), leaf.signature_key().as_slice(), roster)
        .map_err(|e| MlsError::KeyPackage(e.to_string()))?;
    let reference = kp.hash_ref(provider.crypto()).map_err(lib)?.as_slice().to_vec();
    if !seen.insert(reference) {
        return Err(MlsError::KeyPackage("this KeyPackage was used already".into()));
    }
    Ok((code, kp))
}

/// The Ed25519 public key of a seed.
fn derive_public(seed: &[u8; 32]) -> Result<[u8; 32], MlsError> {
    Ok(ed25519_dalek::SigningKey::from_bytes(seed).verifying_key().to_bytes())
}

/// The provider's key-value state as `count (u64) || (len (u32) key len (u32) value)*`, keys sorted
/// so that equal states encode equally.
fn encode_state(values: &HashMap<Vec<u8>, Vec<u8>>) -> Vec<u8> {
    let mut keys: Vec<&Vec<u8>> = values.keys().collect();
    keys.sort();
    let mut out = Vec::new();
    out.extend_from_slice(&(keys.len() as u64).to_be_bytes());
    for k in keys {
        let v = &values[k];
        out.extend_from_slice(&(k.len() as u32).to_be_bytes());
        out.extend_from_slice(k);
        out.extend_from_slice(&(v.len() as u32).to_be_bytes());
        out.extend_from_slice(v);
    }
    out
}

/// The entries of a state serialised by [`LineMember::snapshot`] (the whole-state form that
/// databases of earlier versions hold).
pub fn decode_state(mut bytes: &[u8]) -> Result<HashMap<Vec<u8>, Vec<u8>>, MlsError> {
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8], MlsError> {
        if bytes.len() < n {
            return Err(MlsError::Malformed("the MLS state ends early".into()));
        }
        let (head, tail) = bytes.split_at(n);
        *bytes = tail;
        Ok(head)
    }
    let count = u64::from_be_bytes(take(&mut bytes, 8)?.try_into().map_err(lib)?);
    let mut out = HashMap::new();
    for _ in 0..count {
        let n = u32::from_be_bytes(take(&mut bytes, 4)?.try_into().map_err(lib)?) as usize;
        let k = take(&mut bytes, n)?.to_vec();
        let n = u32::from_be_bytes(take(&mut bytes, 4)?.try_into().map_err(lib)?) as usize;
        let v = take(&mut bytes, n)?.to_vec();
        out.insert(k, v);
    }
    if !bytes.is_empty() {
        return Err(MlsError::Malformed("trailing bytes after the MLS state".into()));
    }
    Ok(out)
}

/// The reference (hash) of a well-formed, validly signed KeyPackage.
pub fn key_package_reference(bytes: &[u8]) -> Result<Vec<u8>, MlsError> {
    let provider = OpenMlsRustCrypto::default();
    let kp = KeyPackageIn::tls_deserialize_exact(bytes)
        .map_err(|e| MlsError::KeyPackage(e.to_string()))?
        .validate(provider.crypto(), ProtocolVersion::Mls10)
        .map_err(|e| MlsError::KeyPackage(e.to_string()))?;
    Ok(kp.hash_ref(provider.crypto()).map_err(lib)?.as_slice().to_vec())
}

/// A KeyPackage reference from its bytes (as [`key_package_reference`] gives them).
fn key_package_ref(bytes: &[u8]) -> Result<KeyPackageRef, MlsError> {
    let encoded = tls_codec::VLBytes::new(bytes.to_vec()).tls_serialize_detached().map_err(lib)?;
    KeyPackageRef::tls_deserialize_exact(&encoded).map_err(|e| MlsError::KeyPackage(e.to_string()))
}

fn hex(line: &[u8; 16]) -> String {
    line.iter().map(|b| format!("{b:02x}")).collect()
}
