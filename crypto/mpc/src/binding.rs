//! Range proofs of order quantities and limits, bound to what the nodes compute on.
//! See `docs/binding.md`.
//!
//! * the client commits `C_q = q·B + r_q·B̃`, `C_l = ℓ·B + r_l·B̃` (Ristretto,
//!   bulletproofs' `PedersenGens::default()`), proves `q ∈ [1, 2^32 − 1]` and
//!   `ℓ ∈ [0, P − 1]` with two [`BoundedProof`]s bound to the round and the order id
//!   ([`OrderStatement`], public), and replicates `r = ρ_0 + ρ_1 + ρ_2 mod ℓ` like its
//!   word ([`BlindingShares`], secret, inside each node's sealed payload);
//! * each node verifies each statement when the order arrives
//!   ([`crate::ProofVerdict`]); auditors verify a whole record in one batch
//!   ([`verify_statements`]);
//! * after the boolean-to-arithmetic conversion the nodes hold `[q]`, `[ℓ]` over
//!   `Z_2^64`; [`check_commitments`] opens `P_j = x_j·B + ρ_j·B̃` (each by its two
//!   holders, compared) and accepts an order iff `Σ P_j − C ∈ {0, 2^64·B, 2^65·B}`.

use crate::ctx::Ctx;
use crate::error::Error;
use crate::order::{OrderId, QTY_BITS};
use crate::party::PartyId;
use crate::share::AVec;
use bulletproofs::PedersenGens;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoBasepointTable, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::OnceLock;
use veilgrid_zk::range::{
    BatchVerifier, BitSize, Blinding, BoundedProof, Commitment, MAX_RANGE_PROOF_BYTES,
    RangeContext, domains,
};
use zeroize::Zeroize;

/// Largest quantity a statement accepts (`Q = 2^32 − 1`; the smallest is 1).
pub const MAX_QTY: u64 = (1 << QTY_BITS) - 1;
/// Width of the quantity proof.
pub const QTY_PROOF_BITS: BitSize = BitSize::Bits32;
/// Width of the limit proof (`P ≤ 256`).
pub const LIMIT_PROOF_BITS: BitSize = BitSize::Bits8;
/// Bytes of an encoded [`OrderStatement`] at most.
pub const MAX_STATEMENT_LEN: usize = 2 * 32 + 2 * (2 + MAX_RANGE_PROOF_BYTES);

/// The Fiat–Shamir context of an order's quantity proof: domain
/// `MATCH_ORDER_QUANTITY`, the round id and the order id.
pub fn quantity_context(round: &[u8; 16], id: &OrderId) -> RangeContext {
    RangeContext::new(domains::MATCH_ORDER_QUANTITY)
        .bind(b"round", round)
        .bind(b"order", id.as_bytes())
}

/// The Fiat–Shamir context of an order's limit proof: domain `MATCH_LIMIT_INDEX`,
/// the round id, the order id and the number of levels `P`.
pub fn limit_context(round: &[u8; 16], id: &OrderId, levels: u32) -> RangeContext {
    RangeContext::new(domains::MATCH_LIMIT_INDEX)
        .bind(b"round", round)
        .bind(b"order", id.as_bytes())
        .bind_u64(b"levels", u64::from(levels))
}

/// The public part of an order: the two commitments and their bounded range proofs.
/// The same bytes go to all three nodes; the nodes compare digests of their copies.
#[derive(Clone, PartialEq, Eq)]
pub struct OrderStatement {
    /// `C_q = q·B + r_q·B̃`.
    pub qty_commitment: Commitment,
    /// `C_l = ℓ·B + r_l·B̃`.
    pub limit_commitment: Commitment,
    qty_proof: Vec<u8>,
    limit_proof: Vec<u8>,
}

impl fmt::Debug for OrderStatement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "OrderStatement(C_q {:?}, C_l {:?}, proofs {}+{} bytes)",
            self.qty_commitment,
            self.limit_commitment,
            self.qty_proof.len(),
            self.limit_proof.len()
        )
    }
}

