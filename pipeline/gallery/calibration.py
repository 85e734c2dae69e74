"""Calibrated evidence: each cue's distance turned into a log-likelihood ratio, and their fusion.

A *cue* compares one feature of a track with the same (or another) feature of a stored visit:
an embedding pair such as ``rgbd/depth~rgbd/depth`` (query modality and gallery modality of one
model's space), the colour statistics ``colour~colour``, or a body measure ``height`` / ``width``.
Each cue, under each light condition where that matters (``lit-lit``, ``lit-dark``, ``dark-dark``),
has a :class:`CueModel` mapping its distance to

    LLR = log p(distance | same person) - log p(distance | different people),

the log-likelihood ratio form of Brümmer & du Preez (2006, "Application-independent evaluation of
speaker detection"): a positive LLR is evidence for "same", independent of how often "same" occurs.

* ``logistic`` (embeddings, colour): ``LLR(d) = a + b * d`` from a logistic regression of same /
  different on ``d`` with the two classes weighted equally (Platt scaling with a flat prior, so the
  fitted log-odds *is* the LLR), clipped to ``[-clip, clip]``.
* ``gauss`` (height, width; difference ``delta`` of two measures with summed variance ``v = va + vb``):
  ``LLR = log[(1 - e) N(delta; 0, s_same^2 + v) + e N(delta; 0, s_diff^2 + v)] - log N(delta; 0, s_diff^2 + v)``
  with ``s_diff`` fitted by maximum likelihood on different-person pairs, then ``s_same`` and the outlier
  share ``e`` on same-person pairs. The outlier term keeps a rare wrong measure of the same person (two
  people merged in one box, a head hidden) from counting as strong evidence against them, while a
  precise match still counts strongly for. The measurement uncertainty enters directly, so a far or
  half-hidden person's height says little.

Fusion sums the cues present: ``fused = sum_c w_c * LLR_c`` (a linear logistic fusion in the spirit
of the FoCal toolkit, with non-negative weights fitted on the same calibration pairs so that
correlated cues such as two colour networks are not counted twice). A cue whose AUC on its
calibration pairs is below ``min_auc`` gets weight 0: a pair the model cannot separate adds nothing.
The open-set decision is ``fused > threshold``, the threshold set for a stated false-merge rate
(see ``reid-export calibrate``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

LIGHTS = ("lit-lit", "lit-dark", "dark-dark")
ANY_LIGHT = "any"


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Area under the ROC curve: the probability that a positive scores above a negative (ties count 1/2)."""
    from scipy.stats import rankdata

    p, n = np.asarray(positive, np.float64).ravel(), np.asarray(negative, np.float64).ravel()
    if not len(p) or not len(n):
        return float("nan")
    ranks = rankdata(np.concatenate([p, n]))
    return float((ranks[: len(p)].sum() - len(p) * (len(p) + 1) / 2) / (len(p) * len(n)))


@dataclass
class CueModel:
    """Distance -> LLR of one cue under one light condition.

    Attributes:
        kind: ``"logistic"`` (params ``a, b``) or ``"gauss"`` (params ``s_same, s_diff`` in metres and the
            outlier share ``e``).
        params: The two parameters.
        auc: Separability on the calibration pairs (0.5 = chance).
        n_same: Same-person calibration pairs.
        n_diff: Different-person calibration pairs.
        weight: Fusion weight (0: the cue adds nothing).
        clip: LLRs are clipped to ``[-clip, clip]``.
    """

    kind: str
    params: tuple[float, ...]
    auc: float
    n_same: int
    n_diff: int
    weight: float = 1.0
    clip: float = 6.0

    def __post_init__(self) -> None:
        if self.kind not in ("logistic", "gauss"):
            raise ValueError(f"CueModel.kind: expected 'logistic' or 'gauss', got {self.kind!r}")
        self.params = tuple(float(v) for v in self.params)
        if self.kind == "gauss" and len(self.params) == 2:
            self.params = (*self.params, 0.0)
        n = 2 if self.kind == "logistic" else 3
        if len(self.params) != n or not all(math.isfinite(v) for v in self.params):
            raise ValueError(f"CueModel.params: expected {n} finite numbers for a {self.kind} cue, got {self.params!r}")
        if self.kind == "gauss" and not (0 < self.params[0] < self.params[1] and 0 <= self.params[2] < 1):
            raise ValueError(f"CueModel.params: a gauss cue needs 0 < s_same < s_diff and 0 <= e < 1, got "
                             f"{self.params!r}")
        if not (self.weight >= 0 and math.isfinite(self.weight)):
            raise ValueError(f"CueModel.weight: expected a finite number >= 0, got {self.weight!r}")

    def llr(self, x: np.ndarray, var: np.ndarray | float = 0.0) -> np.ndarray:
        """LLR of distances (``logistic``) or of differences with summed measurement variance ``var`` (``gauss``)."""
        x = np.asarray(x, np.float64)
        if self.kind == "logistic":
            out = self.params[0] + self.params[1] * x
        else:
            s_same, s_diff, e = self.params
            vs, vd = s_same ** 2 + var, s_diff ** 2 + var
            core = 0.5 * (np.log(vd / vs) - x * x * (1.0 / vs - 1.0 / vd))  # log N_same - log N_diff
            out = np.logaddexp(np.log1p(-e) + core, np.log(e)) if e > 0 else core
        return np.clip(out, -self.clip, self.clip)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "params": list(self.params), "auc": round(self.auc, 4), "n_same": self.n_same,
                "n_diff": self.n_diff, "weight": round(self.weight, 4), "clip": self.clip}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str) -> "CueModel":
        keys = {"kind", "params", "auc", "n_same", "n_diff", "weight", "clip"}
        unknown = set(d) - keys
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; expected {sorted(keys)}")
        try:
            return cls(d["kind"], tuple(d["params"]), float(d["auc"]), int(d["n_same"]), int(d["n_diff"]),
                       float(d.get("weight", 1.0)), float(d.get("clip", 6.0)))
        except KeyError as e:
            raise ValueError(f"{where}: missing key {e}") from None
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: {e}") from None


