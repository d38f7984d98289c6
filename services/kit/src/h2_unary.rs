//! Unary gRPC calls on one HTTP/2 connection driven by `h2` directly: what the
//! router uses to call a provider's `Complete`, without tonic's `Channel`.
//!
//! Why: a `Channel` puts a `tower::buffer` worker task between the caller and
//! hyper's connection task, and hyper adds a task per request, so every call
//! hops across tasks (and often threads) three times each way. Here the calling
//! task opens the stream, writes the message and reads the answer itself; only
//! the connection's I/O runs in its own task. The message is written as the
//! pieces the caller hands over (`Bytes`, not copied), so a payload the router
//! received is passed on without re-encoding it.
//!
//! What it keeps from the `Channel`: mutual TLS with the server's certificate
//! checked for a given name ([`Security`]), connect and handshake timeouts,
//! TCP_NODELAY, the kit's window and frame sizes, keep-alive pings (a connection
//! whose peer stops answering is dropped), reconnection on the next call after a
//! connection is lost, and the deadline, both sent (`grpc-timeout`) and enforced
//! here.
//!
//! What a server answers is decoded under limits and never panics the caller:
//! the message must be one uncompressed message within `max_response`, the status
//! comes from `grpc-status`/`grpc-message` only (tonic's `Status::from_header_map`
//! panics on a malformed `grpc-status-details-bin`, so that header is dropped
//! first), and a non-gRPC HTTP answer maps to the code the gRPC spec gives it.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::{BufMut, Bytes, BytesMut};
use h2::client::SendRequest;
use http::{HeaderMap, HeaderValue, Method, Request, Uri, header};
use prost::Message;
use tokio::net::TcpStream;
use tonic::{Code, Status};

use crate::{
    KitError,
    auth::{CALLER_HEADER, Caller},
    server::{CONNECTION_WINDOW, MAX_FRAME, STREAM_WINDOW},
    tls::Security,
};

/// Longest a TCP connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A keep-alive ping every this often...
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// ... must be answered within this, or the connection is dropped.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where to connect and how.
struct Target {
    /// Ping interval, and how long a ping may go unanswered.
    keepalive: (Duration, Duration),
    /// `host:port` to dial.
    dial: String,
    /// `scheme://authority`, the prefix of every request URI.
    origin: String,
    /// Under TLS: the client configuration and the name the server's certificate
    /// must carry.
    tls: Option<(
        Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    )>,
}

/// A lazily connecting HTTP/2 client for unary gRPC calls to one server. Cheap to
/// share (`Arc`); concurrent calls multiplex on one connection per shard.
///
/// Calls made on a server shard ([`crate::shards`]) use that shard's own
/// connection, whose I/O task runs on the shard's thread, so a forwarded request
/// never leaves its thread; calls from anywhere else share one more connection.
pub struct H2Unary {
    target: Target,
    /// Slot 0: calls off the shards; slot `i + 1`: calls on shard `i` (shards beyond
    /// the slots share them, modulo).
    slots: Box<[Slot]>,
}

/// One connection and how to replace it.
#[derive(Default)]
struct Slot {
    /// The live connection, if any, and its generation (bumped on every connect).
    conn: Mutex<Option<(u64, SendRequest<Bytes>)>>,
    /// Held while connecting, so concurrent calls wait for one connection.
    connecting: tokio::sync::Mutex<u64>,
}

impl std::fmt::Debug for H2Unary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Unary")
            .field("origin", &self.target.origin)
            .field("tls", &self.target.tls.is_some())
            .finish()
    }
}

