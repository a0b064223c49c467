//! Sending over SMTP on connections opened here, with `TCP_NODELAY`, and kept in a small pool.
//!
//! Why not lettre's `AsyncSmtpTransport`: lettre 0.11 writes a message and then its closing
//! `.` in two writes, and opens its sockets without `TCP_NODELAY`. Nagle's algorithm then
//! holds the small second write until the server acknowledges the first, and the server
//! delays that acknowledgement (40 ms on Linux) waiting for more data: every message waited
//! about 40 ms, so one worker sent at most `worker.queues.default ÷ 0.04 s` receipts a second
//! whatever its CPU (196 a second at concurrency 10). lettre's transport has no hook to set
//! the option (its connector trait is sealed), so the TCP connection (and, for `smtps://`,
//! its TLS) is made here; lettre's `AsyncSmtpConnection` still speaks SMTP on it: greeting,
//! EHLO, STARTTLS, AUTH and the message.
//!
//! The URL is read as lettre reads it (and checked by lettre's own parser first): `smtp://`
//! (port 25), `smtp://…?tls=required|opportunistic` (STARTTLS, port 587), `smtps://` (TLS
//! from the start, port 465), user and password, and a path naming the EHLO name.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lettre::Tokio1Executor;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::{AsyncSmtpTransport, Error};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// Idle connections kept for the next messages; more are closed once their message is sent.
const MAX_IDLE: usize = 16;

/// An idle connection older than this is closed rather than reused (servers close idle
/// clients after a minute or more).
const IDLE_TIMEOUT: Duration = Duration::from_secs(50);

/// How a connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    Plain,
    /// STARTTLS after the greeting; `required` fails a server that does not offer it.
    StartTls {
        required: bool,
    },
    /// TLS from the first byte (`smtps://`).
    Implicit,
}

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    #[error(transparent)]
    Smtp(#[from] Error),
    #[error("connecting to the SMTP server failed")]
    Connect(#[source] std::io::Error),
    #[error("the SMTP exchange took longer than {0:?}")]
    Timeout(Duration),
    /// Cancelled before the message was handed over.
    #[error("cancelled before the message was handed over")]
    Cancelled,
}

impl SmtpError {
    /// Whether sending again will fail the same way (a 5xx reply).
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Smtp(e) if e.is_permanent())
    }
}

/// The SMTP server messages go to, and the connections open to it.
pub struct SmtpPool {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    hello: ClientId,
    timeout: Duration,
    /// For `smtps://`: the TLS client configuration (Mozilla's roots, as lettre uses).
    implicit_tls: Option<tokio_rustls::TlsConnector>,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

impl std::fmt::Debug for SmtpPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpPool")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .finish_non_exhaustive()
    }
}

