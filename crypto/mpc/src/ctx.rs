//! A party's protocol context: its PRF streams, its mailbox, and the basic
//! interactive operations — batched multiplications / AND gates (one element per
//! party per step), openings with the replication check, zero checks. See
//! `docs/multiplication.md`.

use crate::engine::Chan;
use crate::error::Error;
use crate::message::Phase;
use crate::party::PartyId;
use crate::prf::PrfPair;
use crate::share::{AVec, BVec};
use sha2::{Digest, Sha256};
use std::ops::Range;

/// Security of one auction round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityMode {
    /// Semi-honest with abort: replication checks on client inputs and opened values.
    SemiHonest,
    /// Malicious with abort: additionally every multiplication and AND gate is checked
    /// against verified random triples before anything is opened.
    Malicious,
}

/// Multiplications / AND gates recorded in malicious mode: `(x, y, z)` with `z = x·y`.
#[derive(Default)]
pub(crate) struct GateLog {
    pub(crate) ax: AVec,
    pub(crate) ay: AVec,
    pub(crate) az: AVec,
    pub(crate) bx: BVec,
    pub(crate) by: BVec,
    pub(crate) bz: BVec,
}

impl GateLog {
    pub(crate) fn is_empty(&self) -> bool {
        self.az.len() == 0 && self.bz.len() == 0
    }
}

/// What a party carries from phase to phase.
pub(crate) struct Core {
    pub(crate) me: PartyId,
    pub(crate) round: [u8; 16],
    pub(crate) prf: PrfPair,
    pub(crate) mode: SecurityMode,
    pub(crate) log: GateLog,
    /// Tests only: play a malicious party that adds `e` to the first word it sends in
    /// the multiplication step `s` of a phase — and keeps the same value itself, so
    /// the replicated shares stay consistent (`Some((s, e))`).
    #[cfg(test)]
    pub(crate) attack: Option<(u32, u64)>,
}

/// A running phase's view: the core plus the mailbox.
pub(crate) struct Ctx {
    pub(crate) core: Core,
    chan: Chan,
    phase: Phase,
    step: u32,
}

/// Reference to the outputs of one elementwise multiplication in a [`Batch`].
#[derive(Clone, Debug)]
pub(crate) struct ARef(Range<usize>);
/// Reference to the outputs of one AND in a [`Batch`].
#[derive(Clone, Debug)]
pub(crate) struct BRef(Range<usize>);
/// Reference to the outputs of a set of dot products in a [`Batch`].
#[derive(Clone, Debug)]
pub(crate) enum DotRef {
    /// One reshared element per dot product.
    Direct(Range<usize>),
    /// Malicious mode: the products were computed one by one; sum these segments.
    Summed(Vec<Range<usize>>),
}

/// Multiplications and AND gates that share one communication step.
pub(crate) struct Batch {
    mode: SecurityMode,
    ta: Vec<u64>,
    tb: Vec<u64>,
    alog: Vec<(AVec, AVec, Range<usize>)>,
    blog: Vec<(BVec, BVec, Range<usize>)>,
}

/// This party's additive term of `x·y`: `x_i y_i + x_i y_{i+1} + x_{i+1} y_i`.
#[inline]
fn term(xa: u64, xb: u64, ya: u64, yb: u64) -> u64 {
    xa.wrapping_mul(ya)
        .wrapping_add(xa.wrapping_mul(yb))
        .wrapping_add(xb.wrapping_mul(ya))
}

impl Batch {
    pub(crate) fn new(mode: SecurityMode) -> Self {
        Batch {
            mode,
            ta: Vec::new(),
            tb: Vec::new(),
            alog: Vec::new(),
            blog: Vec::new(),
        }
    }

    /// Elementwise `x·y` over `Z_2^64`.
    pub(crate) fn mul(&mut self, x: &AVec, y: &AVec) -> ARef {
        debug_assert_eq!(x.len(), y.len());
        let start = self.ta.len();
        self.ta
            .extend((0..x.len()).map(|k| term(x.a[k], x.b[k], y.a[k], y.b[k])));
        let r = start..self.ta.len();
        if self.mode == SecurityMode::Malicious {
            self.alog.push((x.clone(), y.clone(), r.clone()));
        }
        ARef(r)
    }

