#!/usr/bin/env python3
"""Train and quantize the Veilgrid FHE models on the breast cancer data.

Regenerates, from crypto/fhe/data/breast_cancer.csv and nothing else:

  models/split.json                      the fixed train/test split (row indices)
  models/breast_cancer_logreg.float.json logistic regression, float weights on raw features
  models/breast_cancer_logreg.quant.json the same, quantized (8-bit inputs, 10-bit weights)
  models/breast_cancer_gbt.float.json    gradient-boosted trees trained on float features
  models/breast_cancer_gbt.quant.json    gradient-boosted trees trained on 4-bit features,
                                         integer leaves (6-bit score range)

Run from anywhere:  python3 crypto/fhe/train/train.py
(versions pinned in crypto/fhe/train/requirements.txt; see crypto/fhe/docs/quantization.md).

Quantizer (shared by the Rust crate and the Groth16 circuits):
  q_i = clamp(floor((x_i - min_i) / scale_i + 0.5), 0, 2^B - 1)
with min_i, scale_i (f64) stored per feature in the quantized model file.
Decision rule of both quantized models: class 1 ("benign") iff integer score > 0.
"""

import argparse
import hashlib
import json
import os
import sys

import numpy as np
import sklearn
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

HERE = os.path.dirname(os.path.abspath(__file__))
CRATE = os.path.dirname(HERE)
DATA = os.path.join(CRATE, "data", "breast_cancer.csv")
MODELS = os.path.join(CRATE, "models")
DATA_SHA256 = "fed3eb72d0575ef6192293f5093c6e801b1476b577d0386bf4455504522172ed"

SPLIT_SEED = 42
TEST_SIZE = 0.2

_BASE = (
    "radius",
    "texture",
    "perimeter",
    "area",
    "smoothness",
    "compactness",
    "concavity",
    "concave points",
    "symmetry",
    "fractal dimension",
)
# sklearn's load_breast_cancer().feature_names
FEATURE_NAMES = (
    [f"mean {b}" for b in _BASE] + [f"{b} error" for b in _BASE] + [f"worst {b}" for b in _BASE]
)
CLASSES = ["malignant", "benign"]

# Logistic regression quantization.
LR_INPUT_BITS = 8
LR_WEIGHT_BITS = 10  # signed: |w| <= 2^9 - 1

# Gradient-boosted trees.
GBT_INPUT_BITS = 4  # one bootstrap per comparison with 4-bit (message 2 + carry 2) blocks
GBT_TREES = 20
GBT_DEPTH = 3
GBT_LEARNING_RATE = 0.2
GBT_SCORE_BITS = 6  # width of the integer score range must stay below 2^6


def load():
    with open(DATA, "rb") as f:
        raw = f.read()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != DATA_SHA256:
        sys.exit(f"data file changed: sha256 {digest}")
    lines = raw.decode().strip().split("\n")
    n, d = (int(v) for v in lines[0].split(",")[:2])
    rows = [line.split(",") for line in lines[1:]]
    X = np.array([[float(v) for v in r[:d]] for r in rows], dtype=np.float64)
    y = np.array([int(r[d]) for r in rows], dtype=np.int64)
    assert X.shape == (n, d) == (569, 30)
    return X, y


class Quantizer:
    def __init__(self, X_train, bits):
        self.bits = bits
        self.min = X_train.min(axis=0)
        mx = X_train.max(axis=0)
        span = mx - self.min
        self.scale = np.where(span > 0, span / (2**bits - 1), 1.0)

    def __call__(self, X):
        # floor(v + 0.5) so Rust's f64 arithmetic reproduces it bit for bit.
        q = np.floor((X - self.min) / self.scale + 0.5)
        return np.clip(q, 0, 2**self.bits - 1).astype(np.int64)

    def to_json(self):
        return {
            "bits": self.bits,
            "min": [float(v) for v in self.min],
            "scale": [float(v) for v in self.scale],
            "rounding": "q = clamp(floor((x - min) / scale + 0.5), 0, 2^bits - 1)",
        }


