"""Label-free estimates of target accuracy: how well will a model do on texts nobody labeled?

Every estimator reads the model's class probabilities on *labeled source validation* rows (held
out from training) and on the *unlabeled target* rows. First, by default, both sets are
**temperature-scaled** (Guo et al. 2017): one temperature ``T``, fitted on the source validation
rows by minimising their negative log-likelihood, divides the log-probabilities of both sets, as
the ATC authors do before every estimator (their reference code calibrates the source
validation probabilities with temperature scaling first). Then:

- **ATC**, average thresholded confidence (Garg et al., ICLR 2022, "Leveraging Unlabeled Data to
  Predict Out-of-Distribution Performance"): pick the threshold ``t`` on a confidence score so that
  the fraction of source-validation rows scoring above ``t`` equals the source-validation
  accuracy; the target estimate is the fraction of target rows scoring above ``t``. The score is
  the negative entropy ``sum_j p_j log p_j`` (``atc-ne``, the variant the paper found best and
  the default here) or the top-class probability (``atc-mc``). For two classes both scores order
  rows the same way, so the two variants agree; and as temperature scaling keeps that order,
  it leaves two-class ATC unchanged: ATC depends only on how the model *ranks* its rows.
- **DoC**, difference of confidences (Guillory et al., ICCV 2021, "Predicting with Confidence
  on Unseen Distributions"): source-validation accuracy minus the drop in mean top-class
  probability from source validation to target, clipped to [0, 1].
- **AC**, average confidence: the mean top-class probability on the target, which is the
  expected accuracy if the (temperature-scaled) model stays calibrated on the target.
- **COT**, confidence optimal transport (Lu et al., NeurIPS 2023, "Characterizing
  Out-of-Distribution Error via Optimal Transport"): the rows are matched to labels in the source's
  class proportions by optimal transport (:func:`transported_confidence`); the estimate is the mean
  probability of the class each row is matched to. It is AC when the model predicts the target's
  classes in the source's proportions, and lower when the predicted mix drifts: the rows it is least
  sure of are charged as if wrong. **COTT** (``cott``, the thresholded form of the same paper) counts
  the target rows whose matched probability is above the threshold that source validation
  accuracy sets, as ATC does.
- **average**: the mean of ATC-NE, DoC and AC. They fail in different ways (ATC on a shift of the
  whole confidence scale, DoC and AC on a shift of its mean), so the mean errs less than the
  worst of them; their ``spread`` (largest minus smallest) is the label-free warning that they
  disagree, and ``lower`` (the smallest) is the pessimistic estimate a recommendation can use.

**COT is the default** (``DEFAULT_METHOD``: the report's headline, the recommendation's rule,
:func:`textransfer.estimate_target_accuracy`). Every choice was made on development pairs that
leave the demo's movies -> products out. First, DoC against ATC: over 18 cross-domain rows of five
pairs (movies -> tweets / editorials, products -> movies / tweets / editorials; frozen MiniLM,
fine-tuned and self-trained mpnet; 2-3 seeds each; target labels read only to measure) the mean
absolute error was 0.040 for DoC, 0.090 for ATC-NE and 0.050 for assuming no shift (the
source-validation accuracy). ATC fails worst on fine-tuned transformers, which grow less
confident on a new domain without growing less accurate: fine-tuned mpnet, movies -> tweets, true
0.854, ATC-NE 0.202, DoC 0.728. Then COT against DoC, on 35 rows of the same five pairs that add
what a user compares (TF-IDF, GloVe and MiniLM frozen, CORAL on GloVe and MiniLM, self-trained
and fine-tuned MiniLM; seeds 0-2, seed means; ``bench/label_free_estimators.py``): COT 0.046, AC
0.049, DoC 0.053, COTT 0.073, ATC-NE 0.082, no shift 0.068. COT's lead over DoC there is not
significant (-0.007, 95% bootstrap CI over rows [-0.017, +0.002]); on the held-out demo pair (11
rows) it is: 0.049 against 0.073 (-0.024 [-0.039, -0.012]). COT gains on the bag-of-words rows,
whose predicted class mix drifts; it loses on fine-tuned MiniLM where the target's classes are
balanced unlike the source's (0.049 against DoC's 0.024 over those 5 development rows; products ->
editorials, 59% against 40% positive: COT -0.132, DoC -0.059), since it takes the source's class
mix for the target's.

What none of them can see: a model that is *confidently wrong* on the target (its confidences do
not fall where its accuracy falls, e.g. bag-of-words features on a new vocabulary). COT sees the
part of it that moves the predicted class mix away from the source's, and nothing else. The result
also carries ``prediction_shift``, the total-variation distance between the predicted-class
frequencies on the source validation rows and on the target: a large value says the model sees
the target very differently (or the target's classes are balanced differently) and the
estimates deserve less trust.

Tried on the same 35 development rows and not adopted, since a report holds several models
scored on the same target rows, and their *disagreements* there are label-free (for two classes
two models disagree exactly where one of them is wrong): estimating every model's target error at
once from the pairwise disagreements, with each pair's error correlation taken from source
validation (Platanios et al. 2014 style; MAE 0.058-0.070 over penalties toward COT of 1 to 0.01,
against COT's 0.045); a model's agreement with the highest-estimated model of another encoder,
read under independent errors (0.153: errors of different encoders are strongly correlated, hard
rows are hard for all); and the correlation-aware form of that against a reference estimated at
least 0.08 higher (0.048), which helps some bag-of-words rows (TF-IDF, movies -> tweets: +0.031
against COT's +0.148) and hurts others as much (products -> tweets: -0.136 against +0.004).
``bench/label_free_estimators.py`` records the arrays these need and
``bench/label_free_alternatives.py`` scores them (with label-shift correction and other
recommendation rules, also not adopted).

Everything here is plain numpy on arrays; it knows nothing of models or experiments
(:mod:`textransfer.estimation` runs a model to get the arrays).

Example:
    >>> import numpy as np
    >>> src = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.55, 0.45]] * 5)
    >>> y = np.array([0, 0, 0, 1] * 5)  # the least confident row of each four is wrong
    >>> tgt = np.array([[0.9, 0.1], [0.52, 0.48]] * 10)  # below the wrong rows half the time
    >>> round(estimate_accuracy(src, y, tgt, method="atc-ne"), 2)
    0.5
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

__all__ = [
    "CALIBRATIONS",
    "DEFAULT_METHOD",
    "METHODS",
    "MIN_ROWS",
    "Calibration",
    "Method",
    "atc_threshold",
    "confidence_scores",
    "estimate_accuracy",
    "fit_temperature",
    "label_free_estimates",
    "predicted_mix",
    "prediction_shift",
    "transported_confidence",
    "temperature_scale",
    "too_small",
]

Method = Literal["atc-ne", "atc-mc", "doc", "ac", "average", "cot", "cott"]
METHODS: tuple[str, ...] = ("atc-ne", "atc-mc", "doc", "ac", "average", "cot", "cott")
DEFAULT_METHOD: Method = "cot"  # chosen on development pairs (module docstring)
# The estimators whose mean is ``average`` (ATC-MC is left out: for two classes it is ATC-NE).
AVERAGED: tuple[str, ...] = ("atc-ne", "doc", "ac")
Calibration = Literal["temperature", "none"]
CALIBRATIONS: tuple[str, ...] = ("temperature", "none")
# Below this many rows an estimate is mostly noise (one row moves ATC by 5 points at 20 rows).
MIN_ROWS = 20


def _probs(name: str, probs: Any, k: int | None = None) -> np.ndarray:
    """``probs`` as a float64 ``(n, k)`` array of probability rows; a clear error otherwise."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(
            f"{name} must be an (n, k) array of class probabilities with k >= 2, got shape {p.shape}"
        )
    if k is not None and p.shape[1] != k:
        raise ValueError(
            f"{name} has {p.shape[1]} classes but the source validation probabilities have {k}"
        )
    if (
        not np.all(np.isfinite(p))
        or (p < -1e-6).any()
        or not np.allclose(p.sum(axis=1), 1.0, atol=1e-3)
    ):
        raise ValueError(
            f"{name} must hold finite probabilities >= 0 whose rows sum to 1 (pass softmax outputs)"
        )
    return np.clip(p, 0.0, 1.0)


