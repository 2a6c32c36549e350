//! Rules of the code base that no compiler checks, read from the sources as text:
//!
//! - every module of the product says what it is for, in a `//!` comment at its top;
//! - outside tests, nothing calls `.unwrap()`, and every `.expect(` names, in its message, the
//!   invariant it relies on;
//! - `docs/ARCHITECTURE.md` names every crate of the workspace and every module of the node;
//! - the node's modules import one another in layers, with no import circle.
//! - every screenshot a console test takes is in `docs/screenshots/`, and nothing else is.
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
    // A module file is named as `name`, a folder of modules as `name/`, and each module in it
    // as `name/sub` (or `name/sub.rs`).
    let node = root().join("crates/node/src");
    let mut modules: Vec<Vec<String>> = Vec::new();
    for file in rust_files(&node) {
        let (top, sub) = node_module_of(&node, &file);
        if top == "lib" {
            continue;
        }
        match sub {
            None => modules.push(vec![format!("`{top}`")]),
            Some(sub) => {
                modules.push(vec![format!("`{top}/`")]);
                if sub != "mod" {
                    modules.push(vec![format!("`{top}/{sub}`"), format!("`{top}/{sub}.rs`")]);
                }
            }
        }
    }
    modules.sort();
    modules.dedup();
    assert!(modules.len() > 10, "the node's modules were not found: {modules:?}");
    for names in modules {
        if !names.iter().any(|n| architecture.contains(n.as_str())) {
            missing.push(format!("node module {}", names[0]));
        }
    }
    assert!(missing.is_empty(), "docs/ARCHITECTURE.md does not name: {missing:?}");
}

/// The node module a file of `crates/node/src` belongs to: its top-level module (a file's stem,
/// or a folder's name), and within a folder the module's own name (`mod` for the folder's own).
fn node_module_of(src: &Path, file: &Path) -> (String, Option<String>) {
    let parts: Vec<String> = file
        .strip_prefix(src)
        .unwrap_or(file)
        .components()
        .map(|c| c.as_os_str().to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    match parts.as_slice() {
        [top] => (top.clone(), None),
        [top, sub, ..] => (top.clone(), Some(sub.clone())),
        [] => (String::new(), None),
    }
}

/// Code without its comments (line comments and doc comments, where intra-doc links name
/// modules without importing them).
fn without_comments(text: &str) -> String {
    text.lines().map(|l| l.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

/// The first path segment of each path a `use` tree names after `crate::`: `crate::a::b` gives
/// `a`; `crate::{a, b::c}` gives `a` and `b`.
fn first_segments(rest: &str) -> Vec<String> {
    let ident = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    let rest = rest.trim_start();
    let Some(group) = rest.strip_prefix('{') else { return vec![ident(rest)] };
    // The top-level items of the group, up to its closing brace.
    let (mut depth, mut items, mut item) = (0usize, Vec::new(), String::new());
    for c in group.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => items.push(std::mem::take(&mut item)),
            _ if depth == 0 => item.push(c),
            _ => {}
        }
    }
    items.push(item);
    items.iter().map(|i| ident(i.trim())).filter(|i| !i.is_empty()).collect()
}

/// Finds a cycle in a graph given as edges, as the path around it (first node repeated last).
fn find_cycle(edges: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        done: &mut std::collections::BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, done, path) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = std::collections::BTreeSet::new();
    edges.keys().find_map(|n| visit(n, edges, &mut done, &mut Vec::new()))
}

