//! The clearing circuit (see `docs/clearing.md`).

use super::book::{MAX_QTY_BITS, OrderBook, Side};
use super::rule::clear;
use crate::field::{Fr, pow2};
use crate::gadgets::{Bit, FrVar, compare, pack, poseidon::hash_var, range};
use crate::poseidon::Domain;
use crate::{Error, Result};
use ark_r1cs_std::{alloc::AllocVar, eq::EqGadget, fields::FieldVar, select::CondSelectGadget};
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

        // The clearing level without a histogram. D(k) (buys with ℓ ≥ k) is
        // non-increasing and S(k) (sells with ℓ ≤ k) non-decreasing, so [D ≥ S]
        // is 1…1 0…0 and V = min(D, S) is unimodal: the argmax under the rule's
        // key is either the right end of the left plateau's best level L* or the
        // crossing level c (docs/clearing.md). D and S are computed only where
        // needed, at x ∈ {c − 1, c, L* − 1, L*}, through y = x + 1 ∈ [0, P + 1)
        // so that x = −1 needs no negative index: D(−1) = all buys, S(−1) = 0.
        let key_bits = 2 * TOTAL_BITS + lb;
        let (c_val, l_val) = crossing(&slots, p);
        let (c, _) = range::alloc_uint(cs.clone(), c_val as u128, lb + 1)?;
        compare::enforce_ge(&FrVar::constant(Fr::from(p as u64)), &c, lb + 1)?;
        let (lstar, _) = range::alloc_uint(cs.clone(), l_val as u128, lb)?;
        let buy_qty: Vec<FrVar> = (0..n)
            .map(|i| FrVar::from(side[i].clone()) * &qty[i])
            .collect();
        let at = |y: &FrVar| -> ark_relations::gr1cs::Result<(FrVar, FrVar)> {
            let mut d = FrVar::zero();
            let mut s = FrVar::zero();
            for i in 0..n {
                let l1 = &limit[i] + Fr::from(1u64);
                let g = compare::is_ge(&l1, y, lb + 1)?; // ℓ ≥ x
                let eq = compare::is_zero(&(&l1 - y))?; // ℓ = x
                d += &buy_qty[i] * FrVar::from(g.clone());
                let le = FrVar::one() - FrVar::from(g) + FrVar::from(eq); // ℓ ≤ x
                s += (&qty[i] - &buy_qty[i]) * le;
            }
            Ok((d, s))
        };
        let one = Fr::from(1u64);
        let (d_cm1, s_cm1) = at(&c)?;
        let (d_c, s_c) = at(&(&c + one))?;
        let (d_lm1, s_lm1) = at(&lstar)?;
        let (d_l, s_l) = at(&(&lstar + one))?;
        // c is the crossing: D(c − 1) ≥ S(c − 1) (true for c = 0), and D(c) < S(c) unless c = P.
        compare::enforce_ge(&d_cm1, &s_cm1, TOTAL_BITS)?;
        let c_is_p = compare::is_zero(&(&c - Fr::from(p as u64)))?;
        let right_lt = compare::is_ge(&s_c, &(&d_c + one), TOTAL_BITS)?;
        (FrVar::one() - FrVar::from(right_lt)).mul_equals(
            &(FrVar::one() - FrVar::from(c_is_p.clone())),
            &FrVar::zero(),
        )?;
        // L* (when c ≥ 1): L* ≤ c − 1, (D, S)(L*) = (D, S)(c − 1), and L* = 0 or
        // (D, S)(L* − 1) differs.
        let c_is_0 = compare::is_zero(&c)?;
        let has_left = FrVar::one() - FrVar::from(c_is_0.clone());
        compare::enforce_ge(&c, &(&lstar + one - FrVar::from(c_is_0)), lb + 1)?;
        has_left.mul_equals(&(&d_l - &d_cm1), &FrVar::zero())?;
        has_left.mul_equals(&(&s_l - &s_cm1), &FrVar::zero())?;
        let l_is_0 = compare::is_zero(&lstar)?;
        let same_d = compare::is_zero(&(&d_lm1 - &d_cm1))?;
        let same_s = compare::is_zero(&(&s_lm1 - &s_cm1))?;
        let same = FrVar::from(same_d) * FrVar::from(same_s);
        let not_first = &has_left * (FrVar::one() - FrVar::from(l_is_0));
        not_first.mul_equals(&same, &FrVar::zero())?;
        // Key(k) = V·2^(38+lb) + (2^38 − 1 − |D − S|)·2^lb + (2^lb − 1 − k); left of the
        // crossing V = S and |D − S| = D − S, from c on V = D and |D − S| = S − D.
        let max_abs = FrVar::constant(pow2(TOTAL_BITS) - one);
        let low = |k: &FrVar| FrVar::constant(Fr::from((1u64 << lb) - 1)) - k;
        let key_left =
            &s_l * pow2(TOTAL_BITS + lb) + (&max_abs - (&d_l - &s_l)) * pow2(lb) + low(&lstar);
        let key_right =
            &d_c * pow2(TOTAL_BITS + lb) + (&max_abs - (&s_c - &d_c)) * pow2(lb) + low(&c);
        let left_wins = compare::is_ge(&key_left, &key_right, key_bits + 2)?;
        // pick L* if c = P (no level right of the crossing), else if it exists and wins.
        let left_and_wins = &has_left * FrVar::from(left_wins);
        let not_p = FrVar::one() - FrVar::from(c_is_p.clone());
        let pick_left = FrVar::from(c_is_p) + &not_p * &left_and_wins;
        let kstar = &c + &pick_left * (&lstar - &c);
        let v_star = &d_c + &pick_left * (&s_l - &d_c);
        // The prover's claimed argmax must be it.
        FrVar::new_witness(cs.clone(), || Ok(Fr::from(self.argmax as u64)))?
            .enforce_equal(&kstar)?;
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

/// The crossing level `c` (the number of levels with `D ≥ S`) and the left
/// candidate `L*` (the lowest level with the same `D` and `S` as `c − 1`; 0 when `c = 0`).
fn crossing(slots: &[super::book::Order], p: usize) -> (usize, usize) {
    let ds = |k: usize| -> (u64, u64) {
        let mut d = 0u64;
        let mut s = 0u64;
        for o in slots {
            let l = o.limit as usize;
            match o.side {
                Side::Buy if l >= k => d += u64::from(o.qty),
                Side::Sell if l <= k => s += u64::from(o.qty),
                _ => {}
            }
        }
        (d, s)
    };
    let c = (0..p)
        .filter(|&k| {
            let (d, s) = ds(k);
            d >= s
        })
        .count();
    if c == 0 {
        return (0, 0);
    }
    let target = ds(c - 1);
    let l = (0..c).find(|&k| ds(k) == target).unwrap_or(c - 1);
    (c, l)
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