def fit_logistic(d_same: np.ndarray, d_diff: np.ndarray, clip: float = 6.0, l2: float = 1e-6) -> CueModel:
    """Logistic calibration of a distance cue (classes weighted equally; see the module docstring)."""
    from scipy.optimize import minimize

    s, n = np.asarray(d_same, np.float64).ravel(), np.asarray(d_diff, np.float64).ravel()
    if len(s) < 2 or len(n) < 2:
        raise ValueError(f"calibration needs at least 2 same-person and 2 different-person pairs, got {len(s)} "
                         f"and {len(n)}")
    x = np.concatenate([s, n])
    y = np.concatenate([np.ones(len(s)), np.zeros(len(n))])
    w = np.concatenate([np.full(len(s), 0.5 / len(s)), np.full(len(n), 0.5 / len(n))])
    mu, sd = float(x.mean()), float(x.std()) or 1.0
    z = (x - mu) / sd

    def loss(p):
        t = p[0] + p[1] * z
        ll = np.logaddexp(0.0, -t) * y + np.logaddexp(0.0, t) * (1 - y)
        grad_t = w * (1.0 / (1.0 + np.exp(-t)) - y)
        return float((w * ll).sum() + l2 * p[1] ** 2), np.array([grad_t.sum(), (grad_t * z).sum() + 2 * l2 * p[1]])

    p = minimize(loss, np.zeros(2), jac=True, method="L-BFGS-B").x
    a, b = p[0] - p[1] * mu / sd, p[1] / sd
    return CueModel("logistic", (a, b), auc(-s, -n), len(s), len(n), 1.0, clip)


def fit_gauss(delta_same: np.ndarray, var_same: np.ndarray, delta_diff: np.ndarray, var_diff: np.ndarray,
              clip: float = 6.0) -> CueModel:
    """Gaussian calibration of a metric measure's difference with an outlier share (see the module docstring),
    by maximum likelihood."""
    from scipy.optimize import minimize, minimize_scalar

    ds, vs = np.asarray(delta_same, np.float64), np.asarray(var_same, np.float64)
    dd, vd = np.asarray(delta_diff, np.float64), np.asarray(var_diff, np.float64)
    if len(ds) < 2 or len(dd) < 2:
        raise ValueError(f"calibration of a body measure needs at least 2 pairs per class, got {len(ds)} and {len(dd)}")

    def log_normal(delta, v):
        return -0.5 * (np.log(2 * np.pi * v) + delta * delta / v)

    s_diff = math.exp(minimize_scalar(lambda ls: -float(log_normal(dd, math.exp(2 * ls) + vd).sum()),
                                      bounds=(math.log(1e-3), math.log(2.0)), method="bounded").x)

    def nll(p):
        s, e = math.exp(p[0]), 1.0 / (1.0 + math.exp(-p[1]))
        mix = np.logaddexp(np.log1p(-e) + log_normal(ds, s * s + vs), np.log(e) + log_normal(ds, s_diff ** 2 + vs))
        return -float(mix.sum())

    p = minimize(nll, np.array([math.log(0.3 * s_diff), -3.0]), method="Nelder-Mead").x
    s_same = min(math.exp(p[0]), 0.99 * s_diff)
    e = float(np.clip(1.0 / (1.0 + math.exp(-p[1])), 1e-3, 0.5))
    a = auc(-np.abs(ds), -np.abs(dd))
    return CueModel("gauss", (s_same, s_diff, e), a, len(ds), len(dd), 1.0, clip)