/// The node's modules stand in layers: each imports only modules below it, so that none imports,
/// through others, itself. An edge is a `crate::X` path outside tests (`X` a top-level module, a
/// folder counting as one); within a folder, an edge is a `super::Y` or `crate::folder::Y` path
/// between two of its modules.
#[test]
fn the_node_crate_has_no_import_circle() {
    use std::collections::{BTreeMap, BTreeSet};
    let src = root().join("crates/node/src");
    let files = rust_files(&src);
    let tops: BTreeSet<String> = files.iter().map(|f| node_module_of(&src, f).0).collect();
    assert!(tops.len() > 5, "the node's modules were not found: {tops:?}");
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // Within each folder: its modules' edges to one another.
    let mut inner: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for file in &files {
        let (top, sub) = node_module_of(&src, file);
        if top == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        let code: String = non_test_lines(&text).map(|(_, l)| l).collect::<Vec<_>>().join("\n");
        let code = without_comments(&code);
        edges.entry(top.clone()).or_default();
        for (at, _) in code.match_indices("crate::") {
            // `crate::` that ends a longer name (`adi_crate::`) is not this crate.
            if code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let rest = &code[at + "crate::".len()..];
            for x in first_segments(rest) {
                if x != top && tops.contains(&x) {
                    edges.entry(top.clone()).or_default().insert(x.clone());
                }
                if let Some(sub) = sub.as_ref().filter(|_| x == top) {
                    let within = rest.trim_start().strip_prefix(&format!("{top}::")).unwrap_or_default();
                    for y in first_segments(within) {
                        if y != *sub && !y.is_empty() {
                            inner.entry(top.clone()).or_default().entry(sub.clone()).or_default().insert(y);
                        }
                    }
                }
            }
        }
        if let Some(sub) = &sub {
            let graph = inner.entry(top.clone()).or_default();
            graph.entry(sub.clone()).or_default();
            for (at, _) in code.match_indices("super::") {
                if code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                for y in first_segments(&code[at + "super::".len()..]) {
                    if y != *sub && !y.is_empty() {
                        graph.entry(sub.clone()).or_default().insert(y);
                    }
                }
            }
        }
    }
    if let Some(cycle) = find_cycle(&edges) {
        panic!("the node's modules import one another in a circle: {}\nevery edge: {edges:#?}", cycle.join(" -> "));
    }
    for (folder, graph) in &inner {
        // Only edges between the folder's own modules; an item of its `mod.rs` is below them all.
        let modules: BTreeSet<&String> = graph.keys().collect();
        let graph: BTreeMap<String, BTreeSet<String>> = graph
            .iter()
            .map(|(m, to)| (m.clone(), to.iter().filter(|t| modules.contains(t) && *t != "mod").cloned().collect()))
            .collect();
        if let Some(cycle) = find_cycle(&graph) {
            panic!("the modules of {folder}/ import one another in a circle: {}", cycle.join(" -> "));
        }
    }
}

/// The runtime's crates, whose limits are fields of their limits types (`Limits` and
/// `DisciplineConfig` in the core, `EngineLimits`, `StoreConfig`, `RuntimeLimits` in the node
/// config, `ClientLimits`), each with its default and most of them settable in `[limits]`.
const RUNTIME_CRATES: [&str; 4] = ["core", "engine", "store", "node"];

/// Constants with a limit's name that are not limits an establishment sets, each with why.
const NAMED_BOUNDS: [(&str, &str); 6] = [
    ("DAY_MS", "the day over which lines_per_peer_per_day_max counts: a unit of that named limit"),
    (
        "MINUTE_MS",
        "the minute over which sign_in_per_minute_max and sign_in_per_address_per_minute_max count: a unit of \
         those named limits",
    ),
    (
        "CHECK_BLOCKS_MAX",
        "the most memory one password check may take, against a stored hash whose parameters someone changed: \
         the node's own hashes take 19 MiB",
    ),
    ("HOUR_MS", "the hour over which key_package_claims_per_hour_max counts: a unit of that named limit"),
    (
        "REPLY_BYTES_MAX",
        "a peer's replies are bounded by the protocol (verdicts on at most batch_len_max envelopes, one \
         KeyPackage, a checkpoint exchange); this only stops a hostile peer's endless body",
    ),
    ("STATEMENT_CACHE_LEN", "a cache of parsed SQL statements: a tuning, not a bound on any input"),
];

/// Suffixes that make a constant's name a limit's.
const LIMIT_SUFFIXES: [&str; 8] = ["_MS", "_S", "_SECS", "_MAX", "_MIN", "_TIMEOUT", "_BYTES", "_LEN"];

