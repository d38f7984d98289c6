use super::*;
use ark_crypto_primitives::sponge::{CryptographicSponge, poseidon::PoseidonSponge};
use ark_ff::MontFp;

/// The checked-in constants file. The directory comes from cargo at run time (a
/// test binary built from another checkout of the same workspace may be reused).
fn constants_file() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(
            || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")),
            std::path::PathBuf::from,
        )
        .join("src/poseidon/constants_bn254_t3.rs")
}

/// The checked-in constants are exactly what the documented generator produces.
/// With `VEILGRID_REGEN_POSEIDON=1` this test rewrites the file instead.
#[test]
fn constants_match_generator() {
    let generated = generate_config();
    let rendered = render_constants_file(&generated);
    if std::env::var("VEILGRID_REGEN_POSEIDON").is_ok_and(|v| v == "1") {
        std::fs::write(constants_file(), &rendered).unwrap();
        return;
    }
    let on_disk = std::fs::read_to_string(constants_file()).unwrap();
    assert_eq!(
        on_disk, rendered,
        "constants file differs from the generator's output"
    );
    let checked_in = checked_in_config();
    assert_eq!(checked_in.ark, generated.ark);
    assert_eq!(checked_in.mds, generated.mds);
    assert_eq!(generated.ark.len(), FULL_ROUNDS + PARTIAL_ROUNDS);
}

/// Reference test vector of the Poseidon authors' implementation
/// (`poseidonperm_x5_254_3`: permutation of `[0, 1, 2]`), also circomlib's
/// `poseidon([1, 2])`. Matching it shows that the round numbers, the Grain LFSR
/// constants, the MDS matrix and the round structure are the standard ones.
#[test]
fn reference_test_vector() {
    let mut state = [Fr::from(0u64), Fr::from(1u64), Fr::from(2u64)];
    permute(&mut state);
    let expected0: Fr =
        MontFp!("7853200120776062878684798364095072458815029376092732009249414926327459813530");
    assert_eq!(state[0], expected0);
}

/// Our permutation agrees with arkworks' own Poseidon sponge on the same parameters.
#[test]
fn permutation_matches_arkworks_sponge() {
    for (a, b) in [(0u64, 0u64), (1, 2), (123456789, 987654321)] {
        let mut sponge = PoseidonSponge::<Fr>::new(&checked_in_config());
        sponge.absorb(&vec![Fr::from(a), Fr::from(b)]);
        let out: Vec<Fr> = sponge.squeeze_field_elements(1);
        let mut state = [Fr::from(0u64), Fr::from(a), Fr::from(b)];
        permute(&mut state);
        assert_eq!(out[0], state[1]);
    }
}

/// The MDS matrix is a Cauchy matrix `1 / (x_i + y_j)` with distinct `x`, distinct
/// `y` (so every square submatrix is invertible, i.e. it is MDS): check that every
/// minor of size 1 and 2 and the determinant are non-zero.
#[test]
fn mds_is_mds() {
    let m = mds();
    for row in m {
        for c in row {
            assert_ne!(*c, Fr::from(0u64));
        }
    }
    for r in [(0, 1), (0, 2), (1, 2)] {
        for c in [(0, 1), (0, 2), (1, 2)] {
            let det = m[r.0][c.0] * m[r.1][c.1] - m[r.0][c.1] * m[r.1][c.0];
            assert_ne!(det, Fr::from(0u64));
        }
    }
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    assert_ne!(det, Fr::from(0u64));
}

#[test]
fn hash_separates_domains_and_lengths() {
    let x = [Fr::from(1u64), Fr::from(2u64)];
    assert_ne!(
        hash(Domain::ModelHash, &x),
        hash(Domain::InputCommitment, &x)
    );
    assert_ne!(
        hash(Domain::ModelHash, &x),
        hash(
            Domain::ModelHash,
            &[Fr::from(1u64), Fr::from(2u64), Fr::from(0u64)]
        )
    );
    assert_eq!(hash(Domain::ModelHash, &x), hash(Domain::ModelHash, &x));
}

/// The security inequalities of the Poseidon paper (statistical, interpolation,
/// three Gröbner-basis bounds) and the binomial bound of ePrint 2023/537, as in
/// the authors' round-number script; `true` if `(r_f, r_p)` resists all of them at
/// `m` bits for `t`, `alpha = 5` and our 254-bit prime.
fn secure(t: f64, r_f: f64, r_p: f64, m: f64) -> bool {
    let alpha = 5.0f64;
    let log2p = 253.596_691_f64; // log2(p) for BN254's scalar field
    let n = 254.0f64; // ceil(log2 p)
    let r1: f64 = if m <= (log2p - (alpha - 1.0) / 2.0).floor() * (t + 1.0) {
        6.0
    } else {
        10.0
    };
    let la = 2f64.ln() / alpha.ln(); // log_alpha(2)
    let r2 = 1.0 + (la * m.min(n)).ceil() + (t.ln() / alpha.ln()).ceil() - r_p;
    let r3 = la * m.min(log2p) - r_p;
    let r4 = t - 1.0 + la * (m / (t + 1.0)).min(log2p / 2.0) - r_p;
    let r5 = (t - 2.0 + m / (2.0 * alpha.log2()) - r_p) / (t - 1.0);
    let r_max = [r1, r2.ceil(), r3.ceil(), r4.ceil(), r5.ceil()]
        .into_iter()
        .fold(f64::MIN, f64::max);
    let r_temp = (t / 3.0).floor();
    let over = (r_f - 1.0) * t + r_p + r_temp + r_temp * (r_f / 2.0) + r_p + alpha;
    let under = r_temp * (r_f / 2.0) + r_p + alpha;
    let (over, under) = (over as u64, under as u64);
    let log2_binom: f64 = (1..=under)
        .map(|i| ((over - under + i) as f64 / i as f64).log2())
        .sum();
    r_f >= r_max && (2.0 * log2_binom).ceil() >= m
}

/// `(R_F, R_P) = (8, 57)` contains the paper's security margin: without the +2
/// full rounds and the +7.5 % partial rounds, `(6, 53)` still meets every bound at
/// 128 bits, while fewer rounds do not.
#[test]
fn round_numbers_meet_the_papers_bounds_with_margin() {
    let rf_min = (FULL_ROUNDS - 2) as f64;
    let rp_min = (PARTIAL_ROUNDS as f64 / 1.075).floor();
    assert_eq!((rf_min, rp_min), (6.0, 53.0));
    assert!(secure(3.0, rf_min, rp_min, 128.0));
    assert!(
        !secure(3.0, 4.0, 200.0, 128.0),
        "4 full rounds are below the statistical bound"
    );
    assert!(
        !secure(3.0, 6.0, 40.0, 128.0),
        "40 partial rounds are below the algebraic bounds"
    );
}
