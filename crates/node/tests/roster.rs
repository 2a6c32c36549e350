//! A hostile member and the roster: what one member's node hands over in a roster exchange is
//! checked like everything else it sends. A proposal altered after signing, or signed by a key
//! that is not the signer's, is refused whole and raises a `misconduct` alarm naming the member;
//! a proposal that lacks the signatures its rule asks is kept and never takes effect; past the
//! named limits an exchange is refused; bad bytes get a clear error and change nothing.

mod common;

use adi_core::amendment;
use adi_core::{MemberCode, Roster};
use adi_node::fed::links::post_once;
use adi_node::fed::roster::{offer, Exchange, ExchangeReply, Offered, Source};
use adi_node::fed::ROSTER_PATH;
use common::{endpoint, get_list, keys_towards, misconduct, Net};
use ed25519_dalek::SigningKey;

fn code(s: &str) -> MemberCode {
    MemberCode::parse(s).unwrap()
}

/// Posts an exchange to `to`'s node over a connection authenticated as `from`'s node.
async fn exchange(net: &Net, from: &str, to: &str, body: Vec<u8>) -> Result<ExchangeReply, String> {
    let keys = keys_towards(net, from, to);
    let bytes = post_once(&endpoint(net, to), keys.tls, &code(to), ROSTER_PATH, body, 5_000).await?;
    Ok(serde_json::from_slice(&bytes).unwrap())
}

/// The roster in force at a node, and the version file proposing `change` of it, signed by
/// `signers`.
fn proposal(
    net: &Net,
    at: &str,
    change: impl FnOnce(&mut adi_wire::files::RosterFile),
    signers: &[(&str, &SigningKey)],
) -> adi_wire::files::RosterVersionFile {
    let book = net.node(at).state.roster_book();
    let mut file = book.current.roster.to_file();
    change(&mut file);
    let roster = Roster::from_file(&file).unwrap();
    let (mut v, hash) = amendment::propose(&book.current, &roster);
    for (m, key) in signers {
        v.signatures.push(amendment::sign(&code(m), key, &hash));
    }
    v
}

