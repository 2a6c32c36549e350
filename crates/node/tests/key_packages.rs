//! KeyPackages over federation: each node publishes a pool of one-time KeyPackages bound to its
//! roster key, hands each out at most once, refills the pool, and keeps their private keys across
//! restarts (sealed with the rest of its MLS state); a node takes a peer's KeyPackage into a
//! group once, and remembers that across restarts.

mod common;

use std::collections::HashSet;

use adi_core::MemberCode;
use adi_mls::{check_key_package, LineMember, MlsConfig};
use adi_node::fed::links::{check_claimed_key_package, claim_key_package_from, post_batch_once};
use adi_wire::batch::Verdict;
use adi_wire::envelope::{EnvelopeBody, CONTENT_MLS, CONTENT_MLS_SETUP, PRIORITY_CONTROL};
use adi_wire::files::RosterFile;
use adi_wire::payload::PayloadV1;
use adi_wire::{EnvelopeHash, LineId};
use common::{endpoint, keys_towards, Net};

fn roster_keys(net: &Net) -> impl Fn(&str) -> Option<[u8; 32]> {
    let text = std::fs::read_to_string(net.dir.path().join("roster.toml")).unwrap();
    let roster = RosterFile::from_toml(&text).unwrap();
    move |code: &str| {
        let m = roster.members.iter().find(|m| m.code == code)?;
        let mut key = [0u8; 32];
        hex::decode_to_slice(&m.signing_key, &mut key).ok()?;
        Some(key)
    }
}

#[allow(clippy::too_many_arguments)]
fn envelope(
    key: &ed25519_dalek::SigningKey,
    line: LineId,
    seq: u64,
    prev: EnvelopeHash,
    epoch: u64,
    content_type: u8,
    content_hash: [u8; 32],
    payload: Vec<u8>,
) -> Vec<u8> {
    let priority = if content_type == CONTENT_MLS_SETUP { PRIORITY_CONTROL } else { 4 };
    EnvelopeBody {
        line,
        sender: "PH".into(),
        seq,
        prev,
        epoch,
        created_ms: 1,
        priority,
        content_type,
        content_hash,
        payload,
    }
    .sign(key)
    .bytes()
    .to_vec()
}

