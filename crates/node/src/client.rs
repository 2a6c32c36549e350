//! A small client of the operator API, used by the `adi` command and by tests.
//!
//! Plain HTTP for loopback; for `https://` URLs the node's certificate is checked against a pin
//! (the SHA-256 of its key, as in the roster), since nodes use self-signed certificates.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde_json::Value;
use tokio::net::TcpStream;

/// Largest answer the client reads.
const RESPONSE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// How long one request may take.
const REQUEST_TIMEOUT_MS: u64 = 60_000;

/// An API client bound to one node and one operator token.
#[derive(Clone)]
pub struct Client {
    host_port: String,
    tls: Option<Arc<rustls::ClientConfig>>,
    token: Option<String>,
}

impl Client {
    /// `url` is `http://host:port` or `https://host:port`; `pin` is required for https.
    pub fn new(url: &str, token: Option<String>, pin: Option<&str>) -> anyhow::Result<Client> {
        let url = url.trim_end_matches('/');
        let (tls, rest) = if let Some(rest) = url.strip_prefix("http://") {
            (None, rest)
        } else if let Some(rest) = url.strip_prefix("https://") {
            let pin = pin.ok_or_else(|| anyhow::anyhow!("an https URL needs the node's key pin (--pin or ADI_PIN)"))?;
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(pin, &mut bytes).map_err(|_| anyhow::anyhow!("the pin is 32 bytes in hex"))?;
            (Some(Arc::new(crate::tls::api_client_config(bytes)?)), rest)
        } else {
            anyhow::bail!("the API URL must start with http:// or https://, got '{url}'");
        };
        if rest.is_empty() || rest.contains('/') {
            anyhow::bail!("the API URL is scheme://host:port, got '{url}'");
        }
        Ok(Client { host_port: rest.to_string(), tls, token })
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
        let work = async {
            let tcp = TcpStream::connect(&self.host_port)
                .await
                .map_err(|e| anyhow::anyhow!("cannot reach the node at {}: {e}", self.host_port))?;
            let _ = tcp.set_nodelay(true);
            let mut builder = hyper::Request::builder()
                .method(method)
                .uri(path)
                .header(hyper::header::HOST, &self.host_port)
                .header(hyper::header::CONTENT_TYPE, "application/json");
            if let Some(t) = &self.token {
                builder = builder.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
            }
            let request = builder.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
            let response = match &self.tls {
                None => {
                    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
                    tokio::spawn(conn);
                    sender.send_request(request).await?
                }
                Some(config) => {
                    let name = ServerName::try_from("node.adi")?;
                    let stream = tokio_rustls::TlsConnector::from(config.clone()).connect(name, tcp).await?;
                    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                    tokio::spawn(conn);
                    sender.send_request(request).await?
                }
            };
            let status = response.status();
            let bytes = Limited::new(response.into_body(), RESPONSE_BYTES_MAX)
                .collect()
                .await
                .map_err(|e| anyhow::anyhow!("cannot read the answer: {e}"))?
                .to_bytes();
            Ok((status, bytes))
        };
        tokio::time::timeout(Duration::from_millis(REQUEST_TIMEOUT_MS), work)
            .await
            .map_err(|_| anyhow::anyhow!("the node did not answer within {REQUEST_TIMEOUT_MS} ms"))?
    }

    /// Like [`Client::request`], but a non-2xx answer becomes an error carrying the node's message.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let (status, value) = self.request(method, path, body).await?;
        if status.is_success() {
            Ok(value)
        } else {
            let code = value.get("error").and_then(Value::as_str).unwrap_or("error");
            let message = value.get("message").and_then(Value::as_str).unwrap_or("");
            anyhow::bail!("{status} {code}: {message}")
        }
    }
}
