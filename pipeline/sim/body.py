"""Articulated body of a synthetic person as a set of ellipsoids, posed along a gait cycle.

World frame: metres, ``y`` up, floor at ``y = 0``; a person stands at ``(x, z)``
facing ``heading`` (radians, 0 = +z, away from a camera looking along +z).
Each body part is an ellipsoid with a centre, a rotation (columns = local
right, up, forward axes in the world) and three semi-axes, plus the surface
it is made of. Proportions follow standard anthropometric ratios of height.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from reidstream.pipeline.sim.population import Garment, Person


@dataclass(frozen=True)
class Surface:
    """How a part looks in every modality.

    Attributes:
        kind: ``"skin"``, ``"head"`` (face + hair), ``"cloth"``.
        colour: Linear RGB albedo.
        colour2: Pattern colour.
        pattern: ``solid``/``hstripes``/``vstripes``/``checks``.
        period: Pattern period (m).
        ir: Near-IR reflectance.
        ir2: Near-IR reflectance of the pattern's second dye (``None``: same as ``ir``).
        transmission: Share of the skin-air temperature difference on the surface (1 = skin).
        hair: Hair colour, for ``kind == "head"``.
        hair_ir: Hair NIR reflectance, for ``kind == "head"``.
        long_hair: Hair covers the back of the head down to the neck.
        body_temp: Skin temperature of the wearer (deg C).
    """

    kind: str
    colour: tuple[float, float, float]
    colour2: tuple[float, float, float] = (0.0, 0.0, 0.0)
    pattern: str = "solid"
    period: float = 0.1
    ir: float = 0.5
    ir2: float | None = None
    transmission: float = 1.0
    hair: tuple[float, float, float] = (0.0, 0.0, 0.0)
    hair_ir: float = 0.3
    long_hair: bool = False
    body_temp: float = 34.0


@dataclass(frozen=True, eq=False)
class Part:
    """One ellipsoid of a posed body (world frame), named (``chest``, ``head``, ``l_thigh`` ...)."""

    name: str
    center: np.ndarray
    rotation: np.ndarray
    axes: np.ndarray
    surface: Surface


def _cloth(g: Garment, body_temp: float) -> Surface:
    return Surface("cloth", g.colour, g.colour2, g.pattern, g.period, g.ir_reflectance, g.ir_reflectance2,
                   g.transmission, body_temp=body_temp)


def _limb(name: str, a: np.ndarray, b: np.ndarray, radius: float, side: np.ndarray, surface: Surface) -> Part:
    """An ellipsoid spanning joints ``a`` -> ``b`` with a round cross-section."""
    axis = b - a
    length = float(np.linalg.norm(axis))
    up = axis / max(length, 1e-6)
    right = side - up * float(side @ up)
    right /= max(float(np.linalg.norm(right)), 1e-6)
    fwd = np.cross(right, up)
    rot = np.stack([right, up, fwd], axis=1)
    return Part(name, (a + b) / 2, rot, np.array([radius, length / 2 + radius * 0.6, radius]), surface)


def _blob(name: str, center: np.ndarray, rot: np.ndarray, axes: tuple[float, float, float],
          surface: Surface) -> Part:
    return Part(name, np.asarray(center, np.float64), rot, np.asarray(axes, np.float64), surface)


def pose_body(person: Person, x: float, z: float, heading: float, phase: float,
              stride: float = 1.0) -> list[Part]:
    """Poses ``person`` standing at ``(x, z)`` at gait ``phase`` (cycles, any real).

    Args:
        person: Who.
        x: World x of the feet (m).
        z: World z of the feet (m).
        heading: Walking direction in radians (0 = +z).
        phase: Gait phase in cycles; one cycle = two steps.
        stride: Swing amplitude scale, 0 = standing still, 1 = normal walk.

    Returns:
        The body parts as world-frame ellipsoids.
    """
    h, b = person.height, person.build
    up = np.array([0.0, 1.0, 0.0])
    fwd = np.array([math.sin(heading), 0.0, math.cos(heading)])
    right = np.array([math.cos(heading), 0.0, -math.sin(heading)])
    body_rot = np.stack([right, up, fwd], axis=1)
    base = np.array([x, 0.0, z])
    s = 2 * math.pi * phase
    bob = 0.015 * stride * math.cos(2 * s)

    bt = person.skin_temp
    skin = Surface("skin", person.skin, ir=person.skin_ir, body_temp=bt)
    top, bottom, shoes = _cloth(person.top, bt), _cloth(person.bottom, bt), _cloth(person.shoes, bt)
    leg_len = person.leg_ratio * h
    hip_y = leg_len + bob
    hip_w = 0.09 * h * b
    shoulder_y = 0.815 * h + bob
    shoulder_w = person.shoulder_ratio * h * b * 0.5
    parts: list[Part] = []

    for side, sign, leg_phase in (("l", -1.0, s), ("r", 1.0, s + math.pi)):
        swing = math.radians(24.0) * stride * math.sin(leg_phase)
        knee = math.radians(30.0) * stride * max(0.0, math.sin(leg_phase + math.pi / 2)) + math.radians(3)
        hip = base + up * hip_y + right * sign * hip_w
        thigh_dir = -up * math.cos(swing) + fwd * math.sin(swing)
        knee_p = hip + thigh_dir * (0.245 * h)
        shin_dir = -up * math.cos(swing - knee) + fwd * math.sin(swing - knee)
        ankle = knee_p + shin_dir * (leg_len - 0.245 * h - 0.04 * h)
        thigh_r, shin_r = 0.075 * h * b * 0.5 * 1.1, 0.055 * h * b * 0.5
        parts.append(_limb(side + "_thigh", hip, knee_p, thigh_r, right, bottom))
        parts.append(_limb(side + "_shin", knee_p, ankle, shin_r, right, skin if person.shorts else bottom))
        foot_c = ankle + fwd * 0.05 - up * 0.025 * h * 0.5
        parts.append(_blob(side + "_foot", foot_c, body_rot, (0.045, 0.04, 0.13), shoes))

        arm_swing = -math.radians(18.0) * stride * math.sin(leg_phase)
        shoulder = base + up * shoulder_y + right * sign * (shoulder_w + 0.02)
        upper_dir = -up * math.cos(arm_swing) + fwd * math.sin(arm_swing) + right * sign * 0.08
        elbow = shoulder + upper_dir / np.linalg.norm(upper_dir) * (0.19 * h)
        fore_dir = -up * math.cos(arm_swing + 0.25) + fwd * math.sin(arm_swing + 0.25)
        wrist = elbow + fore_dir * (0.15 * h)
        arm_r = 0.042 * h * b * 0.5 * 1.1
        parts.append(_limb(side + "_upper_arm", shoulder, elbow, arm_r, right, top))
        parts.append(_limb(side + "_forearm", elbow, wrist, arm_r * 0.85, right, top if person.long_sleeves else skin))
        hand = wrist + fore_dir * 0.045 * h
        parts.append(_blob(side + "_hand", hand, body_rot, (0.025, 0.055, 0.035), skin))

    chest_c = base + up * (0.70 * h + bob)
    parts.append(_blob("chest", chest_c, body_rot, (shoulder_w + 0.02, 0.135 * h, 0.11 * b), top))
    pelvis_c = base + up * (hip_y + 0.04 * h)
    parts.append(_blob("pelvis", pelvis_c, body_rot, (hip_w + 0.06 * b, 0.085 * h, 0.10 * b), bottom))
    neck_c = base + up * (0.845 * h + bob)
    parts.append(_blob("neck", neck_c, body_rot, (0.05, 0.05, 0.05), skin))
    hs = person.head_scale
    head_c = base + up * (h - 0.115 * hs + bob)
    head = Surface("head", person.skin, ir=person.skin_ir, hair=person.hair, hair_ir=person.hair_ir,
                   long_hair=person.long_hair, body_temp=bt)
    parts.append(_blob("head", head_c, body_rot, (0.078 * hs, 0.115 * hs, 0.095 * hs), head))
    if person.long_hair:
        hair = Surface("cloth", person.hair, person.hair, ir=person.hair_ir, transmission=0.45, body_temp=bt)
        parts.append(_blob("hair", head_c - fwd * 0.035 - up * 0.09, body_rot, (0.085 * hs, 0.12 * hs, 0.06), hair))
    if person.cap is not None:
        parts.append(_blob("cap", head_c + up * 0.075 * hs + fwd * 0.02, body_rot, (0.09 * hs, 0.045, 0.11 * hs),
                           _cloth(person.cap, bt)))
    bag = _cloth(person.bag, bt)
    if person.carried == "backpack":
        parts.append(_blob("backpack", chest_c - fwd * (0.11 * b + 0.09) - up * 0.03, body_rot, (0.16, 0.21, 0.09), bag))
    elif person.carried == "shoulder_bag":
        parts.append(_blob("shoulder_bag", pelvis_c + right * (hip_w + 0.14) + up * 0.05, body_rot, (0.05, 0.13, 0.15), bag))
    elif person.carried == "handbag":
        hand = next(p.center for p in parts if p.name == "l_hand")
        parts.append(_blob("handbag", hand - up * 0.12 + right * 0.04, body_rot, (0.05, 0.11, 0.14), bag))
    return parts
