//! Accepting connections: a deadline for a new connection to start talking, and a pause when
//! the process runs out of file descriptors.
//!
//! Without these, tonic keeps a connection that never sends a byte open forever (hyper's HTTP/2
//! handshake has no timeout), so idle sockets pile up until the process reaches its descriptor
//! limit; there `accept` fails with `EMFILE` at once, every time, and tonic retries it in a busy
//! loop that keeps a core at 100% while no client can connect.
//!
//! - A connection must send its first [`HANDSHAKE_BYTES`] (the HTTP/2 client preface or an
//!   HTTP/1.1 request line; with TLS, the start of the `ClientHello`) within the handshake
//!   timeout, or it is closed. After that hyper and rustls have the connection; a TLS handshake
//!   has the same timeout as a whole ([`super::tls::TlsIncoming`]). A connection that completed its handshake may stay open and
//!   idle: gRPC clients keep their channels that way.
//! - An `accept` failure that is not about one connection (out of descriptors or memory) is
//!   logged once and retried every [`ACCEPT_BACKOFF`] until `accept` succeeds again.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// Bytes a new connection must send before the handshake timeout: the length of the HTTP/2
/// client preface (`PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`). A TLS `ClientHello` is longer.
pub const HANDSHAKE_BYTES: usize = 24;

/// How long `accept` pauses after a failure that is not about one connection (e.g. `EMFILE`):
/// short enough to resume quickly once descriptors are free, long enough not to spin.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Whether an `accept` error concerns only the connection being accepted (retry at once) rather
/// than the process (out of descriptors or memory: pause).
pub fn per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
    )
}

/// The accepted connections of a listener, as tonic's `serve_with_incoming_shutdown` takes them.
/// It never yields an error: failures are logged and retried here.
pub struct Incoming {
    listener: TcpListener,
    handshake_timeout: Duration,
    /// Set after a process-level `accept` failure: no `accept` until it fires.
    backoff: Option<Pin<Box<Sleep>>>,
    /// Whether the last `accept` failed that way (so a run of failures is logged once).
    failing: bool,
}

impl Incoming {
    pub fn new(listener: TcpListener, handshake_timeout: Duration) -> Incoming {
        Incoming {
            listener,
            handshake_timeout,
            backoff: None,
            failing: false,
        }
    }
}

impl tokio_stream::Stream for Incoming {
    type Item = Result<Connection, io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(backoff) = &mut this.backoff {
                ready!(backoff.as_mut().poll(cx));
                this.backoff = None;
            }
            match ready!(this.listener.poll_accept(cx)) {
                Ok((stream, _)) => {
                    if this.failing {
                        this.failing = false;
                        tracing::info!("accepting connections again");
                    }
                    // Scores are small messages: send them at once, not after Nagle's delay.
                    let _ = stream.set_nodelay(true);
                    return Poll::Ready(Some(Ok(Connection::new(stream, this.handshake_timeout))));
                }
                Err(error) if per_connection(&error) => continue,
                Err(error) => {
                    if !this.failing {
                        this.failing = true;
                        tracing::error!(
                            %error,
                            "cannot accept connections; retrying every {ACCEPT_BACKOFF:?} (too \
                             many open connections? see the open-files limit, ulimit -n)"
                        );
                    }
                    this.backoff = Some(Box::pin(tokio::time::sleep(ACCEPT_BACKOFF)));
                }
            }
        }
    }
}

/// An accepted connection that is closed (its reads fail with `TimedOut`) unless its first
/// [`HANDSHAKE_BYTES`] arrive before the deadline.
pub struct Connection {
    stream: TcpStream,
    /// `None` once the first bytes have arrived: from then on reads are the stream's own.
    deadline: Option<Pin<Box<Sleep>>>,
    /// Bytes received while the deadline runs.
    received: usize,
}

impl Connection {
    fn new(stream: TcpStream, handshake_timeout: Duration) -> Connection {
        Connection {
            stream,
            deadline: Some(Box::pin(tokio::time::sleep(handshake_timeout))),
            received: 0,
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(deadline) = &mut this.deadline else {
            return Pin::new(&mut this.stream).poll_read(cx, buf);
        };
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = buf.filled().len() - before;
                this.received += read;
                // Enough to know the peer talks; end of stream ends the connection anyway.
                if this.received >= HANDSHAKE_BYTES || read == 0 {
                    this.deadline = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            // Waiting for the peer: the deadline's timer wakes this task too.
            Poll::Pending => match deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client did not start its handshake in time",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

impl Connected for Connection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}
