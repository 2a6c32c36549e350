//! Rules of the code base that no compiler checks, read from the sources as text:
//!
//! - every module of the product says what it is for, in a `//!` comment at its top;
//! - outside tests, nothing calls `.unwrap()`, and every `.expect(` names, in its message, the
//!   invariant it relies on;
//! - `docs/ARCHITECTURE.md` names every crate of the workspace and every module of the node.
//!
//! The product is `src/` and every crate's `src/` but the test-only crates (`crates/sim`, the
//! simulation, and `crates/fuzz`, the fuzzing harness); test code is `#[cfg(test)]` sections,
//! and `tests/`, `benches/` and `examples/` folders.

use std::path::{Path, PathBuf};

/// Crates whose code only tests the product.
const TEST_ONLY_CRATES: [&str; 2] = ["sim", "fuzz"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The crates of the workspace, by folder name.
fn crates() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("crates"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The product's source files.
fn product_files() -> Vec<PathBuf> {
    let mut files = rust_files(&root().join("src"));
    for name in crates() {
        if !TEST_ONLY_CRATES.contains(&name.as_str()) {
            files.extend(rust_files(&root().join("crates").join(name).join("src")));
        }
    }
    files
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root()).unwrap_or(path).display().to_string()
}

/// A file's lines before its first `#[cfg(test)]` (test modules sit at the bottom of a file).
fn non_test_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().take_while(|(_, l)| !l.trim_start().starts_with("#[cfg(test)]")).map(|(i, l)| (i + 1, l))
}

#[test]
fn every_module_says_what_it_is_for() {
    let files = product_files();
    assert!(files.len() > 50, "the product's files were not found: {}", files.len());
    let missing: Vec<String> = files
        .iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let first = text.lines().find(|l| !l.trim().is_empty() && !l.starts_with("#!["));
            !first.is_some_and(|l| l.starts_with("//!"))
        })
        .map(|f| relative(f))
        .collect();
    assert!(missing.is_empty(), "modules without a `//!` comment at the top: {missing:#?}");
}

#[test]
fn no_unwrap_and_every_expect_names_its_invariant() {
    let mut found = Vec::new();
    for file in product_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in non_test_lines(&text) {
            let code = line.split("//").next().unwrap_or_default();
            if code.contains(".unwrap()") {
                found.push(format!("{}:{n}: unwrap: {}", relative(&file), line.trim()));
            }
            let mut rest = code;
            while let Some(at) = rest.find(".expect(") {
                rest = &rest[at + ".expect(".len()..];
                // The message is a literal, on this line or the next (rustfmt may break there).
                let literal = rest.trim_start().starts_with('"') || rest.trim().is_empty();
                if !literal {
                    found.push(format!("{}:{n}: expect without a message: {}", relative(&file), line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "outside tests, every `.expect(\"…\")` names its invariant, and nothing unwraps: {found:#?}"
    );
}

#[test]
fn the_architecture_names_every_crate_and_every_module_of_the_node() {
    let architecture = std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).unwrap();
    let mut missing = Vec::new();
    for name in crates() {
        if !architecture.contains(&format!("`crates/{name}`")) {
            missing.push(format!("crate crates/{name}"));
        }
    }
    let node = root().join("crates/node/src");
    let mut modules: Vec<String> = std::fs::read_dir(&node)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|m| m != "lib")
        .collect();
    modules.sort();
    assert!(modules.len() > 10, "the node's modules were not found: {modules:?}");
    for m in modules {
        if !architecture.contains(&format!("`{m}`")) {
            missing.push(format!("node module {m}"));
        }
    }
    assert!(missing.is_empty(), "docs/ARCHITECTURE.md does not name: {missing:?}");
}