fn body(proposals: Vec<adi_wire::files::RosterVersionFile>) -> Vec<u8> {
    serde_json::to_vec(&Exchange { number: 1, proposals }).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_or_altered_proposal_is_refused_with_an_alarm_and_one_lacking_signatures_never_takes_effect() {
    let net = Net::start(&["PH", "VN", "CN"]).await;
    let cn_key = keys_towards(&net, "CN", "PH").signing;
    let ph = net.node("PH").state.clone();

    // China proposes to suspend the Philippines, signed by itself only: kept, lacking every
    // ASEAN signature but the one it cannot have, and not in force.
    let lacking = proposal(&net, "PH", |f| f.suspended.push("PH".into()), &[("CN", &cn_key)]);
    let reply = exchange(&net, "CN", "VN", body(vec![lacking.clone()])).await.unwrap();
    assert_eq!(reply.versions.len(), 0);
    let kept = get_list(&net.client("VN"), "/api/v1/roster/proposals").await;
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0]["lacking"].as_str().unwrap().contains("every ASEAN member must sign; missing: VN"), "{kept:?}");
    assert_eq!(kept[0]["signed_by"], serde_json::json!(["CN"]));
    // Handed over again, it changes nothing.
    let again = offer(&net.node("VN").state, Source::Peer(code("CN")), lacking.clone()).await.unwrap();
    assert_eq!(again, Offered::Kept { added: 0 });
    assert!(misconduct(&net, "VN", "CN").await.is_empty());

    // The same proposal altered after signing: China's signature no longer verifies.
    let mut altered = proposal(&net, "PH", |f| f.suspended.push("VN".into()), &[("CN", &cn_key)]);
    altered.roster.suspended = vec!["PH".into(), "VN".into()];
    exchange(&net, "CN", "PH", body(vec![altered])).await.unwrap();
    // A signature in the Philippines' name by China's key.
    let forged = proposal(&net, "PH", |f| f.suspended.push("VN".into()), &[("PH", &cn_key)]);
    exchange(&net, "CN", "PH", body(vec![forged])).await.unwrap();
    let alarms = misconduct(&net, "PH", "CN").await;
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    let detail = alarms[0]["detail"].as_str().unwrap();
    assert!(detail.contains("roster version 2 refused"), "{detail}");
    // Nothing of them is kept, and the roster in force did not move anywhere.
    let at_ph = ph.roster_book();
    assert!(at_ph.proposals.iter().all(|p| p.roster.suspended != vec!["PH".to_string(), "VN".to_string()]));
    for m in ["PH", "VN", "CN"] {
        assert_eq!(net.node(m).state.roster_book().current.number, 1, "{m}");
    }

    // However long the nodes exchange, the lacking proposal stays a proposal.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    for m in ["PH", "VN"] {
        let book = net.node(m).state.roster_book();
        assert_eq!(book.current.number, 1, "{m}");
        assert_eq!(book.proposals.len(), 1, "{m}: {:?}", book.proposals);
    }

    // Past the named limit of proposals in one exchange: refused whole, nothing kept.
    let max = ph.runtime_limits.roster_proposals_max;
    let many: Vec<_> =
        (0..=max).map(|i| proposal(&net, "PH", |f| f.name = format!("network {i}"), &[("CN", &cn_key)])).collect();
    let why = exchange(&net, "CN", "PH", body(many)).await.unwrap_err();
    assert!(why.contains("roster_limit"), "{why}");
    // One member fills at most its share of the proposals a node keeps: China's fifth is refused,
    // and another member still proposes.
    let five: Vec<_> =
        (0..5).map(|i| proposal(&net, "PH", |f| f.name = format!("China's network {i}"), &[("CN", &cn_key)])).collect();
    exchange(&net, "CN", "PH", body(five)).await.unwrap();
    let of = |who: &str| {
        ph.roster_book().proposals.iter().filter(|p| p.signatures.first().is_some_and(|s| s.member == who)).count()
    };
    assert_eq!(of("CN"), ph.runtime_limits.roster_proposals_per_member_max);
    let ph_key = keys_towards(&net, "PH", "VN").signing;
    let own = proposal(&net, "PH", |f| f.name = "the Philippines' proposal".into(), &[("PH", &ph_key)]);
    let kept = offer(&ph, Source::Operator("admin".into()), own).await.unwrap();
    assert_eq!(kept, Offered::Kept { added: 1 });
    assert_eq!(of("PH"), 1);
    // A proposal nobody signed is not kept.
    let unsigned = proposal(&net, "PH", |f| f.name = "nobody's".into(), &[]);
    assert!(offer(&ph, Source::Peer(code("CN")), unsigned).await.is_err());
    let kept_at_ph = ph.roster_book().proposals;
    // Bad bytes: a clear error, nothing changed.
    let why = exchange(&net, "CN", "PH", b"{\"number\": \"one\"}".to_vec()).await.unwrap_err();
    assert!(why.contains("malformed_exchange"), "{why}");
    assert_eq!(ph.roster_book().proposals, kept_at_ph);
}

