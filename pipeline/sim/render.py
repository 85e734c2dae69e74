"""Ray-casting renderer: posed bodies in a room -> aligned RGB, depth, IR and thermal images.

Each body part is an ellipsoid, intersected analytically with the camera rays
inside its exact projected bounding box (from the dual conic of its
projection), so depth is the true distance along the optical axis of the
surface, and occlusion between people and parts is exact (z-buffer). Per
pixel the renderer keeps albedo, NIR reflectance, temperature and the cosines
to the ceiling light and to the camera; each modality is then a small physical
model over those buffers:

* colour: Lambert shading x scene illumination, auto-gain up to ``max_gain``,
  shot + read noise (so dark scenes are noisy), sRGB tone curve;
* depth: active stereo like a RealSense D4xx: noise ``sigma_z = z^2 * subpixel
  / (fx * baseline)``; holes where the stereo texture is weak, with texture
  ``reflectance * (projector * cos / z + passive * light)`` (an effective model:
  auto-exposure makes the projector's fall-off gentler than ``1/z^2``), so
  NIR-absorbing materials, far and grazing surfaces drop out; occlusion shadows
  left of foreground edges where the second imager cannot see; range limits;
* IR: projector falloff ``reflectance * cos / z^2`` plus ambient NIR, the
  emitter's dot pattern, noise;
* thermal: surface temperature (skin, garment insulation, room), optics blur,
  NETD noise; independent of illumination; radiometric uint16 in 0.01 K.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from reidstream.pipeline.sim.body import Part
from reidstream.pipeline.sim.config import RoomConfig, SensorConfig
from reidstream.pipeline.sim.scene import CameraRig, render_room
from reidstream.pipeline.types import Modality, PersonAnnotation

_NEAR = 0.1
_LIGHT_WORLD = np.array([0.2, 1.0, -0.5]) / np.linalg.norm([0.2, 1.0, -0.5])
_AMBIENT, _DIFFUSE = 0.45, 0.75
_SRGB_LUT = (np.clip(np.linspace(0, 1, 4096), 0, 1) ** (1 / 2.2) * 255 + 0.5).astype(np.uint8)


@dataclass(frozen=True, eq=False)
class Rendered:
    """One rendered frame: images per modality, per-pixel person labels and ground truth.

    Attributes:
        images: Modality -> image (rgb uint8 HxWx3, depth uint16 mm, ir uint8, thermal uint16 centi-kelvin).
        labels: H x W int16, index into the rendered bodies, -1 for the room.
        annotations: Ground truth per person whose body projects into the image.
        z: H x W float32 noiseless depth in metres.
    """

    images: dict[Modality, np.ndarray]
    labels: np.ndarray
    annotations: tuple[PersonAnnotation, ...]
    z: np.ndarray


@dataclass(frozen=True, eq=False)
class _Buffers:
    """Per-pixel attributes of the nearest surface (the z-buffer and what it hit)."""

    z: np.ndarray
    albedo: np.ndarray
    ir: np.ndarray
    temp: np.ndarray
    cos_l: np.ndarray
    cos_c: np.ndarray
    labels: np.ndarray


def projected_box(center: np.ndarray, rot: np.ndarray, axes: np.ndarray) -> tuple[float, float, float, float] | None:
    """Exact normalised-image bounding box of a camera-frame ellipsoid, None if it crosses z = near.

    The outline of the projection is the conic ``C* = M M^T - c c^T`` (dual
    conic, ``M = rot * diag(axes)``); its vertical tangents ``u`` solve
    ``C*11 - 2u C*13 + u^2 C*33 = 0``, likewise for ``v``.
    """
    m = rot * axes
    mm = m @ m.T
    if center[2] - np.sqrt(mm[2, 2]) < _NEAR:
        return None
    cs = mm - np.outer(center, center)
    out = []
    for i in (0, 1):
        disc = max(cs[i, 2] ** 2 - cs[i, i] * cs[2, 2], 0.0)
        r = np.sqrt(disc)
        a, b = (cs[i, 2] + r) / cs[2, 2], (cs[i, 2] - r) / cs[2, 2]
        out.append((min(a, b), max(a, b)))
    return out[0][0], out[1][0], out[0][1], out[1][1]


class Renderer:
    """Renders bodies in a room for one camera rig.

    Args:
        rig: Camera geometry (all modalities aligned to its colour intrinsics).
        room: The room.
        sensors: Sensor models.
        modalities: Which images to produce.
    """

    def __init__(self, rig: CameraRig, room: RoomConfig, sensors: SensorConfig,
                 modalities: Sequence[Modality] = tuple(Modality)) -> None:
        self.rig, self.room, self.sensors = rig, room, sensors
        self.modalities = tuple(Modality(m) for m in modalities)
        self.light_cam = (rig.R @ _LIGHT_WORLD).astype(np.float32)
        self.bg = render_room(rig, room, _LIGHT_WORLD)
        k = rig.intrinsics
        dots = np.random.default_rng(1234).random((k.height, k.width)) < 0.06
        dots = cv2.GaussianBlur(dots.astype(np.float32), (0, 0), 0.7)
        self.dots = (1 - sensors.dot_contrast + sensors.dot_contrast * dots / dots.mean()).astype(np.float32)

    def render(self, bodies: Sequence[tuple[int, list[Part]]], light: float,
               rng: np.random.Generator) -> Rendered:
        """Renders one frame.

        Args:
            bodies: ``(identity, parts)`` per person, parts in the world frame.
            light: Scene illumination, 1 = bright office, ~0.02 = near dark.
            rng: Noise source (seeded by the caller for determinism).
        """
        bg, k = self.bg, self.rig.intrinsics
        buf = _Buffers(bg.z.copy(), bg.albedo.copy(), bg.ir.copy(), bg.temp.copy(), bg.cos_light.copy(),
                       bg.cos_cam.copy(), np.full(bg.z.shape, -1, np.int16))
        z, ir, labels = buf.z, buf.ir, buf.labels
        boxes, own = [], []
        for index, (_, parts) in enumerate(bodies):
            box, count = self._draw_body(index, parts, buf)
            boxes.append(box)
            own.append(count)
        visible = np.bincount(labels.ravel() + 1, minlength=len(bodies) + 1)[1:]
        annotations = []
        for index, (identity, parts) in enumerate(bodies):
            box = boxes[index]
            if box is None or own[index] == 0:
                continue
            x1, y1, x2, y2 = box
            cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, k.width), min(y2, k.height)
            inside = (cx2 - cx1) * (cy2 - cy1) / max((x2 - x1) * (y2 - y1), 1e-9)
            frac = float(np.clip(visible[index] / own[index] * inside, 0, 1))
            chest = next((p.center for p in parts if p.name == "chest"), parts[0].center)
            dist = float(self.rig.to_camera(chest)[2])
            annotations.append(PersonAnnotation(identity, (cx1, cy1, cx2, cy2), frac, dist))
        images = {}
        if Modality.RGB in self.modalities:
            images[Modality.RGB] = self._colour(buf.albedo, buf.cos_l, light, rng)
        if Modality.DEPTH in self.modalities:
            images[Modality.DEPTH] = self._depth(z, ir, buf.cos_c, light, labels, rng)
        if Modality.IR in self.modalities:
            images[Modality.IR] = self._ir(z, ir, buf.cos_c, buf.cos_l, light, rng)
        if Modality.THERMAL in self.modalities:
            t = cv2.GaussianBlur(buf.temp, (0, 0), self.sensors.thermal_blur)
            t = t + rng.standard_normal(t.shape, dtype=np.float32) * np.float32(self.sensors.netd)
            # Radiometric uint16 in centi-kelvin, as FLIR Lepton TLinear output.
            images[Modality.THERMAL] = np.clip((t + 273.15) * 100 + 0.5, 0, 65535).astype(np.uint16)
        return Rendered(images, labels, tuple(annotations), z)

    def _draw_body(self, index: int, parts: list[Part], buf: _Buffers):
        """Z-buffers one body's parts; returns its amodal pixel box and unoccluded pixel count."""
        k, rig = self.rig.intrinsics, self.rig
        boxes = []
        for part in parts:
            c = rig.to_camera(part.center)
            q = rig.R @ part.rotation
            nb = projected_box(c, q, part.axes)
            boxes.append(None if nb is None else (nb[0] * k.fx + k.cx, nb[1] * k.fy + k.cy,
                                                  nb[2] * k.fx + k.cx, nb[3] * k.fy + k.cy))
        valid = [b for b in boxes if b is not None]
        if not valid:
            return None, 0
        bx = (min(b[0] for b in valid), min(b[1] for b in valid), max(b[2] for b in valid), max(b[3] for b in valid))
        px0, py0 = max(int(bx[0]), 0), max(int(bx[1]), 0)
        px1, py1 = min(int(np.ceil(bx[2])) + 1, k.width), min(int(np.ceil(bx[3])) + 1, k.height)
        if px1 <= px0 or py1 <= py0:
            return bx, 0
        mine = np.zeros((py1 - py0, px1 - px0), bool)
        for part, b in zip(parts, boxes):
            if b is None:
                continue
            x0, y0 = max(int(b[0]), 0), max(int(b[1]), 0)
            x1, y1 = min(int(np.ceil(b[2])) + 1, k.width), min(int(np.ceil(b[3])) + 1, k.height)
            if x1 <= x0 or y1 <= y0:
                continue
            self._draw_part(part, rig.to_camera(part.center), rig.R @ part.rotation, index, (slice(y0, y1), slice(x0, x1)),
                            mine[y0 - py0:y1 - py0, x0 - px0:x1 - px0], buf)
        return bx, int(mine.sum())

    def _draw_part(self, part: Part, c: np.ndarray, q: np.ndarray, index: int, win: tuple[slice, slice],
                   mine: np.ndarray, buf: _Buffers) -> None:
        """Intersects one ellipsoid with the rays of window ``win``; writes the nearer hits into ``buf``."""
        a = part.axes
        m = (q / a).T  # local unit-sphere coords = m @ (p - c)
        o = -(m @ c)
        d = self.rig.rays[win]
        dd = d @ m.T.astype(np.float32)
        aa = np.einsum("ijk,ijk->ij", dd, dd)
        bb = dd @ o.astype(np.float32)
        disc = bb * bb - aa * np.float32(o @ o - 1.0)
        hit = disc > 0
        if not hit.any():
            return
        t = np.where(hit, (-bb - np.sqrt(np.maximum(disc, 0))) / aa, np.inf)
        hit &= t > _NEAR
        mine |= hit
        zw = buf.z[win]
        sel = hit & (t < zw)
        if not sel.any():
            return
        ts = t[sel]
        local = o + ts[:, None] * dd[sel]  # points on the unit sphere
        n = (local / a) @ q.T
        n /= np.linalg.norm(n, axis=1, keepdims=True)
        view = d[sel] / self.rig.ray_len[win][sel][:, None]
        zw[sel] = ts
        buf.labels[win][sel] = index
        buf.cos_l[win][sel] = np.clip(n @ self.light_cam, 0, 1)
        buf.cos_c[win][sel] = np.clip(-(n * view).sum(1), 0, 1)
        col, irv, tv = self._surface(part, local, ts[:, None] * d[sel])
        buf.albedo[win][sel] = col
        buf.ir[win][sel] = irv
        buf.temp[win][sel] = tv

    def _surface(self, part: Part, local: np.ndarray, p_cam: np.ndarray):
        """Albedo, NIR reflectance and temperature of hit points of one part."""
        s, air = part.surface, self.room.air_temp
        n = local.shape[0]
        col = np.empty((n, 3), np.float32)
        col[:] = s.colour
        irv = np.full(n, s.ir, np.float32)
        body_temp = s.body_temp
        if s.kind == "head":
            hair = (local[:, 1] > 0.35) | (local[:, 2] < -0.3) | (s.long_hair & (local[:, 2] < 0.0))
            col[hair], irv[hair] = s.hair, s.hair_ir
            tv = np.where(hair, air + 0.45 * (body_temp - air), body_temp + 0.3).astype(np.float32)
            return col, irv, tv
        if s.kind == "skin":
            return col, irv, np.full(n, body_temp - 0.5, np.float32)
        if s.pattern != "solid":
            world = self.rig.to_world(p_cam)
            h_band = np.floor(world[:, 1] / (s.period / 2)).astype(np.int64) % 2 == 1
            arc = np.arctan2(local[:, 0], local[:, 2]) * part.axes[0]
            v_band = np.floor(arc / (s.period / 2)).astype(np.int64) % 2 == 1
            two = {"hstripes": h_band, "vstripes": v_band, "checks": h_band ^ v_band}[s.pattern]
            col[two] = s.colour2
            if s.ir2 is not None:
                irv[two] = s.ir2
        return col, irv, np.full(n, air + s.transmission * (body_temp - air), np.float32)

    def _colour(self, albedo, cos_l, light, rng):
        """Lambert shading x illumination, auto-gain, shot + read noise, sRGB tone curve."""
        sn = self.sensors
        gain = min(1.0 / max(light, 1e-4), sn.max_gain)
        shade = (_AMBIENT + _DIFFUSE * cos_l) * np.float32(light * gain * sn.exposure)
        lin = albedo * shade[..., None]
        sigma = np.sqrt(lin * np.float32(sn.shot_noise * gain) + np.float32((sn.read_noise * gain) ** 2))
        lin += sigma * rng.standard_normal(lin.shape, dtype=np.float32)
        idx = np.clip(lin * 4095, 0, 4095).astype(np.uint16)
        return _SRGB_LUT[idx]

    def _depth(self, z, ir, cos_c, light, labels, rng):
        """Active-stereo depth in millimetres (0 = no depth)."""
        sn, k = self.sensors, self.rig.intrinsics
        focal_baseline = k.fx * sn.baseline
        noisy = z + rng.standard_normal(z.shape, dtype=np.float32) * (z * z * np.float32(sn.subpixel / focal_baseline))
        signal = ir * (np.float32(sn.projector_power) * cos_c / np.maximum(z, 0.5) + np.float32(sn.passive_texture * light))
        p_drop = 1.0 / (1.0 + (signal / np.float32(sn.depth_signal_min)) ** 4)
        invalid = (rng.random(z.shape, dtype=np.float32) < p_drop) | (z < sn.depth_min) | (z > sn.depth_max)
        rows = np.flatnonzero((labels >= 0).any(axis=1))
        if rows.size:  # occlusion shadows: pixels the second imager (to the right) cannot see
            r0, r1 = rows[0], rows[-1] + 1
            disp = focal_baseline / z[r0:r1]
            reach = disp.copy()
            for s in range(1, min(int(np.ceil(disp.max() - disp.min())) + 1, 96)):
                np.maximum(reach[:, :-s], disp[:, s:] - s, out=reach[:, :-s])
            invalid[r0:r1] |= reach > disp + 0.5
        mm = np.clip(noisy * 1000.0 + 0.5, 0, 65535).astype(np.uint16)
        mm[invalid] = 0
        return mm

    def _ir(self, z, ir, cos_c, cos_l, light, rng):
        """Left IR imager: projector falloff with dot pattern, ambient NIR, noise."""
        sn = self.sensors
        active = np.float32(sn.ir_projector if sn.emitter else 0.0) * cos_c / np.maximum(z, 0.3) ** 2 * self.dots
        ambient = np.float32(sn.ambient_ir * light) * (_AMBIENT + _DIFFUSE * cos_l)
        v = ir * (active + ambient) * np.float32(sn.ir_gain)
        v += rng.standard_normal(v.shape, dtype=np.float32) * np.float32(sn.ir_noise)
        return _SRGB_LUT[np.clip(v * 4095, 0, 4095).astype(np.uint16)]