    /// Wordwise `x ∧ y` (64 AND gates per word).
    pub(crate) fn and(&mut self, x: &BVec, y: &BVec) -> BRef {
        debug_assert_eq!(x.len(), y.len());
        let start = self.tb.len();
        self.tb.extend(
            (0..x.len()).map(|k| (x.a[k] & y.a[k]) ^ (x.a[k] & y.b[k]) ^ (x.b[k] & y.a[k])),
        );
        let r = start..self.tb.len();
        if self.mode == SecurityMode::Malicious {
            self.blog.push((x.clone(), y.clone(), r.clone()));
        }
        BRef(r)
    }

    /// `x ∧ y` on word slices (this party's components), without building vectors.
    pub(crate) fn and_slices(&mut self, xa: &[u64], xb: &[u64], ya: &[u64], yb: &[u64]) -> BRef {
        if self.mode == SecurityMode::Malicious {
            let x = BVec {
                a: xa.to_vec(),
                b: xb.to_vec(),
            };
            let y = BVec {
                a: ya.to_vec(),
                b: yb.to_vec(),
            };
            return self.and(&x, &y);
        }
        let start = self.tb.len();
        self.tb
            .extend((0..xa.len()).map(|k| (xa[k] & ya[k]) ^ (xa[k] & yb[k]) ^ (xb[k] & ya[k])));
        BRef(start..self.tb.len())
    }

    /// Dot products `Σ_k xs[d]_k · ys[d]_k` for each `d`. In semi-honest mode each costs
    /// one element of communication whatever its length; in malicious mode every product
    /// is a separate, checkable multiplication.
    pub(crate) fn dot(&mut self, xs: &[&AVec], ys: &[&AVec]) -> DotRef {
        match self.mode {
            SecurityMode::SemiHonest => {
                let start = self.ta.len();
                for (x, y) in xs.iter().zip(ys) {
                    let mut s = 0u64;
                    for k in 0..x.len() {
                        s = s.wrapping_add(term(x.a[k], x.b[k], y.a[k], y.b[k]));
                    }
                    self.ta.push(s);
                }
                DotRef::Direct(start..self.ta.len())
            }
            SecurityMode::Malicious => {
                DotRef::Summed(xs.iter().zip(ys).map(|(x, y)| self.mul(x, y).0).collect())
            }
        }
    }
}

/// The outputs of a [`Batch`].
pub(crate) struct BatchOut {
    za: AVec,
    zb: BVec,
}

impl BatchOut {
    pub(crate) fn arith(&self, r: &ARef) -> AVec {
        self.za.slice(r.0.clone())
    }

    pub(crate) fn bin(&self, r: &BRef) -> BVec {
        self.zb.slice(r.0.clone())
    }

    /// All binary outputs (when the batch had only one AND).
    pub(crate) fn into_bin(self) -> BVec {
        let BatchOut { za, mut zb } = self;
        drop(za);
        std::mem::take(&mut zb)
    }

    pub(crate) fn dot(&self, r: &DotRef) -> AVec {
        match r {
            DotRef::Direct(range) => self.za.slice(range.clone()),
            DotRef::Summed(segs) => {
                let mut out = AVec::zeros(0);
                for s in segs {
                    let v = self.za.slice(s.clone()).sum();
                    out.extend(&v);
                }
                out
            }
        }
    }
}

/// SHA-256 digest of words in the context of one step, as 4 words.
fn digest(round: &[u8; 16], phase: Phase, label: &[u8], step: u32, words: &[u64]) -> Vec<u64> {
    let mut h = Sha256::new();
    h.update(b"veilgrid/mpc/digest/v1");
    h.update(round);
    h.update(format!("{phase:?}").as_bytes());
    h.update(label);
    h.update(step.to_le_bytes());
    h.update((words.len() as u64).to_le_bytes());
    for w in words {
        h.update(w.to_le_bytes());
    }
    let d: [u8; 32] = h.finalize().into();
    d.chunks_exact(8)
        .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect()
}

impl Ctx {
    pub(crate) fn new(core: Core, chan: Chan, phase: Phase) -> Self {
        Ctx {
            core,
            chan,
            phase,
            step: 0,
        }
    }

    pub(crate) fn me(&self) -> PartyId {
        self.core.me
    }

    pub(crate) fn mode(&self) -> SecurityMode {
        self.core.mode
    }

    pub(crate) fn into_core(self) -> Core {
        self.core
    }

