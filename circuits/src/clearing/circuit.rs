//! The clearing circuit (see `docs/clearing.md`).

use super::book::{MAX_QTY_BITS, OrderBook, Side};
use super::rule::clear;
use crate::field::{Fr, pow2};
use crate::gadgets::{Bit, FrVar, compare, mux, pack, poseidon::hash_var, range};
use crate::poseidon::Domain;
use crate::{Error, Result};
use ark_r1cs_std::{
    GR1CSVar, alloc::AllocVar, eq::EqGadget, fields::FieldVar, select::CondSelectGadget,
};
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystemRef, SynthesisError};

/// Bits of a side total: 64 orders of < 2^32 sum to < 2^38.
const TOTAL_BITS: usize = 38;

/// Public inputs, in verifier order: `[book_commitment, level, volume, fills_commitment]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClearingPublic {
    /// Commitment to the order book.
    pub book_commitment: Fr,
    /// Clearing level `k*`, or 0 when there is no trade (`volume == 0`).
    pub level: u64,
    /// Cleared volume `V(k*)`.
    pub volume: u64,
    /// Commitment to every slot's fill.
    pub fills_commitment: Fr,
}

impl ClearingPublic {
    /// The field elements the Groth16 verifier takes.
    pub fn to_field_elements(&self) -> Vec<Fr> {
        vec![
            self.book_commitment,
            Fr::from(self.level),
            Fr::from(self.volume),
            self.fills_commitment,
        ]
    }
}

/// The circuit: knowledge of an order book opening `book_commitment` whose
/// uniform-price clearing (the matching issue's rule) is `(level, volume)` and
/// whose fills open `fills_commitment`.
#[derive(Clone)]
pub struct ClearingCircuit {
    book: OrderBook,
    argmax: usize,
    public: ClearingPublic,
}

impl core::fmt::Debug for ClearingCircuit {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClearingCircuit")
            .field("shape", &self.book.shape())
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl ClearingCircuit {
    /// A circuit for `shape` with an empty book: use it for key generation.
    pub fn blank(shape: super::BookShape) -> Result<Self> {
        let book = OrderBook::new(shape, Vec::new(), Fr::from(0u64), Fr::from(0u64))?;
        Ok(Self {
            book,
            argmax: 0,
            public: ClearingPublic {
                book_commitment: Fr::from(0u64),
                level: 0,
                volume: 0,
                fills_commitment: Fr::from(0u64),
            },
        })
    }

    /// The honest prover's circuit: clears the book with the plaintext rule and
    /// computes the public inputs. Also returns every order's fill.
    pub fn new(book: OrderBook) -> Result<(Self, Vec<u64>)> {
        let c = clear(book.shape().levels, book.orders());
        let public = ClearingPublic {
            book_commitment: book.commitment()?.0,
            level: c.level.unwrap_or(0) as u64,
            volume: c.volume,
            fills_commitment: book.fills_commitment(&c.fills)?.0,
        };
        Ok((
            Self {
                book,
                argmax: c.argmax,
                public,
            },
            c.fills,
        ))
    }

    /// A circuit with explicitly claimed public inputs and argmax (tests of false statements).
    pub fn with_claim(book: OrderBook, argmax: usize, public: ClearingPublic) -> Self {
        Self {
            book,
            argmax,
            public,
        }
    }

    /// The public inputs.
    pub fn public(&self) -> ClearingPublic {
        self.public
    }
}

impl ConstraintSynthesizer<Fr> for ClearingCircuit {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> ark_relations::gr1cs::Result<()> {
        let shape = self.book.shape();
        shape
            .validate()
            .map_err(|_| SynthesisError::Unsatisfiable)?;
        let n = shape.max_orders;
        let p = shape.levels;
        let lb = shape.level_bits();

        // Public inputs.
        let book_com = FrVar::new_input(cs.clone(), || Ok(self.public.book_commitment))?;
        let level_pub = FrVar::new_input(cs.clone(), || Ok(Fr::from(self.public.level)))?;
        let volume_pub = FrVar::new_input(cs.clone(), || Ok(Fr::from(self.public.volume)))?;
        let fills_com = FrVar::new_input(cs.clone(), || Ok(self.public.fills_commitment))?;

        // Order slots, range-checked, and the book commitment.
        let slots = self.book.slots();
        let mut side = Vec::with_capacity(n); // true = buy
        let mut limit = Vec::with_capacity(n);
        let mut qty = Vec::with_capacity(n);
        let mut fields: Vec<Vec<Bit>> = Vec::with_capacity(3 * n);
        for o in &slots {
            let s = Bit::new_witness(cs.clone(), || Ok(o.side == Side::Buy))?;
            let (l, lbits) = range::alloc_uint(cs.clone(), u128::from(o.limit), lb)?;
            if p < (1 << lb) {
                // off a power-of-two grid, also enforce limit <= P - 1 (otherwise a sell
                // at level P + j would land in the buy histogram at j)
                compare::enforce_ge(&FrVar::constant(Fr::from((p - 1) as u64)), &l, lb)?;
            }
            let (q, qbits) = range::alloc_uint(cs.clone(), u128::from(o.qty), MAX_QTY_BITS)?;
            fields.push(vec![s.clone()]);
            fields.push(lbits);
            fields.push(qbits);
            side.push(s);
            limit.push(l);
            qty.push(q);
        }
        let blinding = FrVar::new_witness(cs.clone(), || Ok(self.book.blinding()))?;
        let mut com_in = vec![FrVar::constant(shape.descriptor())];
        com_in.extend(pack::pack_bits(&fields));
        com_in.push(blinding);
        hash_var(Domain::BookCommitment, &com_in)?.enforce_equal(&book_com)?;

