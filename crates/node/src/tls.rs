//! Node TLS identities and pinned mutual TLS.
//!
//! Each node has a self-signed certificate; the roster pins the SHA-256 of its
//! SubjectPublicKeyInfo. The server accepts a client only if the client certificate's key is
//! pinned for some member, and the client accepts a server only if its key is the pin of the member
//! it meant to reach. No public CA is involved. An unpinned peer fails the handshake, so nothing it
//! sends is ever read.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use adi_core::MemberCode;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, verify_tls12_signature, verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::sign::CertifiedKey;
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

/// The certificate and key a node presents, as a server and as a client: replaced in place when
/// the node moves to its rotated TLS key, for the handshakes after that.
#[derive(Clone, Debug)]
pub struct Presented(Arc<RwLock<Arc<CertifiedKey>>>);

impl Presented {
    pub fn new(cert: CertificateDer<'static>, key: &PrivateKeyDer<'static>) -> anyhow::Result<Presented> {
        Ok(Presented(Arc::new(RwLock::new(certified(cert, key)?))))
    }

    /// Presents `cert` from the next handshake on.
    pub fn replace(&self, cert: CertificateDer<'static>, key: &PrivateKeyDer<'static>) -> anyhow::Result<()> {
        let next = certified(cert, key)?;
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = next;
        Ok(())
    }

    fn current(&self) -> Arc<CertifiedKey> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The pin of the certificate presented now.
    pub fn pin(&self) -> Option<[u8; 32]> {
        self.current().cert.first().and_then(spki_pin)
    }
}

fn certified(cert: CertificateDer<'static>, key: &PrivateKeyDer<'static>) -> anyhow::Result<Arc<CertifiedKey>> {
    let signer = ring::sign::any_supported_type(key).map_err(|e| anyhow::anyhow!("the TLS key: {e}"))?;
    Ok(Arc::new(CertifiedKey::new(vec![cert], signer)))
}

impl rustls::server::ResolvesServerCert for Presented {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

impl rustls::client::ResolvesClientCert for Presented {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The TLS keys whose nodes the federation listener admits, by member: each admitted member's
/// pin in the roster in force, and the pins that a member's own rotation retired, each until
/// its overlap ends (`rotation_overlap_ms` after the version took effect here), so that the
/// rotating node, which moves to its new key only once every peer holds the version, is still
/// admitted meanwhile.
#[derive(Clone, Debug, Default)]
pub struct PinSet {
    pub current: HashMap<[u8; 32], MemberCode>,
    /// A retired pin, its member, and until when (ms since the epoch) it is admitted.
    pub overlap: HashMap<[u8; 32], (MemberCode, u64)>,
}

impl PinSet {
    /// The member whose node holds the TLS key with this pin, if it is admitted at `now_ms`. A
    /// pin in its overlap is its rotating member's even if a later version gave it to another
    /// (a member's own entry may name any pin): the rotating member's node holds that key, and
    /// no other can present it.
    pub fn member(&self, pin: &[u8; 32], now_ms: u64) -> Option<&MemberCode> {
        self.overlap.get(pin).filter(|(_, until)| now_ms < *until).map(|(m, _)| m).or_else(|| self.current.get(pin))
    }

    /// The retired pins of `member` still admitted at `now_ms`.
    pub fn overlapping(&self, member: &MemberCode, now_ms: u64) -> Vec<[u8; 32]> {
        let mut out: Vec<[u8; 32]> =
            self.overlap.iter().filter(|(_, (m, until))| m == member && now_ms < *until).map(|(pin, _)| *pin).collect();
        out.sort();
        out
    }
}

/// The pins the federation listener admits, shared with its certificate verifier.
pub type Pins = Arc<RwLock<PinSet>>;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

fn algorithms() -> WebPkiSupportedAlgorithms {
    ring::default_provider().signature_verification_algorithms
}

/// Accepts client certificates whose key is pinned in the roster in effect (or in its overlap
/// after a rotation): the set changes when a roster version takes effect, for the handshakes after
/// it.
#[derive(Debug)]
struct PinnedClients {
    pins: Pins,
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
            Some(pin) if self.pins.read().is_ok_and(|pins| pins.member(&pin, crate::clock::now_ms()).is_some()) => {
                Ok(ClientCertVerified::assertion())
            }
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

/// Accepts a server certificate only if its key is one of the expected member's pins: the
/// roster's, or one its rotation retired while the overlap lasts.
#[derive(Debug)]
struct PinnedServer {
    pins: Vec<[u8; 32]>,
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
            Some(pin) if self.pins.contains(&pin) => Ok(ServerCertVerified::assertion()),
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
pub fn federation_server_config(identity: &Presented, pins: Pins) -> anyhow::Result<rustls::ServerConfig> {
    let verifier = Arc::new(PinnedClients { pins, algs: algorithms() });
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(identity.clone()));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The operator API's TLS configuration (no client certificates).
pub fn api_server_config(identity: &Presented) -> anyhow::Result<rustls::ServerConfig> {
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(identity.clone()));
    Ok(config)
}

/// The federation client's TLS configuration towards one peer, presenting this certificate.
pub fn federation_client_config(
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    peer_pin: [u8; 32],
) -> anyhow::Result<rustls::ClientConfig> {
    federation_client(&Presented::new(cert, &key)?, vec![peer_pin])
}

/// The federation client's TLS configuration towards one peer whose node holds one of
/// `peer_pins`, presenting the certificate the node presents at each handshake.
pub fn federation_client(identity: &Presented, peer_pins: Vec<[u8; 32]>) -> anyhow::Result<rustls::ClientConfig> {
    let verifier = Arc::new(PinnedServer { pins: peer_pins, algs: algorithms() });
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_cert_resolver(Arc::new(identity.clone()));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The API client's TLS configuration: the node's certificate key must match `pin`.
pub fn api_client_config(pin: [u8; 32]) -> anyhow::Result<rustls::ClientConfig> {
    let verifier = Arc::new(PinnedServer { pins: vec![pin], algs: algorithms() });
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(config)
}
