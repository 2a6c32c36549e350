//! A member's node turned hostile, against real nodes over real mutual TLS.
//!
//! The test stops a member's node and speaks for it: with its roster signing key, its node
//! certificate and its MLS state as its store holds them, it sends what modified code could
//! (a leaf naming another member, a proposal about another member, a commit it may not make, an
//! epoch or a sender that is not its message's, writing after its removal, a third member on a
//! direct line). Each is refused with its code, leaves the honest nodes' lines as they were, and
//! raises a `misconduct` alarm naming the member wherever the protocol can tell.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use adi_core::MemberCode;
use adi_mls::{LineMember, MlsConfig};
use adi_node::fed::links::{claim_key_package_from, post_batch_once};
use adi_node::NodeConfig;
use adi_store::Store;
use adi_wire::batch::{RefusalCode, Verdict};
use adi_wire::content::SignedContent;
use adi_wire::envelope::{EnvelopeBody, CONTENT_MLS, PRIORITY_CONTROL, PRIORITY_ROUTINE};
use adi_wire::payload::PayloadV1;
use adi_wire::{EnvelopeHash, LineId};
use common::{
    endpoint, eventually, get_list, keys_towards, misconduct, open_line, send, set_limits, wait_delivered, Net,
};
use ed25519_dalek::SigningKey;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