def accuracy(pred, y):
    return float(np.mean(pred == y))


# ---------------------------------------------------------------- logistic regression


def train_logreg(Xtr, ytr):
    pipe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=10000))
    pipe.fit(Xtr, ytr)
    sc, lr = pipe[0], pipe[1]
    w = lr.coef_[0] / sc.scale_
    b = lr.intercept_[0] - float(np.sum(lr.coef_[0] * sc.mean_ / sc.scale_))
    return pipe, w, b


def quantize_logreg(w, b, quant):
    # logit(x) = w.x + b with x = min + scale*q  =>  logit = a.q + c
    a = w * quant.scale
    c = b + float(np.sum(w * quant.min))
    s = (2 ** (LR_WEIGHT_BITS - 1) - 1) / float(np.max(np.abs(a)))
    weights = np.round(a * s).astype(np.int64)
    bias = int(np.round(c * s))
    return weights, bias, s


def logreg_scores(weights, bias, Q):
    return Q @ weights + bias


# ---------------------------------------------------------------- gradient-boosted trees


def make_gbt():
    return GradientBoostingClassifier(
        n_estimators=GBT_TREES,
        max_depth=GBT_DEPTH,
        learning_rate=GBT_LEARNING_RATE,
        random_state=0,
    )


def gbt_init(g, n_features):
    return float(g._raw_predict_init(np.zeros((1, n_features)))[0, 0])


def float_trees_json(g):
    trees = []
    for est in g.estimators_[:, 0]:
        t = est.tree_
        nodes = []
        for i in range(t.node_count):
            if t.children_left[i] == -1:
                nodes.append({"value": float(g.learning_rate * t.value[i, 0, 0])})
            else:
                nodes.append(
                    {
                        "feature": int(t.feature[i]),
                        "threshold": float(t.threshold[i]),
                        "left": int(t.children_left[i]),
                        "right": int(t.children_right[i]),
                    }
                )
        trees.append({"nodes": nodes})
    return trees


def quantize_gbt(g, n_features):
    """Integer thresholds (go right iff q > t) and integer leaves with a score range < 2^bits."""
    lr = g.learning_rate
    ests = g.estimators_[:, 0]
    widths = []
    for est in ests:
        t = est.tree_
        leaves = t.value[t.children_left == -1, 0, 0] * lr
        widths.append(leaves.max() - leaves.min())
    target = 2**GBT_SCORE_BITS - 1
    s = target / float(np.sum(widths))
    while True:
        trees = []
        width = 0
        for est in ests:
            t = est.tree_
            nodes = []
            leaf_values = []
            for i in range(t.node_count):
                if t.children_left[i] == -1:
                    v = int(np.round(lr * t.value[i, 0, 0] * s))
                    leaf_values.append(v)
                    nodes.append({"value": v})
                else:
                    thr = float(t.threshold[i])
                    # trained on integers: q <= thr  <=>  q <= floor(thr)
                    nodes.append(
                        {
                            "feature": int(t.feature[i]),
                            "threshold": int(np.floor(thr)),
                            "left": int(t.children_left[i]),
                            "right": int(t.children_right[i]),
                        }
                    )
            width += max(leaf_values) - min(leaf_values)
            trees.append({"nodes": nodes})
        if width <= target:
            bias = int(np.round(gbt_init(g, n_features) * s))
            return trees, bias, s
        s *= 0.99


def tree_predict_int(trees, bias, Q):
    scores = np.full(len(Q), bias, dtype=np.int64)
    for tree in trees:
        nodes = tree["nodes"]
        for r, q in enumerate(Q):
            i = 0
            while "value" not in nodes[i]:
                n = nodes[i]
                i = n["right"] if q[n["feature"]] > n["threshold"] else n["left"]
            scores[r] += nodes[i]["value"]
    return scores


# ---------------------------------------------------------------- robustness check


