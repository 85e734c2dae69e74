"""Model bundles: a directory of model files plus ``manifest.json`` that describes each one.

A bundle is what ``reid-export`` writes and what the live pipeline runs. The
manifest says, per file, everything needed to use it without guessing: its role
(embedder or detector), runtime (``torch``, ``onnx``, ``tensorrt``), modality,
embedding space, input size, colour order, preprocessing (mean/std, depth
scaling), embedding size and distance, the engine's GPU and TensorRT version,
and a SHA-256 checksum. Per source model it holds the training method, the
resolved training config and its evaluation metrics; the bundle also records the
versions of the tools that produced it. Nothing is read from file names.

:func:`load_bundle` validates the whole bundle before any frame is processed:
unknown keys, a missing or altered file, a file outside the bundle, a file that
refers to an unknown model or a space other than its model's. This module needs
neither torch nor ONNX.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal, Union

from pydantic import Field, field_validator, model_validator

from reidstream.pipeline.config import ConfigError, ConfigModel, config_from_mapping
from reidstream.pipeline.preprocess import MODALITY_NAMES, Preprocess

BUNDLE_FORMAT = "reid-stream-bundle-v1"
MANIFEST = "manifest.json"
ONNX_METADATA_KEY = "reid_stream"
"""Key of the JSON metadata stored in each exported ONNX file's ``metadata_props``."""

Runtime = Literal["torch", "onnx", "tensorrt"]
Precision = Literal["fp32", "fp16", "int8"]


class BundleError(ValueError):
    """A bundle, or one of its files, is invalid (the message names the file and what is wrong)."""


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class BatchRange(ConfigModel):
    """Batch sizes a file accepts: ``min <= opt <= max`` (TensorRT's optimisation profile)."""

    min: int = Field(1, ge=1)
    opt: int = Field(8, ge=1)
    max: int = Field(32, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> "BatchRange":
        if not self.min <= self.opt <= self.max:
            raise ValueError(f"expected min <= opt <= max, got {self.min}, {self.opt}, {self.max}")
        return self


class InputSpec(ConfigModel):
    """The network input tensor: ``batch x channels x height x width`` float32, already preprocessed."""

    name: str = "images"
    layout: Literal["NCHW"] = "NCHW"
    dtype: Literal["float32"] = "float32"
    channels: int = Field(ge=1, le=4)
    height: int = Field(ge=1)
    width: int = Field(ge=1)
    colour_order: Literal["RGB", "BGR", "gray", "depth"]
    batch: BatchRange = BatchRange()


class OutputSpec(ConfigModel):
    """The embedding output: ``batch x dim`` float32."""

    name: str = "embeddings"
    dim: int = Field(ge=1)
    normalized: bool = True
    distance: Literal["cosine", "euclidean"] = "cosine"


class EngineInfo(ConfigModel):
    """What a TensorRT engine is tied to: it only runs on this GPU model with this TensorRT version."""

    tensorrt: str
    gpu: str
    compute_capability: str


class _FileBase(ConfigModel):
    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)
    runtime: Runtime
    precision: Precision = "fp32"
    engine: EngineInfo | None = None

    @field_validator("path")
    @classmethod
    def _inside_bundle(cls, v: str) -> str:
        p = PurePosixPath(v)
        if not v or p.is_absolute() or ".." in p.parts or "\\" in v:
            raise ValueError(f"expected a relative path inside the bundle, got {v!r}")
        return v

    @model_validator(mode="after")
    def _engine_iff_tensorrt(self) -> "_FileBase":
        if (self.runtime == "tensorrt") != (self.engine is not None):
            raise ValueError("'engine' (TensorRT version and GPU) is required for runtime tensorrt and only for it")
        return self


class EmbedderFile(_FileBase):
    """One embedding network of one modality on one runtime."""

    role: Literal["embedder"] = "embedder"
    model: str
    modality: Literal["rgb", "depth", "ir", "thermal"]
    space: str
    input: InputSpec
    preprocess: dict[str, Any]
    output: OutputSpec

    @field_validator("preprocess")
    @classmethod
    def _valid_preprocess(cls, v: dict[str, Any]) -> dict[str, Any]:
        Preprocess.from_dict(v)
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "EmbedderFile":
        p = self.preprocess_spec()
        if p.modality != self.modality:
            raise ValueError(f"preprocess.modality {p.modality!r} differs from modality {self.modality!r}")
        if (p.channels, p.height, p.width) != (self.input.channels, self.input.height, self.input.width):
            raise ValueError(f"input {self.input.channels}x{self.input.height}x{self.input.width} differs from "
                             f"preprocess {p.channels}x{p.height}x{p.width}")
        return self

    def preprocess_spec(self) -> Preprocess:
        """The :class:`Preprocess` this network's crops go through."""
        return Preprocess.from_dict(self.preprocess)

    def metadata(self) -> dict[str, Any]:
        """What the file itself carries (ONNX ``metadata_props``): the entry without path and checksum."""
        return self.model_dump(mode="json", exclude={"path", "sha256", "bytes"})


