"""A seedable population of distinct synthetic people.

Each :class:`Person` is drawn from its own random stream (``seed``, ``identity``),
so person 17 of seed 0 is the same whatever the population size. Identity is
carried by every modality, each through its own physical property:

* colour: clothing colours and patterns, skin and hair tones;
* depth: body shape (height, build, limb proportions, head size, carried items);
* infrared: the near-IR reflectance of each garment's *material*, drawn
  independently of its visible colour (indigo denim is bright in NIR,
  carbon-black synthetics are dark whatever their dye looks like);
* thermal: skin temperature and the insulation of each garment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Material -> (NIR reflectance range, thermal transmission range: how much of the
# skin-to-air temperature difference shows on the garment surface).
MATERIALS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "cotton": ((0.55, 0.85), (0.45, 0.60)),
    "denim": ((0.60, 0.85), (0.35, 0.50)),
    "wool": ((0.45, 0.70), (0.20, 0.35)),
    "polyester": ((0.25, 0.55), (0.40, 0.55)),
    "nylon_black": ((0.03, 0.10), (0.45, 0.60)),
    "leather": ((0.10, 0.30), (0.15, 0.30)),
    "fleece": ((0.35, 0.60), (0.10, 0.25)),
}
PATTERNS = ("solid", "hstripes", "vstripes", "checks")
CARRIED = ("none", "backpack", "shoulder_bag", "handbag")

# Named clothing colours (linear RGB albedo) to draw from, plus random ones.
_PALETTE = np.array([
    [0.60, 0.05, 0.05], [0.05, 0.10, 0.45], [0.05, 0.30, 0.08], [0.70, 0.60, 0.08],
    [0.03, 0.03, 0.03], [0.75, 0.75, 0.75], [0.35, 0.35, 0.38], [0.45, 0.25, 0.10],
    [0.55, 0.20, 0.45], [0.10, 0.45, 0.55], [0.80, 0.40, 0.10], [0.15, 0.15, 0.25],
], dtype=np.float32)
_SKIN = np.array([[0.65, 0.45, 0.35], [0.55, 0.38, 0.28], [0.40, 0.26, 0.18],
                  [0.25, 0.16, 0.11], [0.72, 0.55, 0.45]], dtype=np.float32)
_HAIR = np.array([[0.03, 0.02, 0.02], [0.15, 0.09, 0.05], [0.40, 0.28, 0.12],
                  [0.55, 0.45, 0.30], [0.45, 0.45, 0.45], [0.30, 0.08, 0.03]], dtype=np.float32)


@dataclass(frozen=True)
class Garment:
    """One piece of clothing or a carried item.

    Attributes:
        colour: Linear RGB albedo in [0, 1].
        colour2: Second colour of the pattern.
        pattern: One of :data:`PATTERNS`.
        period: Pattern period in metres.
        material: Key of :data:`MATERIALS`.
        ir_reflectance: Near-IR albedo (independent of ``colour``).
        transmission: Fraction of the skin-air temperature difference seen on the surface.
        ir_reflectance2: Near-IR albedo of the pattern's second dye; ``None`` = the same as
            ``ir_reflectance`` (an NIR-transparent dye: the pattern vanishes in IR). Carbon-based
            dyes absorb NIR, so their prints stay visible in IR while their colours do not carry over.
    """

    colour: tuple[float, float, float]
    colour2: tuple[float, float, float]
    pattern: str
    period: float
    material: str
    ir_reflectance: float
    transmission: float
    ir_reflectance2: float | None = None


@dataclass(frozen=True)
class Person:
    """Appearance and body of one synthetic identity (lengths in metres, temperatures in deg C)."""

    identity: int
    height: float
    build: float
    leg_ratio: float
    arm_ratio: float
    shoulder_ratio: float
    head_scale: float
    skin: tuple[float, float, float]
    skin_ir: float
    skin_temp: float
    hair: tuple[float, float, float]
    hair_ir: float
    long_hair: bool
    top: Garment
    long_sleeves: bool
    bottom: Garment
    shorts: bool
    shoes: Garment
    carried: str
    bag: Garment
    cap: Garment | None
    speed: float


def _colour(rng: np.random.Generator) -> tuple[float, float, float]:
    if rng.random() < 0.6:
        c = _PALETTE[rng.integers(len(_PALETTE))] * rng.uniform(0.8, 1.2, 3)
    else:
        c = rng.uniform(0.02, 0.85, 3) ** 1.3
    return tuple(float(v) for v in np.clip(c, 0.01, 0.95))


def make_garment(rng: np.random.Generator, materials: tuple[str, ...] = tuple(MATERIALS),
                 colour: tuple[float, float, float] | None = None, material: str | None = None,
                 pattern: str | None = None) -> Garment:
    """Draws a garment; colour, material and pattern are drawn independently unless given."""
    colour = _colour(rng) if colour is None else colour
    colour2 = _colour(rng)
    pattern = PATTERNS[rng.choice(4, p=[0.55, 0.2, 0.1, 0.15])] if pattern is None else pattern
    material = materials[rng.integers(len(materials))] if material is None else material
    (r0, r1), (t0, t1) = MATERIALS[material]
    period, ir, transmission = float(rng.uniform(0.05, 0.14)), float(rng.uniform(r0, r1)), float(rng.uniform(t0, t1))
    # The dye draw has its own generator so that adding it left every other draw of a population unchanged.
    dye = np.random.default_rng([int(period * 1e12), int(ir * 1e12)])
    ir2 = ir * float(dye.uniform(0.2, 0.5)) if pattern != "solid" and dye.random() < 0.8 else None
    return Garment(colour, colour2, pattern, period, material, ir, transmission, ir2)


def make_person(seed: int, identity: int) -> Person:
    """Draws person ``identity`` of population ``seed`` (independent of population size)."""
    rng = np.random.default_rng([int(seed), int(identity), 0x5EED])
    height = float(np.clip(rng.normal(1.72, 0.10), 1.45, 2.0))
    carried = CARRIED[rng.choice(4, p=[0.45, 0.25, 0.15, 0.15])]
    return Person(
        identity=int(identity),
        height=height,
        build=float(np.clip(rng.normal(1.0, 0.12), 0.75, 1.35)),
        leg_ratio=float(rng.uniform(0.45, 0.51)),
        arm_ratio=float(rng.uniform(0.42, 0.47)),
        shoulder_ratio=float(rng.uniform(0.22, 0.27)),
        head_scale=float(rng.uniform(0.9, 1.12)),
        skin=tuple(float(v) for v in _SKIN[rng.integers(len(_SKIN))] * rng.uniform(0.9, 1.1)),
        skin_ir=float(rng.uniform(0.55, 0.75)),
        skin_temp=float(rng.uniform(32.5, 35.5)),
        hair=tuple(float(v) for v in _HAIR[rng.integers(len(_HAIR))]),
        hair_ir=float(rng.uniform(0.15, 0.6)),
        long_hair=bool(rng.random() < 0.35),
        top=make_garment(rng),
        long_sleeves=bool(rng.random() < 0.6),
        bottom=make_garment(rng, pattern="solid" if rng.random() < 0.8 else None),
        shorts=bool(rng.random() < 0.15),
        shoes=make_garment(rng, ("leather", "polyester", "nylon_black", "cotton"), pattern="solid"),
        carried=carried,
        bag=make_garment(rng, ("leather", "polyester", "nylon_black", "cotton"), pattern="solid"),
        cap=make_garment(rng, pattern="solid") if rng.random() < 0.15 else None,
        speed=float(rng.uniform(0.9, 1.5)),
    )


class Population:
    """A seedable set of ``size`` distinct people, identities ``0 .. size-1``.

    Args:
        size: Number of identities.
        seed: Population seed; the same seed always gives the same people.
    """

    def __init__(self, size: int = 500, seed: int = 0) -> None:
        if size <= 0:
            raise ValueError(f"Population.size: expected a positive number of identities, got {size}")
        self.size = int(size)
        self.seed = int(seed)
        self._cache: dict[int, Person] = {}

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, identity: int) -> Person:
        if not 0 <= identity < self.size:
            raise IndexError(f"identity {identity} outside population of {self.size}")
        if identity not in self._cache:
            self._cache[identity] = make_person(self.seed, identity)
        return self._cache[identity]
