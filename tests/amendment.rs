//! Roster amendments worked offline with `adi amendment`: the first version of a network of
//! Philippines, Viet Nam and China; Timor-Leste's admission proposed, signed by both ASEAN
//! members (China's signature does not stand in for one), and checked; a version altered after
//! signing refused.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::init;

fn adi(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_adi")).args(args).env("NO_COLOR", "1").output().expect("adi runs")
}

fn ok(args: &[&str]) -> String {
    let out = adi(args);
    assert!(out.status.success(), "adi {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn refused(args: &[&str]) -> String {
    let out = adi(args);
    assert!(!out.status.success(), "adi {args:?} succeeded: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn roster_of(config: &str) -> String {
    let file: toml::Value = toml::from_str(&std::fs::read_to_string(config).unwrap()).unwrap();
    let roster = file["roster"].as_str().unwrap();
    Path::new(config).parent().unwrap().join(roster).to_string_lossy().into_owned()
}

#[test]
fn timor_leste_is_admitted_by_every_asean_signature_and_an_altered_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let members = init(&dir.path().join("net"), "PH,VN,CN");
    let config = |code: &str| members.iter().find(|m| m.code == code).unwrap().config.clone();
    let at = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let roster = roster_of(&config("PH"));

    let printed = ok(&["amendment", "first", "--roster", &roster, "--out", &at("v1.json")]);
    assert!(printed.contains("version 1 of 3 members; its hash, the network's identity: "), "{printed}");

    // Timor-Leste makes its keys and card; the amended roster lists it.
    ok(&["init", "--member", "TL", "--dir", &at("tl"), "--endpoint", "127.0.0.1:7999"]);
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("tl/card.json")).unwrap()).unwrap();
    let mut file: toml::Value = toml::from_str(&std::fs::read_to_string(&roster).unwrap()).unwrap();
    let entry: toml::Value = toml::Value::try_from(&card["member"]).unwrap();
    file["members"].as_array_mut().unwrap().push(entry);
    std::fs::write(at("r2.toml"), toml::to_string(&file).unwrap()).unwrap();

    let printed =
        ok(&["amendment", "propose", "--version", &at("v1.json"), "--roster", &at("r2.toml"), "--out", &at("v2.json")]);
    assert!(printed.contains("admits TL"), "{printed}");
    let why = refused(&["amendment", "check", &at("v1.json"), &at("v2.json")]);
    assert!(why.contains("every ASEAN member must sign; missing: PH, VN"), "{why}");

    // The Philippines and China sign: one ASEAN signature short, China's does not count.
    let printed = ok(&["amendment", "sign", "--version", &at("v1.json"), "--config", &config("PH"), &at("v2.json")]);
    assert!(printed.contains("signed version 2") && printed.contains("not yet in effect"), "{printed}");
    ok(&["amendment", "sign", "--version", &at("v1.json"), "--config", &config("CN"), &at("v2.json")]);
    let why = refused(&["amendment", "check", &at("v1.json"), &at("v2.json")]);
    assert!(why.contains("missing: VN"), "{why}");

    // Viet Nam signs: the version takes effect.
    let printed = ok(&["amendment", "sign", "--version", &at("v1.json"), "--config", &config("VN"), &at("v2.json")]);
    assert!(printed.contains("it takes effect"), "{printed}");
    let printed = ok(&["amendment", "check", &at("v1.json"), &at("v2.json")]);
    assert!(printed.contains("version 2: admits TL; signed by PH, CN, VN"), "{printed}");
    assert!(printed.contains("the roster stands at version 2"), "{printed}");

    // Altered after signing (Timor-Leste's endpoint moved): every signature fails.
    let mut altered: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(at("v2.json")).unwrap()).unwrap();
    let tl = altered["roster"]["members"].as_array_mut().unwrap().iter_mut().find(|m| m["code"] == "TL").unwrap();
    tl["endpoints"] = serde_json::json!(["10.9.9.9:7443"]);
    std::fs::write(at("v2-altered.json"), serde_json::to_string(&altered).unwrap()).unwrap();
    let why = refused(&["amendment", "check", &at("v1.json"), &at("v2-altered.json")]);
    assert!(why.contains("signature does not verify"), "{why}");
}