impl H2Unary {
    /// A client for `url` (`https://` under mutual TLS, `http://` in plaintext, as
    /// [`Security::endpoint`] requires). Under TLS the server must present a
    /// certificate from the CA issued for `server_name` (default: the URL's host).
    /// Nothing is dialled until the first call.
    pub fn new(
        security: &Security,
        url: &str,
        server_name: Option<&str>,
    ) -> Result<Self, KitError> {
        let bad = |reason: String| KitError::Transport {
            what: "setting up a connection",
            reason,
        };
        // The same scheme checks and messages as the tonic endpoints.
        security.endpoint(url, server_name)?;
        let uri: Uri = url
            .parse()
            .map_err(|e| bad(format!("{url:?} is not a URL: {e}")))?;
        let authority = uri
            .authority()
            .ok_or_else(|| bad(format!("{url:?} names no host")))?;
        let https = uri.scheme_str() == Some("https");
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let dial = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let tls = match security {
            Security::Plaintext => None,
            Security::Mtls(m) => {
                let name = server_name.unwrap_or(host).to_owned();
                let name = rustls::pki_types::ServerName::try_from(name)
                    .map_err(|e| bad(format!("{url}: server name: {e}")))?;
                Some((m.rustls_client_config()?, name))
            }
        };
        Ok(Self {
            target: Target {
                dial,
                keepalive: (KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT),
                origin: format!("{}://{authority}", if https { "https" } else { "http" }),
                tls,
            },
            slots: (0..=crate::shards::default_count())
                .map(|_| Slot::default())
                .collect(),
        })
    }

