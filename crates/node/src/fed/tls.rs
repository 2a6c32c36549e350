//! Node TLS identities and pinned mutual TLS.
//!
//! Each node has a self-signed certificate; the roster pins the SHA-256 of its
//! SubjectPublicKeyInfo. The server accepts a client only if the client certificate's key is
//! pinned for some member, and the client accepts a server only if its key is the pin of the member
//! it meant to reach. No public CA is involved. An unpinned peer fails the handshake, so nothing it
//! sends is ever read.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, RwLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, verify_tls12_signature, verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use sha2::{Digest, Sha256};

/// A node's TLS certificate and key, PEM-encoded.
pub struct TlsIdentity {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Makes a self-signed Ed25519 certificate for a member's node.
pub fn generate_identity(member: &str) -> anyhow::Result<TlsIdentity> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
    let name = format!("{}.node.adi", member.to_ascii_lowercase());
    let mut params = rcgen::CertificateParams::new(vec![name.clone()])?;
    params.distinguished_name.push(rcgen::DnType::CommonName, format!("ADI node {member}"));
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2099, 1, 1);
    let cert = params.self_signed(&key)?;
    Ok(TlsIdentity { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
}

/// SHA-256 of a certificate's SubjectPublicKeyInfo.
pub fn spki_pin(cert: &CertificateDer<'_>) -> Option<[u8; 32]> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    Some(Sha256::digest(parsed.public_key().raw).into())
}

/// Loads a certificate and key from PEM files.
pub fn load_identity(cert: &Path, key: &Path) -> anyhow::Result<(CertificateDer<'static>, PrivateKeyDer<'static>)> {
    let cert = CertificateDer::from_pem_file(cert).map_err(|e| anyhow::anyhow!("{}: {e}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?;
    Ok((cert, key))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

fn algorithms() -> WebPkiSupportedAlgorithms {
    ring::default_provider().signature_verification_algorithms
}

/// Accepts client certificates whose key is pinned in the roster in effect: the set changes when
/// a roster version takes effect, for the handshakes after it.
#[derive(Debug)]
struct PinnedClients {
    pins: Arc<RwLock<HashSet<[u8; 32]>>>,
    algs: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for PinnedClients {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match spki_pin(end_entity) {
            Some(pin) if self.pins.read().is_ok_and(|pins| pins.contains(&pin)) => Ok(ClientCertVerified::assertion()),
            _ => Err(rustls::Error::General("client certificate key is not pinned in the roster".into())),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// Accepts a server certificate only if its key is the expected member's pin.
#[derive(Debug)]
struct PinnedServer {
    pin: [u8; 32],
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match spki_pin(end_entity) {
            Some(pin) if pin == self.pin => Ok(ServerCertVerified::assertion()),
            _ => Err(rustls::Error::General("server certificate key does not match the roster pin".into())),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// The federation server's TLS configuration: client certificates required and pinned.
pub fn federation_server_config(
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    pins: Arc<RwLock<HashSet<[u8; 32]>>>,
) -> anyhow::Result<rustls::ServerConfig> {
    let verifier = Arc::new(PinnedClients { pins, algs: algorithms() });
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert], key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The operator API's TLS configuration (no client certificates).
pub fn api_server_config(
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> anyhow::Result<rustls::ServerConfig> {
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)?;
    Ok(config)
}

/// The federation client's TLS configuration towards one peer, presenting this node's certificate.
pub fn federation_client_config(
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    peer_pin: [u8; 32],
) -> anyhow::Result<rustls::ClientConfig> {
    let verifier = Arc::new(PinnedServer { pin: peer_pin, algs: algorithms() });
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(vec![cert], key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The API client's TLS configuration: the node's certificate key must match `pin`.
pub fn api_client_config(pin: [u8; 32]) -> anyhow::Result<rustls::ClientConfig> {
    let verifier = Arc::new(PinnedServer { pin, algs: algorithms() });
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(config)
}
