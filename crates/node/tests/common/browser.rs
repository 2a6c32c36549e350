//! A real headless Chromium for the console's tests: Debian's `chromium`, driven through
//! Playwright by `tests/console/bridge.mjs` (run with `node`; `npm ci` in `tests/console` installs
//! playwright-core and @axe-core/playwright, and `scripts/test` does both). The bridge takes one
//! JSON command a line and answers each with one line. Elements are found with Playwright's
//! locators, which find them again on every try and wait until they can be acted on, so a page
//! that re-renders under an action needs no retry here. Screenshots are saved under
//! `target/console-screenshots/`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::Mutex;

/// How long a command waits for what it needs (an element, a dialog, a condition).
pub const WAIT: Duration = Duration::from_secs(30);
/// How long an answer from the bridge may take, past the command's own wait.
const ANSWER: Duration = Duration::from_secs(60);
const CHROMIUM: &str = "/usr/bin/chromium";

/// The bridge's pipes: commands in, answers out.
struct Pipes {
    commands: Option<ChildStdin>,
    answers: Lines<BufReader<ChildStdout>>,
}

/// One browser page, with its bridge and Chromium; both are killed when it is dropped.
pub struct Browser {
    pipes: Mutex<Pipes>,
    next_id: AtomicU64,
    bridge: Child,
    /// The process groups to kill on drop: the bridge's (it leads its own), and Chromium's
    /// (Playwright starts it in a group of its own).
    groups: Vec<u32>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        for group in self.groups.drain(..) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{group}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// One rule axe-core found broken on a page.
#[derive(Debug)]
pub struct Violation {
    pub id: String,
    pub impact: String,
    pub help: String,
    /// The elements where it is broken, as CSS selectors.
    pub targets: Vec<String>,
}

/// What axe-core found on a page.
#[derive(Debug)]
pub struct Axe {
    /// How many rules passed.
    pub passes: u64,
    pub violations: Vec<Violation>,
}

/// `tests/console/bridge.mjs`, from the directory of the package whose tests run (`crates/node`
/// or the workspace's root).
fn bridge_script() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|dir| dir.join("tests/console/bridge.mjs"))
        .find(|script| script.exists())
        .unwrap_or_else(|| panic!("no tests/console/bridge.mjs above {}", manifest.display()))
}

fn millis(d: Duration) -> u64 {
    d.as_millis() as u64
}

