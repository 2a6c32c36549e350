//! The MLS profile, member against member, without a network: who can read what, across
//! commits, removals, additions, key updates and restarts.

use std::collections::{BTreeMap, HashSet};

use adi_mls::{
    check_key_package, decode_state, message_epoch, Claim, LineMember, LineRules, MlsConfig, MlsError, Processed,
    StateDelta,
};

const LINE: [u8; 16] = [7; 16];
/// The test line's rules: PH is its home member, and it is a conference.
const RULES: LineRules = LineRules { home: "PH", direct: false };

fn seed(code: &str) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[..code.len()].copy_from_slice(code.as_bytes());
    s
}

/// The roster: every member's key derives from its code.
fn roster(code: &str) -> Option<[u8; 32]> {
    ["PH", "VN", "CN", "TL"]
        .contains(&code)
        .then(|| ed25519_dalek::SigningKey::from_bytes(&seed(code)).verifying_key().to_bytes())
}

fn member(code: &str) -> LineMember {
    LineMember::new(code, seed(code), MlsConfig::default()).unwrap()
}

fn key_package(m: &mut LineMember, seen: &mut HashSet<Vec<u8>>) -> openmls::prelude::KeyPackage {
    let bytes = m.key_packages(1).unwrap().remove(0);
    check_key_package(&bytes, &roster, seen).unwrap().1
}

/// PH, the home member, creates a line with the given members, who join from the Welcome.
fn line(members: &mut [&mut LineMember]) -> LineMember {
    let mut ph = member("PH");
    let mut seen = HashSet::new();
    let kps = members.iter_mut().map(|m| key_package(m, &mut seen)).collect();
    let out = ph.create_line(LINE, kps).unwrap();
    for m in members.iter_mut() {
        assert_eq!(m.join(out.welcome.as_ref().unwrap(), &roster).unwrap(), LINE);
    }
    ph
}

/// Applies a delta to stored entries, as the store does in the commit that carries it.
fn apply(stored: &mut BTreeMap<Vec<u8>, Vec<u8>>, delta: StateDelta) {
    stored.extend(delta.put);
    for k in delta.delete {
        stored.remove(&k);
    }
}

/// A member's whole state as entries.
fn entries(m: &LineMember) -> Vec<(Vec<u8>, Vec<u8>)> {
    decode_state(&m.snapshot().unwrap()).unwrap().into_iter().collect()
}

/// Reads `bytes` as an envelope from `from` would carry them: at the MLS message's own epoch.
fn read(m: &mut LineMember, from: &str, bytes: &[u8]) -> Result<Processed, MlsError> {
    let epoch = message_epoch(bytes)?;
    m.process(&LINE, RULES, Claim { sender: from, epoch }, bytes, &roster)
}

fn plaintext(p: Result<Processed, MlsError>) -> Vec<u8> {
    match p {
        Ok(Processed::Application { plaintext, .. }) => plaintext,
        other => panic!("not an application message: {other:?}"),
    }
}

#[test]
fn a_member_not_on_the_line_reads_nothing_of_it() {
    let mut cn = member("CN");
    let mut ph = line(&mut [&mut cn]);
    let mut vn = member("VN");
    let (_, secret) = ph.encrypt(&LINE, b"for CN only").unwrap();
    assert_eq!(plaintext(read(&mut cn, "PH", &secret)), b"for CN only");
    assert!(matches!(read(&mut vn, "PH", &secret), Err(MlsError::NoGroup(_))));
    // Handed the Welcome too, VN cannot open it: it was sealed to CN's KeyPackage.
    let mut cn2 = member("CN");
    let mut seen = HashSet::new();
    let kp = key_package(&mut cn2, &mut seen);
    let mut ph2 = member("PH");
    let created = ph2.create_line([9; 16], vec![kp]).unwrap();
    assert!(vn.join(created.welcome.as_ref().unwrap(), &roster).is_err());
    // And the plaintext is nowhere in what travelled.
    assert!(!secret.windows(b"for CN only".len()).any(|w| w == b"for CN only"));
}

