//! TLS for both protocols on one port.
//!
//! tonic's own TLS offers only `h2` in ALPN, so an HTTP/1.1 client (a CRM's JSON callout) could
//! not connect. Here the server does the handshake itself (rustls), offering `h2` and
//! `http/1.1`, and hands tonic the decrypted stream; hyper then tells the protocols apart by
//! their first bytes, as on a plain connection.
//!
//! Handshakes run in their own tasks, so a slow client never holds up `accept`; each has the
//! handshake timeout as a whole (and the first bytes of its `ClientHello` the deadline of
//! [`super::incoming::Connection`]).

use super::TlsIdentity;
use super::incoming::Connection;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;

/// Why the certificate and key cannot serve TLS.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("no PEM certificate could be read from the certificate file")]
    Certificate,
    #[error("no PEM private key (PKCS#8, PKCS#1 or SEC1) could be read from the key file")]
    PrivateKey,
    #[error("{0}")]
    Rustls(#[from] tokio_rustls::rustls::Error),
}

/// A TLS acceptor for `identity` that offers HTTP/2 and HTTP/1.1.
pub fn acceptor(identity: &TlsIdentity) -> Result<TlsAcceptor, TlsError> {
    let certs = CertificateDer::pem_slice_iter(&identity.cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TlsError::Certificate)?;
    if certs.is_empty() {
        return Err(TlsError::Certificate);
    }
    let key = PrivateKeyDer::from_pem_slice(&identity.key_pem).map_err(|_| TlsError::PrivateKey)?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The connections of `inner` once their TLS handshake has completed; connections whose
/// handshake fails or times out are closed and skipped (logged at debug level).
pub struct TlsIncoming<S> {
    inner: S,
    acceptor: TlsAcceptor,
    timeout: Duration,
    /// Handshakes under way.
    handshakes: JoinSet<Option<TlsStream<Connection>>>,
    /// Whether `inner` has ended (no more connections to accept).
    done: bool,
}

impl<S> TlsIncoming<S> {
    pub fn new(inner: S, acceptor: TlsAcceptor, timeout: Duration) -> TlsIncoming<S> {
        TlsIncoming {
            inner,
            acceptor,
            timeout,
            handshakes: JoinSet::new(),
            done: false,
        }
    }
}

impl<S> tokio_stream::Stream for TlsIncoming<S>
where
    S: tokio_stream::Stream<Item = Result<Connection, io::Error>> + Unpin,
{
    type Item = Result<TlsStream<Connection>, io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        // Start a handshake for every connection accepted meanwhile.
        while !this.done {
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(connection))) => {
                    let (acceptor, timeout) = (this.acceptor.clone(), this.timeout);
                    this.handshakes.spawn(async move {
                        match tokio::time::timeout(timeout, acceptor.accept(connection)).await {
                            Ok(Ok(stream)) => Some(stream),
                            Ok(Err(error)) => {
                                tracing::debug!(%error, "TLS handshake failed");
                                None
                            }
                            Err(_) => {
                                tracing::debug!("TLS handshake timed out");
                                None
                            }
                        }
                    });
                }
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error))),
                Poll::Ready(None) => this.done = true,
                Poll::Pending => break,
            }
        }
        loop {
            match this.handshakes.poll_join_next(cx) {
                Poll::Ready(Some(Ok(Some(stream)))) => return Poll::Ready(Some(Ok(stream))),
                // A failed handshake (or, never expected, a panicked one): next.
                Poll::Ready(Some(_)) => continue,
                Poll::Ready(None) if this.done => return Poll::Ready(None),
                // Nothing under way: `inner` wakes us for the next connection.
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
    }
}
