//! An active/standby pair: two `adi serve` of one member, on two machines, sharing one store on
//! PostgreSQL. The node that holds the store's lease (`adi_store::SqlStore::claim_lease`) is
//! active: it runs the whole node, and every transaction it commits checks its fencing token. The
//! other is the standby: it binds only the API's address, where it answers that it is the standby
//! and where the active node is (a console page is sent there), and it tries to take the lease
//! every `standby_poll_ms`. Once the active node dies, or is paused or cut off past its lease
//! (`lease_ms`), the standby takes the lease, starts the node on the store as the active one left
//! it, and binds the federation listeners too: peers reach it at the next endpoint the roster
//! lists for the member, and operators' clients at the next address they were given.
//!
//! Both nodes start with the member's keys (copied to both machines when the pair is set up), but
//! a key rotation (`fed::rotation`) writes and moves key files on the active node's machine only.
//! So the active node keeps sealed copies of its key files in the store, checked every renewal,
//! and a node taking over first takes from those copies the keys the roster in force gives the
//! member, where its own files are not them (`take_keys`).
//!
//! An active node that finds it no longer holds the lease (a renewal refused, or none accepted for
//! a whole lease) stops at once and the process ends with an error; its supervisor starts it
//! again, as the standby. Nothing it still had in memory can be committed: the store refuses the
//! writes of a former holder.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use adi_store::{SqlStore, Store};
use anyhow::Context;
use ed25519_dalek::pkcs8::DecodePrivateKey;
use ed25519_dalek::SigningKey;

use crate::config::{next_key_file, KeyFiles, NodeConfig, PairSection};
use crate::conns::{self, Admission};
use crate::error::ErrorBody;
use crate::fed::listener::serve;
use crate::start::Node;
use crate::state::open_store;
use crate::throttle::Unauthenticated;
use crate::tls;

/// Runs one node of a pair until `stop` resolves (then `Ok`) or the node, once active, loses the
/// lease (then an error: its supervisor starts it again, as the standby).
pub async fn run(
    config: NodeConfig,
    pair: PairSection,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let store = open_store(&config)?;
    let limits = config.runtime_limits.clone();
    // A node restarted while its former lease still runs waits for it to run out like any other.
    let holder = format!("{} {:08x}", pair.name, rand::random::<u32>());
    let standby = Standby::serve(&config, store.clone()).await?;
    tracing::info!(member = %config.member, node = %holder, api = %config.api_listen, "standby: waiting for the lease");
    tokio::pin!(stop);
    let lease = loop {
        let (claiming, who, url) = (store.clone(), holder.clone(), pair.api_url.clone());
        let claimed = tokio::task::spawn_blocking(move || claiming.claim_lease(&who, limits.lease_ms, &url)).await?;
        match claimed {
            Ok(Some(lease)) => break lease,
            Ok(None) => standby.learn_holder().await,
            Err(e) => tracing::warn!(error = %e, "standby: cannot reach the store to take the lease"),
        }
        tokio::select! {
            () = &mut stop => {
                standby.stop().await;
                return Ok(());
            }
            () = tokio::time::sleep(Duration::from_millis(limits.standby_poll_ms)) => {}
        }
    };
    let took = Instant::now();
    standby.stop().await;
    store.write_under_lease(lease.token, limits.lease_ms)?;
    tracing::info!(node = %holder, token = lease.token, "took the lease: this node is now the active one");
    let config = match take_keys(&config, &store)? {
        true => NodeConfig::load(&config.path).map_err(|e| anyhow::anyhow!("{e}"))?,
        false => config,
    };
    let files = config.key_files();
    let node = Node::start_on(config, store.clone()).await?;
    let mut kept = keep_keys(&store, &files, None)?;
    let started_ms = took.elapsed().as_millis() as u64;
    tracing::info!(node = %holder, started_ms, "active");
    // What the take-over bound leaves the start, after the lease ran out and the standby's poll.
    let start_budget_ms = limits.takeover_ms.saturating_sub(limits.lease_ms + limits.standby_poll_ms);
    if started_ms > start_budget_ms {
        tracing::warn!(started_ms, start_budget_ms, "the node took longer to start than takeover_ms leaves it");
    }
    let mut renewed = Instant::now();
    loop {
        tokio::select! {
            () = &mut stop => {
                node.stop().await;
                return Ok(());
            }
            () = tokio::time::sleep(Duration::from_millis(limits.lease_renew_ms)) => {}
        }
        let (renewing, who) = (store.clone(), holder.clone());
        let token = lease.token;
        let renewal = tokio::task::spawn_blocking(move || renewing.renew_lease(&who, token, limits.lease_ms)).await?;
        match renewal {
            Ok(Some(_)) => {
                renewed = Instant::now();
                match keep_keys(&store, &files, Some(&kept)) {
                    Ok(now) => kept = now,
                    Err(e) => tracing::warn!(error = %e, "cannot keep copies of the key files in the store"),
                }
            }
            Ok(None) => {
                node.stop().await;
                anyhow::bail!("{holder} lost the lease of its pair: the other node took over, or the lease ran out");
            }
            Err(e) if renewed.elapsed() >= Duration::from_millis(limits.lease_ms) => {
                node.stop().await;
                anyhow::bail!("{holder} could not renew the lease of its pair for a whole lease: {e}");
            }
            Err(e) => tracing::warn!(error = %e, "cannot renew the lease; trying again"),
        }
    }
}

