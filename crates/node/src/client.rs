//! A small client of the operator API, used by the `adi` command and by tests.
//!
//! Plain HTTP for loopback; for `https://` URLs the node's certificate is checked against a pin
//! (the SHA-256 of its key, as in the roster), since nodes use self-signed certificates.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{HeaderMap, Method, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde_json::Value;
use tokio::net::TcpStream;

/// The client's own limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientLimits {
    /// Largest answer the client reads.
    pub response_bytes_max: usize,
    /// How long one request may take; for a stream, how long until its response headers arrive.
    pub request_timeout_ms: u64,
    /// Longest line of a streamed answer.
    pub stream_line_bytes_max: usize,
    /// How long a stream may stay silent before it counts as dropped; the event stream sends a
    /// keep-alive comment every `events_keepalive_ms` (15 s by default).
    pub stream_idle_ms: u64,
    /// Most pages the client reads of one list before it gives up on a list that does not end.
    pub list_pages_max: usize,
    /// Largest export bundle the client reads (`Client::reading_bundles`): a line's files are
    /// in it, each byte four times over as base64 in hex.
    pub bundle_bytes_max: usize,
    /// Most connections kept open between requests, for the next ones to reuse instead of
    /// connecting (and, over https, shaking hands) again; 0 opens one for every request.
    pub idle_connections_max: usize,
    /// How long a kept connection may wait for its next request: well inside the node's own
    /// `http_header_timeout_ms` (10 s), after which the node closes it, so that a request is
    /// never sent on a connection the node is closing.
    pub idle_connection_ms: u64,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits {
            response_bytes_max: 64 * 1024 * 1024,
            request_timeout_ms: 60_000,
            stream_line_bytes_max: 1024 * 1024,
            stream_idle_ms: 60_000,
            list_pages_max: 100_000,
            bundle_bytes_max: 4 * 1024 * 1024 * 1024,
            idle_connections_max: 8,
            idle_connection_ms: 2_000,
        }
    }
}

/// A non-2xx answer of the node: its status and the code and message of its error body.
#[derive(Debug, Clone)]
pub struct ApiFailure {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

impl ApiFailure {
    /// The failure a non-2xx answer with the API's error body states.
    pub fn from_answer(status: StatusCode, value: &Value) -> ApiFailure {
        ApiFailure {
            status,
            code: value.get("error").and_then(Value::as_str).unwrap_or("error").to_string(),
            message: value.get("message").and_then(Value::as_str).unwrap_or("").to_string(),
        }
    }
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for ApiFailure {}

/// The header with which the standby node of a pair marks its answers (`pair.rs`): the request
/// was not taken, and the client tries the other node.
pub const PAIR_ROLE_HEADER: &str = "adi-pair-role";

/// An API client bound to one node (or the two nodes of an active/standby pair) and one operator
/// token.
#[derive(Clone)]
pub struct Client {
    /// Each node's `host:port`, in the order given.
    nodes: Arc<Vec<String>>,
    /// The node that answered last, tried first.
    current: Arc<AtomicUsize>,
    tls: Option<Arc<rustls::ClientConfig>>,
    token: Option<String>,
    limits: ClientLimits,
    /// Connections kept open after a request whose answer was read whole, by node.
    idle: Arc<std::sync::Mutex<Vec<Kept>>>,
}

/// An HTTP/1 connection to one of the client's nodes, ready for another request.
struct Kept {
    node: usize,
    sender: SendRequest<Full<Bytes>>,
    /// When its last answer was read.
    since: std::time::Instant,
}

impl Client {
    /// `url` is `http://host:port` or `https://host:port`, or for an active/standby pair both
    /// nodes' URLs separated by a comma (one scheme; both nodes present the member's key, so one
    /// pin); `pin` is required for https.
    pub fn new(url: &str, token: Option<String>, pin: Option<&str>) -> anyhow::Result<Client> {
        let urls: Vec<&str> = url.split(',').map(|u| u.trim().trim_end_matches('/')).collect();
        let https = urls.first().is_some_and(|u| u.starts_with("https://"));
        let mut nodes = Vec::with_capacity(urls.len());
        for url in &urls {
            let rest = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
                (Some(rest), _) if !https => rest,
                (_, Some(rest)) if https => rest,
                (None, None) => anyhow::bail!("the API URL must start with http:// or https://, got '{url}'"),
                _ => anyhow::bail!("the nodes of a pair are reached with one scheme, got '{url}'"),
            };
            if rest.is_empty() || rest.contains('/') {
                anyhow::bail!("the API URL is scheme://host:port, got '{url}'");
            }
            nodes.push(rest.to_string());
        }
        let tls = if https {
            let pin = pin.ok_or_else(|| anyhow::anyhow!("an https URL needs the node's key pin (--pin or ADI_PIN)"))?;
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(pin, &mut bytes).map_err(|_| anyhow::anyhow!("the pin is 32 bytes in hex"))?;
            Some(Arc::new(crate::tls::api_client_config(bytes)?))
        } else {
            None
        };
        Ok(Client {
            nodes: Arc::new(nodes),
            current: Arc::new(AtomicUsize::new(0)),
            tls,
            token,
            limits: ClientLimits::default(),
            idle: Arc::new(std::sync::Mutex::new(Vec::new())),
        })
    }