def cross_split_means(X, y, splits=10):
    """Mean test accuracy over `splits` other stratified splits (not used for selection)."""
    acc = {"logreg_float": [], "logreg_quant": [], "gbt_float": [], "gbt_quant": []}
    for seed in range(splits):
        Xtr, Xte, ytr, yte = train_test_split(
            X, y, test_size=TEST_SIZE, random_state=1000 + seed, stratify=y
        )
        pipe, w, b = train_logreg(Xtr, ytr)
        acc["logreg_float"].append(accuracy(pipe.predict(Xte), yte))
        ql = Quantizer(Xtr, LR_INPUT_BITS)
        W, B, _ = quantize_logreg(w, b, ql)
        acc["logreg_quant"].append(accuracy((logreg_scores(W, B, ql(Xte)) > 0).astype(int), yte))
        acc["gbt_float"].append(accuracy(make_gbt().fit(Xtr, ytr).predict(Xte), yte))
        qg = Quantizer(Xtr, GBT_INPUT_BITS)
        g = make_gbt().fit(qg(Xtr), ytr)
        trees, bias, _ = quantize_gbt(g, X.shape[1])
        acc["gbt_quant"].append(
            accuracy((tree_predict_int(trees, bias, qg(Xte)) > 0).astype(int), yte)
        )
    return {k: round(float(np.mean(v)), 4) for k, v in acc.items()}


# ---------------------------------------------------------------- main