impl OrderStatement {
    /// A statement from its parts (proof bytes as `BoundedProof::to_bytes`).
    pub fn from_parts(
        qty_commitment: Commitment,
        limit_commitment: Commitment,
        qty_proof: Vec<u8>,
        limit_proof: Vec<u8>,
    ) -> Result<Self, Error> {
        if qty_proof.len() > MAX_RANGE_PROOF_BYTES || limit_proof.len() > MAX_RANGE_PROOF_BYTES {
            return Err(Error::Malformed("range proof over the size limit"));
        }
        Ok(OrderStatement {
            qty_commitment,
            limit_commitment,
            qty_proof,
            limit_proof,
        })
    }

    /// The commitments without proofs (benchmarks of the commitment check).
    pub(crate) fn commitments_only(
        qty_commitment: Commitment,
        limit_commitment: Commitment,
    ) -> Self {
        OrderStatement {
            qty_commitment,
            limit_commitment,
            qty_proof: Vec::new(),
            limit_proof: Vec::new(),
        }
    }

    /// The quantity proof bytes.
    pub fn qty_proof(&self) -> &[u8] {
        &self.qty_proof
    }

    /// The limit proof bytes.
    pub fn limit_proof(&self) -> &[u8] {
        &self.limit_proof
    }

    /// `C_q ‖ C_l ‖ len u16 ‖ quantity proof ‖ len u16 ‖ limit proof` (little-endian).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(68 + self.qty_proof.len() + self.limit_proof.len());
        out.extend_from_slice(&self.qty_commitment.to_bytes());
        out.extend_from_slice(&self.limit_commitment.to_bytes());
        for p in [&self.qty_proof, &self.limit_proof] {
            out.extend_from_slice(&(p.len() as u16).to_le_bytes());
            out.extend_from_slice(p);
        }
        out
    }

    /// Decode (size-limited); returns the statement and the bytes that follow it.
    pub fn decode_prefix(bytes: &[u8]) -> Result<(Self, &[u8]), Error> {
        let take = |b: &[u8], n: usize| -> Result<(Vec<u8>, usize), Error> {
            if b.len() < n {
                return Err(Error::Malformed("order statement truncated"));
            }
            Ok((b[..n].to_vec(), n))
        };
        if bytes.len() < 64 {
            return Err(Error::Malformed("order statement truncated"));
        }
        let c = |b: &[u8]| {
            Commitment::from_bytes(b).map_err(|_| Error::Malformed("order statement commitment"))
        };
        let qc = c(&bytes[..32])?;
        let lc = c(&bytes[32..64])?;
        let mut rest = &bytes[64..];
        let mut proofs = Vec::with_capacity(2);
        for _ in 0..2 {
            let (len, _) = take(rest, 2)?;
            let len = u16::from_le_bytes([len[0], len[1]]) as usize;
            if len > MAX_RANGE_PROOF_BYTES {
                return Err(Error::Malformed("range proof over the size limit"));
            }
            let (p, used) = take(&rest[2..], len)?;
            proofs.push(p);
            rest = &rest[2 + used..];
        }
        let lp = proofs.pop().ok_or(Error::State("two proofs"))?;
        let qp = proofs.pop().ok_or(Error::State("two proofs"))?;
        Ok((Self::from_parts(qc, lc, qp, lp)?, rest))
    }

    /// Decode exactly one statement.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let (s, rest) = Self::decode_prefix(bytes)?;
        if !rest.is_empty() {
            return Err(Error::Malformed("order statement trailing bytes"));
        }
        Ok(s)
    }

    /// `SHA-256("veilgrid/match/statement/v1" ‖ bytes)`.
    pub fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"veilgrid/match/statement/v1");
        h.update(self.to_bytes());
        h.finalize().into()
    }

    /// Queue both proofs of order `id` in `batch`.
    fn add_to(
        &self,
        batch: &mut BatchVerifier,
        round: &[u8; 16],
        id: &OrderId,
        levels: u32,
    ) -> Result<(), Error> {
        let (qp, lp) = self.parse()?;
        batch
            .add_bounded(
                &quantity_context(round, id),
                QTY_PROOF_BITS,
                1,
                MAX_QTY,
                &[self.qty_commitment],
                &qp,
            )
            .map_err(zk_err)?;
        batch
            .add_bounded(
                &limit_context(round, id, levels),
                LIMIT_PROOF_BITS,
                0,
                u64::from(levels.max(1) - 1),
                &[self.limit_commitment],
                &lp,
            )
            .map_err(zk_err)
    }

    fn parse(&self) -> Result<(BoundedProof, BoundedProof), Error> {
        Ok((
            BoundedProof::from_bytes(&self.qty_proof).map_err(zk_err)?,
            BoundedProof::from_bytes(&self.limit_proof).map_err(zk_err)?,
        ))
    }

    /// Verify both proofs of order `id` on their own.
    pub fn verify(&self, round: &[u8; 16], id: &OrderId, levels: u32) -> Result<(), Error> {
        let mut b = BatchVerifier::new();
        self.add_to(&mut b, round, id, levels)?;
        b.verify().map_err(zk_err)
    }
}

