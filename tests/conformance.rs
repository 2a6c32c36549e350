//! `adi verify` against the conformance set of `docs/conformance/`: every bundle of the set gets
//! the verdict, the failed checks and the decision states its index `verdicts.json` gives, as a
//! third party's verifier must.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// The conformance set's folder.
fn set_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/conformance")
}

/// The entries of the set's index.
fn verdicts() -> Vec<Value> {
    let path = set_dir().join("verdicts.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let index: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let entries = index.as_array().expect("verdicts.json is an array").clone();
    assert!(entries.len() > 10, "the set has {} cases", entries.len());
    entries
}

fn field<'a>(entry: &'a Value, name: &str) -> &'a str {
    entry[name].as_str().unwrap_or_else(|| panic!("an entry without '{name}': {entry}"))
}

/// `adi verify` of the entry's bundle anchored as the entry says, with `extra` arguments.
fn verify(entry: &Value, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_adi"))
        .arg("verify")
        .arg(set_dir().join(field(entry, "file")))
        .args(["--roster-sha256", field(entry, "anchor_sha256")])
        .args(extra)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("adi runs")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().expect("an array").iter().map(|s| s.as_str().expect("a string").to_string()).collect()
}

/// `[{id, state}]` of an array of decisions.
fn states(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .expect("an array of decisions")
        .iter()
        .map(|d| (field(d, "id").to_string(), field(d, "state").to_string()))
        .collect()
}

#[test]
fn adi_verify_gives_every_case_of_the_set_its_expected_verdict() {
    let entries = verdicts();
    let mut verified = 0;
    for entry in &entries {
        let case = field(entry, "case");
        let out = verify(entry, &["--json"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let expected = field(entry, "verdict");
        assert!(expected == "verified" || expected == "failed", "{case}: verdict '{expected}'");
        assert_eq!(
            out.status.success(),
            expected == "verified",
            "{case}: expected {expected}, exit {}:\n{stderr}",
            out.status
        );
        let report: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{case}: --json output is not JSON ({e}):\n{stdout}"));
        assert_eq!(report["verified"], Value::Bool(expected == "verified"), "{case}");
        assert_eq!(report["anchored"], Value::Bool(true), "{case}");
        let failed: Vec<String> = report["checks"]
            .as_array()
            .expect("the checks")
            .iter()
            .filter(|c| c["ok"] == Value::Bool(false))
            .map(|c| field(c, "item").to_string())
            .collect();
        assert_eq!(failed, strings(&entry["failed_checks"]), "{case}: the failed checks");
        assert_eq!(states(&report["decisions"]), states(&entry["decisions"]), "{case}: the decisions");
        verified += usize::from(expected == "verified");
    }
    assert!(verified > 0 && verified < entries.len(), "the set has valid and broken cases");
}

#[test]
fn adi_verify_names_the_first_failing_check_of_a_broken_case() {
    let entries = verdicts();
    let entry = entries.iter().find(|e| field(e, "case") == "checkpoint-signature-wrong").expect("the case");
    let item = &strings(&entry["failed_checks"])[0];
    let out = verify(entry, &[]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains(&format!("FAIL  {item}: ")), "the failing check is printed:\n{stdout}");
    assert!(stderr.contains(&format!("the first: {item}: ")), "the error names it:\n{stderr}");

    let valid = entries.iter().find(|e| field(e, "case") == "valid-line").expect("the valid line");
    let out = verify(valid, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("under the anchored roster"));
}
