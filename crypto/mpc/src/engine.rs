//! The sans-I/O driver: a protocol phase is written as straight-line `async` code
//! whose only `.await` points are message exchanges with the two neighbours; the
//! driver polls that code by hand (no runtime, no threads, no I/O) and hands the
//! caller the messages to send. The caller moves bytes however it likes (in-process
//! for tests and benches, gRPC streams in the matcher service) and feeds the replies
//! back with [`Running::deliver`]. A phase's result is a new typestate value, so
//! phases cannot run out of order.

use crate::error::Error;
use crate::message::{Message, Phase};
use crate::party::PartyId;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// The words a party sends in one step: `[to predecessor, to successor]`,
/// and the words it receives: `[from predecessor, from successor]`.
type Pair = [Vec<u64>; 2];

#[derive(Default)]
pub(crate) struct Slot {
    out: Option<Pair>,
    inc: Option<Pair>,
}

fn lock(slot: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
    slot.lock().unwrap_or_else(|e| e.into_inner())
}

/// The protocol side of the mailbox.
pub(crate) struct Chan {
    slot: Arc<Mutex<Slot>>,
}

impl Chan {
    pub(crate) fn new() -> (Chan, Arc<Mutex<Slot>>) {
        let slot = Arc::new(Mutex::new(Slot::default()));
        (Chan { slot: slot.clone() }, slot)
    }

    /// Send `to_prev` and `to_next`, wait for the neighbours' messages of this step.
    /// Returns `[from_prev, from_next]`.
    pub(crate) fn exchange(&self, to_prev: Vec<u64>, to_next: Vec<u64>) -> Exchange<'_> {
        Exchange {
            chan: self,
            out: Some([to_prev, to_next]),
        }
    }
}

/// The future of one exchange: pending once (after leaving its words in the mailbox),
/// ready when the driver has put the replies in.
pub(crate) struct Exchange<'a> {
    chan: &'a Chan,
    out: Option<Pair>,
}

impl Future for Exchange<'_> {
    type Output = Pair;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Pair> {
        if let Some(out) = self.out.take() {
            lock(&self.chan.slot).out = Some(out);
            return Poll::Pending;
        }
        match lock(&self.chan.slot).inc.take() {
            Some(inc) => Poll::Ready(inc),
            None => Poll::Pending,
        }
    }
}

type BoxFut<T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send>>;

/// A phase in progress at one party: [`Running::outgoing`] are the two messages of the
/// current step; [`Running::deliver`] takes the two replies and advances.
pub struct Running<T> {
    fut: BoxFut<T>,
    slot: Arc<Mutex<Slot>>,
    me: PartyId,
    round: [u8; 16],
    phase: Phase,
    step: u32,
    outgoing: Vec<Message>,
}

/// What a party does next: send the messages of a [`Running`] phase, or use the result.
pub enum Step<T> {
    /// More messages to exchange.
    Pending(Running<T>),
    /// The phase is over.
    Done(T),
}

impl<T: std::fmt::Debug> std::fmt::Debug for Step<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Pending(r) => write!(f, "Pending({r:?})"),
            Step::Done(t) => write!(f, "Done({t:?})"),
        }
    }
}

impl<T> std::fmt::Debug for Running<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Running({:?}, party {}, step {})",
            self.phase, self.me, self.step
        )
    }
}

impl<T: 'static> Running<T> {
    pub(crate) fn start(
        me: PartyId,
        round: [u8; 16],
        phase: Phase,
        slot: Arc<Mutex<Slot>>,
        fut: impl Future<Output = Result<T, Error>> + Send + 'static,
    ) -> Result<Step<T>, Error> {
        let r = Running {
            fut: Box::pin(fut),
            slot,
            me,
            round,
            phase,
            step: 0,
            outgoing: Vec::new(),
        };
        r.poll_once()
    }

    fn poll_once(mut self) -> Result<Step<T>, Error> {
        let mut cx = Context::from_waker(Waker::noop());
        match self.fut.as_mut().poll(&mut cx) {
            Poll::Ready(r) => r.map(Step::Done),
            Poll::Pending => {
                let [to_prev, to_next] = lock(&self.slot)
                    .out
                    .take()
                    .ok_or(Error::State("phase waits without sending"))?;
                self.outgoing = vec![
                    Message {
                        round: self.round,
                        phase: self.phase,
                        step: self.step,
                        from: self.me,
                        to: self.me.prev(),
                        words: to_prev,
                    },
                    Message {
                        round: self.round,
                        phase: self.phase,
                        step: self.step,
                        from: self.me,
                        to: self.me.next(),
                        words: to_next,
                    },
                ];
                Ok(Step::Pending(self))
            }
        }
    }

    /// This party.
    pub fn party(&self) -> PartyId {
        self.me
    }

    /// The phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The current step number (messages of this step are in [`Running::outgoing`]).
    pub fn step(&self) -> u32 {
        self.step
    }

    /// The two messages to send in this step (to the predecessor, then to the successor).
    pub fn outgoing(&self) -> &[Message] {
        &self.outgoing
    }

    /// Take the messages to send, leaving none (use once per step).
    pub fn take_outgoing(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.outgoing)
    }

    /// Feed the two messages of this step from the neighbours (in any order); runs the
    /// protocol to its next exchange or to the end of the phase.
    pub fn deliver(self, incoming: Vec<Message>) -> Result<Step<T>, Error> {
        let mut from_prev = None;
        let mut from_next = None;
        for m in incoming {
            if m.round != self.round
                || m.phase != self.phase
                || m.step != self.step
                || m.to != self.me
            {
                return Err(Error::UnexpectedMessage(format!(
                    "{m:?} at party {} in {:?} step {}",
                    self.me, self.phase, self.step
                )));
            }
            if m.from == self.me.prev() && from_prev.is_none() {
                from_prev = Some(m.words);
            } else if m.from == self.me.next() && from_next.is_none() {
                from_next = Some(m.words);
            } else {
                return Err(Error::UnexpectedMessage(format!(
                    "duplicate or foreign sender {}",
                    m.from
                )));
            }
        }
        let (Some(p), Some(n)) = (from_prev, from_next) else {
            return Err(Error::UnexpectedMessage(
                "need one message from each neighbour".into(),
            ));
        };
        lock(&self.slot).inc = Some([p, n]);
        let mut next = self;
        next.step += 1;
        next.outgoing.clear();
        next.poll_once()
    }
}