/// The names under which the store keeps copies of the member's key files, with the files: the
/// keys the node signs and presents with, and the next ones while a rotation is under way.
fn key_files_named(files: &KeyFiles) -> Vec<(String, PathBuf)> {
    let mut named = Vec::new();
    for (name, file) in [("signing", &files.signing_key), ("cert", &files.tls_cert), ("key", &files.tls_key)] {
        named.push((name.to_string(), file.clone()));
        named.push((format!("{name}.next"), next_key_file(file)));
    }
    named
}

/// The key files as they are on disk now, by name.
type KeyBytes = BTreeMap<String, Vec<u8>>;

/// Keeps copies of the key files in the store when they differ from `kept`, the copies kept last;
/// the files as they are now.
fn keep_keys(store: &SqlStore, files: &KeyFiles, kept: Option<&KeyBytes>) -> anyhow::Result<KeyBytes> {
    let mut now = KeyBytes::new();
    for (name, file) in key_files_named(files) {
        if file.exists() {
            now.insert(name, std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?);
        }
    }
    if kept != Some(&now) {
        let forget = key_files_named(files).into_iter().map(|(n, _)| n).filter(|n| !now.contains_key(n)).collect();
        store.keep_key_copies(now.clone().into_iter().collect(), forget)?;
    }
    Ok(now)
}

/// Before the node starts as the active one: where its own key files are not the keys the roster
/// in force gives this member (the other node rotated them), writes the store's copies that are,
/// the current ones and, while a rotation is under way, the next ones. Whether the current key
/// files were replaced (the configuration is then read again).
fn take_keys(config: &NodeConfig, store: &SqlStore) -> anyhow::Result<bool> {
    let copies: KeyBytes = store.key_copies()?.into_iter().collect();
    if copies.is_empty() {
        return Ok(false);
    }
    let (book, _) = crate::fed::roster::book(config, &store.roster_versions()?, &store.roster_proposals()?)?;
    let Some(me) = book.current.roster.member(&config.member) else { return Ok(false) };
    let gives = |name: &str| {
        copies
            .get(name)
            .and_then(|pem| std::str::from_utf8(pem).ok())
            .and_then(|pem| SigningKey::from_pkcs8_pem(pem).ok())
            .is_some_and(|key| key.verifying_key() == me.signing_key)
    };
    let files = config.key_files();
    let named = key_files_named(&files);
    // Writes the copies of the current key files, or of the next ones.
    let write = |next: bool| -> anyhow::Result<()> {
        for (name, file) in named.iter().filter(|(n, _)| n.ends_with(".next") == next) {
            if let Some(bytes) = copies.get(name) {
                crate::files::write_private(file, bytes)?;
            }
        }
        Ok(())
    };
    let mut replaced = false;
    if config.signing_key.verifying_key() != me.signing_key && gives("signing") {
        write(false)?;
        tracing::info!("took this member's key files from the store: the other node of the pair rotated them");
        replaced = true;
    }
    let next_missing = named.iter().filter(|(n, _)| n.ends_with(".next")).any(|(_, f)| !f.exists());
    if next_missing && gives("signing.next") {
        write(true)?;
        tracing::info!("took the next keys of the rotation under way from the store");
    }
    Ok(replaced)
}

/// The standby's API listener.
struct Standby {
    task: tokio::task::JoinHandle<()>,
    shutdown: watch::Sender<bool>,
    answering: Arc<Answering>,
}