fn zk_err(e: veilgrid_zk::Error) -> Error {
    Error::RangeProof(e.to_string())
}

/// Verify the statements of a book in one batch; `ok[k]` says whether order `k`'s
/// two proofs hold. When the batch fails, each order is verified on its own.
pub fn verify_statements(
    round: &[u8; 16],
    levels: u32,
    ids: &[OrderId],
    statements: &[OrderStatement],
) -> Vec<bool> {
    let mut ok = vec![true; ids.len()];
    let mut batch = BatchVerifier::new();
    let mut queued = Vec::with_capacity(ids.len());
    for (k, (id, s)) in ids.iter().zip(statements).enumerate() {
        let mut one = BatchVerifier::new();
        // a proof that does not even parse or fit its statement never enters the batch
        if s.add_to(&mut one, round, id, levels).is_ok()
            && s.add_to(&mut batch, round, id, levels).is_ok()
        {
            queued.push(k);
        } else {
            ok[k] = false;
        }
    }
    if batch.is_empty() || batch.verify().is_ok() {
        return ok;
    }
    for k in queued {
        ok[k] = statements[k].verify(round, &ids[k], levels).is_ok();
    }
    ok
}

/// An auditor's check of a round's public record: every accepted order's statement
/// verifies, and the list hashes to the signed outcome's order-set hash.
pub fn verify_round_record(
    round: &[u8; 16],
    levels: u32,
    orders: &[(OrderId, OrderStatement)],
    order_set_hash: &[u8; 32],
) -> Result<(), Error> {
    if &crate::outcome::accepted_set_hash(orders.iter().map(|(i, s)| (i, s))) != order_set_hash {
        return Err(Error::VerificationFailed(
            "the order list does not hash to the signed order-set hash",
        ));
    }
    let ids: Vec<OrderId> = orders.iter().map(|(i, _)| i.clone()).collect();
    let sts: Vec<OrderStatement> = orders.iter().map(|(_, s)| s.clone()).collect();
    let ok = verify_statements(round, levels, &ids, &sts);
    match ok.iter().position(|b| !b) {
        None => Ok(()),
        Some(k) => Err(Error::RangeProof(format!(
            "order {}: range proof does not verify",
            ids[k]
        ))),
    }
}

/// A node's replicated shares `(ρ_i, ρ_{i+1})` of the blindings `r_q` and `r_l`
/// (canonical scalars mod ℓ, little-endian). Secret: zeroized, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct BlindingShares {
    pub(crate) qty: [[u8; 32]; 2],
    pub(crate) limit: [[u8; 32]; 2],
}

impl Drop for BlindingShares {
    fn drop(&mut self) {
        self.qty.zeroize();
        self.limit.zeroize();
    }
}

impl fmt::Debug for BlindingShares {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlindingShares(<secret>)")
    }
}

/// Encoded length of [`BlindingShares`].
pub(crate) const BLINDING_SHARES_LEN: usize = 128;

impl BlindingShares {
    pub(crate) fn to_bytes(&self) -> [u8; BLINDING_SHARES_LEN] {
        let mut out = [0u8; BLINDING_SHARES_LEN];
        out[..32].copy_from_slice(&self.qty[0]);
        out[32..64].copy_from_slice(&self.qty[1]);
        out[64..96].copy_from_slice(&self.limit[0]);
        out[96..].copy_from_slice(&self.limit[1]);
        out
    }

