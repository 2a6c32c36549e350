//! The build script of the `adi` binary: the commit it is built from, for `adi --version`.
//!
//! The commit is git's, when the source is a git checkout (a `.git` beside this file) and git is
//! there; `ADI_BUILD_COMMIT` gives it where neither is (a source tarball packaged from a known
//! commit); otherwise it is `unknown`. The script runs again when the checkout's `HEAD` or the
//! branch it points to moves, so that the binary never names a commit it was not built from.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Hex digits of the commit `adi --version` prints.
const COMMIT_DIGITS: usize = 12;

/// What `adi --version` says when the commit cannot be known.
const UNKNOWN: &str = "unknown";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=ADI_BUILD_COMMIT");
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    // Checked to be ASCII hex digits, so that any length cuts on a character.
    let given = std::env::var("ADI_BUILD_COMMIT").ok().filter(|c| is_commit(c)).map(|c| {
        let digits = c.len().min(COMMIT_DIGITS);
        c[..digits].to_ascii_lowercase()
    });
    let commit = match given {
        Some(commit) => commit,
        None if root.join(".git").exists() => {
            watch_head(&root);
            git(&root, &["rev-parse", &format!("--short={COMMIT_DIGITS}"), "HEAD"])
                .filter(|c| is_commit(c))
                .unwrap_or_else(|| UNKNOWN.into())
        }
        // Without `.git` here, git would answer for whatever repository holds this folder.
        None => UNKNOWN.into(),
    };
    println!("cargo:rustc-env=ADI_COMMIT={commit}");
}

/// Whether `text` is a commit's name: hex digits, at least the seven git abbreviates to.
fn is_commit(text: &str) -> bool {
    (7..=64).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Runs git in `root`; its output, trimmed, if it succeeded.
fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(root).args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    out.status.success().then(|| text.trim().to_string())
}

/// Asks cargo to run this script again when `HEAD` moves: the file `HEAD` itself (a checkout of
/// another branch or commit), and the branch it points to (a commit on it), as a loose ref file or
/// in `packed-refs`. git names the files, so that a linked worktree's are found too.
fn watch_head(root: &Path) {
    let path = |name: &str| git(root, &["rev-parse", "--git-path", name]).map(|p| root.join(p));
    let mut watched: Vec<PathBuf> = path("HEAD").into_iter().collect();
    if let Some(branch) = git(root, &["symbolic-ref", "-q", "HEAD"]) {
        if let Some(file) = path(&branch) {
            if file.exists() {
                watched.push(file);
            } else {
                // A packed branch gets its loose file at its next commit, in this folder.
                watched.extend(file.parent().map(Path::to_path_buf));
            }
        }
        watched.extend(path("packed-refs"));
    }
    for file in watched.into_iter().filter(|f| f.exists()) {
        println!("cargo:rerun-if-changed={}", file.display());
    }
}