/// What the standby's answers need.
struct Answering {
    member: String,
    store: adi_store::SqlStore,
    /// Who held the lease when the standby last tried to take it: answers read it from here, so
    /// that no request, whoever sends it, costs the store a query.
    holder: Mutex<Option<adi_store::LeaseHolder>>,
    /// Less lease left than this, and the active node has missed a renewal or two: it may be
    /// dead, and a browser is not sent there.
    live_lease_ms: u64,
    /// The bound within which the standby takes over a pair whose active node stopped renewing.
    takeover_ms: u64,
}

impl Standby {
    /// Binds the API's address and answers there as the node's own API listener would accept and
    /// bound connections (over TLS with the node's key when its API is), until stopped.
    async fn serve(config: &NodeConfig, store: adi_store::SqlStore) -> anyhow::Result<Standby> {
        let listener = TcpListener::bind(config.api_listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot bind API address {}: {e}", config.api_listen))?;
        let limits = config.runtime_limits.clone();
        let acceptor = match config.api_tls {
            true => {
                let (cert, key) = tls::load_identity(&config.tls_cert, &config.tls_key)?;
                let identity = tls::Presented::new(cert, &key)?;
                Some(TlsAcceptor::from(Arc::new(tls::api_server_config(&identity)?)))
            }
            false => None,
        };
        let live_lease_ms = limits.lease_ms.saturating_sub(2 * limits.lease_renew_ms);
        let answering = Arc::new(Answering {
            member: config.member.to_string(),
            store,
            holder: Mutex::new(None),
            live_lease_ms,
            takeover_ms: limits.takeover_ms,
        });
        let router = Router::new().fallback(answer).with_state(answering.clone());
        let per_listener = conns::per_listener(&limits, conns::raise_open_files(), 1);
        let admission = Admission::new(per_listener, limits.http_connections_per_address_max);
        let unauthenticated = Some(Arc::new(Unauthenticated::new(&limits)));
        let (shutdown, stopped) = watch::channel(false);
        let task = tokio::spawn(serve(listener, acceptor, router, None, limits, admission, unauthenticated, stopped));
        let standby = Standby { task, shutdown, answering };
        standby.learn_holder().await;
        Ok(standby)
    }

    /// Reads who holds the lease now, for the answers.
    async fn learn_holder(&self) {
        let store = self.answering.store.clone();
        if let Ok(Ok(holder)) = tokio::task::spawn_blocking(move || store.lease_holder()).await {
            if let Ok(mut h) = self.answering.holder.lock() {
                *h = Some(holder);
            }
        }
    }

    /// Closes the listener and every connection to it, so the active node can bind the address.
    async fn stop(self) {
        let _ = self.shutdown.send(true);
        self.task.abort();
        let _ = self.task.await;
    }
}

/// The page a browser gets from a standby while no node of the pair is active: it asks this node
/// every second whether it answers as the active node yet, and then loads the console. A request
/// that finds the address unbound (while the standby's listener hands it to the starting node) is
/// asked again, so the page never lands on the browser's error page. A page that came here from
/// an active node that still holds the lease (it missed the page's checks but not its renewals)
/// would wait for a take-over that does not come: once the take-over's bound has passed, the page
/// shows a link to that node's console.
const WAITING_SCRIPT: &str = "const a = document.getElementById(\"active\"); \
if (a) setTimeout(() => { a.hidden = false; }, Number(a.dataset.afterMs)); \
setInterval(async () => { try { const r = await fetch(\"/healthz\", { cache: \"no-store\" }); \
if (r.ok) location.replace(\"/console\"); } catch (e) { /* not bound yet */ } }, 1000);";

/// The waiting page; `active` is the origin of the node that holds the lease, if one does, and
/// `after_ms` how long the page waits before it offers to go there.
fn waiting_page(active: Option<&str>, after_ms: u64) -> String {
    let link = match active {
        Some(origin) => format!(
            "<p id=\"active\" hidden data-after-ms=\"{after_ms}\">This node has not taken over: the active node of \
             this member still holds the pair's lease. Open the console there: \
             <a href=\"{origin}/console\">{origin}/console</a>.</p>"
        ),
        None => String::new(),
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>ADI: taking over</title>\
         <noscript><meta http-equiv=\"refresh\" content=\"1\"></noscript></head><body>\
         <p>The standby node of this member is taking over. This page tries again every second.</p>{link}\
         <script>{WAITING_SCRIPT}</script></body></html>"
    )
}

/// The waiting page's policy: its own script, identified by its hash, and connections to this
/// node alone; made once.
static WAITING_PAGE_POLICY: std::sync::LazyLock<HeaderValue> = std::sync::LazyLock::new(waiting_page_policy);

fn waiting_page_policy() -> HeaderValue {
    use base64::Engine as _;
    use sha2::Digest as _;
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(WAITING_SCRIPT.as_bytes()));
    let policy = format!("default-src 'none'; script-src 'sha256-{hash}'; connect-src 'self'; frame-ancestors 'none'");
    HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static("default-src 'none'"))
}

