//! HTTPS for the simulator ([`crate::SimConfig::tls`]): a certificate authority and a server
//! certificate for `127.0.0.1`, `localhost` and `::1`, both made at start (ECDSA P-256, by
//! rcgen over aws-lc-rs), and the accept loop that serves the simulator's routes over
//! rustls. Clients trust the simulator by trusting the CA ([`crate::SimHandle::ca_pem`]),
//! which exists only in this process: nothing else is ever signed with it.
//!
//! warp 0.4 has no TLS of its own and keeps its acceptor trait private, so the loop is the
//! one `warp::serve(...).graceful(...)` runs, over TLS streams: hyper-util's connection
//! builder with warp's filter as the service, and a graceful shutdown that lets requests
//! in flight finish.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use warp::Filter;

/// The simulator's certificates: the CA clients trust, and the acceptor that presents the
/// server certificate it signed.
pub(crate) struct Tls {
    /// The CA certificate in PEM.
    pub(crate) ca_pem: String,
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

/// A DER certificate as PEM, 64 characters a line (RFC 7468).
fn pem(label: &str, der: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

impl Tls {
    /// Makes the CA and the server certificate.
    pub(crate) fn make() -> Result<Self, String> {
        let fail = |what: &str, e: &dyn std::fmt::Display| format!("cannot make the {what}: {e}");
        let ca_key = KeyPair::generate().map_err(|e| fail("CA key", &e))?;
        let mut ca = CertificateParams::default();
        // A name of its own: a client that trusts the CAs of two simulators at once picks the
        // issuer by name, and two CAs of one name would fail each other's signatures.
        ca.distinguished_name.push(
            DnType::CommonName,
            format!("enroll sim test CA {:016x}", fastrand::u64(..)),
        );
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).map_err(|e| fail("CA", &e))?;
        let issuer = Issuer::new(ca, ca_key);

        let key = KeyPair::generate().map_err(|e| fail("server key", &e))?;
        let mut server = CertificateParams::new(vec!["localhost".to_owned()])
            .map_err(|e| fail("server certificate", &e))?;
        server.subject_alt_names.extend([
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ]);
        server
            .distinguished_name
            .push(DnType::CommonName, "enroll sim");
        server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server
            .signed_by(&key, &issuer)
            .map_err(|e| fail("server certificate", &e))?;

        let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| fail("TLS configuration", &e))?
            .with_no_client_auth()
            .with_single_cert(
                vec![
                    CertificateDer::from(server_cert.der().to_vec()),
                    CertificateDer::from(ca_cert.der().to_vec()),
                ],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .map_err(|e| fail("TLS configuration", &e))?;
        // HTTP/1.1 only, as over plain HTTP: a dropped connection then looks the same.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            ca_pem: pem("CERTIFICATE", ca_cert.der()),
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// Serves `filter` over TLS on `listener` until `stop` resolves, then lets the
    /// connections in flight finish.
    pub(crate) async fn serve<F>(
        &self,
        listener: tokio::net::TcpListener,
        filter: F,
        stop: impl std::future::Future<Output = ()>,
    ) where
        F: Filter<Extract = (warp::reply::Response,), Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
    {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut stop = std::pin::pin!(stop);
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = &mut stop => break,
            };
            let Ok((stream, _)) = accepted else {
                // Out of file descriptors or a connection reset before accept: try again.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            };
            let acceptor = self.acceptor.clone();
            let service =
                hyper_util::service::TowerToHyperService::new(warp::service(filter.clone()));
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                // A client that does not trust the CA gives up in the handshake.
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let io = hyper_util::rt::TokioIo::new(stream);
                let builder = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                );
                let connection = builder.serve_connection_with_upgrades(io, service);
                // A connection the simulator drops on purpose ends in an error here.
                let _ = watcher.watch(connection).await;
            });
        }
        drop(listener);
        graceful.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn the_ca_is_pem_that_reads_back_as_one_certificate() {
        use rustls_pki_types::pem::PemObject;
        let tls = Tls::make().unwrap();
        let certs: Vec<_> = CertificateDer::pem_slice_iter(tls.ca_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(certs.len(), 1);
        assert!(tls.ca_pem.lines().all(|l| l.len() <= 64));
    }
}
