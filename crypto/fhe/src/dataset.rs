//! The UCI Breast Cancer Wisconsin (Diagnostic) data as shipped in `crypto/fhe/data/`, and the
//! fixed train/test split of `crypto/fhe/models/split.json`. Compiled into the crate.
//!
//! Source: UCI Machine Learning Repository, W. Wolberg, O. Mangasarian, N. Street, W. Street
//! (1995), DOI 10.24432/C5DW2B, CC BY 4.0; the file is scikit-learn's copy
//! (`sklearn/datasets/data/breast_cancer.csv`, BSD-3-Clause). See `data/README.md`.

use serde::Deserialize;

use crate::error::{Error, Result};

const CSV: &str = include_str!("../data/breast_cancer.csv");
const SPLIT: &str = include_str!("../models/split.json");

/// The 569 x 30 data set with labels (0 = malignant, 1 = benign) and the fixed split.
#[derive(Clone, Debug)]
pub struct BreastCancer {
    /// Raw feature rows.
    pub features: Vec<Vec<f64>>,
    /// Label per row.
    pub labels: Vec<usize>,
    /// Training row indices (sorted).
    pub train_rows: Vec<usize>,
    /// Held-out test row indices (sorted).
    pub test_rows: Vec<usize>,
    /// Class names, index = label.
    pub classes: Vec<String>,
}

#[derive(Deserialize)]
struct Split {
    rows: usize,
    train_rows: Vec<usize>,
    test_rows: Vec<usize>,
}

impl BreastCancer {
    /// Parse the embedded CSV and split.
    pub fn load() -> Result<Self> {
        let bad = |m: &str| Error::Dataset(m.to_string());
        let mut lines = CSV.lines();
        let header: Vec<&str> = lines
            .next()
            .ok_or_else(|| bad("empty csv"))?
            .split(',')
            .collect();
        let (n, d, classes): (usize, usize, Vec<String>) = match header.as_slice() {
            [n, d, names @ ..] => (
                n.parse().map_err(|_| bad("row count"))?,
                d.parse().map_err(|_| bad("feature count"))?,
                names.iter().map(|s| s.to_string()).collect(),
            ),
            _ => return Err(bad("header")),
        };
        let mut features = Vec::with_capacity(n);
        let mut labels = Vec::with_capacity(n);
        for line in lines {
            let cells: Vec<&str> = line.split(',').collect();
            if cells.len() != d + 1 {
                return Err(bad("row width"));
            }
            let row = cells[..d]
                .iter()
                .map(|c| c.parse::<f64>().map_err(|_| bad("feature value")))
                .collect::<Result<Vec<_>>>()?;
            features.push(row);
            labels.push(cells[d].parse().map_err(|_| bad("label"))?);
        }
        if features.len() != n {
            return Err(bad("row count differs from header"));
        }
        let split: Split = serde_json::from_str(SPLIT).map_err(|e| bad(&e.to_string()))?;
        if split.rows != n || split.train_rows.len() + split.test_rows.len() != n {
            return Err(bad("split does not cover the data"));
        }
        if split
            .train_rows
            .iter()
            .chain(&split.test_rows)
            .any(|&i| i >= n)
        {
            return Err(bad("split index out of range"));
        }
        Ok(Self {
            features,
            labels,
            train_rows: split.train_rows,
            test_rows: split.test_rows,
            classes,
        })
    }

    /// Number of features per row.
    pub fn n_features(&self) -> usize {
        self.features.first().map_or(0, Vec::len)
    }

    /// `(row index, features, label)` of each held-out test row, in split order.
    pub fn test_set(&self) -> impl Iterator<Item = (usize, &[f64], usize)> + '_ {
        self.test_rows
            .iter()
            .map(|&i| (i, self.features[i].as_slice(), self.labels[i]))
    }
}