    /// One step: send to both neighbours, receive from both; checks the lengths.
    pub(crate) async fn exchange(
        &mut self,
        to_prev: Vec<u64>,
        to_next: Vec<u64>,
        expect_prev: usize,
        expect_next: usize,
    ) -> Result<(Vec<u64>, Vec<u64>), Error> {
        let [p, n] = self.chan.exchange(to_prev, to_next).await;
        self.step += 1;
        if p.len() != expect_prev || n.len() != expect_next {
            return Err(Error::UnexpectedMessage(format!(
                "step {}: got {}+{} words, expected {}+{}",
                self.step - 1,
                p.len(),
                n.len(),
                expect_prev,
                expect_next
            )));
        }
        Ok((p, n))
    }

    /// Run a batch of multiplications: mask this party's terms with a zero sharing,
    /// send them to the predecessor, receive the successor's. One step.
    pub(crate) async fn run(&mut self, batch: Batch) -> Result<BatchOut, Error> {
        let Batch {
            mut ta,
            mut tb,
            alog,
            blog,
            ..
        } = batch;
        let na = ta.len();
        let nb = tb.len();
        self.core.prf.mask_arith(&mut ta);
        self.core.prf.mask_xor(&mut tb);
        #[cfg(test)]
        if let Some((s, e)) = self.core.attack
            && s == self.step
        {
            if let Some(t) = ta.first_mut() {
                *t = t.wrapping_add(e);
            } else if let Some(t) = tb.first_mut() {
                *t ^= e;
            }
        }
        let mut msg = Vec::with_capacity(na + nb);
        msg.extend_from_slice(&ta);
        msg.extend_from_slice(&tb);
        let (_, mut from_next) = self.exchange(msg, Vec::new(), 0, na + nb).await?;
        let (za, zb) = if nb == 0 {
            (
                AVec {
                    a: ta,
                    b: from_next,
                },
                BVec {
                    a: tb,
                    b: Vec::new(),
                },
            )
        } else if na == 0 {
            (
                AVec {
                    a: ta,
                    b: Vec::new(),
                },
                BVec {
                    a: tb,
                    b: from_next,
                },
            )
        } else {
            let rest = from_next.split_off(na);
            (
                AVec {
                    a: ta,
                    b: from_next,
                },
                BVec { a: tb, b: rest },
            )
        };
        for (x, y, r) in alog {
            self.core.log.ax.extend(&x);
            self.core.log.ay.extend(&y);
            self.core.log.az.extend(&za.slice(r));
        }
        for (x, y, r) in blog {
            self.core.log.bx.extend(&x);
            self.core.log.by.extend(&y);
            self.core.log.bz.extend(&zb.slice(r));
        }
        Ok(BatchOut { za, zb })
    }

    /// Convenience: elementwise products of several pairs in one step.
    pub(crate) async fn mul_many(&mut self, pairs: &[(&AVec, &AVec)]) -> Result<Vec<AVec>, Error> {
        let mut b = Batch::new(self.mode());
        let refs: Vec<ARef> = pairs.iter().map(|(x, y)| b.mul(x, y)).collect();
        let out = self.run(b).await?;
        Ok(refs.iter().map(|r| out.arith(r)).collect())
    }

    /// Convenience: ANDs of several pairs in one step.
    pub(crate) async fn and_many(&mut self, pairs: &[(&BVec, &BVec)]) -> Result<Vec<BVec>, Error> {
        let mut b = Batch::new(self.mode());
        let refs: Vec<BRef> = pairs.iter().map(|(x, y)| b.and(x, y)).collect();
        let out = self.run(b).await?;
        Ok(refs.iter().map(|r| out.bin(r)).collect())
    }

    /// Open arithmetic and binary sharings to all three parties in one step. Party `i`
    /// gets component `i+2` from party `i+1` and a digest of the same component from
    /// party `i-1`; they must agree.
    pub(crate) async fn open(
        &mut self,
        xa: &AVec,
        xb: &BVec,
    ) -> Result<(Vec<u64>, Vec<u64>), Error> {
        let (na, nb) = (xa.len(), xb.len());
        let mut mine_b = xa.b.clone();
        mine_b.extend_from_slice(&xb.b);
        let mut mine_a = xa.a.clone();
        mine_a.extend_from_slice(&xb.a);
        let step = self.step;
        let round = self.core.round;
        let phase = self.phase;
        let d = digest(&round, phase, b"open", step, &mine_a);
        let (from_prev, from_next) = self.exchange(mine_b, d, 4, na + nb).await?;
        if digest(&round, phase, b"open", step, &from_next) != from_prev {
            return Err(Error::OpenMismatch {
                step,
                value_from: self.me().next(),
                digest_from: self.me().prev(),
            });
        }
        let va = (0..na)
            .map(|k| xa.a[k].wrapping_add(xa.b[k]).wrapping_add(from_next[k]))
            .collect();
        let vb = (0..nb)
            .map(|k| xb.a[k] ^ xb.b[k] ^ from_next[na + k])
            .collect();
        Ok((va, vb))
    }

