//! The direct node-to-node channel: per round, each node opens one `Exchange` stream
//! to each of the two others and sends its MPC messages on it, in 1 MiB chunks; what
//! a node receives on the streams the others opened lands in the round's [`Inbox`].
//! Every stream starts with a hello signed by the sender's identity, checked against
//! the configured provider ids of the other nodes. Under mutual TLS the links run over
//! TLS with the nodes' Veilgrid certificates: a node dials party `p` expecting the
//! certificate of `matcher-<p>`, and accepts a stream claiming to come from party `p`
//! only over a connection whose client certificate is `matcher-<p>`'s.

use std::{
    collections::HashMap,
    pin::Pin,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::sync::{Notify, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use veilgrid_core::sign::VerifierKey;
use veilgrid_kit::untrusted::StripStatusDetails;
use veilgrid_mpc::{Message, Phase, message::DEFAULT_MAX_WORDS};
use veilgrid_proto::matching::v1::{
    MessageChunk, NodeFrame, NodeHello, NodeSignature,
    node_frame::Part,
    node_to_node_client::NodeToNodeClient,
    node_to_node_server::{NodeToNode, NodeToNodeServer},
};

use crate::{
    MatchError,
    node::{Node, party_name},
};

/// Domain tag of a stream hello's signature.
pub(crate) const HELLO_TAG: &[u8] = b"veilgrid/match/n2n/v1\0";
/// Size of one chunk of an encoded message.
pub(crate) const CHUNK: usize = 1 << 20;
/// Largest encoded message accepted from another node.
pub(crate) const MAX_MESSAGE_BYTES: usize =
    veilgrid_mpc::message::HEADER_LEN + 8 * DEFAULT_MAX_WORDS;

fn phase_key(p: Phase) -> u8 {
    match p {
        Phase::Inputs => 0,
        Phase::Clearing => 1,
        Phase::Fills => 2,
    }
}

pub(crate) fn hello_message(round: &[u8; 16], party: u8) -> Vec<u8> {
    let mut m = HELLO_TAG.to_vec();
    m.extend_from_slice(round);
    m.push(party);
    m
}

#[derive(Default)]
struct InboxState {
    msgs: HashMap<(u8, u32), Vec<Message>>,
    signatures: [Option<Bytes>; 3],
    abort: Option<String>,
}

/// What the other nodes sent for one round.
#[derive(Default)]
pub(crate) struct Inbox {
    state: Mutex<InboxState>,
    notify: Notify,
}

impl Inbox {
    fn lock(&self) -> MutexGuard<'_, InboxState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, m: Message) -> Result<(), String> {
        let mut st = self.lock();
        let v = st.msgs.entry((phase_key(m.phase), m.step)).or_default();
        if v.iter().any(|o| o.from == m.from) {
            return Err(format!("node {} sent step {} twice", m.from, m.step));
        }
        v.push(m);
        drop(st);
        self.notify.notify_one();
        Ok(())
    }

    pub(crate) fn abort(&self, reason: String) {
        let mut st = self.lock();
        if st.abort.is_none() {
            st.abort = Some(reason);
        }
        drop(st);
        self.notify.notify_one();
    }

    fn set_signature(&self, party: usize, sig: Bytes) {
        if party < 3 {
            self.lock().signatures[party] = Some(sig);
        }
    }

    pub(crate) fn signatures(&self) -> [Option<Bytes>; 3] {
        self.lock().signatures.clone()
    }

    /// Wait for the two neighbours' messages of `(phase, step)`.
    pub(crate) async fn recv(
        &self,
        phase: Phase,
        step: u32,
        timeout: Duration,
    ) -> Result<Vec<Message>, MatchError> {
        let key = (phase_key(phase), step);
        let until = tokio::time::Instant::now() + timeout;
        loop {
            {
                let mut st = self.lock();
                if let Some(r) = &st.abort {
                    return Err(MatchError::Aborted(r.clone()));
                }
                if st.msgs.get(&key).is_some_and(|v| v.len() >= 2) {
                    return Ok(st.msgs.remove(&key).unwrap_or_default());
                }
            }
            if tokio::time::timeout_at(until, self.notify.notified())
                .await
                .is_err()
            {
                return Err(MatchError::Aborted(format!(
                    "no message from the other nodes for {phase:?} step {step} within {timeout:?}"
                )));
            }
        }
    }
}

/// This node's outgoing streams of one round, to its two neighbours.
pub(crate) struct Links {
    me: u8,
    out: HashMap<u8, mpsc::Sender<NodeFrame>>,
    /// MPC message bytes sent so far (both streams).
    sent: AtomicU64,
}

impl Links {
    /// Open a stream to each other node (sending the hello first).
    pub(crate) async fn connect(node: &Arc<Node>, round: [u8; 16]) -> Result<Links, MatchError> {
        let me = node.party();
        let mut out = HashMap::new();
        for peer in 0..3u8 {
            if peer == me {
                continue;
            }
            let url = node.config.nodes[peer as usize].url.clone();
            let peer_err = |reason: String| MatchError::Peer {
                party: peer,
                reason,
            };
            let channel = node
                .config
                .security
                .endpoint(&url, Some(&party_name(peer)))
                .map_err(|e| peer_err(e.to_string()))?
                .connect_timeout(Duration::from_secs(2))
                .tcp_nodelay(true)
                .connect()
                .await
                .map_err(|e| peer_err(format!("cannot connect: {e}")))?;
            let (tx, rx) = mpsc::channel::<NodeFrame>(8);
            let sig = node
                .config
                .identity
                .signing
                .sign(&hello_message(&round, me));
            tx.send(NodeFrame {
                part: Some(Part::Hello(NodeHello {
                    round_id: Bytes::copy_from_slice(&round),
                    from_party: me.into(),
                    signature: Bytes::copy_from_slice(&sig),
                })),
            })
            .await
            .map_err(|_| peer_err("stream closed".into()))?;
            // a peer is one of three parties, any of which may be malicious: its
            // answers must not panic this node (`veilgrid_kit::untrusted`)
            let mut client = NodeToNodeClient::new(StripStatusDetails(channel))
                .max_decoding_message_size(2 * CHUNK)
                .max_encoding_message_size(2 * CHUNK);
            let resp = client
                .exchange(ReceiverStream::new(rx))
                .await
                .map_err(|s| peer_err(format!("opening the stream: {s}")))?;
            // the stream's end before ours means the peer went away
            let inbox = node.inbox(round);
            let mut answers = resp.into_inner();
            tokio::spawn(async move {
                loop {
                    match answers.next().await {
                        Some(Ok(_)) => {}
                        Some(Err(s)) => {
                            inbox.abort(format!("lost node {peer}: {}", s.message()));
                            break;
                        }
                        None => break,
                    }
                }
            });
            out.insert(peer, tx);
        }
        Ok(Links {
            me,
            out,
            sent: AtomicU64::new(0),
        })
    }

    async fn send_frame(&self, to: u8, frame: NodeFrame) -> Result<(), MatchError> {
        let tx = self.out.get(&to).ok_or_else(|| MatchError::Peer {
            party: to,
            reason: "no stream".into(),
        })?;
        tx.send(frame).await.map_err(|_| MatchError::Peer {
            party: to,
            reason: "stream closed".into(),
        })
    }

    /// Send one MPC message, chunked.
    pub(crate) async fn send(&self, m: &Message) -> Result<(), MatchError> {
        let to = m.to.as_u8();
        let bytes = Bytes::from(m.to_bytes());
        self.sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let n = bytes.len().div_ceil(CHUNK).max(1);
        for i in 0..n {
            let data = bytes.slice(i * CHUNK..((i + 1) * CHUNK).min(bytes.len()));
            self.send_frame(
                to,
                NodeFrame {
                    part: Some(Part::Chunk(MessageChunk {
                        data,
                        last: i + 1 == n,
                    })),
                },
            )
            .await?;
        }
        Ok(())
    }

    /// This node's party index.
    pub(crate) fn party(&self) -> u8 {
        self.me
    }

    /// MPC message bytes this node has sent to the two others.
    pub(crate) fn bytes_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Send this node's signature of the outcome to both others.
    pub(crate) async fn send_signature(&self, sig: NodeSignature) -> Result<(), MatchError> {
        for &to in self.out.keys() {
            self.send_frame(
                to,
                NodeFrame {
                    part: Some(Part::Signature(sig.clone())),
                },
            )
            .await?;
        }
        Ok(())
    }

    /// Tell both others the round aborted here (best effort).
    pub(crate) async fn send_abort(&self, reason: &str) {
        for &to in self.out.keys() {
            let _ = self
                .send_frame(
                    to,
                    NodeFrame {
                        part: Some(Part::Abort(reason.to_owned())),
                    },
                )
                .await;
        }
    }
}

/// The `NodeToNode` gRPC service of one node.
#[derive(Clone)]
pub(crate) struct NodeNet(pub(crate) Arc<Node>);

impl NodeNet {
    pub(crate) fn into_server(self) -> NodeToNodeServer<Self> {
        NodeToNodeServer::new(self)
            .max_decoding_message_size(2 * CHUNK)
            .max_encoding_message_size(2 * CHUNK)
    }
}

type FrameStream = Pin<Box<dyn Stream<Item = Result<NodeFrame, Status>> + Send>>;

#[tonic::async_trait]
impl NodeToNode for NodeNet {
    type ExchangeStream = FrameStream;

    async fn exchange(
        &self,
        request: Request<Streaming<NodeFrame>>,
    ) -> Result<Response<Self::ExchangeStream>, Status> {
        let tls = self.0.config.security.is_tls();
        let peer = veilgrid_kit::auth::peer(&request)?;
        let mut frames = request.into_inner();
        let hello = match frames.message().await? {
            Some(NodeFrame {
                part: Some(Part::Hello(h)),
            }) => h,
            _ => return Err(Status::invalid_argument("a stream starts with a hello")),
        };
        let round: [u8; 16] = hello.round_id.as_ref().try_into().map_err(|_| {
            Status::invalid_argument(format!(
                "round id must be 16 bytes, got {}",
                hello.round_id.len()
            ))
        })?;
        let from = u8::try_from(hello.from_party)
            .ok()
            .filter(|p| *p < 3 && *p != self.0.party())
            .ok_or_else(|| Status::invalid_argument("hello from an unknown party"))?;
        // under TLS the stream must come over party `from`'s own certificate
        veilgrid_kit::auth::require_service(peer.as_ref(), tls, &party_name(from))?;
        let vk = VerifierKey::from_bytes(&self.0.config.nodes[from as usize].provider_id)
            .map_err(|e| Status::internal(e.to_string()))?;
        vk.verify(&hello_message(&round, from), &hello.signature)
            .map_err(|_| Status::unauthenticated("bad hello signature"))?;
        let inbox = self.0.inbox(round);
        // the answer stays open while the caller's stream does: its end tells the
        // caller that this node went away
        let (answer, answers) = mpsc::channel::<Result<NodeFrame, Status>>(1);
        tokio::spawn(async move {
            let _answer = answer;
            let mut buf: Vec<u8> = Vec::new();
            loop {
                let frame = match frames.message().await {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(s) => {
                        inbox.abort(format!("lost node {from}: {}", s.message()));
                        break;
                    }
                };
                let r = match frame.part {
                    Some(Part::Chunk(c)) => {
                        if buf.len() + c.data.len() > MAX_MESSAGE_BYTES {
                            Err(format!("node {from} sent an oversized message"))
                        } else {
                            buf.extend_from_slice(&c.data);
                            if c.last {
                                let bytes = std::mem::take(&mut buf);
                                match Message::from_bytes(&bytes, DEFAULT_MAX_WORDS) {
                                    Ok(m) if m.from.as_u8() == from && m.round == round => {
                                        inbox.push(m)
                                    }
                                    Ok(_) => {
                                        Err(format!("node {from} sent a misaddressed message"))
                                    }
                                    Err(e) => Err(format!("node {from} sent a bad message: {e}")),
                                }
                            } else {
                                Ok(())
                            }
                        }
                    }
                    Some(Part::Signature(s)) => {
                        inbox.set_signature(from as usize, s.signature);
                        Ok(())
                    }
                    Some(Part::Abort(reason)) => Err(format!("node {from} aborted: {reason}")),
                    _ => Err(format!("node {from} sent an unexpected frame")),
                };
                if let Err(reason) = r {
                    inbox.abort(reason);
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(answers))))
    }
}