/// Whether `line` defines a numeric constant named like a limit; its name if so.
fn limit_constant(line: &str) -> Option<&str> {
    let t = line.trim_start();
    let t = t.strip_prefix("pub(crate) ").or_else(|| t.strip_prefix("pub ")).unwrap_or(t);
    let rest = t.strip_prefix("const ")?;
    let (name, rest) = rest.split_once(':')?;
    let (ty, value) = rest.split_once('=')?;
    let numeric = ["u8", "u16", "u32", "u64", "usize", "i64", "Duration"].contains(&ty.trim());
    let named_like_a_limit = LIMIT_SUFFIXES.iter().any(|s| name.ends_with(s));
    (numeric && named_like_a_limit && value.chars().any(|c| c.is_ascii_digit())).then_some(name.trim())
}

/// A time written as a number where it is used: `from_secs(30)`, `from_millis(50)`.
fn bare_duration(line: &str) -> bool {
    let code = line.split("//").next().unwrap_or_default();
    if code.trim_start().starts_with("const ") || code.contains(" const ") {
        return false;
    }
    ["from_secs(", "from_millis(", "from_micros(", "from_nanos(", "from_secs_f64("]
        .iter()
        .any(|f| code.match_indices(f).any(|(at, _)| code[at + f.len()..].starts_with(|c: char| c.is_ascii_digit())))
}

#[test]
fn no_bare_numeric_limit_outside_the_limits_types() {
    // The rule finds what it is meant to find.
    assert_eq!(limit_constant("const HANDSHAKE_TIMEOUT_MS: u64 = 10_000;"), Some("HANDSHAKE_TIMEOUT_MS"));
    assert_eq!(limit_constant("pub const SESSION_IDLE_MS: u64 = 30 * 60 * 1000;"), Some("SESSION_IDLE_MS"));
    assert_eq!(limit_constant("const VERSION: u8 = 1;"), None);
    assert_eq!(limit_constant("const MAGIC: &[u8] = b\"ADI1\";"), None);
    assert!(bare_duration("tokio::time::sleep(Duration::from_millis(50)).await;"));
    assert!(!bare_duration("tokio::time::sleep(Duration::from_millis(limits.accept_retry_ms)).await;"));
    assert!(!bare_duration("const POLL: Duration = Duration::from_millis(20);"));

    let mut found = Vec::new();
    for file in product_files() {
        let rel = relative(&file);
        let runtime = RUNTIME_CRATES.iter().any(|c| rel.starts_with(&format!("crates/{c}/src/")));
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in non_test_lines(&text) {
            if bare_duration(line) {
                found.push(format!("{rel}:{n}: a time written as a number: {}", line.trim()));
            }
            if let Some(name) = limit_constant(line).filter(|_| runtime) {
                if !NAMED_BOUNDS.iter().any(|(bound, _)| *bound == name) {
                    found.push(format!("{rel}:{n}: the limit {name} is not a field of a limits type"));
                }
            }
        }
    }
    assert!(found.is_empty(), "bare numeric limits: {found:#?}");
}

/// The pictures of the docs are the console tests' own screenshots: every screenshot a test takes
/// is in `docs/screenshots/` (refreshed with `ADI_SCREENSHOTS=docs`), and every picture the docs
/// show is one a test takes.
#[test]
fn every_screenshot_the_tests_take_is_in_the_docs_and_every_picture_there_is_taken() {
    let root = root();
    let mut taken = std::collections::BTreeSet::new();
    for dir in [root.join("crates/node/tests"), root.join("tests")] {
        for file in rust_files(&dir) {
            let text = std::fs::read_to_string(&file).unwrap();
            for piece in text.split("screenshot(\"").skip(1) {
                if let Some(name) = piece.split('"').next().filter(|n| !n.is_empty() && !n.contains('{')) {
                    taken.insert(format!("{name}.png"));
                }
            }
        }
    }
    assert!(taken.len() > 10, "no screenshot found in the tests: {taken:?}");
    let held: std::collections::BTreeSet<String> = std::fs::read_dir(root.join("docs/screenshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".png"))
        .collect();
    let missing: Vec<&String> = taken.difference(&held).collect();
    assert!(
        missing.is_empty(),
        "taken by the tests but not in docs/screenshots (run them with ADI_SCREENSHOTS=docs): {missing:?}"
    );
    let stale: Vec<&String> = held.difference(&taken).collect();
    assert!(stale.is_empty(), "in docs/screenshots but taken by no test: {stale:?}");
}