class DetectorFile(_FileBase):
    """A person detector (ultralytics YOLO) exported to one runtime."""

    role: Literal["detector"] = "detector"
    modalities: list[Literal["rgb", "ir", "thermal"]] = Field(min_length=1)
    imgsz: list[int] = Field(min_length=2, max_length=2)
    classes: dict[str, str]
    person_class: int = 0
    detect_classes: list[int] | None = Field(None, min_length=1)
    """Ids of the classes kept as people (``reid-export bundle --detector-classes``); None (older bundles):
    ``[person_class]``. ``person_class`` is the ``person`` class, or the first of these when there is none."""
    source: str


BundleFile = Annotated[Union[EmbedderFile, DetectorFile], Field(discriminator="role")]


class ModelInfo(ConfigModel):
    """One trained model (a checkpoint) whose networks are in the bundle."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    method: str
    space: str
    checkpoint: str
    checkpoint_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    config: dict[str, Any]
    metrics: dict[str, Any] = {}
    open_set_threshold: float | None = None
    init: dict[str, Any] | None = None
    """What initialised the networks before training (file, SHA-256, licence, provenance of pre-trained
    weights: :func:`reidstream.training.models.pretrained.weights_info`); None: random initialisation."""
    centre: dict[str, Any] | None = None
    """Where each modality's mean unit embedding, subtracted in every file of this model before normalising,
    came from (``reid-export bundle --centre``: data, layout, split, crops, norm); None: not centred."""


class Manifest(ConfigModel):
    """The whole ``manifest.json``."""

    format: Literal["reid-stream-bundle-v1"] = BUNDLE_FORMAT
    created: str
    versions: dict[str, str | None]
    models: list[ModelInfo] = []
    files: list[BundleFile] = Field(min_length=1)
    calibration: dict[str, Any] | None = None
    """Evidence calibration of the gallery (:class:`~reidstream.pipeline.gallery.calibration.Calibration`),
    written by ``reid-export calibrate``."""

    @model_validator(mode="after")
    def _references(self) -> "Manifest":
        models = {m.id: m for m in self.models}
        if len(models) != len(self.models):
            raise ValueError("models: duplicate model id")
        spaces: dict[str, str] = {}
        for m in self.models:
            if spaces.setdefault(m.space, m.id) != m.id:
                raise ValueError(f"models: space {m.space!r} is claimed by both {spaces[m.space]!r} and {m.id!r}; "
                                 f"separately trained models are not comparable, give each its own space")
        seen = set()
        for f in self.files:
            if f.path in seen:
                raise ValueError(f"files: {f.path!r} is listed twice")
            seen.add(f.path)
            if isinstance(f, EmbedderFile):
                if f.model not in models:
                    raise ValueError(f"files: {f.path!r} refers to unknown model {f.model!r}; expected one of "
                                     f"{sorted(models)}")
                if f.space != models[f.model].space:
                    raise ValueError(f"files: {f.path!r} is in space {f.space!r} but its model {f.model!r} is in "
                                     f"{models[f.model].space!r}")
        return self


@dataclass(frozen=True)
class Bundle:
    """A validated bundle on disk.

    Attributes:
        root: The bundle directory.
        manifest: Its parsed manifest.
    """

    root: Path
    manifest: Manifest

    def path(self, entry: EmbedderFile | DetectorFile) -> Path:
        """Absolute path of a file of this bundle."""
        return self.root / entry.path

    def model(self, model_id: str) -> ModelInfo:
        """The model entry with id ``model_id``."""
        for m in self.manifest.models:
            if m.id == model_id:
                return m
        raise KeyError(f"{self.root / MANIFEST}: no model {model_id!r}")

    def embedders(self, runtime: str | None = None) -> list[EmbedderFile]:
        """Embedder entries, optionally of one runtime, in manifest order."""
        return [f for f in self.manifest.files
                if isinstance(f, EmbedderFile) and (runtime is None or f.runtime == runtime)]

    def detectors(self, runtime: str | None = None) -> list[DetectorFile]:
        """Detector entries, optionally of one runtime."""
        return [f for f in self.manifest.files
                if isinstance(f, DetectorFile) and (runtime is None or f.runtime == runtime)]

    def calibration(self):
        """The gallery's evidence :class:`~reidstream.pipeline.gallery.calibration.Calibration`, or None.

        Raises:
            BundleError: the manifest's ``calibration`` is malformed (naming the key).
        """
        from reidstream.pipeline.gallery.calibration import Calibration

        if self.manifest.calibration is None:
            return None
        try:
            return Calibration.from_dict(self.manifest.calibration, f"{self.root / MANIFEST}: calibration")
        except ValueError as e:
            raise BundleError(str(e)) from None

    @property
    def spaces(self) -> dict[str, list[str]]:
        """Embedding space -> modalities embedded into it."""
        out: dict[str, list[str]] = {}
        for f in self.embedders():
            if f.modality not in out.setdefault(f.space, []):
                out[f.space].append(f.modality)
        return out


def read_manifest(root: str | Path) -> Manifest:
    """Parses and validates ``root/manifest.json`` (no file checks).

    Raises:
        BundleError: no manifest, invalid JSON, unknown keys or wrong values (naming the key).
    """
    path = Path(root) / MANIFEST
    if Path(root).is_file():
        raise BundleError(f"{root}: is a file; expected a model bundle directory (holding {MANIFEST})")
    if not Path(root).is_dir():
        raise BundleError(f"{root}: expected a model bundle directory (with {MANIFEST}), not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{path}: missing; {root} is not a model bundle (write one with reid-export)") from None
    except UnicodeDecodeError as e:
        raise BundleError(f"{path}: not a text file (byte {e.start} is not UTF-8: binary data?); expected the "
                          f"JSON manifest of a model bundle, as reid-export writes it") from None
    except (OSError, json.JSONDecodeError) as e:
        raise BundleError(f"{path}: not readable JSON ({e})") from None
    if isinstance(data, dict) and data.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{path}: expected format {BUNDLE_FORMAT!r}, got {data.get('format')!r}")
    try:
        return config_from_mapping(Manifest, data, str(path))
    except ConfigError as e:
        raise BundleError(str(e)) from None


def check_file(root: Path, entry: EmbedderFile | DetectorFile) -> None:
    """Raises :class:`BundleError` if ``entry``'s file is missing or its checksum differs."""
    path = root / entry.path
    if not path.is_file():
        raise BundleError(f"{path}: listed in {root / MANIFEST} but missing")
    size = path.stat().st_size
    digest = sha256_of(path)
    if digest != entry.sha256 or size != entry.bytes:
        raise BundleError(f"{path}: checksum mismatch (manifest sha256 {entry.sha256[:12]}..., {entry.bytes} bytes; "
                          f"file {digest[:12]}..., {size} bytes): the file was altered or replaced after export")