def confidence_scores(probs: Any, score: Literal["ne", "mc"] = "ne") -> np.ndarray:
    """Per-row confidence: negative entropy ``sum_j p_j log p_j`` (``ne``, <= 0, 0 when certain)
    or the top-class probability (``mc``).

    Args:
        probs: ``(n, k)`` class probabilities.
        score: ``"ne"`` or ``"mc"``.

    Returns:
        float64 ``(n,)``; larger means more confident for both scores.
    """
    p = np.asarray(probs, dtype=np.float64)
    if score == "mc":
        return p.max(axis=1)
    if score == "ne":
        logs = np.log(np.where(p > 0, p, 1.0))  # 0 log 0 = 0
        return (p * logs).sum(axis=1)
    raise ValueError(f"unknown confidence score {score!r}: use 'ne' or 'mc'")


def atc_threshold(source_scores: Any, source_correct: Any) -> float:
    """The ATC threshold: ``mean(source_scores > t)`` as close as possible to the source accuracy.

    Any ``t`` between two neighbouring distinct scores gives the same source fraction; the lower
    one is returned (as in the authors' code). When every row is correct, ``t`` lies just below
    the smallest score.

    Args:
        source_scores: ``(n,)`` confidence scores of the source validation rows.
        source_correct: ``(n,)`` bools: was the prediction right?
    Returns:
        The threshold ``t``.
    """
    s = np.asarray(source_scores, dtype=np.float64)
    acc = float(np.mean(np.asarray(source_correct, dtype=bool)))
    uniq = np.unique(s)  # ascending
    # Fraction strictly above each candidate: rows minus those <= it.
    above = 1.0 - np.searchsorted(np.sort(s), uniq, side="right") / len(s)
    candidates = np.concatenate([[np.nextafter(uniq[0], -np.inf)], uniq])
    fractions = np.concatenate([[1.0], above])
    return float(candidates[int(np.argmin(np.abs(fractions - acc)))])


