//! `simulate --tls`: HTTPS with a certificate authority made for this one simulator (`rcgen`),
//! so that the https path users take (and `run --ca-file`, which corporate TLS inspection
//! needs) can be rehearsed and tested on loopback. The authority's certificate is handed out
//! as PEM; its key never leaves the process.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use super::SimulatorError;

/// What the simulator serves HTTPS with.
pub struct TlsIdentity {
    /// The authority's certificate, PEM: what a client must trust.
    pub ca_pem: String,
    pub acceptor: TlsAcceptor,
}

/// A new authority, and a certificate it signed for `localhost` and `127.0.0.1`.
pub fn generate() -> Result<TlsIdentity, SimulatorError> {
    let failed = |error: &dyn std::fmt::Display| SimulatorError::Tls(error.to_string());
    let mut authority = CertificateParams::new(Vec::<String>::new()).map_err(|e| failed(&e))?;
    authority.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    authority
        .distinguished_name
        .push(DnType::CommonName, "pingone-bypass simulator CA");
    let authority_key = KeyPair::generate().map_err(|e| failed(&e))?;
    let authority_certificate = authority
        .self_signed(&authority_key)
        .map_err(|e| failed(&e))?;
    let issuer = Issuer::new(authority, authority_key);

    let mut server = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .map_err(|e| failed(&e))?;
    server
        .distinguished_name
        .push(DnType::CommonName, "pingone-bypass simulator");
    let server_key = KeyPair::generate().map_err(|e| failed(&e))?;
    let server_certificate = server
        .signed_by(&server_key, &issuer)
        .map_err(|e| failed(&e))?;

    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| failed(&e))?
        .with_no_client_auth()
        .with_single_cert(
            vec![server_certificate.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .map_err(|e| failed(&e))?;
    Ok(TlsIdentity {
        ca_pem: authority_certificate.pem(),
        acceptor: TlsAcceptor::from(Arc::new(config)),
    })
}