/// A member's key retired by rotation (the version signed by its old key and its new one): what
/// its node still signs under the old key is taken, at a node that applied the rotation while it
/// ran and at one restarted since. Once the members replace the key without its old key's
/// signature, nothing signed under any of its old keys is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_retired_by_rotation_is_still_taken_and_one_replaced_is_not() {
    let mut net = Net::start(&["PH", "VN", "CN"]).await;
    let cn = net.client("CN");
    let line = common::open_line(&cn, &["CN", "PH"], "ADMM-Plus").await;
    common::eventually(std::time::Duration::from_secs(30), "the line at PH's node", || async {
        net.client("PH").call(hyper::Method::GET, &format!("/api/v1/lines/{line}"), None).await.ok()
    })
    .await;
    let cn_key = keys_towards(&net, "CN", "PH").signing;
    let rotated_key = SigningKey::from_bytes(&[77; 32]);
    let set_key = |k: &SigningKey| {
        let hex_key = hex::encode(k.verifying_key().as_bytes());
        move |f: &mut adi_wire::files::RosterFile| {
            f.members.iter_mut().find(|m| m.code == "CN").unwrap().signing_key = hex_key.clone();
        }
    };
    let rotation = proposal(&net, "PH", set_key(&rotated_key), &[("CN", &cn_key), ("CN", &rotated_key)]);
    exchange(&net, "CN", "PH", body(vec![rotation])).await.unwrap();
    assert_eq!(net.node("PH").state.roster_book().current.number, 2);

    // CN's node still signs under its old key: PH takes it, now and after a restart.
    let first = common::send(&cn, &line, "ROUTINE", "under the rotated key").await;
    common::wait_delivered(&cn, &first, std::time::Duration::from_secs(30)).await;
    net.stop_code("PH").await;
    net.start_code("PH").await;
    let second = common::send(&cn, &line, "ROUTINE", "after PH's restart").await;
    common::wait_delivered(&cn, &second, std::time::Duration::from_secs(30)).await;

    // The members replace CN's key without its old key: PH and VN (every ASEAN member) and the
    // new key sign. What CN's node signs under its old keys is refused from then on.
    let ph_key = keys_towards(&net, "PH", "VN").signing;
    let vn_key = keys_towards(&net, "VN", "PH").signing;
    let replacing = SigningKey::from_bytes(&[78; 32]);
    let replacement =
        proposal(&net, "PH", set_key(&replacing), &[("PH", &ph_key), ("VN", &vn_key), ("CN", &replacing)]);
    exchange(&net, "VN", "PH", body(vec![replacement])).await.unwrap();
    assert_eq!(net.node("PH").state.roster_book().current.number, 3);
    let third = common::send(&cn, &line, "ROUTINE", "under a replaced key").await;
    common::eventually(std::time::Duration::from_secs(30), "PH's refusal", || async {
        let m = cn.call(hyper::Method::GET, &format!("/api/v1/messages/{third}"), None).await.ok()?;
        let r = m["recipients"].as_array()?.first()?.clone();
        (r["state"] == "refused").then_some(r)
    })
    .await;
    assert!(net.client("PH").call(hyper::Method::GET, &format!("/api/v1/messages/{third}"), None).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_tls_key_is_admitted_while_the_overlap_lasts_and_not_after_it_nor_after_a_replacement() {
    let mut net = Net::init(&["PH", "VN", "CN"]);
    common::set_limits(&net, "PH", |l| l.rotation_overlap_ms = Some(4_000));
    for c in ["PH", "VN", "CN"] {
        net.start_code(c).await;
    }
    let cn_key = keys_towards(&net, "CN", "PH").signing;
    let old_pin = common::pin_of(&net, "CN");
    let rotated = SigningKey::from_bytes(&[91; 32]);
    let new_pin = [5u8; 32];
    let set_entry = |key: &SigningKey, pin: [u8; 32]| {
        let key = hex::encode(key.verifying_key().as_bytes());
        move |f: &mut adi_wire::files::RosterFile| {
            let m = f.members.iter_mut().find(|m| m.code == "CN").unwrap();
            m.signing_key = key.clone();
            m.tls_pin = hex::encode(pin);
        }
    };
    // CN rotates its signing and TLS keys (its old and new keys sign); its node, which moves only
    // once every peer holds the version, still presents its old TLS key.
    let rotation = proposal(&net, "PH", set_entry(&rotated, new_pin), &[("CN", &cn_key), ("CN", &rotated)]);
    exchange(&net, "CN", "PH", body(vec![rotation])).await.unwrap();
    assert_eq!(net.node("PH").state.roster_book().current.number, 2);
    assert_eq!(net.node("PH").state.roster_member_by_pin(&old_pin), Some(code("CN")));
    exchange(&net, "CN", "PH", body(vec![])).await.expect("CN's old TLS key admitted during the overlap");
    net.stop_code("PH").await;
    net.start_code("PH").await;
    exchange(&net, "CN", "PH", body(vec![]))
        .await
        .expect("CN's old TLS key admitted during the overlap, after a restart");

    // Once the overlap has passed, the old key fails the handshake, also after a restart.
    tokio::time::sleep(std::time::Duration::from_millis(4_500)).await;
    assert_eq!(net.node("PH").state.roster_member_by_pin(&old_pin), None);
    assert!(exchange(&net, "CN", "PH", body(vec![])).await.is_err(), "CN's old TLS key admitted after the overlap");
    net.stop_code("PH").await;
    net.start_code("PH").await;
    assert!(exchange(&net, "CN", "PH", body(vec![])).await.is_err(), "the overlap came back with a restart");

    // A replacement (without CN's key) leaves no overlap for the pin it replaces.
    let ph_key = keys_towards(&net, "PH", "VN").signing;
    let vn_key = keys_towards(&net, "VN", "PH").signing;
    let replacing = SigningKey::from_bytes(&[92; 32]);
    let replacement_pin = [6u8; 32];
    let replacement = proposal(
        &net,
        "PH",
        set_entry(&replacing, replacement_pin),
        &[("PH", &ph_key), ("VN", &vn_key), ("CN", &replacing)],
    );
    exchange(&net, "VN", "PH", body(vec![replacement])).await.unwrap();
    let state = &net.node("PH").state;
    assert_eq!(state.roster_book().current.number, 3);
    assert_eq!(state.roster_member_by_pin(&replacement_pin), Some(code("CN")));
    assert_eq!(state.roster_member_by_pin(&new_pin), None, "a replaced TLS key is admitted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_after_moving_its_key_files_renews_its_leaves_as_it_starts() {
    use adi_node::fed::rotation;
    let within = std::time::Duration::from_secs(30);
    let mut net = Net::start(&["PH", "VN", "CN"]).await;
    let cn = net.client("CN");
    // A line China is home to, and a conference Viet Nam is home to.
    let direct = common::open_line(&cn, &["CN", "PH"], "ADMM-Plus").await;
    let conference = common::open_line(&net.client("VN"), &["VN", "CN", "PH"], "ADMM-Plus").await;
    for line in [&direct, &conference] {
        common::eventually(within, "the lines at China's node", || async {
            cn.call(hyper::Method::GET, &format!("/api/v1/lines/{line}"), None).await.ok()
        })
        .await;
    }
    // Viet Nam's node is down: China's node rotates but cannot move yet.
    net.stop_code("VN").await;
    let file = rotation::prepare(&net.node("CN").state).unwrap();
    assert_eq!(
        offer(&net.node("CN").state, Source::Operator("admin".into()), file).await.unwrap(),
        Offered::Applied(2)
    );
    common::eventually(within, "the version at PH's node", || async {
        (net.node("PH").state.roster_book().current.number == 2).then_some(())
    })
    .await;
    let new_key = net.node("CN").state.roster_member(&code("CN")).unwrap().signing_key.to_bytes().to_vec();
    // China's node stops just after moving its key files, before committing its renewed leaves.
    net.stop_code("CN").await;
    let config = adi_node::NodeConfig::load(&net.config_path("CN")).unwrap();
    config.key_files().move_to_next().unwrap();
    net.start_code("CN").await;
    let leaf = |net: &Net, line: &str| {
        let id = adi_wire::LineId::from_hex(line).unwrap();
        net.node("CN").state.core().leaf_key(&id, &code("CN"))
    };
    // As home it commits its leaf under the new key as it starts.
    assert_eq!(leaf(&net, &direct), Some(new_key.clone()), "the leaf on China's own line was not renewed at start");
    let sent = common::send(&net.client("CN"), &direct, "ROUTINE", "under the new key").await;
    common::wait_delivered(&net.client("CN"), &sent, within).await;
    // Elsewhere it proposes it, and the home member commits it once its node is back.
    net.start_code("VN").await;
    common::eventually(within, "China's leaf on Viet Nam's conference under the new key", || async {
        (leaf(&net, &conference) == Some(new_key.clone())).then_some(())
    })
    .await;
    let sent = common::send(&net.client("CN"), &conference, "ROUTINE", "on the conference").await;
    common::wait_delivered(&net.client("CN"), &sent, within).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_rotations_asked_at_once_make_one_and_the_other_finds_it_under_way() {
    let mut net = Net::start(&["PH", "VN", "CN"]).await;
    // Viet Nam's node is down: China's node cannot move, and its rotation stays under way.
    net.stop_code("VN").await;
    let token = adi_node::setup::add_operator(&*net.node("CN").state.store, "admin-cn", "admin").unwrap();
    let url = &net.state.members[net.index("CN")].api_url;
    let admin = adi_node::client::Client::new(url, Some(token), None).unwrap();
    let (a, b) = tokio::join!(
        admin.request(hyper::Method::POST, "/api/v1/roster/rotate", None),
        admin.request(hyper::Method::POST, "/api/v1/roster/rotate", None)
    );
    let mut statuses = [a.unwrap(), b.unwrap()];
    statuses.sort_by_key(|(s, _)| s.as_u16());
    assert_eq!(statuses[0].0, 200, "{:?}", statuses[0].1);
    assert_eq!(statuses[0].1["state"], "in_force");
    assert_eq!(statuses[1].0, 409, "{:?}", statuses[1].1);
    assert_eq!(statuses[1].1["error"], "rotation_under_way");
    // The keys beside the key files are the ones the roster in force gives China: its node
    // starts again mid-rotation.
    let state = &net.node("CN").state;
    assert_eq!(state.roster_book().current.number, 2);
    let next = adi_node::NodeConfig::load(&net.config_path("CN")).unwrap().key_files().next().unwrap().unwrap();
    assert_eq!(Some(next.signing_key.verifying_key()), state.roster_member(&code("CN")).map(|m| m.signing_key));
    net.stop_code("CN").await;
    net.start_code("CN").await;
    assert!(net.node("CN").state.rotation().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retired_tls_pin_another_member_names_as_its_own_still_identifies_the_rotating_member() {
    let net = Net::start(&["PH", "VN", "CN"]).await;
    // CN rotates (at PH); its node, not moved yet, still presents its old TLS key.
    let cn_key = keys_towards(&net, "CN", "PH").signing;
    let old_pin = common::pin_of(&net, "CN");
    let rotated = SigningKey::from_bytes(&[93; 32]);
    let new_key = hex::encode(rotated.verifying_key().as_bytes());
    let rotation = proposal(
        &net,
        "PH",
        |f| {
            let m = f.members.iter_mut().find(|m| m.code == "CN").unwrap();
            m.signing_key = new_key;
            m.tls_pin = hex::encode([7u8; 32]);
        },
        &[("CN", &cn_key), ("CN", &rotated)],
    );
    exchange(&net, "CN", "PH", body(vec![rotation])).await.unwrap();
    // VN, hostile, names CN's retired pin in its own entry: its own signature is all that takes.
    let vn_key = keys_towards(&net, "VN", "PH").signing;
    let claim = proposal(
        &net,
        "PH",
        |f| f.members.iter_mut().find(|m| m.code == "VN").unwrap().tls_pin = hex::encode(old_pin),
        &[("VN", &vn_key)],
    );
    exchange(&net, "VN", "PH", body(vec![claim])).await.unwrap();
    let ph = &net.node("PH").state;
    assert_eq!(ph.roster_book().current.number, 3);
    // CN's node, which alone holds that key, is still taken for CN's on a new connection: what
    // it says is CN's, not VN's.
    assert_eq!(ph.roster_member_by_pin(&old_pin), Some(code("CN")));
    let said = serde_json::to_vec(&Exchange { number: 9, proposals: Vec::new() }).unwrap();
    exchange(&net, "CN", "PH", said).await.unwrap();
    assert_eq!(ph.peer_roster(&code("CN")), 9);
    assert!(ph.peer_roster(&code("VN")) < 9, "CN's connection was taken for VN's");
}