fn code(s: &str) -> MemberCode {
    MemberCode::parse(s).unwrap()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A member whose node the test has taken over.
struct Hostile {
    code: MemberCode,
    signing: SigningKey,
    mls: LineMember,
    /// The member's own chain head on each line.
    heads: HashMap<LineId, (u64, EnvelopeHash)>,
}

impl Hostile {
    /// Stops `member`'s node and speaks for it from now on, with its keys and its stored state.
    async fn take_over(net: &mut Net, member: &str) -> Hostile {
        net.stop_code(member).await;
        let config = NodeConfig::load(&net.config_path(member)).unwrap();
        let store = adi_node::state::open_store(&config).unwrap();
        let me = code(member);
        let restored = store.load(&me).unwrap();
        let lines: Vec<[u8; 16]> = restored.lines.iter().map(|l| l.id.0).collect();
        let seed = config.signing_key.to_bytes();
        let mls = LineMember::restore(member, seed, MlsConfig::default(), restored.mls_state, &lines).unwrap();
        let heads = restored.heads.iter().filter(|h| h.sender == me).map(|h| (h.line, (h.seq, h.hash))).collect();
        Hostile { code: me, signing: config.signing_key.clone(), mls, heads }
    }

    /// Signs this member's next envelope on `line`, carrying MLS bytes and naming `epoch`.
    fn envelope(&mut self, line: LineId, epoch: u64, priority: u8, content_hash: [u8; 32], mls: Vec<u8>) -> Vec<u8> {
        let (seq, prev) = self.heads.get(&line).copied().unwrap_or((0, EnvelopeHash::NONE));
        let body = EnvelopeBody {
            line,
            sender: self.code.to_string(),
            seq: seq + 1,
            prev,
            epoch,
            created_ms: now_ms(),
            priority,
            content_type: CONTENT_MLS,
            content_hash,
            payload: mls,
        };
        let envelope = body.sign(&self.signing);
        self.heads.insert(line, (seq + 1, envelope.hash()));
        envelope.bytes().to_vec()
    }

    /// An MLS proposal or commit, in an envelope naming the epoch it was made in.
    fn handshake(&mut self, line: LineId, mls: Vec<u8>) -> Vec<u8> {
        let epoch = adi_mls::message_epoch(&mls).unwrap();
        self.envelope(line, epoch, PRIORITY_CONTROL, [0; 32], mls)
    }

    /// A ROUTINE message signed and encrypted as a node seals one, in an envelope naming
    /// `claimed` as its epoch (its own when `None`).
    fn message(&mut self, line: LineId, subject: &str, claimed: Option<u64>) -> Vec<u8> {
        self.seal(line, common::routine_payload("ADMM-PLUS RESTRICTED", subject), claimed)
    }

    /// A ROUTINE envelope carrying `payload`, signed and encrypted as a node seals one, naming
    /// `claimed` as its epoch (its own when `None`).
    fn seal(&mut self, line: LineId, payload: PayloadV1, claimed: Option<u64>) -> Vec<u8> {
        let seq = self.heads.get(&line).map_or(0, |h| h.0) + 1;
        let signed = SignedContent::sign(&self.signing, &line, self.code.as_str(), seq, payload.encode());
        let content_hash = signed.hash(&line, self.code.as_str(), seq);
        let (epoch, ciphertext) = self.mls.encrypt(&line.0, &signed.encode()).unwrap();
        self.envelope(line, claimed.unwrap_or(epoch), PRIORITY_ROUTINE, content_hash, ciphertext)
    }

    /// Hands `to`'s node one envelope over a connection authenticated as this member's node.
    async fn deliver(&self, net: &Net, to: &str, bytes: &[u8]) -> Verdict {
        let keys = keys_towards(net, self.code.as_str(), to);
        let reply = post_batch_once(&endpoint(net, to), keys.tls, &code(to), &[bytes], 5_000).await.unwrap();
        reply.verdicts[0].clone()
    }
}

fn refused_with(verdict: &Verdict, expected: RefusalCode) -> bool {
    matches!(verdict, Verdict::Rejected { code, .. } if *code == expected)
}

async fn line_view(net: &Net, at: &str, line: &str) -> Value {
    net.client(at).call(Method::GET, &format!("/api/v1/lines/{line}"), None).await.unwrap()
}

async fn subjects(net: &Net, at: &str, line: &str) -> Vec<String> {
    get_list(&net.client(at), &format!("/api/v1/lines/{line}/messages?limit=1000"))
        .await
        .iter()
        .filter_map(|m| m["subject"].as_str().map(String::from))
        .collect()
}

/// A conference of PH (home), VN and CN that has carried one message to both.
async fn conference(net: &Net) -> (String, LineId) {
    let ph = net.client("PH");
    let line = open_line(&ph, &["PH", "VN", "CN"], "ADMM-Plus").await;
    let id = send(&ph, &line, "ROUTINE", "opening").await;
    wait_delivered(&ph, &id, WAIT).await;
    let line_id = LineId::from_hex(&line).unwrap();
    (line, line_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cannot_take_the_home_members_place_on_a_line() {
    let mut net = Net::start(&["PH", "VN", "CN"]).await;
    let (line, line_id) = conference(&net).await;
    let before = line_view(&net, "PH", &line).await;
    let mut cn = Hostile::take_over(&mut net, "CN").await;

    // CN proposes a fresh leaf that names PH, with CN's own key: the home member would commit it
    // at once, and CN's leaf would then pass for PH's.
    let forged = cn.mls.propose_update_as_unchecked(&line_id.0, "PH").unwrap();
    let envelope = cn.handshake(line_id, forged);
    let verdict = cn.deliver(&net, "PH", &envelope).await;
    assert!(refused_with(&verdict, RefusalCode::ForgedLeaf), "{verdict:?}");
    // Nor may CN propose VN's removal: only the home member removes others.
    let ousting = cn.mls.propose_remove_unchecked(&line_id.0, "VN").unwrap();
    let envelope = cn.handshake(line_id, ousting);
    let verdict = cn.deliver(&net, "PH", &envelope).await;
    assert!(refused_with(&verdict, RefusalCode::BadProposal), "{verdict:?}");

    // CN commits on its own, its leaf naming PH: VN refuses a commit from anyone but PH.
    let rogue = cn.mls.commit_unchecked(&line_id.0, Some("PH")).unwrap();
    let envelope = cn.handshake(line_id, rogue.commit);
    let verdict = cn.deliver(&net, "VN", &envelope).await;
    assert!(refused_with(&verdict, RefusalCode::NotHome), "{verdict:?}");

    // Nothing moved: the same epoch and members at both honest nodes, and each names CN.
    for at in ["PH", "VN"] {
        let now = line_view(&net, at, &line).await;
        assert_eq!((&now["epoch"], &now["members"]), (&before["epoch"], &before["members"]), "at {at}");
        let alarms = misconduct(&net, at, "CN").await;
        assert_eq!(alarms.len(), 1, "at {at}: {alarms:?}");
    }
    // The line goes on between the honest members.
    send(&net.client("PH"), &line, "ROUTINE", "still PH's line").await;
    let vn_subjects = eventually(WAIT, "PH's message at VN", || async {
        let s = subjects(&net, "VN", &line).await;
        s.contains(&"still PH's line".to_string()).then_some(s)
    })
    .await;
    assert!(vn_subjects.contains(&"opening".to_string()));
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_is_read_only_as_the_epoch_and_sender_of_what_it_carries() {
    let mut net = Net::start(&["PH", "VN", "CN"]).await;
    let (line, line_id) = conference(&net).await;
    let mut cn = Hostile::take_over(&mut net, "CN").await;
    // PH sends while VN's node is down, then goes down with the message queued for VN.
    net.stop_code("VN").await;
    let ph = net.client("PH");
    let id = send(&ph, &line, "ROUTINE", "PH's words").await;
    let (_, bytes) = common::envelope(&ph, &id).await;
    let phs = adi_wire::Envelope::decode(&bytes, 1 << 20, 1 << 20).unwrap();
    net.stop_code("PH").await;
    net.start_code("VN").await;

    // CN carries PH's MLS message in an envelope of its own, before PH's copy reaches VN.
    let epoch = phs.body().epoch;
    let rewrapped = cn.envelope(line_id, epoch, PRIORITY_ROUTINE, phs.body().content_hash, phs.body().payload.clone());
    let verdict = cn.deliver(&net, "VN", &rewrapped).await;
    assert!(refused_with(&verdict, RefusalCode::SenderMismatch), "{verdict:?}");
    // CN names an epoch its message is not of.
    let current = line_view(&net, "VN", &line).await["epoch"].as_u64().unwrap();
    assert!(current >= 1, "a conference of three starts past epoch 0");
    let lying = cn.message(line_id, "from another epoch", Some(current - 1));
    let verdict = cn.deliver(&net, "VN", &lying).await;
    assert!(refused_with(&verdict, RefusalCode::EpochMismatch), "{verdict:?}");
    // One open alarm names CN, counting the second attempt as a repeat.
    let alarms = misconduct(&net, "VN", "CN").await;
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    assert!(alarms[0]["repeats"].as_u64().unwrap() >= 1, "{alarms:?}");

    // PH's own envelope still reads at VN: CN's rewrapping did not spend it.
    net.start_code("PH").await;
    eventually(WAIT, "PH's message at VN", || async {
        subjects(&net, "VN", &line).await.contains(&"PH's words".to_string()).then_some(())
    })
    .await;
    let undecryptable: Vec<Value> = get_list(&net.client("VN"), "/api/v1/alarms")
        .await
        .into_iter()
        .filter(|a| a["kind"] == "undecryptable")
        .collect();
    assert!(undecryptable.is_empty(), "{undecryptable:?}");
    assert!(!subjects(&net, "VN", &line).await.contains(&"from another epoch".to_string()));
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_cannot_add_to_the_line_after_its_removal() {
    let mut net = Net::start(&["PH", "VN", "CN"]).await;
    let (line, line_id) = conference(&net).await;
    let mut cn = Hostile::take_over(&mut net, "CN").await;
    // PH takes CN off the line; CN's node never reads the commit.
    let removed = net.client("PH").call(Method::DELETE, &format!("/api/v1/lines/{line}/members/CN"), None).await;
    let epoch = removed.unwrap()["epoch"].as_u64().unwrap();
    eventually(WAIT, "the removal at VN", || async {
        (line_view(&net, "VN", &line).await["epoch"].as_u64() == Some(epoch)).then_some(())
    })
    .await;

    // CN writes at the epoch it still holds, well inside the window of past epochs: refused at
    // every honest node, and again after VN's node restarts.
    let after = cn.message(line_id, "after my removal", None);
    for at in ["VN", "PH"] {
        let verdict = cn.deliver(&net, at, &after).await;
        assert!(refused_with(&verdict, RefusalCode::Removed), "at {at}: {verdict:?}");
    }
    net.stop_code("VN").await;
    net.start_code("VN").await;
    let later = cn.message(line_id, "still writing", None);
    let verdict = cn.deliver(&net, "VN", &later).await;
    assert!(refused_with(&verdict, RefusalCode::Removed), "{verdict:?}");
    for at in ["VN", "PH"] {
        let s = subjects(&net, at, &line).await;
        assert!(!s.iter().any(|s| s == "after my removal" || s == "still writing"), "at {at}: {s:?}");
    }
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_line_takes_no_third_member() {
    let mut net = Net::start(&["PH", "VN", "CN"]).await;
    let ph = net.client("PH");
    let line = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    let id = send(&ph, &line, "ROUTINE", "between PH and CN").await;
    wait_delivered(&ph, &id, WAIT).await;
    let line_id = LineId::from_hex(&line).unwrap();
    // PH's own node refuses to add VN.
    let err = ph
        .call(Method::POST, &format!("/api/v1/lines/{line}/members"), Some(&json!({ "member": "VN" })))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(&StatusCode::CONFLICT.as_u16().to_string()) && err.contains("direct_line"), "{err}");

    // PH's node turned hostile adds VN all the same, from a KeyPackage claimed from VN's node.
    let mut hostile = Hostile::take_over(&mut net, "PH").await;
    let keys = keys_towards(&net, "PH", "VN");
    let kp = claim_key_package_from(&endpoint(&net, "VN"), keys.tls, &code("VN"), 5_000).await.unwrap();
    let roster = |member: &str| {
        let m = net.node("CN").state.roster_member(&MemberCode::parse(member).ok()?)?;
        Some(m.signing_key.to_bytes())
    };
    let (_, kp) = adi_mls::check_key_package(&kp, &roster, &mut HashSet::new()).unwrap();
    let before = line_view(&net, "CN", &line).await;
    let added = hostile.mls.add(&line_id.0, vec![kp], Vec::new()).unwrap();
    let envelope = hostile.handshake(line_id, added.commit);
    let verdict = hostile.deliver(&net, "CN", &envelope).await;
    assert!(refused_with(&verdict, RefusalCode::DirectLine), "{verdict:?}");
    let now = line_view(&net, "CN", &line).await;
    assert_eq!((&now["epoch"], &now["members"]), (&before["epoch"], &before["members"]));
    assert_eq!(misconduct(&net, "CN", "PH").await.len(), 1);
    net.stop_all().await;
}

/// Starts every node of a network written by [`Net::init`].
async fn start_all(net: &mut Net, codes: &[&str]) {
    for c in codes {
        net.start_code(c).await;
    }
}

/// The open `quota` alarms at a node naming `member`.
async fn quota(net: &Net, at: &str, member: &str) -> Vec<Value> {
    get_list(&net.client(at), "/api/v1/alarms")
        .await
        .into_iter()
        .filter(|a| a["kind"] == "quota" && a["member"] == member)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cannot_take_the_envelopes_a_node_holds_for_a_later_epoch() {
    let mut net = Net::start(&["PH", "VN", "CN"]).await;
    let (line, line_id) = conference(&net).await;
    let current = line_view(&net, "PH", &line).await["epoch"].as_u64().unwrap();
    let mut cn = Hostile::take_over(&mut net, "CN").await;
    let mut vn = Hostile::take_over(&mut net, "VN").await;
    let per_sender_max = adi_engine::EngineLimits::default().held_per_sender_max;

    // CN floods PH with envelopes claiming the next epoch (their commit would come later): PH
    // holds its share, then refuses the rest over CN's quota.
    let flood: Vec<Vec<u8>> = (0..=per_sender_max)
        .map(|i| cn.envelope(line_id, current + 1, PRIORITY_ROUTINE, [0; 32], vec![i as u8]))
        .collect();
    let keys = keys_towards(&net, "CN", "PH");
    let refs: Vec<&[u8]> = flood.iter().map(Vec::as_slice).collect();
    let reply = post_batch_once(&endpoint(&net, "PH"), keys.tls, &code("PH"), &refs, 10_000).await.unwrap();
    let held =
        reply.verdicts.iter().filter(|v| matches!(v, Verdict::Deferred { code: RefusalCode::EpochAhead, .. })).count();
    assert_eq!(held as u64, per_sender_max, "{:?}", reply.verdicts.last());
    let last = reply.verdicts.last().unwrap();
    assert!(matches!(last, Verdict::Deferred { code: RefusalCode::OverQuota, .. }), "{last:?}");
    assert_eq!(quota(&net, "PH", "CN").await.len(), 1);

    // An epoch far ahead (the last there is) holds no slot at all.
    let far = cn.envelope(line_id, u64::MAX, PRIORITY_ROUTINE, [0; 32], vec![1]);
    let verdict = cn.deliver(&net, "PH", &far).await;
    match &verdict {
        Verdict::Deferred { code: RefusalCode::EpochAhead, reason } => {
            assert!(reason.contains("held_epochs_ahead_max"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // VN, honest, still has an envelope of the next epoch held.
    let next = vn.envelope(line_id, current + 1, PRIORITY_ROUTINE, [0; 32], vec![2]);
    match vn.deliver(&net, "PH", &next).await {
        Verdict::Deferred { code: RefusalCode::EpochAhead, reason } => {
            assert!(reason.contains("held here"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cannot_take_a_nodes_key_packages_from_the_others() {
    let mut net = Net::init(&["PH", "VN", "CN"]);
    set_limits(&net, "PH", |l| l.key_package_claims_per_hour_max = Some(5));
    start_all(&mut net, &["PH", "VN", "CN"]).await;
    let claim = |from: &'static str| {
        let keys = keys_towards(&net, from, "PH");
        let endpoint = endpoint(&net, "PH");
        async move { claim_key_package_from(&endpoint, keys.tls, &code("PH"), 5_000).await }
    };
    for i in 0..5 {
        claim("CN").await.unwrap_or_else(|e| panic!("claim {i}: {e}"));
    }
    let refused = claim("CN").await.unwrap_err();
    assert!(refused.contains("429") && refused.contains("over_quota"), "{refused}");
    assert_eq!(quota(&net, "PH", "CN").await.len(), 1);
    // VN's claims are VN's own share: unaffected.
    claim("VN").await.unwrap();
    // And PH still sets up a line with VN.
    let ph = net.client("PH");
    let line = open_line(&ph, &["PH", "VN"], "ADMM").await;
    let id = send(&ph, &line, "ROUTINE", "after CN's claims").await;
    wait_delivered(&ph, &id, WAIT).await;
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cannot_fill_a_nodes_lines() {
    let mut net = Net::init(&["PH", "VN", "CN"]);
    set_limits(&net, "CN", |l| l.lines_per_peer_per_day_max = Some(2));
    start_all(&mut net, &["PH", "VN", "CN"]).await;
    let ph = net.client("PH");
    // PH brings CN onto two conferences in a day, then a third: CN defers the third set-up.
    for title in ["first", "second", "third"] {
        let v = ph
            .call(
                Method::POST,
                "/api/v1/lines",
                Some(&json!({ "members": ["PH", "VN", "CN"], "scope": "ADMM-Plus", "title": title })),
            )
            .await
            .unwrap();
        assert!(v["id"].is_string(), "{v}");
    }
    let titles = |at: &'static str| {
        let c = net.client(at);
        async move {
            get_list(&c, "/api/v1/lines")
                .await
                .iter()
                .filter_map(|l| l["title"].as_str().map(String::from))
                .collect::<Vec<_>>()
        }
    };
    eventually(WAIT, "three lines at VN", || async { (titles("VN").await.len() == 3).then_some(()) }).await;
    let at_cn = eventually(WAIT, "PH's quota alarm at CN", || async {
        (!quota(&net, "CN", "PH").await.is_empty()).then_some(titles("CN").await)
    })
    .await;
    assert_eq!(at_cn.len(), 2, "{at_cn:?}");
    // VN, whose share is its own, still brings CN onto a line.
    let vn = net.client("VN");
    let line = open_line(&vn, &["VN", "CN"], "ADMM-Plus").await;
    let id = send(&vn, &line, "ROUTINE", "VN's own line").await;
    wait_delivered(&vn, &id, WAIT).await;
    net.stop_all().await;
}

/// A member's node that sends a flood of file chunks (belonging to no file, so its own quota of
/// files sent cannot stop it) fills no disk: past `peer_bytes_per_day_max` the receiving node
/// defers the rest before reading them, so that nothing of them is spent and the sender's node
/// would send them again later; a `quota` alarm names it; another member's envelopes go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cannot_fill_a_nodes_disk_with_chunks() {
    use base64::Engine as _;
    const MOST: u64 = 1_000_000;
    let mut net = Net::init(&["PH", "VN", "CN"]);
    set_limits(&net, "PH", |l| l.peer_bytes_per_day_max = Some(MOST));
    start_all(&mut net, &["PH", "VN", "CN"]).await;
    let (line, line_id) = conference(&net).await;
    let mut cn = Hostile::take_over(&mut net, "CN").await;
    let mut chunk = |index: u64| {
        let payload = PayloadV1::Chunk {
            v: 1,
            message: EnvelopeHash([7; 32]).to_string(),
            file: hex::encode([8u8; 32]),
            index,
            data: base64::engine::general_purpose::STANDARD.encode(vec![index as u8; 90 * 1024]),
        };
        cn.seal(line_id, payload, None)
    };
    let flood: Vec<Vec<u8>> = (0..20).map(&mut chunk).collect();
    let mut verdicts = Vec::new();
    for envelope in &flood {
        verdicts.push(cn.deliver(&net, "PH", envelope).await);
    }
    let taken = verdicts.iter().take_while(|v| matches!(v, Verdict::Accepted)).count();
    let bytes: u64 = flood[..taken].iter().map(|e| e.len() as u64).sum();
    assert!(bytes <= MOST && bytes + flood[taken].len() as u64 > MOST, "{taken} taken, {bytes} bytes");
    for v in &verdicts[taken..] {
        match v {
            Verdict::Deferred { code: RefusalCode::OverQuota, reason } => {
                assert!(reason.contains("peer_bytes_per_day_max"), "{reason}")
            }
            other => panic!("past the quota: {other:?}"),
        }
    }
    let alarms = quota(&net, "PH", "CN").await;
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    assert!(alarms[0]["detail"].as_str().unwrap().contains("bytes of envelopes"), "{alarms:?}");
    // Deferred means not spent: the same envelope is deferred again, not refused as read twice.
    let again = cn.deliver(&net, "PH", &flood[taken]).await;
    assert!(matches!(again, Verdict::Deferred { code: RefusalCode::OverQuota, .. }), "{again:?}");
    // VN's share is its own: its message reaches PH.
    let vn = net.client("VN");
    send(&vn, &line, "ROUTINE", "VN, after CN's flood").await;
    eventually(WAIT, "VN's message at PH", || async {
        subjects(&net, "PH", &line).await.iter().any(|s| s == "VN, after CN's flood").then_some(())
    })
    .await;
    // Restarted, PH still counts what CN sent today.
    net.stop_code("PH").await;
    net.start_code("PH").await;
    let after = cn.deliver(&net, "PH", &flood[taken]).await;
    assert!(matches!(after, Verdict::Deferred { code: RefusalCode::OverQuota, .. }), "after a restart: {after:?}");
    net.stop_all().await;
}

/// A member's node that sends a file whose chunks are not the file its message signed: the file
/// is never served (`corrupt`), and once its last chunk is in, a `misconduct` alarm names the
/// member, whichever came first, the message or its chunks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_whose_chunks_are_not_what_its_message_signed_raises_an_alarm() {
    use base64::Engine as _;
    use sha2::Digest;
    let mut net = Net::start(&["PH", "VN", "CN"]).await;
    let (line, line_id) = conference(&net).await;
    let mut cn = Hostile::take_over(&mut net, "CN").await;
    let signed = b"The chart as signed".to_vec();
    let sent = b"The chart as SIGNED".to_vec();
    let sha = hex::encode(sha2::Sha256::digest(&signed));
    let file = adi_wire::payload::AttachmentRef {
        sha256: sha.clone(),
        name: "chart.pdf".into(),
        media_type: "application/pdf".into(),
        size: signed.len() as u64,
        chunks: 1,
    };
    let mut payload = common::routine_payload("ADMM-PLUS RESTRICTED", "The chart");
    if let PayloadV1::Message { attachments, .. } = &mut payload {
        attachments.push(file);
    }
    let message = cn.seal(line_id, payload, None);
    let id = cn.heads[&line_id].1;
    let payload = PayloadV1::Chunk {
        v: 1,
        message: id.to_string(),
        file: sha.clone(),
        index: 0,
        data: base64::engine::general_purpose::STANDARD.encode(&sent),
    };
    let chunk = cn.seal(line_id, payload, None);
    // At VN the chunk comes first, at PH the message: both judge the file once it is whole.
    for (to, first, second) in [("PH", &message, &chunk), ("VN", &chunk, &message)] {
        for envelope in [first, second] {
            let verdict = cn.deliver(&net, to, envelope).await;
            assert!(matches!(verdict, Verdict::Accepted), "{to}: {verdict:?}");
        }
        let alarm =
            eventually(WAIT, "the misconduct alarm", || async { misconduct(&net, to, "CN").await.into_iter().next() })
                .await;
        let detail = alarm["detail"].as_str().unwrap();
        assert!(detail.contains(&id.to_string()) && detail.contains("do not make the file"), "{to}: {alarm}");
        let path = format!("/api/v1/messages/{id}/attachments/{sha}");
        let (status, v) = net.client(to).request(Method::GET, &path, None).await.unwrap();
        assert_eq!((status, v["error"].as_str()), (StatusCode::CONFLICT, Some("corrupt")), "{to}: {v}");
    }
    // More chunks of the judged file, again for its place and past its count, make no more work:
    // the file is not put together again (the alarm would count a repeat if it were).
    for index in [0, 0, 5, 9] {
        let payload = PayloadV1::Chunk {
            v: 1,
            message: id.to_string(),
            file: sha.clone(),
            index,
            data: base64::engine::general_purpose::STANDARD.encode(&sent),
        };
        let again = cn.seal(line_id, payload, None);
        let verdict = cn.deliver(&net, "PH", &again).await;
        assert!(matches!(verdict, Verdict::Accepted), "{verdict:?}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let alarms = misconduct(&net, "PH", "CN").await;
    assert_eq!((alarms.len(), &alarms[0]["repeats"]), (1, &json!(0)), "{alarms:?}");
    // An honest file raises nothing: PH sends one on the line, and VN holds it, whole.
    let ph = net.client("PH");
    let (status, _, up) = ph
        .request_typed(Method::POST, "/api/v1/attachments?name=honest.pdf", "application/pdf", signed.clone())
        .await
        .unwrap();
    assert_eq!(status, StatusCode::CREATED);
    let up: Value = serde_json::from_slice(&up).unwrap();
    let body =
        json!({"precedence": "ROUTINE", "subject": "An honest chart", "body": "b", "attachments": [up["sha256"]]});
    let sent = ph.call(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&body)).await.unwrap();
    let honest = sent["id"].as_str().unwrap().to_string();
    let vn = net.client("VN");
    eventually(WAIT, "the honest file whole at VN", || async {
        let m = vn.call(Method::GET, &format!("/api/v1/messages/{honest}"), None).await.ok()?;
        (m["attachments"][0]["held"] == 1).then_some(())
    })
    .await;
    let path = format!("/api/v1/messages/{honest}/attachments/{}", up["sha256"].as_str().unwrap());
    let (status, _, got) = vn.request_full(Method::GET, &path, None).await.unwrap();
    assert_eq!((status, got.to_vec()), (StatusCode::OK, signed));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(misconduct(&net, "VN", "PH").await, Vec::<Value>::new());
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelopes_held_for_a_later_epoch_expire_and_free_their_sender_s_share() {
    let mut net = Net::init(&["PH", "VN", "CN"]);
    set_limits(&net, "PH", |l| {
        l.held_per_sender_max = Some(2);
        l.held_expiry_ms = Some(1_000);
    });
    start_all(&mut net, &["PH", "VN", "CN"]).await;
    let (line, line_id) = conference(&net).await;
    let current = line_view(&net, "PH", &line).await["epoch"].as_u64().unwrap();
    let mut cn = Hostile::take_over(&mut net, "CN").await;
    let mut next = |n: u8| cn.envelope(line_id, current + 1, PRIORITY_ROUTINE, [0; 32], vec![n]);
    let envelopes: Vec<Vec<u8>> = (0..4).map(&mut next).collect();
    let deliver = |bytes: Vec<u8>| {
        let keys = keys_towards(&net, "CN", "PH");
        let endpoint = endpoint(&net, "PH");
        async move { post_batch_once(&endpoint, keys.tls, &code("PH"), &[&bytes], 5_000).await.unwrap().verdicts.remove(0) }
    };
    let held = |v: &Verdict| matches!(v, Verdict::Deferred { code: RefusalCode::EpochAhead, .. });
    assert!(held(&deliver(envelopes[0].clone()).await));
    assert!(held(&deliver(envelopes[1].clone()).await));
    let over = deliver(envelopes[2].clone()).await;
    assert!(matches!(over, Verdict::Deferred { code: RefusalCode::OverQuota, .. }), "{over:?}");
    // Once the first two have been held longer than held_expiry_ms, they are dropped and CN's
    // share is free again.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let again = deliver(envelopes[3].clone()).await;
    assert!(held(&again), "{again:?}");
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelopes_content_hash_cannot_be_matched_to_a_guess_of_its_content() {
    let mut net = Net::start(&["PH", "VN", "CN"]).await;
    let (line, line_id) = conference(&net).await;
    // A message PH sent: anyone holding its envelope and guessing its content exactly (here, the
    // test, which knows it) cannot confirm the guess from the hash the envelope names.
    let ph = net.client("PH");
    let id = send(&ph, &line, "ROUTINE", "guess me").await;
    let (view, bytes) = common::envelope(&ph, &id).await;
    let envelope = adi_wire::Envelope::decode(&bytes, 1 << 20, 1 << 20).unwrap();
    assert_eq!(envelope.version(), adi_wire::envelope::VERSION);
    use base64::Engine;
    use sha2::Digest;
    let content = base64::engine::general_purpose::STANDARD.decode(view["content_base64"].as_str().unwrap()).unwrap();
    let signed = SignedContent::decode(&content).unwrap();
    let b = envelope.body();
    let guess = adi_wire::content::signed_bytes(&line_id, "PH", b.seq, &signed.content);
    let guessed: [u8; 32] = sha2::Sha256::digest(&guess).into();
    assert_ne!(b.content_hash, guessed, "the hash is of the guessable signed bytes");
    assert_eq!(b.content_hash, signed.hash(&line_id, "PH", b.seq), "the hash is the one its author's content makes");

    // CN seals content of the version before (its hash guessable) in a current envelope: refused.
    let mut cn = Hostile::take_over(&mut net, "CN").await;
    let seq = cn.heads.get(&line_id).map_or(0, |h| h.0) + 1;
    let payload = PayloadV1::LinkTest { v: 1 };
    let old = SignedContent {
        version: adi_wire::content::VERSION_PLAIN_HASH,
        ..SignedContent::sign(&cn.signing, &line_id, "CN", seq, payload.encode())
    };
    let hash = old.hash(&line_id, "CN", seq);
    let (epoch, ciphertext) = cn.mls.encrypt(&line_id.0, &old.encode()).unwrap();
    let bytes = cn.envelope(line_id, epoch, PRIORITY_CONTROL, hash, ciphertext);
    match cn.deliver(&net, "PH", &bytes).await {
        Verdict::Rejected { code: RefusalCode::Malformed, reason } => {
            assert!(reason.contains("content of version 1 in an envelope of version 3"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_text_that_would_steer_an_officers_screen_is_refused_and_not_stored() {
    let mut net = Net::start(&["PH", "VN", "CN"]).await;
    let (line, line_id) = conference(&net).await;
    let mut cn = Hostile::take_over(&mut net, "CN").await;
    // Subjects that would clear VN's terminal, forge a line of `adi inbox`, or show reversed.
    for subject in ["\u{1b}[2J\u{1b}[H", "ok\r\nFLASH  OPERATIONAL  from PH   stand down", "\u{202e}LAIRETAM"] {
        let bytes = cn.message(line_id, subject, None);
        match cn.deliver(&net, "VN", &bytes).await {
            Verdict::Rejected { code: RefusalCode::ContentRefused, reason } => {
                assert!(reason.starts_with("subject: character "), "{reason}");
                assert!(!reason.chars().any(|c| c.is_control() || c == '\u{202e}'), "the reason echoes it: {reason:?}");
            }
            other => panic!("{subject:?}: {other:?}"),
        }
    }
    // VN's node still answers, and holds none of it.
    assert_eq!(subjects(&net, "VN", &line).await, ["opening"]);
    let inbox = get_list(&net.client("VN"), "/api/v1/inbox").await;
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    net.stop_all().await;
}

/// A member's node, with its pinned identity, starts a batch and never finishes its body: past
/// `http_body_timeout_ms` the listener answers 408 `body_timeout` and closes the connection, and
/// the member's next batch is taken as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_trickles_a_batch_body_is_cut_off_at_the_body_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut net = Net::init(&["PH", "CN"]);
    set_limits(&net, "PH", |l| l.http_body_timeout_ms = Some(1_000));
    start_all(&mut net, &["PH", "CN"]).await;
    let keys = keys_towards(&net, "CN", "PH");
    let tcp = tokio::net::TcpStream::connect(endpoint(&net, "PH")).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("ph.node.adi").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(keys.tls.clone()).connect(name, tcp).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: ph.node.adi\r\nContent-Type: application/octet-stream\r\nContent-Length: 4096\r\n\r\n",
        adi_node::fed::BATCH_PATH
    );
    let started = std::time::Instant::now();
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(&[0u8; 16]).await.unwrap();
    tls.flush().await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the connection is closed, not held");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"body_timeout\""), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(900), "answered after {:?}", started.elapsed());
    // CN's node still talks to PH's as before.
    let ph = net.client("PH");
    let line = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    let id = send(&ph, &line, "FLASH", "after the trickle").await;
    wait_delivered(&ph, &id, Duration::from_secs(30)).await;
    net.stop_all().await;
}
