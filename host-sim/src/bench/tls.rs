//! TLS 1.3 handshakes with rustls (aws-lc-rs provider) over loopback TCP: full handshakes with
//! X25519MLKEM768 and with X25519 key exchange, and resumed handshakes (a session ticket from
//! an earlier connection; TLS 1.3 resumption still runs the key exchange, psk_dhe_ke).
//!
//! Each sample connects, handshakes, and is timed until the client's handshake is complete;
//! then one byte is echoed so that the server's session tickets reach the client (for the next
//! resumption) before the connection closes. The bytes counted are everything the client sent
//! and received up to the end of its handshake. The server certificate is a fresh self-signed
//! ECDSA P-256 certificate (as the prototype's benchmark used), verified by the client.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use rustls::client::Resumption;
use rustls::crypto::{CryptoProvider, SupportedKxGroup, aws_lc_rs};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, HandshakeKind, RootCertStore, ServerConfig, ServerConnection};

use super::Sample;

/// What can go wrong setting up or running a TLS case.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rustls refused a configuration or a handshake.
    #[error("rustls: {0}")]
    Rustls(#[from] rustls::Error),
    /// The test certificate.
    #[error("generating the self-signed certificate: {0}")]
    Cert(#[from] rcgen::Error),
    /// Loopback networking.
    #[error("loopback TCP: {0} (is 127.0.0.1 usable here?)")]
    Io(#[from] io::Error),
    /// A resumed case did not resume.
    #[error("{0}: the handshake was {1:?}, not the kind measured")]
    WrongKind(String, Option<HandshakeKind>),
}

/// A stream that counts the bytes through it.
struct Counting {
    inner: TcpStream,
    bytes: usize,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n;
        Ok(n)
    }
}

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn provider(group: &'static dyn SupportedKxGroup) -> Arc<CryptoProvider> {
    let mut p = aws_lc_rs::default_provider();
    p.kx_groups = vec![group];
    Arc::new(p)
}

/// A loopback server that answers each connection's one byte with itself, then closes.
fn serve(config: Arc<ServerConfig>, connections: usize) -> Result<(u16, thread::JoinHandle<()>), TlsError> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let handle = thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let Ok(sock) = stream else { continue };
            let _ = sock.set_nodelay(true);
            let Ok(conn) = ServerConnection::new(config.clone()) else { continue };
            let mut tls = rustls::StreamOwned::new(conn, sock);
            let mut b = [0u8; 1];
            if tls.read_exact(&mut b).is_ok() {
                let _ = tls.write_all(&b);
                let _ = tls.flush();
            }
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    Ok((port, handle))
}

/// One client connection: the handshake's duration and bytes, and its kind.
fn connect(
    config: &Arc<ClientConfig>,
    port: u16,
) -> Result<(std::time::Duration, usize, Option<HandshakeKind>), TlsError> {
    let name = ServerName::try_from("localhost").map_err(|_| rustls::Error::General("server name".into()))?;
    let t0 = Instant::now();
    let sock = TcpStream::connect(("127.0.0.1", port))?;
    sock.set_nodelay(true)?;
    let mut io = Counting { inner: sock, bytes: 0 };
    let mut conn = ClientConnection::new(config.clone(), name)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut io)?;
    }
    while conn.wants_write() {
        conn.write_tls(&mut io)?;
    }
    let took = t0.elapsed();
    let bytes = io.bytes;
    let kind = conn.handshake_kind();
    let mut tls = rustls::Stream::new(&mut conn, &mut io);
    tls.write_all(b"x")?;
    let mut b = [0u8; 1];
    tls.read_exact(&mut b)?;
    Ok((took, bytes, kind))
}

/// Run the four TLS cases `n` times each.
pub fn run(n: usize, mut progress: impl FnMut()) -> Result<Vec<Sample>, TlsError> {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])?;
    let cert_der = cert.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
    let mut roots = RootCertStore::empty();
    roots.add(cert_der.clone())?;
    let groups: [(&str, &'static dyn SupportedKxGroup, bool); 2] =
        [("X25519MLKEM768", aws_lc_rs::kx_group::X25519MLKEM768, true), ("X25519", aws_lc_rs::kx_group::X25519, false)];
    let mut out = Vec::new();
    for (label, group, pq) in groups {
        let server = Arc::new(
            ServerConfig::builder_with_provider(provider(group))
                .with_protocol_versions(&[&rustls::version::TLS13])?
                .with_no_client_auth()
                .with_single_cert(vec![cert_der.clone()], key.clone_key())?,
        );
        let client = |resume: bool| -> Result<Arc<ClientConfig>, TlsError> {
            let mut c = ClientConfig::builder_with_provider(provider(group))
                .with_protocol_versions(&[&rustls::version::TLS13])?
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
            if !resume {
                c.resumption = Resumption::disabled();
            }
            Ok(Arc::new(c))
        };
        for resume in [false, true] {
            let name = if resume {
                format!("TLS 1.3 resumed handshake, {label}")
            } else {
                format!("TLS 1.3 full handshake, {label}")
            };
            let config = client(resume)?;
            // One more connection for the resumed case: the first one earns the ticket.
            let (port, server_thread) = serve(server.clone(), n + usize::from(resume))?;
            if resume {
                connect(&config, port)?;
            }
            let mut sample = Sample::new(name.clone(), pq, 0);
            for _ in 0..n {
                let (took, bytes, kind) = connect(&config, port)?;
                let want = if resume { HandshakeKind::Resumed } else { HandshakeKind::Full };
                if kind != Some(want) {
                    return Err(TlsError::WrongKind(name, kind));
                }
                sample.push(took);
                sample.wire_bytes = bytes;
                progress();
            }
            let _ = server_thread.join();
            out.push(sample);
        }
    }
    Ok(out)
}