async fn claim(net: &Net, from: &str, by: &str) -> Result<Vec<u8>, String> {
    let keys = keys_towards(net, by, from);
    claim_key_package_from(&endpoint(net, from), keys.tls, &MemberCode::parse(from).unwrap(), 5_000).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_hands_out_each_key_package_once_and_refills_its_pool() {
    let net = Net::start(&["PH", "CN"]).await;
    let pool = net.node("CN").state.runtime_limits.key_package_pool_len;
    assert_eq!(net.node("CN").state.store.key_packages_available().unwrap(), pool);
    let roster = roster_keys(&net);
    let mut seen = HashSet::new();
    let mut claimed = Vec::new();
    for _ in 0..pool + 3 {
        // A claim that finds the pool empty while it is being refilled is answered 503; try again.
        let mut bytes = claim(&net, "CN", "PH").await;
        for _ in 0..100 {
            match &bytes {
                Err(e) if e.contains("503") => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    bytes = claim(&net, "CN", "PH").await;
                }
                _ => break,
            }
        }
        let bytes = bytes.unwrap();
        let (member, _) = check_key_package(&bytes, &roster, &mut seen).expect("a valid KeyPackage of CN");
        assert_eq!(member, "CN");
        claimed.push(bytes);
    }
    // Every claim got a different KeyPackage; a replay of one is refused by the claimer.
    assert_eq!(claimed.iter().collect::<HashSet<_>>().len(), claimed.len());
    assert!(check_key_package(&claimed[0], &roster, &mut seen).is_err());
    // More were handed out than the pool held: it was refilled while being drained, and it is
    // topped up whenever it falls below half.
    assert!(claimed.len() as u64 > pool);
    common::eventually(std::time::Duration::from_secs(10), "the pool to stay at least half full", || async {
        (net.node("CN").state.store.key_packages_available().unwrap() * 2 >= pool).then_some(())
    })
    .await;
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claimed_key_package_still_opens_its_welcome_after_the_node_restarts() {
    let mut net = Net::start(&["PH", "CN"]).await;
    let roster = roster_keys(&net);
    let bytes = claim(&net, "CN", "PH").await.unwrap();
    let (_, key_package) = check_key_package(&bytes, &roster, &mut HashSet::new()).unwrap();
    net.stop_code("CN").await;
    net.start_code("CN").await;

    // PH's side of the line, made with PH's roster key, adds CN from the claimed KeyPackage and
    // sends CN the set-up with its Welcome, then a message on the line.
    let signing = adi_node::config::load_signing_key(&net.member_dir("PH").join("keys/signing.pem")).unwrap();
    let mut ph = LineMember::new("PH", signing.to_bytes(), MlsConfig::default()).unwrap();
    let line = LineId([5u8; 16]);
    let created = ph.create_line(line.0, vec![key_package]).unwrap();
    let setup = PayloadV1::LineSetup {
        v: 1,
        scope: "ADMM-Plus".into(),
        title: "restarted".into(),
        home: "PH".into(),
        members: vec!["CN".into(), "PH".into()],
        welcome: created.welcome.map(hex::encode),
    };
    let setup = envelope(&signing, line, 1, EnvelopeHash::NONE, 0, CONTENT_MLS_SETUP, [0; 32], setup.encode());
    let message = common::routine_payload("C", "after the restart");
    // Signed for its place in the line (PH's #2), then encrypted.
    let signed = adi_wire::content::SignedContent::sign(&signing, &line, "PH", 2, message.encode());
    let (epoch, ciphertext) = ph.encrypt(&line.0, &signed.encode()).unwrap();
    let setup_hash = adi_wire::Envelope::decode(&setup, 1 << 20, 1 << 20).unwrap().hash();
    let content_hash = signed.hash(&line, "PH", 2);
    let message = envelope(&signing, line, 2, setup_hash, epoch, CONTENT_MLS, content_hash, ciphertext);
    let keys = keys_towards(&net, "PH", "CN");
    let reply =
        post_batch_once(&endpoint(&net, "CN"), keys.tls, &MemberCode::parse("CN").unwrap(), &[&setup, &message], 5_000)
            .await
            .unwrap();
    assert_eq!(reply.verdicts, vec![Verdict::Accepted, Verdict::Accepted]);
    let at_cn = common::get_list(&net.client("CN"), &format!("/api/v1/lines/{}/messages", line.to_hex())).await;
    assert_eq!(at_cn[0]["subject"], "after the restart");
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpinned_client_gets_no_key_package() {
    let net = Net::start(&["PH", "CN"]).await;
    let stranger = adi_node::tls::generate_identity("PH").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.pem"), &stranger.cert_pem).unwrap();
    std::fs::write(dir.path().join("k.pem"), &stranger.key_pem).unwrap();
    let (cert, key) = adi_node::tls::load_identity(&dir.path().join("c.pem"), &dir.path().join("k.pem")).unwrap();
    let tls = adi_node::tls::federation_client_config(cert, key, common::pin_of(&net, "CN")).unwrap();
    let before = net.node("CN").state.store.key_packages_available().unwrap();
    let result = claim_key_package_from(
        &endpoint(&net, "CN"),
        std::sync::Arc::new(tls),
        &MemberCode::parse("CN").unwrap(),
        5_000,
    )
    .await;
    assert!(result.is_err());
    assert_eq!(net.node("CN").state.store.key_packages_available().unwrap(), before);
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_key_package_is_refused_also_after_the_claimer_restarts() {
    let mut net = Net::start(&["PH", "CN", "VN"]).await;
    let cn = MemberCode::parse("CN").unwrap();
    let bytes = claim(&net, "CN", "PH").await.unwrap();
    check_claimed_key_package(&net.node("PH").state, &cn, &bytes).await.expect("a fresh KeyPackage of CN");
    let again = check_claimed_key_package(&net.node("PH").state, &cn, &bytes).await.unwrap_err();
    assert!(again.contains("used already"), "{again}");
    // One member's KeyPackage offered as another's is refused.
    let other = claim(&net, "CN", "PH").await.unwrap();
    let vn = MemberCode::parse("VN").unwrap();
    let wrong = check_claimed_key_package(&net.node("PH").state, &vn, &other).await.unwrap_err();
    assert!(wrong.contains("not VN's"), "{wrong}");

    // PH's record of used KeyPackages is in its database: a restart does not forget it.
    net.stop_code("PH").await;
    net.start_code("PH").await;
    let after = check_claimed_key_package(&net.node("PH").state, &cn, &bytes).await.unwrap_err();
    assert!(after.contains("used already"), "{after}");
    let fresh = claim(&net, "CN", "PH").await.unwrap();
    check_claimed_key_package(&net.node("PH").state, &cn, &fresh).await.expect("a fresh KeyPackage of CN");
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_key_package_is_deleted_once_its_line_is_set_up_and_an_unused_claim_expires() {
    let mut net = Net::init(&["PH", "CN", "VN"]);
    // PH keeps a KeyPackage claimed from it and never used for a millisecond only.
    common::set_limits(&net, "PH", |l| l.key_package_claimed_ttl_ms = Some(1));
    for code in ["PH", "CN", "VN"] {
        net.start_code(code).await;
    }
    let claimed_at = |net: &Net, code: &str| {
        adi_store::Store::key_packages_claimed_before(net.node(code).state.store.as_ref(), u64::MAX).unwrap()
    };
    // CN's KeyPackage that PH claims to set the line up is gone from CN's store once CN joined.
    let ph = net.client("PH");
    let line = common::open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    let id = common::send(&ph, &line, "ROUTINE", "set up").await;
    common::wait_delivered(&ph, &id, std::time::Duration::from_secs(15)).await;
    assert!(claimed_at(&net, "CN").is_empty(), "CN still stores the KeyPackage its Welcome used");

    // VN claims three of PH's and uses none: once stale, PH deletes them with their private keys
    // whenever it tops its pool up (at the latest at its next start).
    for _ in 0..3 {
        claim(&net, "PH", "VN").await.unwrap();
    }
    net.stop_code("PH").await;
    net.start_code("PH").await;
    assert!(claimed_at(&net, "PH").is_empty(), "PH still stores KeyPackages claimed and never used");
    claim(&net, "PH", "VN").await.unwrap();
    net.stop_all().await;
}