def _log_probs(probs: np.ndarray) -> np.ndarray:
    # log p is the logits up to a per-row constant, which softmax ignores; floored so that a
    # probability of exactly 0 stays finite (and, after scaling, tiny).
    return np.log(np.clip(probs, 1e-12, 1.0))


def temperature_scale(probs: Any, temperature: float) -> np.ndarray:
    """``softmax(log(probs) / temperature)``: the same predictions, confidences sharpened
    (``temperature`` < 1) or softened (> 1).

    Args:
        probs: ``(n, k)`` class probabilities.
        temperature: > 0.

    Returns:
        float64 ``(n, k)`` probabilities with the same argmax as ``probs``.
    """
    if not temperature > 0 or not np.isfinite(temperature):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature}")
    z = _log_probs(np.asarray(probs, dtype=np.float64)) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(probs: Any, labels: Any, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The temperature that minimises the negative log-likelihood of ``labels`` under
    :func:`temperature_scale` (Guo et al. 2017, "On Calibration of Modern Neural Networks").

    The NLL is convex in ``1 / T``, so its derivative is bisected (on a log scale) to the
    minimum, clamped to ``bounds``.

    Args:
        probs: ``(n, k)`` class probabilities of labeled rows the model was not trained on.
        labels: ``(n,)`` int class ids of those rows.
        bounds: the smallest and largest temperature returned.

    Returns:
        The temperature ``T`` (> 1: the model was overconfident; < 1: underconfident).
    """
    z = _log_probs(np.asarray(probs, dtype=np.float64))
    y = np.asarray(labels)
    z_true = z[np.arange(len(y)), y]

    def slope(beta: float) -> float:  # d NLL / d beta at beta = 1 / T; increasing in beta
        s = beta * z
        s -= s.max(axis=1, keepdims=True)
        q = np.exp(s)
        q /= q.sum(axis=1, keepdims=True)
        return float(np.mean((q * z).sum(axis=1) - z_true))

    lo, hi = 1.0 / bounds[1], 1.0 / bounds[0]
    if slope(lo) >= 0:
        return bounds[1]
    if slope(hi) <= 0:
        return bounds[0]
    for _ in range(60):  # the bracket shrinks by ~sqrt each step: far below float noise at 60
        mid = float(np.sqrt(lo * hi))
        lo, hi = (lo, mid) if slope(mid) > 0 else (mid, hi)
    return float(1.0 / np.sqrt(lo * hi))


def predicted_mix(probs: Any) -> np.ndarray:
    """``(k,)`` share of the rows of ``(n, k)`` ``probs`` predicted as each class."""
    p = np.asarray(probs)
    return np.bincount(p.argmax(axis=1), minlength=p.shape[1]) / max(len(p), 1)


def prediction_shift(source_val_probs: Any, target_probs: Any) -> float:
    """Total-variation distance between the predicted-class frequencies on the source
    validation rows and on the target rows (0: the same mix of predictions; 1: disjoint).

    A label-free warning, not an estimate: a model that suddenly predicts one class far more
    often on the target either meets a target whose classes are balanced differently or sees it
    very differently, and confidence-based estimates cannot tell which.
    """
    return float(0.5 * np.abs(predicted_mix(source_val_probs) - predicted_mix(target_probs)).sum())


def transported_confidence(probs: Any, mix: Any) -> np.ndarray:
    """Each row's confidence in the class optimal transport assigns it when the rows must carry
    the class mix ``mix`` (Lu et al., NeurIPS 2023, "Characterizing Out-of-Distribution Error via
    Optimal Transport").

    The rows are matched to one-hot labels drawn in the proportions ``mix`` so that the total
    cost ``1/2 ||p_i - e_c||_1 = 1 - p_ic`` is smallest: each row keeps its predicted class
    unless the predicted mix differs from ``mix``, and then the rows the model is least sure of
    move to the classes it predicts too rarely. Two classes are solved exactly by a sort; more
    by entropy-regularised transport, within 0.001 times log(classes) of the exact value
    (:func:`_entropic_transport`). A row on the boundary may be split between classes, and its
    score is then the mix of their probabilities.

    Args:
        probs: ``(n, k)`` class probabilities.
        mix: ``(k,)`` class proportions the rows must carry (non-negative; normalised here).

    Returns:
        float64 ``(n,)``: ``sum_c plan_ic p_ic`` with each row's plan summing to 1. Its mean is
        COT's accuracy estimate; it equals the top-class probability when the predicted mix is
        ``mix``.
    """
    p = np.asarray(probs, dtype=np.float64)
    w = np.asarray(mix, dtype=np.float64)
    if w.shape != (p.shape[1],) or (w < 0).any() or not w.sum() > 0:
        raise ValueError(f"mix must be {p.shape[1]} non-negative class proportions, got {w!r}")
    n, k = p.shape
    share_of = w / w.sum()
    if k == 2:
        # Rows ordered by how much more they favour class 1; the first share_of[1] * n of them (a
        # fractional count) go there: 1 for whole rows, a fraction for the row at the edge.
        order = np.argsort(p[:, 0] - p[:, 1], kind="stable")
        to_one = np.clip(share_of[1] * n - np.arange(n), 0.0, 1.0)
        share = np.empty(n)
        share[order] = to_one
        return share * p[:, 1] + (1.0 - share) * p[:, 0]
    return _entropic_transport(p, share_of)


def _entropic_transport(p: np.ndarray, mix: np.ndarray, eps_final: float = 1e-3, tol: float = 1e-4,
                        max_iter: int = 300) -> np.ndarray:
    """:func:`transported_confidence` for more than two classes: entropy-regularised optimal
    transport (Cuturi 2013) solved in the log domain by Sinkhorn iterations, with the
    regularisation ``eps`` halved from 1 down to ``eps_final`` (each stage warm-starts the next).
    Each row's plan is a softmax of ``(p_ic + g_c) / eps`` over the classes, ``g`` the class
    potentials, so a row is split between classes only within about ``eps`` of a tie; the mean
    transported confidence is within ``eps_final * log k`` of the exact transport's (measured:
    the same to 1e-6 on 5,000 rows and 5 classes). 50,000 rows and 10 classes take about 30 s on
    2 cores; an exact linear program (scipy's HiGHS) took 63 s for 5,000 rows and 5 classes."""
    from scipy.special import logsumexp

    keep = mix > 0  # a class nobody may take gets nothing
    pk, log_b = p[:, keep], np.log(mix[keep])
    g = np.zeros(pk.shape[1])
    eps = 1.0
    while True:
        for _ in range(max_iter):
            z = (pk + g) / eps
            z -= logsumexp(z, axis=1, keepdims=True)  # each row's plan sums to 1
            log_cols = logsumexp(z, axis=0) - np.log(len(pk))  # the classes' shares
            g += eps * (log_b - log_cols)
            if np.abs(np.exp(log_cols) - mix[keep]).sum() < tol:
                break
        if eps <= eps_final:
            break
        eps = max(eps / 2, eps_final)
    z = (pk + g) / eps
    plan = np.exp(z - logsumexp(z, axis=1, keepdims=True))
    return (plan * pk).sum(axis=1)


def too_small(n_source_val: int, n_target: int, min_rows: int = MIN_ROWS) -> str | None:
    """Why an estimate cannot be trusted with these sizes (None when both are large enough)."""
    sides = (
        ("the source validation set", n_source_val,
         "more source validation rows (source_val_size of a crossdomain config, the --source-val file of evaluate)"),
        ("the target", n_target, "more target texts"),
    )
    small = [(f"{what} has {n} rows", fix) for what, n, fix in sides if n < min_rows]
    if not small:
        return None
    return (
        f"{' and '.join(s for s, _ in small)}, fewer than the {min_rows} a label-free estimate needs. "
        f"Fix: {' and '.join(f for _, f in small)}"
    )


def _estimate(
    source_val_probs: np.ndarray, correct: np.ndarray, target_probs: np.ndarray, method: str,
    mix: np.ndarray, transported: dict[str, np.ndarray] | None = None,
) -> tuple[float, dict[str, Any]]:
    """One method's estimate and what it was computed from. ``mix``: the source validation class
    mix (COT's); ``transported``: where COT and COTT share the target's transported confidences,
    so that estimating both transports the target once."""
    if method in ("atc-ne", "atc-mc"):
        kind: Literal["ne", "mc"] = "ne" if method == "atc-ne" else "mc"
        t = atc_threshold(confidence_scores(source_val_probs, kind), correct)
        est = float(np.mean(confidence_scores(target_probs, kind) > t))
        return est, {"threshold": t}
    if method == "doc":
        src_conf, tgt_conf = source_val_probs.max(axis=1).mean(), target_probs.max(axis=1).mean()
        est = float(np.clip(correct.mean() - (src_conf - tgt_conf), 0.0, 1.0))
        return est, {"source_confidence": float(src_conf), "target_confidence": float(tgt_conf)}
    if method == "ac":
        tgt_conf = float(target_probs.max(axis=1).mean())
        return tgt_conf, {"target_confidence": tgt_conf}
    if method in ("cot", "cott"):
        cache = {} if transported is None else transported
        if "target" not in cache:
            cache["target"] = transported_confidence(target_probs, mix)
        tgt_score = cache["target"]
        if method == "cot":
            return float(tgt_score.mean()), {"mix": [float(v) for v in mix]}
        t = atc_threshold(transported_confidence(source_val_probs, mix), correct)
        return float(np.mean(tgt_score > t)), {"threshold": t, "mix": [float(v) for v in mix]}
    if method == "average":
        parts = {m: _estimate(source_val_probs, correct, target_probs, m, mix)[0] for m in AVERAGED}
        values = list(parts.values())
        return float(np.mean(values)), {
            "of": list(parts),
            "spread": float(max(values) - min(values)),
            "lower": float(min(values)),
        }
    raise ValueError(f"unknown label-free method {method!r}: use one of {', '.join(METHODS)}")


def _inputs(
    source_val_probs: Any, source_val_labels: Any, target_probs: Any, min_rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    src = _probs("source_val_probs", source_val_probs)
    tgt = _probs("target_probs", target_probs, src.shape[1])
    y = np.asarray(source_val_labels)
    if y.shape != (len(src),) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            f"source_val_labels must be ({len(src)},) int class ids (columns of source_val_probs), got "
            f"shape {y.shape} dtype {y.dtype}"
        )
    if len(y) and (y.min() < 0 or y.max() >= src.shape[1]):
        raise ValueError(
            f"source_val_labels must be class ids in [0, {src.shape[1]}), got {y.min()}..{y.max()}"
        )
    reason = too_small(len(src), len(tgt), min_rows)
    if reason is not None:
        raise ValueError(reason)
    return src, y, tgt


def _mix(labels: np.ndarray, k: int) -> np.ndarray:
    """The class proportions of the source validation labels (COT's expected label mix)."""
    return np.bincount(labels, minlength=k) / max(len(labels), 1)


def _calibrated(
    src: np.ndarray, y: np.ndarray, tgt: np.ndarray, calibration: str
) -> tuple[np.ndarray, np.ndarray, float]:
    """Both sets temperature-scaled with the temperature fitted on the source validation rows."""
    if calibration == "none":
        return src, tgt, 1.0
    if calibration != "temperature":
        raise ValueError(
            f"unknown calibration {calibration!r}: use one of {', '.join(CALIBRATIONS)}"
        )
    t = fit_temperature(src, y)
    return temperature_scale(src, t), temperature_scale(tgt, t), t


def estimate_accuracy(
    source_val_probs: Any,
    source_val_labels: Any,
    target_probs: Any,
    method: Method = DEFAULT_METHOD,
    min_rows: int = MIN_ROWS,
    calibration: Calibration = "temperature",
) -> float:
    """Estimated accuracy on the target rows, from probabilities alone (no target labels).

    Args:
        source_val_probs: ``(n_s, k)`` class probabilities on labeled source validation rows
            the model was not trained on.
        source_val_labels: ``(n_s,)`` int class ids of those rows.
        target_probs: ``(n_t, k)`` class probabilities on the unlabeled target rows.
        method: ``"cot"`` (default), ``"cott"``, ``"doc"``, ``"atc-ne"``, ``"atc-mc"``, ``"ac"``
            or ``"average"`` (module docstring).
        min_rows: fewer source validation or target rows than this is an error.
        calibration: ``"temperature"`` (default): temperature-scale both sets first, with the
            temperature fitted on the source validation rows; ``"none"``: use them as given.

    Returns:
        The estimated target accuracy in [0, 1].

    Raises:
        ValueError: malformed arrays, an unknown method or calibration, or too few rows.

    Example:
        >>> p = np.array([[0.9, 0.1], [0.2, 0.8]] * 10)
        >>> round(estimate_accuracy(p, np.array([0, 1] * 10), p), 6)  # same confidences: source accuracy
        1.0
    """
    if method not in METHODS:
        raise ValueError(f"unknown label-free method {method!r}: use one of {', '.join(METHODS)}")
    src, y, tgt = _inputs(source_val_probs, source_val_labels, target_probs, min_rows)
    src_c, tgt_c, _ = _calibrated(src, y, tgt, calibration)
    return _estimate(src_c, src.argmax(axis=1) == y, tgt_c, method, _mix(y, src.shape[1]))[0]


def label_free_estimates(
    source_val_probs: Any,
    source_val_labels: Any,
    target_probs: Any,
    min_rows: int = MIN_ROWS,
    calibration: Calibration = "temperature",
) -> dict[str, Any]:
    """Every estimator at once, with what it was computed from.

    Args:
        source_val_probs: as :func:`estimate_accuracy`.
        source_val_labels: as :func:`estimate_accuracy`.
        target_probs: as :func:`estimate_accuracy`.
        min_rows: fewer rows on either side gives ``{"missing": reason}``.
        calibration: as :func:`estimate_accuracy`.

    Returns:
        ``{"estimates": {method: accuracy}, "source_val_accuracy", "n_source_val", "n_target",
        "calibration", "temperature", "prediction_shift", "atc-ne": {"threshold"},
        "atc-mc": {"threshold"}, "doc": {"source_confidence", "target_confidence"},
        "ac": {"target_confidence"}, "cot": {"mix"}, "cott": {"threshold", "mix"},
        "average": {"of", "spread", "lower"}}`` (confidences and thresholds after calibration),
        or ``{"missing": reason, "n_source_val", "n_target"}`` when a side has fewer than
        ``min_rows`` rows (never a NaN).
    """
    n_src, n_tgt = len(np.asarray(source_val_probs)), len(np.asarray(target_probs))
    reason = too_small(n_src, n_tgt, min_rows)
    if reason is not None:
        return {"missing": reason, "n_source_val": n_src, "n_target": n_tgt}
    src, y, tgt = _inputs(source_val_probs, source_val_labels, target_probs, min_rows)
    correct = src.argmax(axis=1) == y
    src_c, tgt_c, temperature = _calibrated(src, y, tgt, calibration)
    out: dict[str, Any] = {
        "estimates": {},
        "source_val_accuracy": float(correct.mean()),
        "n_source_val": n_src,
        "n_target": n_tgt,
        "calibration": calibration,
        "temperature": temperature,
        "prediction_shift": prediction_shift(src, tgt),
    }
    mix = _mix(y, src.shape[1])
    transported: dict[str, np.ndarray] = {}  # COT's and COTT's target transport, computed once
    for method in METHODS:
        out["estimates"][method], out[method] = _estimate(src_c, correct, tgt_c, method, mix, transported)
    return out