/// Every request to a standby: a console page is sent to the active node; anything else is
/// answered 503 `standby`, naming the active node's address (also in `Location`, with the path).
///
/// A console page that moved here because the active node stopped answering it says so
/// (`?from=` its origin): it is not sent back there, and waits here for the take-over.
async fn answer(State(s): State<Arc<Answering>>, method: Method, uri: Uri) -> Response {
    let holder = s.holder.lock().ok().and_then(|h| h.clone());
    let holder = holder.filter(|h| h.remaining_ms > 0 && !h.api_url.is_empty());
    let live = holder.as_ref().is_some_and(|h| h.remaining_ms > s.live_lease_ms);
    let active = holder.map(|h| h.api_url);
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let console = method == Method::GET && !path.starts_with("/api/") && path != "/healthz";
    let location = active.as_ref().map(|url| format!("{}{path}", url.trim_end_matches('/')));
    let came_from = uri.query().into_iter().flat_map(|q| q.split('&')).find_map(|pair| pair.strip_prefix("from="));
    let sent_back =
        came_from.is_some_and(|from| active.as_deref().and_then(crate::config::origin_of).as_deref() == Some(from));
    // A browser goes to the active node only while it renews its lease: one whose lease is running
    // out may be dead, and the page waits here for the take-over instead.
    let page_to = location.as_ref().filter(|_| live && !sent_back);
    let mut response = match (page_to, console) {
        (Some(_), true) => StatusCode::TEMPORARY_REDIRECT.into_response(),
        // A console page that moved here while no node is active waits on this one, which takes
        // over within its bound.
        (None, true) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
                (header::CONTENT_SECURITY_POLICY, WAITING_PAGE_POLICY.clone()),
            ],
            waiting_page(active.as_deref().and_then(crate::config::origin_of).as_deref(), s.takeover_ms),
        )
            .into_response(),
        _ => {
            let message = match &active {
                Some(url) => {
                    format!("this node of {} is the standby of its pair; the active node is at {url}", s.member)
                }
                None => {
                    format!("this node of {} is the standby of its pair; no node of the pair is active now", s.member)
                }
            };
            let body = ErrorBody { error: "standby".into(), message, field: None };
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
        }
    };
    let headers = response.headers_mut();
    if let Some(value) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(header::LOCATION, value);
    }
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    headers.insert(crate::client::PAIR_ROLE_HEADER, HeaderValue::from_static("standby"));
    response
}

#[cfg(test)]
mod tests {
    use super::{waiting_page, waiting_page_policy};

    #[test]
    fn the_waiting_page_runs_only_its_own_script_and_offers_the_active_node_once_the_bound_has_passed() {
        use base64::Engine as _;
        use sha2::Digest as _;
        let page = waiting_page(Some("https://ph-a.example:7443"), 20_000);
        // The policy's hash is the hash of the script the page carries.
        let script = page.split("<script>").nth(1).and_then(|s| s.split("</script>").next()).unwrap();
        let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script.as_bytes()));
        let policy = waiting_page_policy();
        assert!(policy.to_str().unwrap().contains(&format!("script-src 'sha256-{hash}'")), "{policy:?}");
        assert_eq!(page.matches("<script>").count(), 1);
        // The link to the active node's console, hidden until the take-over's bound has passed.
        assert!(page.contains(r#"<p id="active" hidden data-after-ms="20000">"#));
        assert!(page.contains(r#"<a href="https://ph-a.example:7443/console">"#));
        // With no active node there is nothing to offer, and the same script.
        let alone = waiting_page(None, 20_000);
        assert!(!alone.contains("id=\"active\""));
        assert!(alone.contains(script));
    }
}