    /// Ping the server every `interval` and drop the connection when a ping goes
    /// unanswered for `timeout` (defaults: 10 s and 5 s), so calls after a peer
    /// vanished without closing the connection redial instead of waiting out their
    /// deadline on a dead one.
    pub fn with_keepalive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.target.keepalive = (interval, timeout);
        self
    }

    /// Call `path` with one message made of `pieces` (concatenated, not copied),
    /// within `timeout`, naming `caller` to the server, and decode the answer as
    /// `M` if it is at most `max_response` bytes.
    pub async fn call<M: Message + Default>(
        &self,
        path: &str,
        pieces: Vec<Bytes>,
        timeout: Duration,
        caller: Option<&Caller>,
        max_response: usize,
    ) -> Result<M, Status> {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(format!("{}{path}", self.target.origin))
            .header(header::CONTENT_TYPE, "application/grpc")
            .header(header::TE, "trailers")
            .header("grpc-timeout", grpc_timeout(timeout))
            .body(())
            .map_err(|e| Status::internal(format!("building a request to {path}: {e}")))?;
        if let Some(c) = caller
            && let Ok(v) = HeaderValue::try_from(c.to_string())
        {
            req.headers_mut().insert(CALLER_HEADER, v);
        }
        match tokio::time::timeout(timeout, self.exchange(req, pieces, max_response)).await {
            Ok(r) => r,
            // Dropping the exchange resets the stream (RST_STREAM CANCEL); the
            // connection stays up for other calls.
            Err(_) => Err(Status::deadline_exceeded(format!(
                "no answer from {} within {timeout:?}",
                self.target.origin
            ))),
        }
    }

    /// Send `req` with the message `pieces` on the live connection and read one
    /// answer of at most `max_response` bytes.
    async fn exchange<M: Message + Default>(
        &self,
        req: Request<()>,
        pieces: Vec<Bytes>,
        max_response: usize,
    ) -> Result<M, Status> {
        let slot = self.slot();
        let (generation, send) = self.ready(slot).await?;
        let mut send = send;
        let (response, mut body) = match send.send_request(req, false) {
            Ok(x) => x,
            Err(e) => return Err(self.lost(slot, generation, &e)),
        };
        // The gRPC message prefix (uncompressed, length) joins the first piece.
        let len: usize = pieces.iter().map(Bytes::len).sum();
        let len = u32::try_from(len).map_err(|_| {
            Status::resource_exhausted(format!("a {len}-byte message is too large"))
        })?;
        let mut first = BytesMut::with_capacity(5 + pieces.first().map_or(0, Bytes::len));
        first.put_u8(0);
        first.put_u32(len);
        let mut rest = pieces.into_iter();
        if let Some(p) = rest.next() {
            first.put_slice(&p);
        }
        let rest: Vec<Bytes> = rest.filter(|p| !p.is_empty()).collect();
        let sent = body
            .send_data(first.freeze(), rest.is_empty())
            .and_then(|()| {
                let n = rest.len();
                for (i, p) in rest.into_iter().enumerate() {
                    body.send_data(p, i + 1 == n)?;
                }
                Ok(())
            });
        if let Err(e) = sent {
            return Err(self.lost(slot, generation, &e));
        }
        let response = match response.await {
            Ok(r) => r,
            Err(e) => return Err(self.lost(slot, generation, &e)),
        };
        let (parts, mut incoming) = response.into_parts();
        // Trailers-only answer (every error tonic sends before a message).
        if let Some(status) = status_from(&parts.headers)
            && status.code() != Code::Ok
        {
            return Err(status);
        }
        if parts.status != http::StatusCode::OK {
            return Err(from_http_status(parts.status));
        }
        let limit = max_response.saturating_add(5);
        let mut buf = BytesMut::new();
        let mut single: Option<Bytes> = None;
        while let Some(chunk) = incoming.data().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => return Err(self.lost(slot, generation, &e)),
            };
            let _ = incoming.flow_control().release_capacity(chunk.len());
            if buf.len() + chunk.len() + single.as_ref().map_or(0, Bytes::len) > limit {
                return Err(Status::out_of_range(format!(
                    "the answer from {} is larger than {max_response} bytes",
                    self.target.origin
                )));
            }
            // Keep a lone frame as it came (no copy); join only if there are more.
            match single.take() {
                None if buf.is_empty() => single = Some(chunk),
                None => buf.put_slice(&chunk),
                Some(prev) => {
                    buf.put_slice(&prev);
                    buf.put_slice(&chunk);
                }
            }
        }
        let trailers = match incoming.trailers().await {
            Ok(t) => t,
            Err(e) => return Err(self.lost(slot, generation, &e)),
        };
        let status = trailers.as_ref().and_then(status_from).unwrap_or_else(|| {
            Status::internal(format!("{} sent no grpc-status", self.target.origin))
        });
        if status.code() != Code::Ok {
            return Err(status);
        }
        let message = single.unwrap_or_else(|| buf.freeze());
        decode_one(&message)
    }

    /// This thread's slot.
    fn slot(&self) -> &Slot {
        // `slots` holds `default_count() + 1 ≥ 2` entries, so `i` is in range.
        let shards = self.slots.len() - 1;
        let i = crate::shards::current().map_or(0, |shard| 1 + shard % shards);
        &self.slots[i]
    }

    /// A ready sender on `slot`'s live connection, connecting first if there is
    /// none or it was lost.
    async fn ready(&self, slot: &Slot) -> Result<(u64, SendRequest<Bytes>), Status> {
        if let Some((generation, send)) = slot.cached() {
            match send.ready().await {
                Ok(send) => return Ok((generation, send)),
                Err(_) => slot.forget(generation),
            }
        }
        let mut last = slot.connecting.lock().await;
        // Someone else may have connected while this call waited.
        if let Some((generation, send)) = slot.cached() {
            match send.ready().await {
                Ok(send) => return Ok((generation, send)),
                Err(_) => slot.forget(generation),
            }
        }
        let send = connect(&self.target).await?;
        *last += 1;
        let generation = *last;
        if let Ok(mut c) = slot.conn.lock() {
            *c = Some((generation, send.clone()));
        }
        let send = send
            .ready()
            .await
            .map_err(|e| Status::unavailable(format!("{}: {e}", self.target.origin)))?;
        Ok((generation, send))
    }

    /// The status for an h2 error on `slot`'s connection of `generation`; a
    /// connection-level failure drops the connection so the next call redials.
    fn lost(&self, slot: &Slot, generation: u64, e: &h2::Error) -> Status {
        if e.is_io() || e.is_go_away() || e.reason().is_none() {
            slot.forget(generation);
            return Status::unavailable(format!("connection to {} lost: {e}", self.target.origin));
        }
        let code = match e.reason() {
            Some(h2::Reason::REFUSED_STREAM) => Code::Unavailable,
            Some(h2::Reason::CANCEL) => Code::Cancelled,
            Some(h2::Reason::ENHANCE_YOUR_CALM) => Code::ResourceExhausted,
            Some(h2::Reason::INADEQUATE_SECURITY) => Code::PermissionDenied,
            _ => Code::Internal,
        };
        Status::new(code, format!("{}: stream reset: {e}", self.target.origin))
    }
}

