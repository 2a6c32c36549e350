//! A real headless Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`;
//! the test script installs them), for the console's tests. Screenshots are saved under
//! `target/console-screenshots/`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use adi_node::client::Client;
use hyper::Method;
use serde_json::{json, Value};

pub const WAIT: Duration = Duration::from_secs(30);
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A chromedriver process, killed when dropped.
pub struct Driver {
    child: Child,
    client: Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser session.
pub struct Browser {
    driver: Driver,
    session: String,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    pub async fn start() -> Browser {
        assert!(
            std::path::Path::new(CHROMEDRIVER).exists(),
            "{CHROMEDRIVER} is missing: install Debian's chromium and chromium-driver (.ci/run does)"
        );
        let port = adi_node::setup::free_port_run(1).expect("a free loopback port");
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let client = Client::new(&format!("http://127.0.0.1:{port}"), None, None).unwrap();
        let driver = Driver { child, client };
        let deadline = Instant::now() + WAIT;
        while driver.client.call(Method::GET, "/status", None).await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1366,768"]
        }}}});
        let v = driver.client.call(Method::POST, "/session", Some(&caps)).await.expect("a browser session");
        let session = v["value"]["sessionId"].as_str().unwrap().to_string();
        Browser { driver, session }
    }

    pub async fn cmd(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        self.try_cmd(method, path, body).await.unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    pub async fn try_cmd(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let path = format!("/session/{}{path}", self.session);
        let v = self.driver.client.call(method, &path, body.as_ref()).await.map_err(|e| e.to_string())?;
        Ok(v["value"].clone())
    }

    /// Runs an interaction with an element again while the page is re-rendering around it (the
    /// element moved under another, or was replaced), a bounded number of times.
    pub async fn on_element(&self, css: &str, action: &str, body: Value) {
        if let Err(last) = self.try_on_element(css, action, body).await {
            panic!("{action} on '{css}' kept failing: {last}");
        }
    }

    /// [`Browser::on_element`], giving up with the last error instead of failing the test.
    pub async fn try_on_element(&self, css: &str, action: &str, body: Value) -> Result<(), String> {
        let mut last = String::new();
        for _ in 0..20 {
            let found = self.try_find(css).await;
            let done = match found {
                Ok(el) => self.try_cmd(Method::POST, &format!("/element/{el}/{action}"), Some(body.clone())).await,
                Err(e) => Err(e),
            };
            match done {
                Ok(_) => return Ok(()),
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(last)
    }

    /// Waits for the page's dialog (a `confirm` or `prompt`), answers it (`Some(text)` types the
    /// text and accepts, `None` cancels), and returns what it asked.
    pub async fn answer_dialog(&self, answer: Option<&str>) -> String {
        let deadline = Instant::now() + WAIT;
        let asked = loop {
            if let Ok(text) = self.try_cmd(Method::GET, "/alert/text", None).await {
                break text.as_str().unwrap_or_default().to_string();
            }
            assert!(Instant::now() < deadline, "no dialog opened");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        match answer {
            Some(text) => {
                if !text.is_empty() {
                    self.cmd(Method::POST, "/alert/text", Some(json!({"text": text}))).await;
                }
                self.cmd(Method::POST, "/alert/accept", Some(json!({}))).await;
            }
            None => {
                self.cmd(Method::POST, "/alert/dismiss", Some(json!({}))).await;
            }
        }
        asked
    }

    /// Runs `js` in the page and returns what it returns.
    pub async fn script(&self, js: &str) -> Value {
        self.cmd(Method::POST, "/execute/sync", Some(json!({"script": js, "args": []}))).await
    }

    /// Waits until `js` returns `true` in the page; fails saying `what` after [`WAIT`].
    pub async fn until(&self, js: &str, what: &str) {
        let deadline = Instant::now() + WAIT;
        while self.script(js).await != json!(true) {
            assert!(Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn go(&self, url: &str) {
        self.cmd(Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    pub async fn find(&self, css: &str) -> String {
        self.try_find(css).await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// The element `css` finds, or why there is none.
    pub async fn try_find(&self, css: &str) -> Result<String, String> {
        let v = self.try_cmd(Method::POST, "/element", Some(json!({"using": "css selector", "value": css}))).await?;
        v[ELEMENT].as_str().map(str::to_string).ok_or_else(|| format!("no element {css}: {v}"))
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        self.on_element(css, "clear", json!({})).await;
        self.on_element(css, "value", json!({"text": text})).await;
    }

    pub async fn click(&self, css: &str) {
        self.on_element(css, "click", json!({})).await;
    }

    /// The text of `css`, found again while the page re-renders it between the finding and the
    /// reading (the element found is then stale), a bounded number of times.
    pub async fn text(&self, css: &str) -> String {
        let mut last = String::new();
        for _ in 0..20 {
            let read = match self.try_find(css).await {
                Ok(el) => self.try_cmd(Method::GET, &format!("/element/{el}/text"), None).await,
                Err(e) => Err(e),
            };
            match read {
                Ok(v) => return v.as_str().unwrap_or_default().to_string(),
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the text of '{css}' could not be read: {last}");
    }

    /// Waits until the text of `css` contains `want`.
    pub async fn wait_text(&self, css: &str, want: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let t = self.text(css).await;
            if t.contains(want) {
                return t;
            }
            if Instant::now() >= deadline {
                let errors = self.text("#action-error").await;
                let inbox = self.text("#inbox").await;
                let script = json!({"script": "return [typeof events, events && events.readyState, session && session.name, me];", "args": []});
                let state = self.cmd(Method::POST, "/execute/sync", Some(script)).await;
                panic!("'{css}' never showed '{want}' (shows '{t}'; page error '{errors}'; inbox '{inbox}'; page state {state})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// How many elements match `css`.
    pub async fn count(&self, css: &str) -> usize {
        let v = self.cmd(Method::POST, "/elements", Some(json!({"using": "css selector", "value": css}))).await;
        v.as_array().map_or(0, Vec::len)
    }

    /// Signs in on the page at `url`.
    pub async fn sign_in(&self, url: &str, name: &str, password: &str) {
        self.go(url).await;
        self.type_into("input[name=name]", name).await;
        self.type_into("input[name=password]", password).await;
        self.click("form#sign-in button").await;
        self.wait_text("#who", name).await;
    }

    pub async fn screenshot(&self, name: &str) {
        use base64::Engine;
        let v = self.cmd(Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap();
        let tmp = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
        let dir = tmp.parent().unwrap_or(tmp).join("console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    pub async fn quit(self) {
        let _ = self.driver.client.call(Method::DELETE, &format!("/session/{}", self.session), None).await;
    }
}