    /// The same client, keeping at most `max` connections between requests (0: a connection for
    /// every request).
    pub fn keeping_connections(mut self, max: usize) -> Client {
        self.limits.idle_connections_max = max;
        self
    }

    /// The same client, reading answers up to `bundle_bytes_max`: for an export.
    pub fn reading_bundles(mut self) -> Client {
        self.limits.response_bytes_max = self.limits.bundle_bytes_max;
        self
    }

    /// Sends a request and returns the status and the JSON answer (`null` when empty).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let (status, bytes) = self.request_raw(method, path, body.map(|b| b.to_string().into_bytes())).await?;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .map_err(|e| anyhow::anyhow!("the node answered {status} with a body that is not JSON: {e}"))?
        };
        Ok((status, value))
    }

    /// Sends raw bytes and returns the raw answer.
    pub async fn request_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        self.exchange(method, path, body).await.map(|(status, _, bytes)| (status, bytes))
    }

    /// Sends raw bytes and returns the answer's status, headers and body.
    pub async fn request_full(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<(StatusCode, HeaderMap, Bytes)> {
        self.exchange(method, path, body).await
    }

    /// Sends bytes of the media type given (a file to attach) and returns the answer's status,
    /// headers and body.
    pub async fn request_typed(
        &self,
        method: Method,
        path: &str,
        media_type: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<(StatusCode, HeaderMap, Bytes)> {
        self.exchange_with(method, path, &[("content-type", media_type)], Some(body)).await
    }

    /// Sends a request and returns the answer's status, headers and body.
    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<(StatusCode, HeaderMap, Bytes)> {
        self.exchange_with(method, path, &[], body).await
    }

    async fn exchange_with(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<(StatusCode, HeaderMap, Bytes)> {
        let work = async {
            let (response, kept) = self.send(method, path, headers, body).await?;
            let (parts, body) = response.into_parts();
            let bytes = Limited::new(body, self.limits.response_bytes_max)
                .collect()
                .await
                .map_err(|e| anyhow::anyhow!("cannot read the answer: {e}"))?
                .to_bytes();
            // The answer was read whole: its connection may carry the next request.
            self.keep(kept);
            Ok((parts.status, parts.headers, bytes))
        };
        tokio::time::timeout(Duration::from_millis(self.limits.request_timeout_ms), work)
            .await
            .map_err(|_| anyhow::anyhow!("the node did not answer within {} ms", self.limits.request_timeout_ms))?
    }

    /// Reads a list of the API page by page, following each page's `Link: <...>; rel="next"`,
    /// until it is complete or, with `count`, until that many items are read. `path` names the
    /// list and its filters; the node's default page length is taken, which is within its
    /// limits whatever they are. A non-2xx answer is an [`ApiFailure`].
    pub async fn list(&self, path: &str, count: Option<usize>) -> anyhow::Result<Listed> {
        let mut items: Vec<Value> = Vec::new();
        let mut next = Some(path.to_string());
        let mut pages = 0;
        while let Some(at) = next.take() {
            pages += 1;
            if pages > self.limits.list_pages_max {
                anyhow::bail!("{path} did not end within {} pages", self.limits.list_pages_max);
            }
            let (status, headers, bytes) = self.exchange(Method::GET, &at, None).await?;
            let value: Value = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes)
                    .map_err(|e| anyhow::anyhow!("the node answered {status} with a body that is not JSON: {e}"))?
            };
            if !status.is_success() {
                return Err(ApiFailure::from_answer(status, &value).into());
            }
            let Value::Array(page) = value else { anyhow::bail!("{at} answered something other than a list") };
            items.extend(page);
            next = next_link(&headers)?;
            if count.is_some_and(|n| items.len() >= n) {
                break;
            }
        }
        let over = count.is_some_and(|n| items.len() > n);
        if let Some(n) = count {
            items.truncate(n);
        }
        Ok(Listed { items, more: over || next.is_some() })
    }

    /// Sends one request, on a connection kept from an earlier one or a new one, and returns the
    /// response once its headers have arrived, with its connection; the body is read by the
    /// caller, who may then keep the connection for the next request ([`Client::keep`]).
    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<(Response<Incoming>, Kept)> {
        // A request goes to another node of a pair only when it was not taken: the node could not
        // be reached, or it is the standby. One that reached the active node and failed after is
        // not sent again, lest it be done twice.
        let body = Bytes::from(body.unwrap_or_default());
        let first = self.current.load(Ordering::Relaxed);
        let mut missed = Vec::new();
        for k in 0..self.nodes.len() {
            let at = (first + k) % self.nodes.len();
            let host_port = &self.nodes[at];
            let request = || self.request_to(host_port, method.clone(), path, headers, body.clone());
            let (response, sender) = match self.send_kept(at, &request).await? {
                Some(sent) => sent,
                None => {
                    let tcp = match TcpStream::connect(host_port).await {
                        Ok(tcp) => tcp,
                        Err(e) => {
                            missed.push(format!("{host_port}: {e}"));
                            continue;
                        }
                    };
                    let mut sender = self.connect_on(tcp).await?;
                    let response = sender.send_request(request()?).await?;
                    (response, sender)
                }
            };
            if let Some(done) = self.answered(at, response, sender, &mut missed) {
                return Ok(done);
            }
        }
        anyhow::bail!("cannot reach the node at {}", missed.join("; "))
    }

    /// A response from node `at`, unless that node is the standby of a pair (noted in `missed`).
    fn answered(
        &self,
        at: usize,
        response: Response<Incoming>,
        sender: SendRequest<Full<Bytes>>,
        missed: &mut Vec<String>,
    ) -> Option<(Response<Incoming>, Kept)> {
        let standby = response.headers().get(PAIR_ROLE_HEADER).is_some_and(|v| v == "standby");
        if standby && self.nodes.len() > 1 {
            missed.push(format!("{}: the standby of its pair", self.nodes[at]));
            return None;
        }
        self.current.store(at, Ordering::Relaxed);
        Some((response, Kept { node: at, sender, since: std::time::Instant::now() }))
    }

    /// Sends the request on a connection kept for node `at`, if one still serves: a kept
    /// connection the node has closed since is dropped, and the request, not sent on it, goes on
    /// the next or, when none is left, on a new one (`None`).
    async fn send_kept(
        &self,
        at: usize,
        request: &impl Fn() -> anyhow::Result<hyper::Request<Full<Bytes>>>,
    ) -> anyhow::Result<Option<(Response<Incoming>, SendRequest<Full<Bytes>>)>> {
        loop {
            let kept = {
                let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                let fresh = Duration::from_millis(self.limits.idle_connection_ms);
                idle.retain(|k| k.since.elapsed() < fresh);
                let found = idle.iter().rposition(|k| k.node == at);
                found.map(|i| idle.swap_remove(i))
            };
            let Some(Kept { mut sender, .. }) = kept else { return Ok(None) };
            if sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(request()?).await {
                Ok(response) => return Ok(Some((response, sender))),
                Err(mut e) => {
                    if e.take_message().is_some() {
                        continue;
                    }
                    return Err(e.into_error().into());
                }
            }
        }
    }

    /// Keeps a connection whose last answer was read whole, for the next request to its node,
    /// while fewer than `idle_connections_max` are kept.
    fn keep(&self, mut kept: Kept) {
        kept.since = std::time::Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.limits.idle_connections_max && !kept.sender.is_closed() {
            idle.push(kept);
        }
    }

    /// A request to `host_port`, with the client's token.
    fn request_to(
        &self,
        host_port: &str,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> anyhow::Result<hyper::Request<Full<Bytes>>> {
        let mut builder = hyper::Request::builder().method(method).uri(path).header(hyper::header::HOST, host_port);
        if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-type")) {
            builder = builder.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        if let Some(t) = &self.token {
            builder = builder.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        Ok(builder.body(Full::new(body))?)
    }

    /// An HTTP/1 connection over `tcp`, over TLS for an https client.
    async fn connect_on(&self, tcp: TcpStream) -> anyhow::Result<SendRequest<Full<Bytes>>> {
        let _ = tcp.set_nodelay(true);
        let sender = match &self.tls {
            None => {
                let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
                tokio::spawn(conn);
                sender
            }
            Some(config) => {
                let name = ServerName::try_from("node.adi")?;
                let stream = tokio_rustls::TlsConnector::from(config.clone()).connect(name, tcp).await?;
                let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                tokio::spawn(conn);
                sender
            }
        };
        Ok(sender)
    }

    /// Sends a GET whose answer is a long-lived stream of lines, such as the event stream, and
    /// returns once the response headers have arrived; [`LineStream::next_line`] then yields each
    /// complete line as it arrives.
    ///
    /// The request timeout covers connecting and the response headers only: once open, the
    /// stream lasts as long as the node keeps it, though a minute of silence counts as a dropped
    /// connection. A non-2xx answer is an [`ApiFailure`].
    pub async fn stream_lines(&self, path: &str, headers: &[(&str, &str)]) -> anyhow::Result<LineStream> {
        // The stream holds its connection for as long as it lasts: it is not kept for another.
        let (response, _connection) = tokio::time::timeout(
            Duration::from_millis(self.limits.request_timeout_ms),
            self.send(Method::GET, path, headers, None),
        )
        .await
        .map_err(|_| anyhow::anyhow!("the node did not answer within {} ms", self.limits.request_timeout_ms))??;
        let status = response.status();
        let body = response.into_body();
        if !status.is_success() {
            let bytes = tokio::time::timeout(
                Duration::from_millis(self.limits.request_timeout_ms),
                Limited::new(body, self.limits.response_bytes_max).collect(),
            )
            .await
            .ok()
            .and_then(Result::ok)
            .map(|b| b.to_bytes())
            .unwrap_or_default();
            let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            return Err(ApiFailure::from_answer(status, &value).into());
        }
        let lines = LineSplitter::new(self.limits.stream_line_bytes_max);
        Ok(LineStream { body, lines, ready: VecDeque::new(), idle_ms: self.limits.stream_idle_ms })
    }

    /// Like [`Client::request`], but a non-2xx answer becomes an error carrying the node's message.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        self.call_with_status(method, path, body).await.map(|(_, value)| value)
    }

    /// Like [`Client::call`], and also returns the success status (a send answers 201 when sent,
    /// 202 when held for release). A non-2xx answer is an [`ApiFailure`].
    pub async fn call_with_status(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let (status, value) = self.request(method, path, body).await?;
        if status.is_success() {
            Ok((status, value))
        } else {
            Err(ApiFailure::from_answer(status, &value).into())
        }
    }
}

/// A list read by [`Client::list`].
#[derive(Debug)]
pub struct Listed {
    pub items: Vec<Value>,
    /// Whether the list holds more than the items read.
    pub more: bool,
}

/// The target of the `Link` header's `rel="next"`, if there is one: a path of this node's API.
fn next_link(headers: &HeaderMap) -> anyhow::Result<Option<String>> {
    for value in headers.get_all(hyper::header::LINK) {
        let value = value.to_str().map_err(|_| anyhow::anyhow!("a Link header that is not text"))?;
        for link in value.split(',') {
            let link = link.trim();
            let Some((target, params)) = link.strip_prefix('<').and_then(|l| l.split_once('>')) else {
                anyhow::bail!("a Link header the client does not read: {link}");
            };
            let next = params.split(';').map(str::trim).any(|p| {
                p.split_once('=').is_some_and(|(k, v)| {
                    k.trim().eq_ignore_ascii_case("rel")
                        && v.trim().trim_matches('"').split(' ').any(|r| r.eq_ignore_ascii_case("next"))
                })
            });
            if next {
                if !target.starts_with("/api/v1/") {
                    anyhow::bail!("the next page is not a path of the node's API: {target}");
                }
                return Ok(Some(target.to_string()));
            }
        }
    }
    Ok(None)
}

/// An open streamed answer, read line by line.
pub struct LineStream {
    body: Incoming,
    lines: LineSplitter,
    ready: VecDeque<String>,
    /// How long the stream may stay silent before it counts as dropped.
    idle_ms: u64,
}

impl LineStream {
    /// The next complete line, without its end, as soon as it has arrived; `None` when the node
    /// ended the stream; an error when the connection broke or stayed silent for a minute.
    pub async fn next_line(&mut self) -> anyhow::Result<Option<String>> {
        loop {
            if let Some(line) = self.ready.pop_front() {
                return Ok(Some(line));
            }
            let frame = tokio::time::timeout(Duration::from_millis(self.idle_ms), self.body.frame())
                .await
                .map_err(|_| anyhow::anyhow!("the stream was silent for {} ms", self.idle_ms))?;
            let Some(frame) = frame else { return Ok(None) };
            let frame = frame.map_err(|e| anyhow::anyhow!("the stream broke: {e}"))?;
            if let Ok(data) = frame.into_data() {
                self.ready.extend(self.lines.push(&data)?);
            }
        }
    }
}

/// Splits a byte stream into lines ended by LF, CRLF or CR (as Server-Sent Events allow), also
/// when a line or its end is split across chunks.
struct LineSplitter {
    /// Longest line it takes.
    line_bytes_max: usize,
    partial: Vec<u8>,
    /// The last chunk ended with CR, so an LF that starts the next one ends nothing.
    after_cr: bool,
}

impl LineSplitter {
    fn new(line_bytes_max: usize) -> LineSplitter {
        LineSplitter { line_bytes_max, partial: Vec::new(), after_cr: false }
    }

    fn push(&mut self, chunk: &[u8]) -> anyhow::Result<Vec<String>> {
        let mut lines = Vec::new();
        for &b in chunk {
            let after_cr = std::mem::take(&mut self.after_cr);
            match b {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => {
                    lines.push(String::from_utf8_lossy(&self.partial).into_owned());
                    self.partial.clear();
                    self.after_cr = b == b'\r';
                }
                _ => {
                    if self.partial.len() >= self.line_bytes_max {
                        anyhow::bail!("a line of the stream is over {} bytes", self.line_bytes_max);
                    }
                    self.partial.push(b);
                }
            }
        }
        Ok(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::LineSplitter;

    /// A server of `{}` answers on loopback that counts the connections it accepted; with
    /// `close`, it closes each connection after its first answer, as a node does with one idle
    /// past its header timeout.
    async fn counting_server(close: bool) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = tcp.read(&mut buf).await {
                        if n == 0 {
                            return;
                        }
                        seen.extend_from_slice(&buf[..n]);
                        // Every request here is a GET without a body: one per blank line.
                        while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                            seen.drain(..end + 4);
                            let answer =
                                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
                            if tcp.write_all(answer).await.is_err() || close {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (url, accepted)
    }

    #[tokio::test]
    async fn requests_one_after_another_reuse_one_connection() {
        let (url, accepted) = counting_server(false).await;
        let client = super::Client::new(&url, None, None).unwrap();
        for _ in 0..5 {
            let (status, _) = client.request(hyper::Method::GET, "/healthz", None).await.unwrap();
            assert_eq!(status, 200);
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
        // With none kept, each request connects anew.
        let (url, accepted) = counting_server(false).await;
        let mut client = super::Client::new(&url, None, None).unwrap();
        client.limits.idle_connections_max = 0;
        for _ in 0..5 {
            client.request(hyper::Method::GET, "/healthz", None).await.unwrap();
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 5);
        // One kept past `idle_connection_ms` is not used again.
        let (url, accepted) = counting_server(false).await;
        let mut client = super::Client::new(&url, None, None).unwrap();
        client.limits.idle_connection_ms = 50;
        client.request(hyper::Method::GET, "/healthz", None).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        client.request(hyper::Method::GET, "/healthz", None).await.unwrap();
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_kept_connection_the_node_closed_is_replaced_and_the_request_goes_through() {
        let (url, accepted) = counting_server(true).await;
        let client = super::Client::new(&url, None, None).unwrap();
        for i in 0..5 {
            let (status, value) = client.request(hyper::Method::GET, "/healthz", None).await.unwrap();
            assert_eq!((status, value), (hyper::StatusCode::OK, serde_json::json!({})), "request {i}");
            // Let the close reach the client before the next request, as an idle close would.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 5);
    }

    #[test]
    fn the_next_page_is_the_link_whose_rel_is_next_and_a_path_of_the_api() {
        let of = |values: &[&str]| {
            let mut h = hyper::HeaderMap::new();
            for v in values {
                h.append(hyper::header::LINK, v.parse().unwrap());
            }
            super::next_link(&h)
        };
        assert_eq!(of(&[]).unwrap(), None);
        let next = "</api/v1/alarms?limit=2&before=7>; rel=\"next\"";
        assert_eq!(of(&[next]).unwrap().as_deref(), Some("/api/v1/alarms?limit=2&before=7"));
        let both = "</api/v1/inbox?x=1>; rel=\"prev\", </api/v1/inbox?x=2>; rel=next";
        assert_eq!(of(&[both]).unwrap().as_deref(), Some("/api/v1/inbox?x=2"));
        assert_eq!(of(&["</api/v1/inbox?x=1>; rel=\"prev\""]).unwrap(), None);
        assert!(of(&["<https://elsewhere.example/api/v1/inbox>; rel=\"next\""]).is_err());
        assert!(of(&["/api/v1/inbox; rel=next"]).is_err());
    }

    #[test]
    fn lines_split_on_any_end_and_across_chunks() {
        let mut s = LineSplitter::new(super::ClientLimits::default().stream_line_bytes_max);
        let mut lines = Vec::new();
        for chunk in ["id: 1\nev", "ent: message\r", "\ndata: {}\r", "\r", "\n: keep", "-alive\r\n\nid: 2"] {
            lines.extend(s.push(chunk.as_bytes()).unwrap());
        }
        assert_eq!(lines, ["id: 1", "event: message", "data: {}", "", ": keep-alive", ""]);
        assert_eq!(s.push(b"\n").unwrap(), ["id: 2"]);
        // A line longer than the limit is refused.
        let mut short = LineSplitter::new(4);
        assert!(short.push(b"1234").is_ok());
        assert!(short.push(b"5").unwrap_err().to_string().contains("over 4 bytes"));
    }
}