    /// Open arithmetic sharings to all parties.
    pub(crate) async fn open_arith(&mut self, x: &AVec) -> Result<Vec<u64>, Error> {
        Ok(self.open(x, &BVec::zeros(0)).await?.0)
    }

    /// Check that arithmetic sharings `xa` and binary sharings `xb` are all zero without
    /// sending them: each party compares digests of the missing component with the one
    /// it can compute, `x_{i+2} = −(x_i + x_{i+1})`. One step, 4 words each way.
    pub(crate) async fn check_zero(&mut self, xa: &AVec, xb: &BVec) -> Result<(), Error> {
        let step = self.step;
        let round = self.core.round;
        let phase = self.phase;
        let mut a = xa.a.clone();
        a.extend_from_slice(&xb.a);
        let mut b = xa.b.clone();
        b.extend_from_slice(&xb.b);
        let mut expect: Vec<u64> = (0..xa.len())
            .map(|k| 0u64.wrapping_sub(xa.a[k].wrapping_add(xa.b[k])))
            .collect();
        expect.extend((0..xb.len()).map(|k| xb.a[k] ^ xb.b[k]));
        let to_prev = digest(&round, phase, b"zero", step, &b);
        let to_next = digest(&round, phase, b"zero", step, &a);
        let (from_prev, from_next) = self.exchange(to_prev, to_next, 4, 4).await?;
        let want = digest(&round, phase, b"zero", step, &expect);
        let ok_next = want_eq(&want, &from_next);
        let ok_prev = want_eq(&want, &from_prev);
        if !(ok_next && ok_prev) {
            return Err(Error::VerificationFailed("a checked value is not zero"));
        }
        Ok(())
    }

    /// Jointly random 32 bytes that no party could bias: commit to a seed (digest),
    /// then reveal. Two steps.
    pub(crate) async fn coin_toss(&mut self, label: &[u8]) -> Result<[u8; 32], Error> {
        let mut mine = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut mine);
        let words = bytes_to_words(&mine);
        let step = self.step;
        let round = self.core.round;
        let phase = self.phase;
        let me = self.me();
        let commit = |party: PartyId, w: &[u64]| {
            let mut v = w.to_vec();
            v.push(party.as_u8() as u64);
            digest(&round, phase, label, step, &v)
        };
        let c = commit(me, &words);
        let (cp, cn) = self.exchange(c.clone(), c, 4, 4).await?;
        let (sp, sn) = self.exchange(words.clone(), words.clone(), 4, 4).await?;
        if commit(me.prev(), &sp) != cp {
            return Err(Error::CoinTossMismatch(me.prev()));
        }
        if commit(me.next(), &sn) != cn {
            return Err(Error::CoinTossMismatch(me.next()));
        }
        let mut h = Sha256::new();
        h.update(b"veilgrid/mpc/coins/v1");
        h.update(round);
        h.update(label);
        let mut all: [Vec<u64>; 3] = Default::default();
        all[me.index()] = words;
        all[me.prev().index()] = sp;
        all[me.next().index()] = sn;
        for w in all.iter().flatten() {
            h.update(w.to_le_bytes());
        }
        Ok(h.finalize().into())
    }
}

fn want_eq(a: &[u64], b: &[u64]) -> bool {
    use subtle::ConstantTimeEq;
    let ab: Vec<u8> = a.iter().flat_map(|w| w.to_le_bytes()).collect();
    let bb: Vec<u8> = b.iter().flat_map(|w| w.to_le_bytes()).collect();
    ab.ct_eq(&bb).into()
}

fn bytes_to_words(b: &[u8; 32]) -> Vec<u64> {
    b.chunks_exact(8)
        .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect()
}
