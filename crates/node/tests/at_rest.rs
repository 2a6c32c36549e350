//! Message contents are sealed at rest under the node's master key: the database file, read
//! without that key, holds no subject, body, caveat, reason, alarm text or held draft, and none of
//! the MLS secrets (signing key, epoch and message secrets) the unsealed state holds.

mod common;

use std::time::Duration;

use adi_node::config::DisciplineSection;
use adi_store::{MessageQuery, SqlStore, Store, StoreConfig};
use adi_wire::files::DeadlinesFile;
use common::{eventually, get_list, open_line, wait_delivered, Net};
use hyper::{Method, StatusCode};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

const MARKERS: [&str; 9] = [
    "SUBJECT-7f3a9c",
    "BODY-91c2e4",
    "CAVEAT-5d0b",
    "REASON-c81f77",
    "FLASH-SUBJECT-2be6",
    "DRAFT-SUBJECT-e04d",
    "NARRATIVE-3e9d17",
    // A report's working-group tag says what the message is about: sealed like its subject.
    "counter-terrorism",
    // Who set up a line about what: its title is sealed too.
    "TITLE-6a41d2",
];

fn discipline(d: &mut DisciplineSection) {
    d.link_test_interval_s = 0;
    d.deadlines = Some(DeadlinesFile { flash_s: 1, immediate_s: 1, priority_s: 1, routine_s: 1 });
}

fn files_of(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for name in ["node.db", "node.db-wal", "node.db-shm"] {
        if let Ok(bytes) = std::fs::read(dir.join(name)) {
            all.extend(bytes);
        }
    }
    all
}

/// How the MLS state encodes a secret key: a JSON list of its byte values.
fn seed_as_stored(seed: &[u8]) -> Vec<u8> {
    seed.iter().map(u8::to_string).collect::<Vec<_>>().join(",").into_bytes()
}