def write(name, obj):
    path = os.path.join(MODELS, name)
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=False)
        f.write("\n")
    print("wrote", os.path.relpath(path, CRATE))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-cross-splits", action="store_true", help="skip the 10-split check")
    args = ap.parse_args()

    X, y = load()
    idx = np.arange(len(y))
    tr, te = train_test_split(idx, test_size=TEST_SIZE, random_state=SPLIT_SEED, stratify=y)
    tr, te = np.sort(tr), np.sort(te)
    Xtr, Xte, ytr, yte = X[tr], X[te], y[tr], y[te]
    os.makedirs(MODELS, exist_ok=True)

    provenance = {
        "data": "data/breast_cancer.csv",
        "data_sha256": DATA_SHA256,
        "script": "train/train.py",
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
    }
    write(
        "split.json",
        {
            "dataset": "breast_cancer",
            "rows": int(len(y)),
            "seed": SPLIT_SEED,
            "test_size": TEST_SIZE,
            "stratified": True,
            "train_rows": [int(i) for i in tr],
            "test_rows": [int(i) for i in te],
        },
    )

    cross = None if args.no_cross_splits else cross_split_means(X, y)

    # logistic regression
    pipe, w, b = train_logreg(Xtr, ytr)
    float_pred = pipe.predict(Xte)
    manual = ((Xte @ w + b) > 0).astype(int)
    assert np.array_equal(manual, float_pred), "folded scaler disagrees with sklearn"
    ql = Quantizer(Xtr, LR_INPUT_BITS)
    W, B, s = quantize_logreg(w, b, ql)
    qscore = logreg_scores(W, B, ql(Xte))
    qpred = (qscore > 0).astype(int)
    common = {"classes": CLASSES, "n_features": 30, "feature_names": FEATURE_NAMES}
    write(
        "breast_cancer_logreg.float.json",
        {
            "format": "veilgrid-float-model/v1",
            "name": "breast-cancer-logreg",
            "kind": "linear",
            **common,
            "linear": {"weights": [float(v) for v in w], "bias": float(b)},
            "decision": "class 1 iff weights . x + bias > 0 (x = raw features)",
            "metrics": {
                "test_accuracy": accuracy(float_pred, yte),
                "test_predictions": [int(v) for v in float_pred],
            },
            "provenance": provenance,
        },
    )
    write(
        "breast_cancer_logreg.quant.json",
        {
            "format": "veilgrid-quantized-model/v1",
            "name": "breast-cancer-logreg",
            "kind": "linear",
            **common,
            "quantizer": ql.to_json(),
            "weight_bits": LR_WEIGHT_BITS,
            "weight_scale": s,
            "linear": {"weights": [int(v) for v in W], "bias": int(B)},
            "decision": "score = weights . q + bias (integers); class 1 iff score > 0",
            "metrics": {
                "test_accuracy": accuracy(qpred, yte),
                "float_test_accuracy": accuracy(float_pred, yte),
                "agreement_with_float": accuracy(qpred, float_pred),
                "test_predictions": [int(v) for v in qpred],
                "test_scores": [int(v) for v in qscore],
                "cross_split_mean_accuracy": cross
                and {"float": cross["logreg_float"], "quant": cross["logreg_quant"]},
            },
            "provenance": provenance,
        },
    )

    # gradient-boosted trees
    gf = make_gbt().fit(Xtr, ytr)
    gf_pred = gf.predict(Xte)
    qg = Quantizer(Xtr, GBT_INPUT_BITS)
    g = make_gbt().fit(qg(Xtr), ytr)
    trees_q, bias_q, s = quantize_gbt(g, 30)
    gscore = tree_predict_int(trees_q, bias_q, qg(Xte))
    gpred = (gscore > 0).astype(int)
    # sanity: our tree walk reproduces sklearn on the unrounded model
    unrounded = (g.decision_function(qg(Xte).astype(np.float64)) > 0).astype(int)
    write(
        "breast_cancer_gbt.float.json",
        {
            "format": "veilgrid-float-model/v1",
            "name": "breast-cancer-gbt",
            "kind": "tree_ensemble",
            **common,
            "trees": float_trees_json(gf),
            "bias": gbt_init(gf, 30),
            "decision": "score = bias + sum of reached leaves (go right iff x[feature] > threshold);"
            " class 1 iff score > 0",
            "hyperparameters": {
                "n_estimators": GBT_TREES,
                "max_depth": GBT_DEPTH,
                "learning_rate": GBT_LEARNING_RATE,
            },
            "metrics": {
                "test_accuracy": accuracy(gf_pred, yte),
                "test_predictions": [int(v) for v in gf_pred],
            },
            "provenance": provenance,
        },
    )
    write(
        "breast_cancer_gbt.quant.json",
        {
            "format": "veilgrid-quantized-model/v1",
            "name": "breast-cancer-gbt",
            "kind": "tree_ensemble",
            **common,
            "quantizer": qg.to_json(),
            "leaf_scale": s,
            "score_bits": GBT_SCORE_BITS,
            "trees": trees_q,
            "bias": int(bias_q),
            "decision": "score = bias + sum of reached leaves (go right iff q[feature] > threshold);"
            " class 1 iff score > 0",
            "hyperparameters": {
                "n_estimators": GBT_TREES,
                "max_depth": GBT_DEPTH,
                "learning_rate": GBT_LEARNING_RATE,
                "trained_on": f"{GBT_INPUT_BITS}-bit quantized features",
            },
            "metrics": {
                "test_accuracy": accuracy(gpred, yte),
                "float_test_accuracy": accuracy(gf_pred, yte),
                "unrounded_leaves_test_accuracy": accuracy(unrounded, yte),
                "agreement_with_float": accuracy(gpred, gf_pred),
                "test_predictions": [int(v) for v in gpred],
                "test_scores": [int(v) for v in gscore],
                "cross_split_mean_accuracy": cross
                and {"float": cross["gbt_float"], "quant": cross["gbt_quant"]},
            },
            "provenance": provenance,
        },
    )
    print(
        f"logreg: float {accuracy(float_pred, yte):.4f} quant {accuracy(qpred, yte):.4f}; "
        f"gbt: float {accuracy(gf_pred, yte):.4f} quant {accuracy(gpred, yte):.4f} "
        f"(unrounded leaves {accuracy(unrounded, yte):.4f}); cross-split means {cross}"
    )


if __name__ == "__main__":
    main()