impl Slot {
    fn cached(&self) -> Option<(u64, SendRequest<Bytes>)> {
        self.conn.lock().ok().and_then(|c| c.clone())
    }

    /// Drop the connection of `generation` (if it is still the live one).
    fn forget(&self, generation: u64) {
        if let Ok(mut c) = self.conn.lock()
            && c.as_ref().is_some_and(|(g, _)| *g == generation)
        {
            *c = None;
        }
    }
}

impl Security {
    /// A [`H2Unary`] client for `url` (see [`H2Unary::new`]).
    pub fn h2_unary(&self, url: &str, server_name: Option<&str>) -> Result<H2Unary, KitError> {
        H2Unary::new(self, url, server_name)
    }
}

/// Dial, secure and handshake one connection; its I/O runs in a spawned task that
/// also pings the peer and ends the connection if a ping goes unanswered.
async fn connect(target: &Target) -> Result<SendRequest<Bytes>, Status> {
    let unavailable = |what: &str, e: &dyn std::fmt::Display| {
        Status::unavailable(format!("{what} {}: {e}", target.origin))
    };
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&target.dial))
        .await
        .map_err(|_| unavailable("connecting to", &"timed out"))?
        .map_err(|e| unavailable("connecting to", &e))?;
    let _ = tcp.set_nodelay(true);
    // One write per scheduler turn, not per request (see `crate::coalesce`).
    let tcp = crate::coalesce::CoalescedWrites::new(tcp);
    let mut builder = h2::client::Builder::new();
    builder
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_frame_size(MAX_FRAME)
        .enable_push(false);
    match &target.tls {
        None => start(&builder, tcp, target).await,
        Some((config, name)) => {
            let tls = tokio::time::timeout(
                HANDSHAKE_TIMEOUT,
                tokio_rustls::TlsConnector::from(config.clone()).connect(name.clone(), tcp),
            )
            .await
            .map_err(|_| unavailable("TLS handshake with", &"timed out"))?
            .map_err(|e| unavailable("TLS handshake with", &e))?;
            start(&builder, tls, target).await
        }
    }
}

/// The HTTP/2 handshake on `io`; then the connection runs in its own task ([`drive`]).
async fn start<T>(
    builder: &h2::client::Builder,
    io: T,
    target: &Target,
) -> Result<SendRequest<Bytes>, Status>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (send, conn) = builder.handshake::<_, Bytes>(io).await.map_err(|e| {
        Status::unavailable(format!("HTTP/2 handshake with {}: {e}", target.origin))
    })?;
    drive(conn, target.keepalive);
    Ok(send)
}

/// Run a connection's I/O until it ends, pinging every `interval` and ending it
/// when a ping goes unanswered for `timeout`.
fn drive<T>(mut conn: h2::client::Connection<T, Bytes>, (interval, timeout): (Duration, Duration))
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let ping = conn.ping_pong();
    tokio::spawn(async move {
        let keepalive = async move {
            let Some(mut ping) = ping else {
                return std::future::pending::<()>().await;
            };
            loop {
                tokio::time::sleep(interval).await;
                match tokio::time::timeout(timeout, ping.ping(h2::Ping::opaque())).await {
                    Ok(Ok(_)) => {}
                    _ => return,
                }
            }
        };
        tokio::select! {
            r = &mut conn => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "provider connection ended");
                }
            }
            () = keepalive => tracing::debug!("provider connection dropped: keep-alive ping unanswered"),
        }
    });
}