def fit_weights(llrs: np.ndarray, same: np.ndarray, l2: float = 0.05) -> np.ndarray:
    """Non-negative fusion weights: logistic regression of same / different on the cues' LLRs (0 = absent).

    The classes are weighted equally and the weights are shrunk towards 1 (the sum of independent
    LLRs), so a cue seen in few pairs keeps its plain LLR instead of a noisy weight.
    """
    from scipy.optimize import minimize

    x, y = np.asarray(llrs, np.float64), np.asarray(same, np.float64)
    k = x.shape[1]
    n_pos, n_neg = max(y.sum(), 1.0), max((1 - y).sum(), 1.0)
    w = np.where(y > 0, 0.5 / n_pos, 0.5 / n_neg)

    def loss(p):
        t = x @ p
        ll = np.logaddexp(0.0, -t) * y + np.logaddexp(0.0, t) * (1 - y)
        g = w * (1.0 / (1.0 + np.exp(-t)) - y)
        return float((w * ll).sum() + l2 * ((p - 1.0) ** 2).sum()), x.T @ g + 2 * l2 * (p - 1.0)

    return minimize(loss, np.ones(k), jac=True, method="L-BFGS-B", bounds=[(0.0, 4.0)] * k).x


@dataclass
class Calibration:
    """Every cue's model, and the open-set threshold on the fused evidence.

    Attributes:
        cues: ``"<cue>|<light>"`` -> model, light one of :data:`LIGHTS` or ``"any"``.
        threshold: A track joins its best identity when the fused LLR exceeds this.
        dark_threshold: The same for tracks seen mostly in the dark (None: ``threshold``): with fewer cues
            the evidence, strangers' included, is smaller, so the same false-merge rate sits lower.
        false_merge_rate: The rate of strangers joining a known identity that ``threshold`` was set for.
        min_auc: Cues below this AUC were given weight 0.
        source: How the calibration was made (command, data, seeds).
        figures: Measured figures of the calibration (reported, not used).
    """

    cues: dict[str, CueModel] = field(default_factory=dict)
    threshold: float = 2.0
    dark_threshold: float | None = None
    false_merge_rate: float = 0.05
    min_auc: float = 0.6
    source: str = ""
    figures: dict[str, Any] = field(default_factory=dict)

    def model(self, cue: str, light: str) -> CueModel | None:
        """The model of ``cue`` under ``light`` (or its light-independent model); None if it has none or weight 0."""
        m = self.cues.get(f"{cue}|{light}") or self.cues.get(f"{cue}|{ANY_LIGHT}")
        return m if m is not None and m.weight > 0 else None

    def threshold_for(self, lit: bool) -> float:
        """The open-set threshold of a track seen mostly lit, or mostly dark."""
        return self.threshold if lit or self.dark_threshold is None else self.dark_threshold

    def cue_names(self) -> set[str]:
        return {key.split("|")[0] for key in self.cues}

    def to_dict(self) -> dict:
        return {"cues": {k: m.to_dict() for k, m in sorted(self.cues.items())}, "threshold": self.threshold,
                "dark_threshold": self.dark_threshold, "false_merge_rate": self.false_merge_rate, "min_auc": self.min_auc, "source": self.source,
                "figures": self.figures}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "calibration") -> "Calibration":
        """Parses :meth:`to_dict` output; unknown keys and bad values raise ValueError naming the key."""
        keys = {"cues", "threshold", "dark_threshold", "false_merge_rate", "min_auc", "source", "figures"}
        if not isinstance(d, Mapping):
            raise ValueError(f"{where}: expected a mapping, got {type(d).__name__}")
        unknown = set(d) - keys
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; expected {sorted(keys)}")
        cues = {}
        for key, m in dict(d.get("cues", {})).items():
            light = key.split("|")[-1]
            if "|" not in key or light not in (*LIGHTS, ANY_LIGHT):
                raise ValueError(f"{where}.cues: key {key!r} is not '<cue>|<light>' with light in "
                                 f"{(*LIGHTS, ANY_LIGHT)}")
            cues[key] = CueModel.from_dict(m, f"{where}.cues[{key!r}]")
        threshold, dark = d.get("threshold", 2.0), d.get("dark_threshold")
        for key, value in (("threshold", threshold), ("dark_threshold", dark)):
            if value is not None and (not isinstance(value, (int, float)) or not math.isfinite(value)):
                raise ValueError(f"{where}.{key}: expected a finite number, got {value!r}")
        return cls(cues, float(threshold), None if dark is None else float(dark), float(d.get("false_merge_rate", 0.05)),
                   float(d.get("min_auc", 0.6)), str(d.get("source", "")), dict(d.get("figures", {})))


__all__ = ["ANY_LIGHT", "Calibration", "CueModel", "LIGHTS", "auc", "fit_gauss", "fit_logistic", "fit_weights"]
