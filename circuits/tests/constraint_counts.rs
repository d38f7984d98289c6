//! Constraint counts are recorded in `docs/inference.md` and `docs/clearing.md`;
//! a change that moves a circuit more than 10 % away from its recorded count (for
//! example one that doubles it) fails here. Update the docs and this table together.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use veilgrid_circuits::clearing::{self, BookShape};
use veilgrid_circuits::inference::{self, ModelShape, ShapeKind};

fn shape(n: usize, b: u32, p: u32, kind: ShapeKind) -> ModelShape {
    ModelShape {
        n_features: n,
        input_bits: b,
        param_bits: p,
        kind,
    }
}

/// (name, measured count, recorded count)
fn measured() -> Vec<(&'static str, usize, usize)> {
    let trees = |t, d| ShapeKind::Trees {
        n_trees: t,
        depth: d,
    };
    vec![
        (
            "inference linear n=30 B=8 w=16",
            inference::count_constraints(shape(30, 8, 16, ShapeKind::Linear)).unwrap(),
            RECORDED[0],
        ),
        (
            "inference linear n=64 B=16 w=32",
            inference::count_constraints(shape(64, 16, 32, ShapeKind::Linear)).unwrap(),
            RECORDED[1],
        ),
        (
            "inference trees 8 x depth 4, n=30 B=8 leaf=16",
            inference::count_constraints(shape(30, 8, 16, trees(8, 4))).unwrap(),
            RECORDED[2],
        ),
        (
            "inference trees 32 x depth 3, n=30 B=8 leaf=16",
            inference::count_constraints(shape(30, 8, 16, trees(32, 3))).unwrap(),
            RECORDED[3],
        ),
        (
            "clearing N=64 P=64",
            clearing::count_constraints(BookShape::DEFAULT).unwrap(),
            RECORDED[4],
        ),
        (
            "clearing N=16 P=16",
            clearing::count_constraints(BookShape {
                max_orders: 16,
                levels: 16,
            })
            .unwrap(),
            RECORDED[5],
        ),
        (
            "shipped breast-cancer logreg: linear n=30 B=8 w=10",
            inference::count_constraints(shape(30, 8, 10, ShapeKind::Linear)).unwrap(),
            RECORDED[6],
        ),
        (
            "shipped breast-cancer GBT: 20 trees x depth 3, n=30 B=4 leaf=4",
            inference::count_constraints(shape(30, 4, 4, trees(20, 3))).unwrap(),
            RECORDED[7],
        ),
    ]
}

const RECORDED: [usize; 8] = [1731, 5643, 8868, 18033, 12907, 3852, 1551, 7240];

#[test]
fn constraint_counts_match_the_docs() {
    let rows = measured();
    let mut report = String::new();
    let mut ok = true;
    for (name, got, recorded) in &rows {
        report.push_str(&format!("| {name} | {got} |\n"));
        let lo = recorded * 9 / 10;
        let hi = recorded * 11 / 10;
        if *got < lo || *got > hi {
            ok = false;
        }
    }
    assert!(ok, "constraint counts moved; measured:\n{report}");
}