impl Browser {
    pub async fn start() -> Browser {
        use std::os::unix::process::CommandExt;
        assert!(Path::new(CHROMIUM).exists(), "{CHROMIUM} is missing: install Debian's chromium (scripts/test does)");
        let script = bridge_script();
        let console = script.parent().unwrap();
        assert!(
            console.join("node_modules/playwright-core").exists(),
            "{}: playwright-core is missing; run `npm ci` there (scripts/test does)",
            console.display()
        );
        let mut command = std::process::Command::new("node");
        command
            .arg(&script)
            .current_dir(console)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0);
        let mut bridge =
            tokio::process::Command::from(command).spawn().unwrap_or_else(|e| panic!("node {}: {e}", script.display()));
        let pid = bridge.id().expect("the bridge runs");
        let pipes =
            Pipes { commands: bridge.stdin.take(), answers: BufReader::new(bridge.stdout.take().unwrap()).lines() };
        let mut browser = Browser { pipes: Mutex::new(pipes), next_id: AtomicU64::new(1), bridge, groups: vec![pid] };
        let hello = browser.send("hello", json!({})).await.unwrap_or_else(|e| panic!("Chromium did not start: {e}"));
        if let Some(chromium) = hello["pid"].as_u64() {
            browser.groups.push(chromium as u32);
        }
        browser
    }

    /// Sends one command to the bridge and reads its answer: what it returned, or its error.
    async fn send(&self, cmd: &str, mut command: Value) -> Result<Value, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        command["id"] = json!(id);
        command["cmd"] = json!(cmd);
        let mut pipes = self.pipes.lock().await;
        let commands = pipes.commands.as_mut().ok_or("the browser was quit")?;
        let line = format!("{command}\n");
        commands.write_all(line.as_bytes()).await.map_err(|e| format!("the bridge takes no command: {e}"))?;
        commands.flush().await.map_err(|e| format!("the bridge takes no command: {e}"))?;
        let within = command["timeout"].as_u64().map_or(WAIT, Duration::from_millis) + ANSWER;
        loop {
            let line = tokio::time::timeout(within, pipes.answers.next_line())
                .await
                .map_err(|_| format!("the bridge did not answer in {within:?}"))?
                .map_err(|e| format!("the bridge's answer: {e}"))?
                .ok_or("the bridge ended")?;
            // An answer to a command whose caller stopped waiting for it is passed over.
            let Ok(answer) = serde_json::from_str::<Value>(&line) else { continue };
            if answer["id"] != json!(id) {
                continue;
            }
            return match answer.get("error") {
                Some(error) => Err(error.as_str().unwrap_or_default().to_string()),
                None => Ok(answer["ok"].clone()),
            };
        }
    }

    /// [`Browser::send`], failing the test on an error.
    async fn call(&self, cmd: &str, command: Value) -> Value {
        let shown = command.to_string();
        self.send(cmd, command).await.unwrap_or_else(|e| panic!("{cmd} {shown}: {e}"))
    }

    pub async fn go(&self, url: &str) {
        self.call("goto", json!({"url": url})).await;
    }

    /// The page's address.
    pub async fn url(&self) -> String {
        self.call("url", json!({})).await.as_str().unwrap_or_default().to_string()
    }

    /// The page's title.
    pub async fn title(&self) -> String {
        self.call("title", json!({})).await.as_str().unwrap_or_default().to_string()
    }

    /// Waits until an element matches `css`.
    pub async fn find(&self, css: &str) {
        self.call("find", json!({"selector": css})).await;
    }

    /// Clears the field `css` and writes `text` in it, as typing would.
    pub async fn type_into(&self, css: &str, text: &str) {
        self.call("fill", json!({"selector": css, "text": text})).await;
    }

    /// [`Browser::type_into`], giving up after `within` with why instead of failing the test.
    pub async fn try_type_into(&self, css: &str, text: &str, within: Duration) -> Result<(), String> {
        self.send("fill", json!({"selector": css, "text": text, "timeout": millis(within)})).await.map(drop)
    }

    /// Chooses files in the file input `css`, as an officer picking them would: each (name,
    /// media type, bytes).
    pub async fn choose_files(&self, css: &str, files: &[(&str, &str, &[u8])]) {
        let files: Vec<Value> = files
            .iter()
            .map(|(name, mime, bytes)| json!({"name": name, "mime": mime, "hex": hex::encode(bytes)}))
            .collect();
        self.call("files", json!({"selector": css, "files": files})).await;
    }

    /// Clicks the element `css` (the first that matches), once it is shown and can take the click.
    /// A dialog the click opens is left for [`Browser::answer_dialog`].
    pub async fn click(&self, css: &str) {
        self.call("click", json!({"selector": css})).await;
    }

    /// [`Browser::click`], giving up after `within` with why instead of failing the test.
    pub async fn try_click(&self, css: &str, within: Duration) -> Result<(), String> {
        self.send("click", json!({"selector": css, "timeout": millis(within)})).await.map(drop)
    }

    /// Chooses the option of the select `css` whose value or label is `option`.
    pub async fn select(&self, css: &str, option: &str) {
        self.call("select", json!({"selector": css, "value": option})).await;
    }

    /// Presses and releases a key (`Tab`, `Enter`, `Escape`…) on whatever has the focus.
    pub async fn press(&self, key: &str) {
        self.call("press", json!({"key": key})).await;
    }

    /// Waits for the page's dialog (a `confirm` or `prompt`), answers it (`Some(text)` types the
    /// text, if any, and accepts; `None` cancels), and returns what it asked.
    pub async fn answer_dialog(&self, answer: Option<&str>) -> String {
        let command = match answer {
            Some(text) => json!({"accept": true, "text": text}),
            None => json!({"accept": false}),
        };
        self.call("answer_dialog", command).await.as_str().unwrap_or_default().to_string()
    }

    /// Whether a dialog the page opened waits for an answer.
    pub async fn dialog_open(&self) -> bool {
        self.call("dialog_open", json!({})).await == json!(true)
    }

    /// Runs `js`, a function's body, in the page and returns what it returns.
    pub async fn script(&self, js: &str) -> Value {
        self.script_with(js, &[]).await
    }

    /// [`Browser::script`], with `args` as the function's `arguments`.
    pub async fn script_with(&self, js: &str, args: &[Value]) -> Value {
        self.call("evaluate", json!({"script": js, "args": args})).await
    }

    /// [`Browser::script`], with its error instead of failing the test.
    pub async fn try_script(&self, js: &str) -> Result<Value, String> {
        self.send("evaluate", json!({"script": js, "args": []})).await
    }

    /// Waits until `js` returns `true` in the page (read again while the page is between
    /// documents); fails saying `what` after [`WAIT`].
    pub async fn until(&self, js: &str, what: &str) {
        let command = json!({"script": js, "args": [], "timeout": millis(WAIT)});
        if let Err(e) = self.send("wait_for", command).await {
            panic!("{what}: {e}");
        }
    }

    /// The text of `css` (the first that matches) as shown: empty when it is not shown.
    pub async fn text(&self, css: &str) -> String {
        self.call("text", json!({"selector": css})).await.as_str().unwrap_or_default().to_string()
    }

    /// Waits until the text of `css` contains `want`.
    pub async fn wait_text(&self, css: &str, want: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let t = self.text(css).await;
            if t.contains(want) {
                return t;
            }
            if tokio::time::Instant::now() >= deadline {
                let errors = self.text("#action-error").await;
                let inbox = self.text("#inbox").await;
                let at = self.url().await;
                let who = self.text("#who").await;
                panic!("'{css}' never showed '{want}' (shows '{t}'; page error '{errors}'; inbox '{inbox}'; signed in as '{who}'; at {at})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// How many elements match `css`.
    pub async fn count(&self, css: &str) -> usize {
        self.call("count", json!({"selector": css})).await.as_u64().unwrap_or(0) as usize
    }

    /// Whether the element `css` (the first that matches) is shown to the operator.
    pub async fn visible(&self, css: &str) -> bool {
        self.call("visible", json!({"selector": css})).await == json!(true)
    }

    /// The attribute `name` of the element `css` (the first that matches), if it has it.
    pub async fn attribute(&self, css: &str, name: &str) -> Option<String> {
        self.call("attribute", json!({"selector": css, "name": name})).await.as_str().map(str::to_string)
    }

    /// Allows the page's origin to show desktop notifications, as the browser's own prompt would.
    pub async fn allow_notifications(&self) {
        self.call("grant", json!({"permissions": ["notifications"]})).await;
    }

    /// Shows the page as on `media` (`Some("print")`), or as on a screen again (`None`).
    pub async fn media(&self, media: Option<&str>) {
        self.call("media", json!({"media": media})).await;
    }

    /// Sends every request of the page without the header `name` (as a page that lost it would),
    /// until [`Browser::keep_request_headers`].
    pub async fn drop_request_header(&self, name: &str) {
        self.call("drop_header", json!({"name": name})).await;
    }

    /// Sends the page's requests as it makes them again.
    pub async fn keep_request_headers(&self) {
        self.call("drop_header", json!({"name": null})).await;
    }

    /// Sizes the page's viewport, in CSS pixels.
    pub async fn viewport(&self, width: u32, height: u32) {
        self.call("viewport", json!({"width": width, "height": height})).await;
    }

    /// Runs axe-core's rules with these tags (`wcag2a`…) on the page as it is.
    pub async fn axe(&self, tags: &[&str]) -> Axe {
        let found = self.call("axe", json!({"tags": tags, "timeout": millis(WAIT)})).await;
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let violations = found["violations"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|v| Violation {
                id: text(&v["id"]),
                impact: text(&v["impact"]),
                help: text(&v["help"]),
                targets: v["targets"].as_array().map(Vec::as_slice).unwrap_or_default().iter().map(text).collect(),
            })
            .collect();
        Axe { passes: found["passes"].as_u64().unwrap_or(0), violations }
    }

    /// Signs in on the page at `url`.
    pub async fn sign_in(&self, url: &str, name: &str, password: &str) {
        self.go(url).await;
        self.type_into("input[name=name]", name).await;
        self.type_into("input[name=password]", password).await;
        self.click("form#sign-in button").await;
        self.wait_text("#who", name).await;
    }

    /// Saves what the page shows as `target/console-screenshots/{name}.png`, and, when
    /// `ADI_SCREENSHOTS=docs` is set, as `docs/screenshots/{name}.png` too (the guide's pictures
    /// are these; `tests/tidy.rs` checks that each name a test takes is there).
    pub async fn screenshot(&self, name: &str) {
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let dir = tmp.parent().unwrap_or(tmp).join("console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        self.call("screenshot", json!({"path": path})).await;
        if std::env::var("ADI_SCREENSHOTS").is_ok_and(|to| to == "docs") {
            // The repository's root, from this crate's or the root crate's manifest directory.
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
            let root = manifest.ancestors().find(|d| d.join("docs/screenshots").is_dir()).unwrap_or(manifest);
            std::fs::copy(&path, root.join("docs/screenshots").join(format!("{name}.png"))).unwrap();
        }
    }

    /// Closes the browser and waits for the bridge to end.
    pub async fn quit(mut self) {
        drop(self.pipes.get_mut().commands.take());
        if let Ok(Ok(status)) = tokio::time::timeout(WAIT, self.bridge.wait()).await {
            if status.success() {
                // Chromium was closed and waited for: there is nothing left to kill.
                self.groups.clear();
            }
        }
    }
}