/// The byte strings (16 bytes or more) in the entries of an MLS state snapshot whose storage key
/// carries one of `labels`: the snapshot is `count u64, then (len u32, key, len u32, value)*`, and
/// the values are JSON in which byte strings are lists of numbers.
fn secrets_in(snapshot: &[u8], labels: &[&[u8]]) -> Vec<Vec<u8>> {
    fn walk(v: &serde_json::Value, out: &mut Vec<Vec<u8>>) {
        match v {
            serde_json::Value::Array(items) => {
                let bytes: Option<Vec<u8>> =
                    items.iter().map(|i| i.as_u64().and_then(|n| u8::try_from(n).ok())).collect();
                match bytes {
                    Some(b) if b.len() >= 16 => out.push(b),
                    _ => items.iter().for_each(|i| walk(i, out)),
                }
            }
            serde_json::Value::Object(map) => map.values().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    let mut at = 8;
    let take = |at: &mut usize| {
        let len = u32::from_be_bytes(snapshot[*at..*at + 4].try_into().unwrap()) as usize;
        *at += 4 + len;
        &snapshot[*at - len..*at]
    };
    let count = u64::from_be_bytes(snapshot[..8].try_into().unwrap());
    for _ in 0..count {
        let key = take(&mut at);
        let value = take(&mut at);
        if labels.iter().any(|l| contains(key, l)) {
            if let Ok(json) = serde_json::from_slice::<serde_json::Value>(value) {
                walk(&json, &mut out);
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_without_the_master_key_holds_no_message_content() {
    let net = Net::init_with(&["PH", "CN"], discipline);
    // PH holds a FLASH for release, so that a draft is stored too.
    let config = net.config_path("PH");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("release_required = false", "release_required = true")).unwrap();
    let mut net = net;
    net.start_code("PH").await;
    net.start_code("CN").await;
    let (ph, cn) = (net.client("PH"), net.client("CN"));
    let line = ph
        .call(
            Method::POST,
            "/api/v1/lines",
            Some(&json!({"members": ["PH", "CN"], "scope": "ADMM-Plus", "title": MARKERS[8]})),
        )
        .await
        .unwrap();
    let line = line["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/lines/{line}/messages");
    let body = json!({"precedence": "IMMEDIATE", "subject": MARKERS[0], "body": MARKERS[1], "caveat": MARKERS[2]});
    let sent = ph.call(Method::POST, &path, Some(&body)).await.unwrap();
    let id = sent["id"].as_str().unwrap().to_string();
    wait_delivered(&ph, &id, WAIT).await;
    // A structured report, with a tag.
    let report = json!({"kind": "call-request", "v": 1, "subject": MARKERS[6], "proposed_utc": ["2026-12-01T08:00Z"]});
    let sent = ph
        .call(
            Method::POST,
            &path,
            Some(&json!({"precedence": "ROUTINE", "subject": "call", "form": report, "ewg": MARKERS[7]})),
        )
        .await
        .unwrap();
    let call = sent["id"].as_str().unwrap().to_string();
    wait_delivered(&ph, &call, WAIT).await;
    let (status, _) = ph
        .request(Method::POST, &path, Some(&json!({"precedence": "FLASH", "subject": MARKERS[5], "body": "b"})))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::ACCEPTED);
    // An unanswered message raises alarms whose text names its subject.
    let routine = ph
        .call(Method::POST, &path, Some(&json!({"precedence": "ROUTINE", "subject": MARKERS[4], "body": "b"})))
        .await
        .unwrap();
    wait_delivered(&ph, routine["id"].as_str().unwrap(), WAIT).await;
    eventually(WAIT, "alarms at both ends", || async {
        let a = get_list(&ph, "/api/v1/alarms").await.len() + get_list(&cn, "/api/v1/alarms").await.len();
        (a >= 2).then_some(())
    })
    .await;
    let (status, _) = cn
        .request(Method::POST, &format!("/api/v1/messages/{id}/decline"), Some(&json!({"reason": MARKERS[3]})))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let m = eventually(WAIT, "the decline at PH", || async {
        let m = ph.call(Method::GET, &format!("/api/v1/messages/{id}"), None).await.unwrap();
        (m["recipients"][0]["state"] == "declined").then_some(m)
    })
    .await;
    // Through the API, operators read everything as written.
    assert_eq!(
        (m["subject"].as_str(), m["body"].as_str(), m["caveat"].as_str()),
        (Some(MARKERS[0]), Some(MARKERS[1]), Some(MARKERS[2]))
    );
    assert_eq!(m["recipients"][0]["detail"], MARKERS[3]);

    let snapshot = net.node("CN").state.core().mls_snapshot().unwrap();
    // CN's epoch secrets and message secrets (the keys that decrypt the line), as they are in
    // its MLS state; the search below must not find them.
    let secrets = secrets_in(&snapshot, &[b"EpochSecrets", b"MessageSecrets"]);
    assert!(secrets.len() >= 4, "the MLS state holds the line's secrets ({} found)", secrets.len());
    assert!(secrets.iter().all(|s| contains(&snapshot, &seed_as_stored(s))), "in the form the state stores them");
    let cn_seed =
        adi_node::config::load_signing_key(&net.member_dir("CN").join("keys/signing.pem")).unwrap().to_bytes();
    assert!(
        contains(&snapshot, &seed_as_stored(&cn_seed)),
        "the MLS state holds the signing key, so the search below means something"
    );
    let cn_store_path = net.member_dir("CN").join("node.db");
    net.stop_code("PH").await;
    net.stop_code("CN").await;
    for code in ["PH", "CN"] {
        let dir = net.member_dir(code);
        let bytes = files_of(&dir);
        assert!(bytes.len() > 10_000, "{code}'s database was read");
        for marker in MARKERS {
            assert!(!contains(&bytes, marker.as_bytes()), "{code}'s database holds '{marker}' in the clear");
        }
        let key_hex = std::fs::read_to_string(dir.join("keys/master.key")).unwrap();
        let key = hex::decode(key_hex.trim()).unwrap();
        assert!(!contains(&bytes, &key), "{code}'s database holds its master key");
        // The MLS state holds the member's signing key (MLS signs with the roster key): sealed.
        let seed = adi_node::config::load_signing_key(&dir.join("keys/signing.pem")).unwrap().to_bytes();
        assert!(!contains(&bytes, &seed), "{code}'s database holds its signing key in the clear");
        assert!(!contains(&bytes, &seed_as_stored(&seed)), "{code}'s database holds its MLS signing key in the clear");
        if code == "CN" {
            for secret in &secrets {
                assert!(!contains(&bytes, secret), "CN's database holds an MLS secret in the clear");
                assert!(!contains(&bytes, &seed_as_stored(secret)), "CN's database holds an MLS secret in the clear");
            }
        }
    }

    // The same file opened with another key cannot read the contents.
    let store = SqlStore::open(StoreConfig::new(&cn_store_path, [9; 32])).unwrap();
    let q = MessageQuery { limit: 10, by_precedence: true, ..MessageQuery::default() };
    let err = store.messages(&q).unwrap_err();
    assert!(err.to_string().contains("master key"), "{err}");
    drop(store);

    // Whoever can write the database but has not the key cannot move a sealed value to another
    // row: the call request's sealed subject, copied onto the declined message, does not open there.
    let db = rusqlite::Connection::open(net.member_dir("PH").join("node.db")).unwrap();
    let copied = db
        .execute(
            "UPDATE envelopes SET subject = (SELECT subject FROM envelopes WHERE hash = ?1) WHERE hash = ?2",
            rusqlite::params![hex::decode(&call).unwrap(), hex::decode(&id).unwrap()],
        )
        .unwrap();
    assert_eq!(copied, 1);
    drop(db);
    net.start_code("PH").await;
    let ph = net.client("PH");
    let (status, answer) = ph.request(Method::GET, &format!("/api/v1/messages/{id}"), None).await.unwrap();
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{answer}");
    assert_eq!(answer["error"], "internal", "{answer}");
    assert!(!answer.to_string().contains("call"), "the moved subject is not shown: {answer}");
    // The row it was copied from still opens.
    let m = ph.call(Method::GET, &format!("/api/v1/messages/{call}"), None).await.unwrap();
    assert_eq!(m["subject"], "call");
    net.stop_code("PH").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_refuses_to_start_with_a_master_key_others_can_read() {
    let net = Net::init_with(&["PH", "CN"], discipline);
    let key = net.member_dir("PH").join("keys/master.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let err = match adi_node::NodeConfig::load(&net.config_path("PH")) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a world-readable master key was accepted"),
    };
    assert!(err.contains("master.key") && err.contains("0600"), "{err}");
}

/// CN's MLS state as its database holds it now: each entry's key and sealed value.
fn sealed_mls_state(net: &Net) -> std::collections::BTreeMap<Vec<u8>, Vec<u8>> {
    let config = adi_node::NodeConfig::load(&net.config_path("CN")).unwrap();
    let c = rusqlite::Connection::open(&config.database).unwrap();
    let mut stmt = c.prepare("SELECT key, value FROM mls_entries").unwrap();
    let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?))).unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}

/// 32 bytes from the middle of a sealed value (of 48 bytes or more): random-looking, so found
/// only where it is.
fn piece_of(sealed: &[u8]) -> Vec<u8> {
    let mid = sealed.len() / 2;
    sealed[mid - 16..mid + 16].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spent_mls_state_does_not_live_on_in_the_database_files() {
    let net = Net::start_with(&["PH", "CN"], |d| d.link_test_interval_s = 0).await;
    let ph = net.client("PH");
    let line = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    let first = common::send(&ph, &line, "ROUTINE", "first").await;
    wait_delivered(&ph, &first, WAIT).await;
    // Pieces of CN's sealed state from this epoch, found in its files now.
    let old = sealed_mls_state(&net);
    let files = files_of(&net.member_dir("CN"));
    assert!(
        old.values().filter(|v| v.len() >= 48).all(|v| contains(&files, &piece_of(v))),
        "the search finds the state while it is current"
    );

    // The line moves on: key updates and messages replace CN's state several times.
    for n in 0..3 {
        ph.call(Method::POST, &format!("/api/v1/lines/{line}/update-keys"), None).await.unwrap();
        let id = common::send(&ph, &line, "ROUTINE", &format!("after update {n}")).await;
        wait_delivered(&ph, &id, WAIT).await;
    }
    // The entries replaced or deleted since: the spent state.
    let now = sealed_mls_state(&net);
    let spent: Vec<Vec<u8>> =
        old.iter().filter(|(k, v)| v.len() >= 48 && now.get(*k) != Some(*v)).map(|(_, v)| piece_of(v)).collect();
    assert!(spent.len() >= 4, "the updates replaced CN's epoch secrets ({} entries changed)", spent.len());
    // Within the wipe interval, the old state is gone from the database and its log.
    eventually(WAIT, "CN's spent MLS state to leave its files", || async {
        let files = files_of(&net.member_dir("CN"));
        spent.iter().all(|p| !contains(&files, p)).then_some(())
    })
    .await;
    net.stop_all().await;
}