    /// Decode 128 bytes; every scalar must be canonical.
    pub(crate) fn from_bytes(b: &[u8]) -> Result<Self, Error> {
        if b.len() != BLINDING_SHARES_LEN {
            return Err(Error::Malformed("blinding shares length"));
        }
        let mut s = BlindingShares {
            qty: [[0; 32]; 2],
            limit: [[0; 32]; 2],
        };
        s.qty[0].copy_from_slice(&b[..32]);
        s.qty[1].copy_from_slice(&b[32..64]);
        s.limit[0].copy_from_slice(&b[64..96]);
        s.limit[1].copy_from_slice(&b[96..]);
        for w in s.qty.iter().chain(&s.limit) {
            if Option::<Scalar>::from(Scalar::from_canonical_bytes(*w)).is_none() {
                return Err(Error::Malformed("blinding share is not a canonical scalar"));
            }
        }
        Ok(s)
    }

    /// The components as words, for the input consistency check (16 words).
    pub(crate) fn words(&self) -> [[u64; 8]; 2] {
        let w = |x: &[[u8; 32]; 2]| {
            let mut o = [0u64; 8];
            for (k, c) in x.iter().flat_map(|s| s.chunks_exact(8)).enumerate() {
                o[k] = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            }
            o
        };
        [w(&self.qty), w(&self.limit)]
    }

    fn scalar(b: &[u8; 32]) -> Scalar {
        // canonical by construction (checked at decoding, produced canonical by clients)
        Scalar::from_bytes_mod_order(*b)
    }
}

/// What the client makes besides its word shares: the public statement and the three
/// nodes' blinding shares (element `i` for node `i`).
pub(crate) fn commit_and_prove<R: RngCore + CryptoRng>(
    round: &[u8; 16],
    id: &OrderId,
    (qty, limit): (u64, u64),
    levels: u32,
    (qty_bounds, limit_bounds): ((u64, u64), (u64, u64)),
    rng: &mut R,
) -> Result<(OrderStatement, [BlindingShares; 3]), Error> {
    let rq = Scalar::random(rng);
    let rl = Scalar::random(rng);
    let bq = Blinding::from_bytes(&rq.to_bytes()).map_err(zk_err)?;
    let bl = Blinding::from_bytes(&rl.to_bytes()).map_err(zk_err)?;
    let (qp, qc) = BoundedProof::prove_with_rng(
        &quantity_context(round, id),
        QTY_PROOF_BITS,
        qty_bounds.0,
        qty_bounds.1,
        &[qty],
        &[bq],
        rng,
    )
    .map_err(zk_err)?;
    let (lp, lc) = BoundedProof::prove_with_rng(
        &limit_context(round, id, levels),
        LIMIT_PROOF_BITS,
        limit_bounds.0,
        limit_bounds.1,
        &[limit],
        &[bl],
        rng,
    )
    .map_err(zk_err)?;
    let (Some(qc), Some(lc)) = (qc.first(), lc.first()) else {
        return Err(Error::State("one commitment per proof"));
    };
    let st = OrderStatement::from_parts(*qc, *lc, qp.to_bytes(), lp.to_bytes())?;
    let mut split = |r: Scalar| {
        let a = Scalar::random(rng);
        let b = Scalar::random(rng);
        [a, b, r - a - b]
    };
    let mut sq = split(rq);
    let mut sl = split(rl);
    let shares = PartyId::ALL.map(|p| {
        let i = p.index();
        BlindingShares {
            qty: [sq[i].to_bytes(), sq[(i + 1) % 3].to_bytes()],
            limit: [sl[i].to_bytes(), sl[(i + 1) % 3].to_bytes()],
        }
    });
    sq.zeroize();
    sl.zeroize();
    Ok((st, shares))
}

fn blinding_table() -> &'static RistrettoBasepointTable {
    static T: OnceLock<RistrettoBasepointTable> = OnceLock::new();
    T.get_or_init(|| RistrettoBasepointTable::create(&PedersenGens::default().B_blinding))
}

fn value_table() -> &'static RistrettoBasepointTable {
    static T: OnceLock<RistrettoBasepointTable> = OnceLock::new();
    T.get_or_init(|| RistrettoBasepointTable::create(&PedersenGens::default().B))
}

