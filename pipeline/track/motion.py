"""Constant-velocity Kalman filters in continuous time: a person's floor position, a box in the image.

The state of a point in ``k`` dimensions is ``(p_1..p_k, v_1..v_k)``; between
two frames ``dt`` seconds apart it moves as ``p += v dt`` while an unknown
acceleration (white noise of spectral density ``q``) blurs it:
``Q = q [[dt^3/3, dt^2/2], [dt^2/2, dt]]`` per axis. Time steps are real
seconds, so dropped frames and varying frame rates need no special case.
"""

from __future__ import annotations

import numpy as np


class ConstantVelocityKalman:
    """Kalman filter of a point moving at constant velocity, observed in position only.

    Args:
        position: Initial position, ``k`` values.
        position_var: Variance of the initial position (scalar or ``k``), e.g. the first measurement's.
        velocity_var: Variance of the initial velocity (scalar), e.g. walking speed squared.

    Attributes:
        x: State ``(position, velocity)``, ``2k`` values.
        P: State covariance, ``2k x 2k``.
    """

    def __init__(self, position: np.ndarray, position_var: float | np.ndarray, velocity_var: float) -> None:
        p = np.asarray(position, np.float64).ravel()
        self.k = k = p.size
        self.x = np.concatenate([p, np.zeros(k)])
        self.P = np.diag(np.concatenate([np.broadcast_to(np.asarray(position_var, np.float64), (k,)),
                                         np.full(k, float(velocity_var))]))

    @property
    def position(self) -> np.ndarray:
        """Current position estimate (``k`` values)."""
        return self.x[:self.k]

    @property
    def velocity(self) -> np.ndarray:
        """Current velocity estimate (``k`` values, units per second)."""
        return self.x[self.k:]

    @property
    def position_cov(self) -> np.ndarray:
        """Covariance of the position estimate (``k x k``)."""
        return self.P[:self.k, :self.k]

    def predict(self, dt: float, accel_density: float) -> None:
        """Moves the state ``dt`` seconds ahead.

        Args:
            dt: Elapsed time (s), >= 0; 0 leaves the state as it is.
            accel_density: Spectral density ``q`` of the white-noise acceleration (units^2 / s^3).
        """
        if dt <= 0:
            return
        k = self.k
        eye = np.eye(k)
        f = np.block([[eye, dt * eye], [np.zeros((k, k)), eye]])
        q = accel_density * np.block([[dt ** 3 / 3 * eye, dt ** 2 / 2 * eye], [dt ** 2 / 2 * eye, dt * eye]])
        self.x = f @ self.x
        self.P = f @ self.P @ f.T + q

    def update(self, z: np.ndarray, measurement_var: float | np.ndarray) -> None:
        """Corrects the state with a position measurement.

        Args:
            z: Measured position (``k`` values).
            measurement_var: Measurement variance, scalar or ``k`` (independent axes).
        """
        k = self.k
        r = np.diag(np.broadcast_to(np.asarray(measurement_var, np.float64), (k,)))
        s = self.P[:k, :k] + r
        gain = np.linalg.solve(s, self.P[:k, :]).T  # P H^T S^-1 (S symmetric)
        self.x = self.x + gain @ (np.asarray(z, np.float64) - self.x[:k])
        self.P = self.P - gain @ self.P[:k, :]
        self.P = 0.5 * (self.P + self.P.T)


def mahalanobis_2d(mean: np.ndarray, cov: np.ndarray, points: np.ndarray,
                   point_var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Squared Mahalanobis distances and log-determinants of 2-D innovations, for many points at once.

    Args:
        mean: Predicted position (2).
        cov: Its covariance (2 x 2).
        points: ``M x 2`` measured positions.
        point_var: ``M`` isotropic variances of the measurements.

    Returns:
        ``(d2, logdet)``: ``M`` values of ``r^T S^-1 r`` and ``ln det S`` with ``S = cov + point_var I``.
    """
    r = points - mean[None, :]
    a = cov[0, 0] + point_var
    b = np.full_like(a, cov[0, 1])
    c = cov[1, 1] + point_var
    det = a * c - b * b
    d2 = (c * r[:, 0] ** 2 - 2 * b * r[:, 0] * r[:, 1] + a * r[:, 1] ** 2) / det
    return d2, np.log(det)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``N x 4`` and ``M x 4`` xyxy boxes (``N x M``; 0 for empty boxes)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area = lambda x: np.clip(x[:, 2] - x[:, 0], 0, None) * np.clip(x[:, 3] - x[:, 1], 0, None)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


__all__ = ["ConstantVelocityKalman", "box_iou", "mahalanobis_2d"]