impl SmtpPool {
    /// The server `url` names; each exchange (connecting included) within `timeout`.
    pub fn from_url(url: &str, timeout: Duration) -> Result<Self, Error> {
        // lettre's parser decides which URLs are good, as it did when it made the transport.
        AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?;
        let parsed = url::Url::parse(url).map_err(|_| unreachable_url())?;
        let host = parsed.host_str().ok_or_else(unreachable_url)?.to_owned();
        let tls = parsed
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        let (security, default_port) = match (parsed.scheme(), tls.as_deref()) {
            ("smtps", _) => (Security::Implicit, 465),
            ("smtp", Some("required")) => (Security::StartTls { required: true }, 587),
            ("smtp", Some("opportunistic")) => (Security::StartTls { required: false }, 587),
            _ => (Security::Plain, 25),
        };
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let credentials = parsed
            .password()
            .map(|password| Credentials::new(decode(parsed.username()), decode(password)));
        let path = parsed.path().trim_matches('/');
        let hello = if path.is_empty() {
            ClientId::default()
        } else {
            ClientId::Domain(path.to_owned())
        };
        let implicit_tls = match security {
            Security::Implicit => Some(implicit_tls().map_err(|_| unreachable_url())?),
            _ => None,
        };
        Ok(Self {
            port: parsed.port().unwrap_or(default_port),
            host,
            security,
            credentials,
            hello,
            timeout,
            implicit_tls,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Sends `message` to the envelope's recipients, on an idle connection or a new one.
    /// `cancel` stops it while the connection is being made (the server slow to greet, say):
    /// nothing was handed over. Once the message goes out it is not stopped.
    pub async fn send(
        &self,
        envelope: &Envelope,
        message: &[u8],
        cancel: &CancellationToken,
    ) -> Result<(), SmtpError> {
        let exchange = async {
            let mut connection = tokio::select! {
                connection = self.connection() => connection?,
                () = cancel.cancelled() => return Err(SmtpError::Cancelled),
            };
            match connection.send(envelope, message).await {
                Ok(_) => {
                    self.recycle(connection);
                    Ok(())
                }
                Err(error) => {
                    connection.abort().await;
                    Err(SmtpError::Smtp(error))
                }
            }
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| SmtpError::Timeout(self.timeout))?
    }

    /// An idle connection that still answers (a `NOOP`, as lettre's pool checks), else a new
    /// one.
    async fn connection(&self) -> Result<AsyncSmtpConnection, SmtpError> {
        loop {
            let idle = {
                let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                idle.pop()
            };
            match idle {
                Some((mut connection, since)) => {
                    if since.elapsed() < IDLE_TIMEOUT && connection.test_connected().await {
                        return Ok(connection);
                    }
                    connection.abort().await;
                }
                None => return self.connect().await,
            }
        }
    }

    fn recycle(&self, connection: AsyncSmtpConnection) {
        if connection.has_broken() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push((connection, Instant::now()));
        }
        // Past the bound the connection is dropped, which closes its socket without a QUIT.
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SmtpError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(SmtpError::Connect)?;
        // The point of this module: see its documentation.
        tcp.set_nodelay(true).map_err(SmtpError::Connect)?;
        let stream: Box<dyn AsyncTokioStream> = match &self.implicit_tls {
            Some(connector) => {
                let name = rustls::pki_types::ServerName::try_from(self.host.clone())
                    .map_err(|e| SmtpError::Connect(std::io::Error::other(e)))?;
                let tls = connector
                    .connect(name, tcp)
                    .await
                    .map_err(SmtpError::Connect)?;
                Box::new(TlsOverTcp(tls))
            }
            None => Box::new(tcp),
        };
        let mut connection =
            AsyncSmtpConnection::connect_with_transport(stream, &self.hello).await?;
        if let Security::StartTls { required } = self.security
            && (required || connection.can_starttls())
        {
            let parameters = TlsParameters::new(self.host.clone())?;
            connection.starttls(parameters, &self.hello).await?;
        }
        if let Some(credentials) = &self.credentials {
            connection.auth(DEFAULT_MECHANISMS, credentials).await?;
        }
        Ok(connection)
    }
}

/// The TLS client for `smtps://`: ring, Mozilla's roots (lettre's choices for STARTTLS).
fn implicit_tls() -> Result<tokio_rustls::TlsConnector, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// The error for a URL lettre's parser took but `url` did not (none is known).
fn unreachable_url() -> Error {
    match AsyncSmtpTransport::<Tokio1Executor>::from_url("") {
        Err(error) => error,
        Ok(_) => unreachable!("an empty URL is never an SMTP server"),
    }
}

/// A TLS stream as lettre's connection takes it.
#[derive(Debug)]
struct TlsOverTcp(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncTokioStream for TlsOverTcp {
    fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl tokio::io::AsyncRead for TlsOverTcp {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for TlsOverTcp {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_as_lettre_reads_them() {
        let plain = SmtpPool::from_url("smtp://127.0.0.1:2525", Duration::from_secs(1)).unwrap();
        assert_eq!((plain.port, plain.security), (2525, Security::Plain));
        let submission = SmtpPool::from_url(
            "smtp://user%40shop:p%2Bss@mail.example/shop.example?tls=required",
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(
            (submission.port, submission.security),
            (587, Security::StartTls { required: true })
        );
        assert_eq!(submission.hello, ClientId::Domain("shop.example".into()));
        assert!(
            submission.credentials == Some(Credentials::new("user@shop".into(), "p+ss".into()))
        );
        let implicit = SmtpPool::from_url("smtps://mail.example", Duration::from_secs(1)).unwrap();
        assert_eq!(
            (implicit.port, implicit.security),
            (465, Security::Implicit)
        );
        assert!(SmtpPool::from_url("http://mail.example", Duration::from_secs(1)).is_err());
        assert!(SmtpPool::from_url("not a url", Duration::from_secs(1)).is_err());
    }
}