#[test]
fn a_removed_member_reads_nothing_new_and_an_added_member_nothing_old() {
    let (mut vn, mut cn) = (member("VN"), member("CN"));
    let mut ph = line(&mut [&mut vn, &mut cn]);
    let (_, before) = ph.encrypt(&LINE, b"before the changes").unwrap();
    assert_eq!(plaintext(read(&mut vn, "PH", &before)), b"before the changes");

    let removal = ph.remove(&LINE, &["VN"], b"VN's last place".to_vec()).unwrap();
    // The commit names who it takes off, and carries what the home member sent with it.
    match read(&mut cn, "PH", &removal.commit) {
        Ok(Processed::Commit { removed, aad, .. }) => {
            assert_eq!((removed, aad), (vec!["VN".to_string()], b"VN's last place".to_vec()))
        }
        other => panic!("{other:?}"),
    }
    let _ = read(&mut vn, "PH", &removal.commit);
    let (_, after) = ph.encrypt(&LINE, b"after VN left").unwrap();
    assert_eq!(plaintext(read(&mut cn, "PH", &after)), b"after VN left");
    assert!(!matches!(read(&mut vn, "PH", &after), Ok(Processed::Application { .. })), "a removed member decrypted");

    let mut tl = member("TL");
    let mut seen = HashSet::new();
    let addition = ph.add(&LINE, vec![key_package(&mut tl, &mut seen)], Vec::new()).unwrap();
    assert!(matches!(read(&mut cn, "PH", &addition.commit), Ok(Processed::Commit { .. })));
    tl.join(addition.welcome.as_ref().unwrap(), &roster).unwrap();
    assert!(!matches!(read(&mut tl, "PH", &before), Ok(Processed::Application { .. })), "a joiner decrypted the past");
    assert!(!matches!(read(&mut tl, "PH", &after), Ok(Processed::Application { .. })));
    let (_, welcome_to_tl) = ph.encrypt(&LINE, b"welcome TL").unwrap();
    assert_eq!(plaintext(read(&mut tl, "PH", &welcome_to_tl)), b"welcome TL");
    assert_eq!(ph.members(&LINE), vec!["PH", "TL", "CN"].into_iter().map(String::from).collect::<Vec<_>>());
}

#[test]
fn after_a_key_update_the_previous_state_does_not_decrypt_new_messages() {
    let mut cn = member("CN");
    let mut ph = line(&mut [&mut cn]);
    let old_state = entries(&cn);
    let proposal = cn.propose_update(&LINE).unwrap();
    assert!(matches!(read(&mut ph, "CN", &proposal), Ok(Processed::Proposal { .. })));
    let commit = ph.commit_proposals(&LINE, Vec::new()).unwrap();
    assert!(matches!(read(&mut cn, "PH", &commit.commit), Ok(Processed::Commit { .. })));
    let (epoch, fresh) = ph.encrypt(&LINE, b"after the update").unwrap();
    assert_eq!(epoch, commit.epoch);
    assert_eq!(plaintext(read(&mut cn, "PH", &fresh)), b"after the update");

    // A copy of CN's state taken before the update cannot follow the commit nor read what follows.
    let mut stolen = LineMember::restore("CN", seed("CN"), MlsConfig::default(), old_state, &[LINE]).unwrap();
    assert!(read(&mut stolen, "PH", &commit.commit).is_err(), "the old state processed the update's commit");
    assert!(!matches!(read(&mut stolen, "PH", &fresh), Ok(Processed::Application { .. })));
}