def load_bundle(root: str | Path, *, verify_files: bool = True) -> Bundle:
    """Reads and validates a bundle; with ``verify_files`` every listed file must exist with its checksum.

    Raises:
        BundleError: naming the manifest or the file and what is wrong.
    """
    root = Path(root)
    manifest = read_manifest(root)
    bundle = Bundle(root, manifest)
    if verify_files:
        for entry in manifest.files:
            check_file(root, entry)
    return bundle


def check_embedded_metadata(path: str | Path, embedded: str | None, entry: EmbedderFile | None) -> EmbedderFile:
    """Validates the metadata a model file carries (JSON text) against its manifest entry.

    Args:
        path: The file (for messages).
        embedded: The JSON text stored in the file under :data:`ONNX_METADATA_KEY`; None if absent.
        entry: The manifest entry, or None for a file used outside a bundle.

    Returns:
        The entry (parsed from the file's metadata when ``entry`` is None).

    Raises:
        BundleError: no metadata, unparsable metadata, or metadata that differs from the manifest.
    """
    if embedded is None:
        raise BundleError(f"{path}: has no reid-stream metadata (metadata_props[{ONNX_METADATA_KEY!r}]); "
                          f"expected a file exported by reid-export, which records modality, input size and "
                          f"normalisation")
    try:
        meta = json.loads(embedded)
    except json.JSONDecodeError as e:
        raise BundleError(f"{path}: reid-stream metadata is not valid JSON ({e})") from None
    if entry is None:
        try:
            return config_from_mapping(EmbedderFile, dict(meta, path=Path(path).name, sha256="0" * 64,
                                                          bytes=Path(path).stat().st_size), str(path))
        except (ConfigError, TypeError) as e:
            raise BundleError(f"{path}: reid-stream metadata is invalid ({e})") from None
    expected = entry.metadata()
    if meta != expected:
        diff = sorted(k for k in set(meta) | set(expected) if meta.get(k) != expected.get(k))
        raise BundleError(f"{path}: metadata inside the file differs from the manifest at keys {diff}")
    return entry


__all__ = ["BUNDLE_FORMAT", "MANIFEST", "ONNX_METADATA_KEY", "MODALITY_NAMES", "BatchRange", "Bundle", "BundleError",
           "DetectorFile", "EmbedderFile", "EngineInfo", "InputSpec", "Manifest", "ModelInfo", "OutputSpec",
           "check_embedded_metadata", "check_file", "load_bundle", "read_manifest", "sha256_of"]