/// `grpc-timeout`: at most 8 digits and a unit.
fn grpc_timeout(d: Duration) -> String {
    let us = d.as_micros();
    if us < 100_000_000 {
        format!("{}u", us.max(1))
    } else if us / 1000 < 100_000_000 {
        format!("{}m", us / 1000)
    } else {
        format!("{}S", (d.as_secs()).min(99_999_999))
    }
}

/// The status in `headers`, read from `grpc-status` and `grpc-message` only.
fn status_from(headers: &HeaderMap) -> Option<Status> {
    let mut only = HeaderMap::new();
    for name in ["grpc-status", "grpc-message"] {
        if let Some(v) = headers.get(name) {
            only.insert(name, v.clone());
        }
    }
    Status::from_header_map(&only)
}

/// The gRPC code for a non-200 HTTP answer (gRPC's "HTTP to gRPC status code
/// mapping").
fn from_http_status(s: http::StatusCode) -> Status {
    let code = match s.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502..=504 => Code::Unavailable,
        _ => Code::Unknown,
    };
    Status::new(code, format!("the server answered HTTP {s}, not gRPC"))
}

/// Exactly one uncompressed message in `body`.
fn decode_one<M: Message + Default>(body: &Bytes) -> Result<M, Status> {
    if body.len() < 5 {
        return Err(Status::internal("the answer holds no message"));
    }
    if body[0] != 0 {
        return Err(Status::internal(
            "the answer is compressed, and no compression was offered",
        ));
    }
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    if body.len() - 5 != len {
        return Err(Status::internal(format!(
            "the answer's message prefix says {len} bytes, but {} followed",
            body.len() - 5
        )));
    }
    M::decode(body.slice(5..)).map_err(|e| Status::internal(format!("undecodable answer: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_fits_eight_digits() {
        assert_eq!(grpc_timeout(Duration::from_millis(1500)), "1500000u");
        assert_eq!(grpc_timeout(Duration::ZERO), "1u");
        assert_eq!(grpc_timeout(Duration::from_secs(1000)), "1000000m");
        assert_eq!(grpc_timeout(Duration::from_secs(10_000_000)), "10000000S");
        for d in [1u64, 99, 100, 100_000, 10_000_000, u64::MAX / 2] {
            let t = grpc_timeout(Duration::from_secs(d));
            assert!(t.len() <= 9, "{t}");
        }
    }

    #[test]
    fn a_malformed_details_header_is_ignored_not_a_panic() {
        let mut h = HeaderMap::new();
        h.insert("grpc-status", HeaderValue::from_static("14"));
        h.insert("grpc-message", HeaderValue::from_static("gone%20away"));
        h.insert(
            "grpc-status-details-bin",
            HeaderValue::from_static("!!not base64!!"),
        );
        let s = status_from(&h).unwrap();
        assert_eq!(s.code(), Code::Unavailable);
        assert_eq!(s.message(), "gone away");
        assert!(status_from(&HeaderMap::new()).is_none());
    }

    #[test]
    fn answers_are_decoded_strictly() {
        use tonic_health::pb::HealthCheckResponse;
        let msg = HealthCheckResponse { status: 1 }.encode_to_vec();
        let mut ok = vec![0u8, 0, 0, 0, msg.len() as u8];
        ok.extend_from_slice(&msg);
        let r: HealthCheckResponse = decode_one(&Bytes::from(ok.clone())).unwrap();
        assert_eq!(r.status, 1);
        let mut compressed = ok.clone();
        compressed[0] = 1;
        assert!(decode_one::<HealthCheckResponse>(&Bytes::from(compressed)).is_err());
        let mut longer = ok.clone();
        longer.push(0);
        assert!(decode_one::<HealthCheckResponse>(&Bytes::from(longer)).is_err());
        assert!(decode_one::<HealthCheckResponse>(&Bytes::from_static(&[0, 0, 0])).is_err());
        assert_eq!(
            from_http_status(http::StatusCode::NOT_FOUND).code(),
            Code::Unimplemented
        );
        assert_eq!(
            from_http_status(http::StatusCode::BAD_GATEWAY).code(),
            Code::Unavailable
        );
    }
}