#[test]
fn messages_across_a_commit_in_the_wrong_order_decrypt_within_the_window_and_not_beyond() {
    let (mut vn, mut cn) = (member("VN"), member("CN"));
    let mut ph = line(&mut [&mut vn, &mut cn]);
    let (e1, old) = cn.encrypt(&LINE, b"sent before the commit").unwrap();
    let commit = ph.commit_proposals(&LINE, Vec::new()).unwrap();
    assert!(matches!(read(&mut cn, "PH", &commit.commit), Ok(Processed::Commit { .. })));
    let (e2, new) = cn.encrypt(&LINE, b"sent after the commit").unwrap();
    assert_eq!(e2, e1 + 1);

    // VN gets the new message first (buffered), then the commit (which releases it), then the old.
    assert_eq!(read(&mut vn, "CN", &new), Ok(Processed::Buffered { epoch: e2 }));
    assert_eq!(vn.buffered(&LINE), 1);
    match read(&mut vn, "PH", &commit.commit) {
        Ok(Processed::Commit { released, .. }) => {
            assert_eq!(released.len(), 1);
            assert!(
                matches!(&released[0], Processed::Application { plaintext, .. } if plaintext == b"sent after the commit")
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(plaintext(read(&mut vn, "CN", &old)), b"sent before the commit");

    // Beyond the window of past epochs, an old message is refused with the reason.
    let (_, stale) = cn.encrypt(&LINE, b"stale").unwrap();
    for _ in 0..=MlsConfig::default().past_epochs_max {
        let c = ph.commit_proposals(&LINE, Vec::new()).unwrap();
        read(&mut vn, "PH", &c.commit).unwrap();
        read(&mut cn, "PH", &c.commit).unwrap();
    }
    assert!(matches!(read(&mut vn, "CN", &stale), Err(MlsError::TooOld { .. })), "{:?}", read(&mut vn, "CN", &stale));
}

#[test]
fn a_future_epoch_buffer_is_bounded() {
    let config = MlsConfig { future_buffer_len_max: 2, ..MlsConfig::default() };
    let mut cn = LineMember::new("CN", seed("CN"), config).unwrap();
    let mut vn = member("VN");
    let mut ph = line(&mut [&mut cn, &mut vn]);
    let commit = ph.commit_proposals(&LINE, Vec::new()).unwrap();
    read(&mut vn, "PH", &commit.commit).unwrap();
    let future: Vec<Vec<u8>> = (0..3).map(|i| vn.encrypt(&LINE, &[i]).unwrap().1).collect();
    assert!(matches!(read(&mut cn, "VN", &future[0]), Ok(Processed::Buffered { .. })));
    assert!(matches!(read(&mut cn, "VN", &future[1]), Ok(Processed::Buffered { .. })));
    assert_eq!(read(&mut cn, "VN", &future[2]), Err(MlsError::BufferFull(2)));
}

#[test]
fn key_packages_with_a_foreign_key_or_used_before_are_refused() {
    let mut seen = HashSet::new();
    // CN's code with a key that is not CN's roster key.
    let mut impostor = LineMember::new("CN", [42; 32], MlsConfig::default()).unwrap();
    let bytes = impostor.key_packages(1).unwrap().remove(0);
    let e = check_key_package(&bytes, &roster, &mut seen).unwrap_err();
    assert!(e.to_string().contains("not CN's roster key"), "{e}");
    // A member the roster does not know.
    let mut stranger = LineMember::new("XX", seed("XX"), MlsConfig::default()).unwrap();
    let bytes = stranger.key_packages(1).unwrap().remove(0);
    assert!(check_key_package(&bytes, &roster, &mut seen).unwrap_err().to_string().contains("not in the roster"));
    // A genuine KeyPackage is taken once; its replay is refused.
    let mut cn = member("CN");
    let bytes = cn.key_packages(1).unwrap().remove(0);
    assert_eq!(check_key_package(&bytes, &roster, &mut seen).unwrap().0, "CN");
    assert!(check_key_package(&bytes, &roster, &mut seen).unwrap_err().to_string().contains("used already"));
    // Tampered bytes fail the signature.
    let mut tampered = cn.key_packages(1).unwrap().remove(0);
    let n = tampered.len();
    tampered[n - 10] ^= 1;
    assert!(check_key_package(&tampered, &roster, &mut seen).is_err());
}

#[test]
fn a_restored_member_keeps_its_lines() {
    let mut cn = member("CN");
    // What a store holds: every delta, applied in order.
    let mut stored = BTreeMap::new();
    apply(&mut stored, cn.delta().unwrap());
    let mut ph = line(&mut [&mut cn]);
    let joined = cn.delta().unwrap();
    assert!(!joined.put.is_empty(), "joining a line changed nothing to store");
    assert!(joined.put.len() < entries(&cn).len(), "the delta is the whole state");
    apply(&mut stored, joined);
    assert!(cn.delta().unwrap().is_empty(), "nothing changed since the last delta");
    // A key update replaces epoch secrets: the deltas carry the deletions too.
    let proposal = cn.propose_update(&LINE).unwrap();
    assert!(matches!(read(&mut ph, "CN", &proposal), Ok(Processed::Proposal { .. })));
    let commit = ph.commit_proposals(&LINE, Vec::new()).unwrap();
    assert!(matches!(read(&mut cn, "PH", &commit.commit), Ok(Processed::Commit { .. })));
    let updated = cn.delta().unwrap();
    assert!(!updated.delete.is_empty(), "the update deleted nothing");
    apply(&mut stored, updated);
    assert_eq!(stored, entries(&cn).into_iter().collect::<BTreeMap<_, _>>(), "the deltas add up to the state");
    drop(cn);
    let mut cn =
        LineMember::restore("CN", seed("CN"), MlsConfig::default(), stored.into_iter().collect(), &[LINE]).unwrap();
    assert!(cn.delta().unwrap().is_empty(), "a restored member has nothing new to store");
    let (_, m) = ph.encrypt(&LINE, b"after the restart").unwrap();
    assert_eq!(plaintext(read(&mut cn, "PH", &m)), b"after the restart");
    let (_, back) = cn.encrypt(&LINE, b"and back").unwrap();
    assert_eq!(plaintext(read(&mut ph, "CN", &back)), b"and back");
    let whole = cn.snapshot().unwrap();
    assert!(decode_state(&whole[..whole.len() - 1]).is_err());
}

#[test]
fn only_the_home_member_commits() {
    let (mut vn, mut cn) = (member("VN"), member("CN"));
    let _ph = line(&mut [&mut vn, &mut cn]);
    let rogue = cn.commit_proposals(&LINE, Vec::new()).unwrap();
    assert_eq!(read(&mut vn, "CN", &rogue.commit), Err(MlsError::NotHome));
}

#[test]
fn a_message_overtaking_a_long_backlog_leaves_the_backlog_readable() {
    let mut cn = member("CN");
    let mut ph = line(&mut [&mut cn]);
    assert_eq!(cn.out_of_order_tolerance(&LINE), Some(MlsConfig::default().out_of_order_tolerance));
    let backlog: Vec<Vec<u8>> = (0..600u32).map(|i| ph.encrypt(&LINE, &i.to_be_bytes()).unwrap().1).collect();
    let (_, flash) = ph.encrypt(&LINE, b"FLASH").unwrap();
    assert_eq!(plaintext(read(&mut cn, "PH", &flash)), b"FLASH");
    for (i, m) in backlog.iter().enumerate() {
        assert_eq!(plaintext(read(&mut cn, "PH", m)), (i as u32).to_be_bytes(), "message {i}");
    }
}

#[test]
fn a_key_update_that_crosses_a_commit_is_outdated_not_undecryptable_and_is_proposed_again() {
    let mut cn = member("CN");
    let mut ph = line(&mut [&mut cn]);
    // CN proposes while PH commits its own update: the two cross.
    let crossing = cn.propose_update(&LINE).unwrap();
    let commit = ph.commit_proposals(&LINE, Vec::new()).unwrap();
    match read(&mut ph, "CN", &crossing) {
        Err(MlsError::StaleProposal { epoch, current }) => {
            assert_eq!((epoch + 1, current), (commit.epoch, commit.epoch))
        }
        other => panic!("{other:?}"),
    }
    // CN learns from the commit that its update was left out.
    assert!(matches!(read(&mut cn, "PH", &commit.commit), Ok(Processed::Commit { update_dropped: true, .. })));

    // Proposed again in the new epoch, it is committed, and CN learns that too.
    let again = cn.propose_update(&LINE).unwrap();
    assert!(matches!(read(&mut ph, "CN", &again), Ok(Processed::Proposal { .. })));
    let included = ph.commit_proposals(&LINE, Vec::new()).unwrap();
    assert!(matches!(read(&mut cn, "PH", &included.commit), Ok(Processed::Commit { update_dropped: false, .. })));
    let (_, fresh) = ph.encrypt(&LINE, b"after both updates").unwrap();
    assert_eq!(plaintext(read(&mut cn, "PH", &fresh)), b"after both updates");
}

#[test]
fn a_member_proposes_its_own_leaving_and_nothing_about_others() {
    let (mut vn, mut cn) = (member("VN"), member("CN"));
    let mut ph = line(&mut [&mut vn, &mut cn]);
    // CN may not propose VN's removal; only the home member removes others, by commit.
    let ousting = cn.propose_remove_unchecked(&LINE, "VN").unwrap();
    assert!(matches!(read(&mut ph, "CN", &ousting), Err(MlsError::Proposal(_))));
    // VN proposes its own leaving; PH commits it; VN reads nothing after.
    let leaving = vn.propose_leave(&LINE).unwrap();
    assert!(matches!(read(&mut ph, "VN", &leaving), Ok(Processed::Proposal { leaving: true, .. })));
    assert!(matches!(read(&mut cn, "VN", &leaving), Ok(Processed::Proposal { leaving: true, .. })));
    assert_eq!(ph.pending_leaving(&LINE), ["VN"]);
    let commit = ph.commit_proposals(&LINE, b"VN leaves".to_vec()).unwrap();
    match read(&mut cn, "PH", &commit.commit) {
        Ok(Processed::Commit { removed, aad, .. }) => {
            assert_eq!((removed, aad), (vec!["VN".to_string()], b"VN leaves".to_vec()))
        }
        other => panic!("{other:?}"),
    }
    let _ = read(&mut vn, "PH", &commit.commit);
    assert_eq!(ph.members(&LINE), ["PH", "CN"]);
    let (_, after) = ph.encrypt(&LINE, b"after VN left").unwrap();
    assert_eq!(plaintext(read(&mut cn, "PH", &after)), b"after VN left");
    assert!(!matches!(read(&mut vn, "PH", &after), Ok(Processed::Application { .. })));
}

#[test]
fn members_keep_sending_while_a_proposal_waits_for_the_home_members_commit() {
    let (mut vn, mut cn) = (member("VN"), member("CN"));
    let mut ph = line(&mut [&mut vn, &mut cn]);
    let proposal = cn.propose_update(&LINE).unwrap();
    assert!(matches!(read(&mut vn, "CN", &proposal), Ok(Processed::Proposal { .. })));
    assert!(matches!(read(&mut ph, "CN", &proposal), Ok(Processed::Proposal { .. })));
    // The proposer, a member holding it, and the home member that has not committed it yet all
    // still send, and everyone reads.
    let (_, from_cn) = cn.encrypt(&LINE, b"CN while its update waits").unwrap();
    let (_, from_vn) = vn.encrypt(&LINE, b"VN while CN's update waits").unwrap();
    let (_, from_ph) = ph.encrypt(&LINE, b"PH before committing").unwrap();
    assert_eq!(plaintext(read(&mut ph, "CN", &from_cn)), b"CN while its update waits");
    assert_eq!(plaintext(read(&mut cn, "VN", &from_vn)), b"VN while CN's update waits");
    assert_eq!(plaintext(read(&mut vn, "PH", &from_ph)), b"PH before committing");
    // The proposal is still there for the commit, which every member processes.
    let commit = ph.commit_proposals(&LINE, Vec::new()).unwrap();
    assert!(matches!(read(&mut cn, "PH", &commit.commit), Ok(Processed::Commit { update_dropped: false, .. })));
    assert!(matches!(read(&mut vn, "PH", &commit.commit), Ok(Processed::Commit { .. })));
    let (_, after) = cn.encrypt(&LINE, b"after the commit").unwrap();
    assert_eq!(plaintext(read(&mut vn, "CN", &after)), b"after the commit");
}

#[test]
fn an_update_that_gives_a_member_another_identity_is_refused_and_changes_nothing() {
    let (mut vn, mut cn) = (member("VN"), member("CN"));
    let mut ph = line(&mut [&mut vn, &mut cn]);
    // CN proposes a leaf naming PH, the home member, with CN's own key; and one naming VN.
    for name in ["PH", "VN"] {
        let forged = cn.propose_update_as_unchecked(&LINE, name).unwrap();
        match read(&mut ph, "CN", &forged) {
            // The leaf names `name` with CN's key, which is not `name`'s roster key.
            Err(MlsError::Leaf(why)) => assert!(why.contains(&format!("not {name}'s roster key")), "{why}"),
            other => panic!("{name}: {other:?}"),
        }
    }
    // Nothing was stored for PH's next commit: the group's members are who they were.
    let commit = ph.commit_proposals(&LINE, Vec::new()).unwrap();
    assert!(matches!(read(&mut cn, "PH", &commit.commit), Ok(Processed::Commit { .. })));
    assert_eq!(ph.members(&LINE), ["PH", "VN", "CN"]);
    assert_eq!(cn.members(&LINE), ["PH", "VN", "CN"]);
}

#[test]
fn a_commit_from_anyone_but_the_home_member_is_refused_whatever_its_leaf_says() {
    let (mut vn, mut cn) = (member("VN"), member("CN"));
    let _ph = line(&mut [&mut vn, &mut cn]);
    let before = vn.epoch(&LINE);
    // CN commits, its new leaf naming PH: its envelope is CN's, so VN refuses it unread.
    let rogue = cn.commit_unchecked(&LINE, Some("PH")).unwrap();
    assert_eq!(read(&mut vn, "CN", &rogue.commit), Err(MlsError::NotHome));
    // Carried under PH's name (which would take PH's signature on the envelope), the MLS sender
    // is still CN.
    match read(&mut vn, "PH", &rogue.commit) {
        Err(MlsError::SenderMismatch { claimed, actual }) => {
            assert_eq!((claimed.as_str(), actual.as_str()), ("PH", "CN"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(vn.epoch(&LINE), before, "a refused commit moved the epoch");
    assert_eq!(vn.members(&LINE), ["PH", "VN", "CN"]);
}

#[test]
fn a_home_commit_whose_update_path_renames_the_home_member_is_refused() {
    let mut cn = member("CN");
    let mut ph = line(&mut [&mut cn]);
    let before = cn.epoch(&LINE);
    let renamed = ph.commit_unchecked(&LINE, Some("VN")).unwrap();
    assert!(matches!(read(&mut cn, "PH", &renamed.commit), Err(MlsError::Leaf(_))));
    assert_eq!(cn.epoch(&LINE), before);
}

#[test]
fn an_envelope_that_names_another_epoch_than_its_message_is_refused_before_anything_is_spent() {
    let mut cn = member("CN");
    let mut ph = line(&mut [&mut cn]);
    let (epoch, secret) = ph.encrypt(&LINE, b"at its own epoch").unwrap();
    for claimed in [epoch + 1, epoch.wrapping_sub(1), u64::MAX] {
        match cn.process(&LINE, RULES, Claim { sender: "PH", epoch: claimed }, &secret, &roster) {
            Err(MlsError::EpochMismatch { claimed: c, actual }) => assert_eq!((c, actual), (claimed, epoch)),
            other => panic!("{claimed}: {other:?}"),
        }
    }
    // Nothing was spent: the message reads at its own epoch.
    assert_eq!(plaintext(read(&mut cn, "PH", &secret)), b"at its own epoch");
}

#[test]
fn a_message_carried_under_another_members_name_is_refused_and_still_reads_from_its_sender() {
    let (mut vn, mut cn) = (member("VN"), member("CN"));
    let mut ph = line(&mut [&mut vn, &mut cn]);
    // CN takes PH's message and sends it to VN in its own envelope, before PH's copy arrives.
    let (_, from_ph) = ph.encrypt(&LINE, b"PH's words").unwrap();
    match read(&mut vn, "CN", &from_ph) {
        Err(MlsError::SenderMismatch { claimed, actual }) => {
            assert_eq!((claimed.as_str(), actual.as_str()), ("CN", "PH"))
        }
        other => panic!("{other:?}"),
    }
    // PH's own envelope still brings it, also after VN's restart from its stored state:
    // decrypting it under CN's name did not make it unreadable.
    let stored = entries(&vn);
    let mut vn = LineMember::restore("VN", seed("VN"), MlsConfig::default(), stored, &[LINE]).unwrap();
    assert_eq!(plaintext(read(&mut vn, "PH", &from_ph)), b"PH's words");
    // And only once.
    assert!(read(&mut vn, "PH", &from_ph).is_err());
}

#[test]
fn a_direct_line_takes_no_commit_that_adds_a_member() {
    let mut cn = member("CN");
    let mut ph = line(&mut [&mut cn]);
    let before = cn.epoch(&LINE);
    let mut vn = member("VN");
    let addition = ph.add(&LINE, vec![key_package(&mut vn, &mut HashSet::new())], Vec::new()).unwrap();
    let direct = LineRules { home: "PH", direct: true };
    let claim = Claim { sender: "PH", epoch: message_epoch(&addition.commit).unwrap() };
    assert_eq!(cn.process(&LINE, direct, claim, &addition.commit, &roster), Err(MlsError::DirectLine));
    assert_eq!((cn.epoch(&LINE), cn.members(&LINE)), (before, vec!["PH".to_string(), "CN".to_string()]));
}

#[test]
fn a_key_package_a_welcome_used_is_named_once_and_an_unused_one_can_be_forgotten() {
    let mut cn = member("CN");
    let mut seen = HashSet::new();
    let bytes = cn.key_packages(2).unwrap();
    let refs: Vec<Vec<u8>> = bytes.iter().map(|b| adi_mls::key_package_reference(b).unwrap()).collect();
    assert!(refs.iter().all(|r| cn.holds_key_package(r)));
    let (_, kp) = check_key_package(&bytes[0], &roster, &mut seen).unwrap();
    let mut ph = member("PH");
    let out = ph.create_line(LINE, vec![kp]).unwrap();
    cn.join(out.welcome.as_ref().unwrap(), &roster).unwrap();
    // The Welcome used the first: its private key is gone, and it is named for deletion once.
    assert_eq!(cn.take_used_key_packages(), vec![refs[0].clone()]);
    assert!(cn.take_used_key_packages().is_empty());
    assert!(!cn.holds_key_package(&refs[0]));
    // The second, claimed and never used, is forgotten on request, and the delta says so.
    cn.delta().unwrap();
    cn.forget_key_packages(&refs[1..]).unwrap();
    assert!(!cn.holds_key_package(&refs[1]));
    assert!(!cn.delta().unwrap().delete.is_empty());
}

/// A member moves to a new signing key while its lines run: its messages read before and after,
/// a member's renewal is proposed and committed by the home member, the home member renews its
/// own by commit, a renewal is refused by a member whose roster does not give the new key yet,
/// and a member restored from its stored state with the new key still reads and writes.
#[test]
fn a_member_rotates_its_signing_key_and_its_lines_follow_it() {
    use adi_mls::Renewed;
    let mut vn = member("VN");
    let mut cn = member("CN");
    let mut tl = member("TL");
    let mut ph = line(&mut [&mut vn, &mut cn, &mut tl]);
    let mut stored = BTreeMap::new();
    apply(&mut stored, vn.delta().unwrap());
    let new_vn = [42u8; 32];
    let new_ph = [43u8; 32];
    let key_of = |seed: &[u8; 32]| ed25519_dalek::SigningKey::from_bytes(seed).verifying_key().to_bytes();
    // The roster once VN's new key took effect, and once PH's did too.
    let vn_rotated = move |code: &str| if code == "VN" { Some(key_of(&new_vn)) } else { roster(code) };
    let rotated = move |code: &str| if code == "PH" { Some(key_of(&new_ph)) } else { vn_rotated(code) };
    vn.rotate_signer(new_vn).unwrap();
    // Before its leaf is renewed, VN still signs on the line with the key its leaf carries.
    let (_, before) = vn.encrypt(&LINE, b"under the old leaf").unwrap();
    assert_eq!(plaintext(read(&mut ph, "VN", &before)), b"under the old leaf");
    assert_eq!(plaintext(read(&mut cn, "VN", &before)), b"under the old leaf");

    // VN proposes its renewed leaf. A member whose roster still gives VN its old key refuses it.
    let Renewed::Proposed(proposal) = vn.renew_leaf(&LINE, false, Vec::new()).unwrap() else { panic!("proposed") };
    let epoch = message_epoch(&proposal).unwrap();
    let refused = tl.process(&LINE, RULES, Claim { sender: "VN", epoch }, &proposal, &roster);
    assert!(matches!(refused, Err(MlsError::Leaf(_))), "{refused:?}");
    for m in [&mut ph, &mut cn] {
        let p = m.process(&LINE, RULES, Claim { sender: "VN", epoch }, &proposal, &vn_rotated).unwrap();
        assert!(matches!(p, Processed::Proposal { .. }), "{p:?}");
    }
    let commit = ph.commit_proposals(&LINE, Vec::new()).unwrap();
    let epoch = message_epoch(&commit.commit).unwrap();
    for m in [&mut vn, &mut cn] {
        let p = m.process(&LINE, RULES, Claim { sender: "PH", epoch }, &commit.commit, &vn_rotated).unwrap();
        assert!(matches!(p, Processed::Commit { .. }), "{p:?}");
    }
    let (_, after) = vn.encrypt(&LINE, b"under the new leaf").unwrap();
    assert_eq!(plaintext(read(&mut ph, "VN", &after)), b"under the new leaf");
    assert_eq!(plaintext(read(&mut cn, "VN", &after)), b"under the new leaf");
    assert!(matches!(vn.renew_leaf(&LINE, false, Vec::new()).unwrap(), Renewed::Current));

    // The home member renews its own leaf by commit.
    ph.rotate_signer(new_ph).unwrap();
    let Renewed::Committed(out) = ph.renew_leaf(&LINE, true, Vec::new()).unwrap() else { panic!("committed") };
    let epoch = message_epoch(&out.commit).unwrap();
    for m in [&mut vn, &mut cn] {
        let p = m.process(&LINE, RULES, Claim { sender: "PH", epoch }, &out.commit, &rotated).unwrap();
        assert!(matches!(p, Processed::Commit { .. }), "{p:?}");
    }
    let (_, from_ph) = ph.encrypt(&LINE, b"the home member's new leaf").unwrap();
    assert_eq!(plaintext(read(&mut vn, "PH", &from_ph)), b"the home member's new leaf");

    // VN restored from its stored state with its new key reads and writes on the line.
    apply(&mut stored, vn.delta().unwrap());
    let mut restored =
        LineMember::restore("VN", new_vn, MlsConfig::default(), stored.into_iter().collect(), &[LINE]).unwrap();
    let (_, again) = ph.encrypt(&LINE, b"to the restored member").unwrap();
    assert_eq!(
        plaintext(restored.process(
            &LINE,
            RULES,
            Claim { sender: "PH", epoch: message_epoch(&again).unwrap() },
            &again,
            &rotated
        )),
        b"to the restored member"
    );
    let (_, from_restored) = restored.encrypt(&LINE, b"from the restored member").unwrap();
    assert_eq!(plaintext(read(&mut cn, "VN", &from_restored)), b"from the restored member");
}