/// `{0, 2^64·B, 2^65·B}`: the only values `Σ P_j − C` may take (carry 0, 1, 2).
/// Compared as points (projective equality), so no candidate is ever compressed.
fn carry_points() -> &'static [RistrettoPoint; 3] {
    static T: OnceLock<[RistrettoPoint; 3]> = OnceLock::new();
    T.get_or_init(|| {
        let b = PedersenGens::default().B;
        let two64 = Scalar::from(1u128 << 64);
        [
            RistrettoPoint::identity(),
            two64 * b,
            two64 * Scalar::from(2u8) * b,
        ]
    })
}

/// `x·B + ρ·B̃` with `x` read as an integer in `[0, 2^64)` (constant time).
fn share_point(x: u64, rho: &[u8; 32]) -> RistrettoPoint {
    let mut xs = Scalar::from(x);
    let mut r = BlindingShares::scalar(rho);
    let p = &xs * value_table() + &r * blinding_table();
    xs.zeroize();
    r.zeroize();
    p
}

fn point_words(p: &CompressedRistretto) -> [u64; 4] {
    let b = p.as_bytes();
    let mut o = [0u64; 4];
    for (k, c) in b.chunks_exact(8).enumerate() {
        o[k] = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
    }
    o
}

fn words_point(w: &[u64]) -> CompressedRistretto {
    let mut b = [0u8; 32];
    for (k, x) in w.iter().take(4).enumerate() {
        b[8 * k..8 * k + 8].copy_from_slice(&x.to_le_bytes());
    }
    CompressedRistretto(b)
}

/// Words per order in each direction of the commitment check (two points).
pub(crate) const CHECK_WORDS: usize = 8;

/// The commitment check (one step): `q`, `l` are this party's sharings of every order's
/// quantity and limit, `blind` its blinding shares, `st` the public statements.
/// Returns, per order, whether `x_0 + x_1 + x_2 = v + k·2^64` for the committed `v`.
/// A share point whose two copies differ aborts, naming both senders.
pub(crate) async fn check_commitments(
    ctx: &mut Ctx,
    q: &AVec,
    l: &AVec,
    blind: &[BlindingShares],
    st: &[OrderStatement],
) -> Result<Vec<bool>, Error> {
    let me = ctx.me();
    let n = q.len();
    // P_i (my first component) goes to the successor, P_{i+1} to the predecessor;
    // both neighbours send P_{i+2}.
    let mut to_next = Vec::with_capacity(CHECK_WORDS * n);
    let mut to_prev = Vec::with_capacity(CHECK_WORDS * n);
    let mut own: Vec<[RistrettoPoint; 2]> = Vec::with_capacity(n);
    for (k, bl) in blind.iter().enumerate().take(n) {
        let mut sum = [RistrettoPoint::identity(); 2];
        for (v, (x, rho)) in [(q, &bl.qty), (l, &bl.limit)].into_iter().enumerate() {
            let pa = share_point(x.a[k], &rho[0]);
            let pb = share_point(x.b[k], &rho[1]);
            to_next.extend_from_slice(&point_words(&pa.compress()));
            to_prev.extend_from_slice(&point_words(&pb.compress()));
            sum[v] = pa + pb;
        }
        own.push(sum);
    }
    let (from_prev, from_next) = ctx
        .exchange(to_prev, to_next, CHECK_WORDS * n, CHECK_WORDS * n)
        .await?;
    let carries = carry_points();
    let mut ok = Vec::with_capacity(n);
    for k in 0..n {
        let mut good = true;
        for (v, c) in [st[k].qty_commitment, st[k].limit_commitment]
            .iter()
            .enumerate()
        {
            let o = CHECK_WORDS * k + 4 * v;
            if from_prev[o..o + 4] != from_next[o..o + 4] {
                return Err(Error::CommitmentShareMismatch {
                    component: me.prev().as_u8(),
                    a: me.prev(),
                    b: me.next(),
                });
            }
            let third = words_point(&from_prev[o..o + 4])
                .decompress()
                .ok_or(Error::Malformed("share point is not a Ristretto point"))?;
            let cp = CompressedRistretto(c.to_bytes())
                .decompress()
                .ok_or(Error::Malformed("commitment is not a Ristretto point"))?;
            let d = own[k][v] + third - cp;
            good &= carries.contains(&d);
        }
        ok.push(good);
    }
    Ok(ok)
}