        // Histograms. Slot m = limit + P·is_buy in [0, 2P); a[i][m] ∈ {0, q_i},
        // Σ_m a[i][m] = q_i and Σ_m m·a[i][m] = m_i·q_i force exactly one non-zero
        // entry, at m_i, when q_i ≠ 0 (and all zero when q_i = 0).
        let mut hist = vec![FrVar::zero(); 2 * p];
        for i in 0..n {
            let m_i = &limit[i] + FrVar::from(side[i].clone()) * Fr::from(p as u64);
            let target =
                usize::from(slots[i].limit) + if slots[i].side == Side::Buy { p } else { 0 };
            let mut sum = FrVar::zero();
            let mut weighted = FrVar::zero();
            for (m, h) in hist.iter_mut().enumerate() {
                let a = FrVar::new_witness(cs.clone(), || {
                    if m == target {
                        qty[i].value()
                    } else {
                        Ok(Fr::from(0u64))
                    }
                })?;
                a.mul_equals(&(&a - &qty[i]), &FrVar::zero())?;
                sum += &a;
                weighted += &a * Fr::from(m as u64);
                *h += &a;
            }
            sum.enforce_equal(&qty[i])?;
            m_i.mul_equals(&qty[i], &weighted)?;
        }

        // Per level: D(k), S(k), V(k) = min(D, S), and the ordering key
        // Key(k) = V·2^(38+lb) + (2^38 - 1 - |D - S|)·2^lb + (2^lb - 1 - k).
        let key_bits = 2 * TOTAL_BITS + lb;
        let mut d_suffix = vec![FrVar::zero(); p + 1];
        for k in (0..p).rev() {
            d_suffix[k] = &d_suffix[k + 1] + &hist[p + k];
        }
        let mut s_prefix = FrVar::zero();
        let mut volumes = Vec::with_capacity(p);
        let mut keys = Vec::with_capacity(p);
        for (k, d) in d_suffix.iter().take(p).enumerate() {
            s_prefix += &hist[k];
            let ge = compare::is_ge(d, &s_prefix, TOTAL_BITS)?;
            let diff = d - &s_prefix;
            let t = FrVar::from(ge) * &diff;
            let v = d - &t;
            let absdiff = t.double()? - &diff;
            let key = &v * pow2(TOTAL_BITS + lb)
                + (FrVar::constant(pow2(TOTAL_BITS) - Fr::from(1u64)) - absdiff) * pow2(lb)
                + FrVar::constant(Fr::from(((1u64 << lb) - 1) - k as u64));
            volumes.push(v);
            keys.push(key);
        }

        // k*: the argmax, proven by Key(k*) >= Key(k) for every k.
        let (kstar, kbits) = range::alloc_uint(cs.clone(), self.argmax as u128, lb)?;
        if p < (1 << lb) {
            compare::enforce_ge(&FrVar::constant(Fr::from((p - 1) as u64)), &kstar, lb)?;
        }
        let (keys_padded, _) = mux::pad_pow2(&keys, lb);
        let key_star = mux::select_by_bits(&keys_padded, &kbits)?;
        for key in &keys {
            compare::enforce_ge(&key_star, key, key_bits)?;
        }
        let (vols_padded, _) = mux::pad_pow2(&volumes, lb);
        let v_star = mux::select_by_bits(&vols_padded, &kbits)?;
        v_star.enforce_equal(&volume_pub)?;
        let trade = !compare::is_zero(&v_star)?;
        (FrVar::from(trade) * &kstar).enforce_equal(&level_pub)?;

        // Fills in submission order, per side.
        let mut rem_buy = v_star.clone();
        let mut rem_sell = v_star;
        let mut fill_fields = Vec::with_capacity(n);
        for i in 0..n {
            let ge = compare::is_ge(&limit[i], &kstar, lb)?; // limit >= k*
            let eq = compare::is_zero(&(&limit[i] - &kstar))?;
            let le = FrVar::one() - FrVar::from(ge.clone()) + FrVar::from(eq); // limit <= k*
            let eligible = FrVar::conditionally_select(&side[i], &FrVar::from(ge), &le)?;
            let wanted = eligible * &qty[i];
            let rem = FrVar::conditionally_select(&side[i], &rem_buy, &rem_sell)?;
            let (fill, _) = compare::min(&wanted, &rem, TOTAL_BITS)?;
            let fill_buy = FrVar::from(side[i].clone()) * &fill;
            rem_buy -= &fill_buy;
            rem_sell -= &fill - &fill_buy;
            fill_fields.push((fill, MAX_QTY_BITS));
        }
        let fills_blinding = FrVar::new_witness(cs.clone(), || Ok(self.book.fills_blinding()))?;
        let mut fills_in = vec![FrVar::constant(shape.descriptor())];
        fills_in.extend(pack::pack_vars(&fill_fields));
        fills_in.push(fills_blinding);
        hash_var(Domain::FillsCommitment, &fills_in)?.enforce_equal(&fills_com)?;
        Ok(())
    }
}

/// Number of constraints of the clearing circuit for `shape`.
pub fn count_constraints(shape: super::BookShape) -> Result<usize> {
    let cs = ark_relations::gr1cs::ConstraintSystem::<Fr>::new_ref();
    cs.set_optimization_goal(ark_relations::gr1cs::OptimizationGoal::Constraints);
    ClearingCircuit::blank(shape)?.generate_constraints(cs.clone())?;
    cs.finalize();
    Ok(cs.num_constraints())
}

/// Checks the witness against the circuit without proving (debugging aid).
pub fn is_satisfied(circuit: ClearingCircuit) -> Result<bool> {
    let cs = ark_relations::gr1cs::ConstraintSystem::<Fr>::new_ref();
    circuit.generate_constraints(cs.clone())?;
    cs.is_satisfied().map_err(Error::from)
}
