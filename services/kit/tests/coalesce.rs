//! `CoalescedWrites`: small writes go out together at the (deferred) flush, large
//! ones go straight through in order, nothing is lost on partial writes or at
//! shutdown, and a writer that accepts nothing is an error, not a hang.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    io,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use tokio::io::{AsyncWrite, AsyncWriteExt};
use veilgrid_kit::coalesce::{CoalescedWrites, LIMIT};

/// Records every write call the wrapper makes; accepts at most `max` bytes each.
#[derive(Clone, Default)]
struct Recorder {
    writes: Arc<Mutex<Vec<Vec<u8>>>>,
    max: Option<usize>,
    shut: Arc<Mutex<bool>>,
}

impl Recorder {
    fn writes(&self) -> Vec<Vec<u8>> {
        self.writes.lock().unwrap().clone()
    }
    fn bytes(&self) -> Vec<u8> {
        self.writes().concat()
    }
}

impl AsyncWrite for Recorder {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        let n = self.max.map_or(b.len(), |m| m.min(b.len()));
        self.writes.lock().unwrap().push(b[..n].to_vec());
        Poll::Ready(Ok(n))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        *self.shut.lock().unwrap() = true;
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn small_writes_leave_in_one_write_at_the_flush() {
    let rec = Recorder::default();
    let mut w = CoalescedWrites::new(rec.clone());
    w.write_all(b"headers").await.unwrap();
    w.write_all(b"data").await.unwrap();
    w.write_all(b"trailers").await.unwrap();
    assert!(rec.writes().is_empty(), "nothing written before the flush");
    // The first poll of the flush defers (waking itself); the runtime polls again.
    w.flush().await.unwrap();
    assert_eq!(rec.writes(), vec![b"headersdatatrailers".to_vec()]);
    // Nothing new: a flush writes nothing.
    w.flush().await.unwrap();
    assert_eq!(rec.writes().len(), 1);
}

#[test]
fn the_first_flush_defers_once_and_wakes_its_task() {
    let rec = Recorder::default();
    let mut w = CoalescedWrites::new(rec.clone());
    let waker = std::task::Waker::noop();
    let mut cx = Context::from_waker(waker);
    assert!(matches!(
        Pin::new(&mut w).poll_write(&mut cx, b"frame"),
        Poll::Ready(Ok(5))
    ));
    assert!(Pin::new(&mut w).poll_flush(&mut cx).is_pending());
    assert!(rec.writes().is_empty());
    // More frames arrive during the deferral, and go out with the first.
    assert!(matches!(
        Pin::new(&mut w).poll_write(&mut cx, b"+more"),
        Poll::Ready(Ok(5))
    ));
    assert!(matches!(
        Pin::new(&mut w).poll_flush(&mut cx),
        Poll::Ready(Ok(()))
    ));
    assert_eq!(rec.writes(), vec![b"frame+more".to_vec()]);
}

#[tokio::test]
async fn large_writes_go_straight_through_after_what_is_buffered() {
    let rec = Recorder::default();
    let mut w = CoalescedWrites::new(rec.clone());
    let big = vec![7u8; LIMIT + 10];
    w.write_all(b"small").await.unwrap();
    w.write_all(&big).await.unwrap();
    let writes = rec.writes();
    assert_eq!(
        writes.len(),
        2,
        "the buffer first, then the large write itself"
    );
    assert_eq!(writes[0], b"small");
    assert_eq!(writes[1], big);
}

#[tokio::test]
async fn partial_writes_and_random_chunks_lose_nothing() {
    let rec = Recorder {
        max: Some(7777),
        ..Recorder::default()
    };
    let mut w = CoalescedWrites::new(rec.clone());
    let mut want = Vec::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..400 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let len = match x >> 60 {
            0 => LIMIT + (x as usize % 5000),
            1..=3 => x as usize % 20_000,
            _ => x as usize % 300,
        };
        let chunk: Vec<u8> = (0..len).map(|j| (i + j) as u8).collect();
        if x & 1 == 0 {
            let slices = [
                io::IoSlice::new(&chunk[..len / 2]),
                io::IoSlice::new(&chunk[len / 2..]),
            ];
            let mut done = 0;
            while done < len {
                // `write_vectored` may take part; finish the rest plainly.
                let n = if done == 0 {
                    w.write_vectored(&slices).await.unwrap()
                } else {
                    w.write(&chunk[done..]).await.unwrap()
                };
                done += n;
            }
        } else {
            w.write_all(&chunk).await.unwrap();
        }
        want.extend_from_slice(&chunk);
        if x & 6 == 0 {
            w.flush().await.unwrap();
        }
    }
    w.shutdown().await.unwrap();
    assert!(*rec.shut.lock().unwrap(), "the inner stream was shut down");
    assert_eq!(rec.bytes(), want);
    assert!(
        rec.writes().iter().all(|c| c.len() <= 7777),
        "the inner writer's limit was respected"
    );
}

#[tokio::test]
async fn shutdown_writes_what_is_buffered_first() {
    let rec = Recorder::default();
    let mut w = CoalescedWrites::new(rec.clone());
    w.write_all(b"goaway").await.unwrap();
    w.shutdown().await.unwrap();
    assert_eq!(rec.bytes(), b"goaway");
    assert!(*rec.shut.lock().unwrap());
}

#[tokio::test]
async fn a_writer_that_accepts_nothing_is_an_error() {
    let rec = Recorder {
        max: Some(0),
        ..Recorder::default()
    };
    let mut w = CoalescedWrites::new(rec);
    w.write_all(b"x").await.unwrap();
    let e = w.flush().await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::WriteZero);
}
