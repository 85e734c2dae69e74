"""Builds a training run from a :class:`~reidstream.training.config.TrainConfig` and runs it.

This is the only place that maps config sections onto constructor arguments:
the dataset copy and its split, the preprocessing per modality, the method
(and its frozen teacher), the optimiser, the loaders and the trainer. Under
``torchrun`` (``WORLD_SIZE > 1``) it trains with DistributedDataParallel; only
rank 0 validates and writes files.
"""

from __future__ import annotations

import functools
import gc
import json
import os
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader

from reidstream.training.checkpoint import embedder_entries, load_checkpoint
from reidstream.training.config import VI_METHODS, TrainConfig
from reidstream.training.data import LAYOUTS
from reidstream.training.data.samplers import PairedBatchSampler, PKBatchSampler
from reidstream.training.data.vi_samplers import CrossModalPKSampler, TupleBatchSampler, item_modalities, unpair
from reidstream.training.data.samples import Record
from reidstream.training.data.splits import resolve_split
from reidstream.training.data.torch_data import ReIDDataset, collate_cross_modal
from reidstream.training.data.transforms import Preprocess
from reidstream.training.inference import validation_metrics
from reidstream.training.methods import METHODS
from reidstream.training.models import ReIDNet, TwoStreamNet, VINet, load_pretrained
from reidstream.training.models.pretrained import normalisation
from reidstream.training.trainer import LoopOptions, Trainer


def read_splits(cfg: TrainConfig) -> dict[str, tuple]:
    """Reads the dataset copy and returns its train / val / test records under the configured split."""
    d = cfg.data
    index = LAYOUTS[d.layout].read(d.root, trial=d.trial) if d.layout == "regdb" else LAYOUTS[d.layout].read(d.root)
    return resolve_split(index, split=d.split, fold=d.fold, val_identities=d.val_identities, seed=cfg.seed)


def paired(records: Sequence[Record], modalities: Sequence[str]) -> list[Record]:
    """The records holding every one of ``modalities`` (``data.paired_only``)."""
    return [r for r in records if set(modalities) <= {m.value for m in r.modalities}]


def _teacher(path: str) -> tuple[ReIDNet, str, Preprocess]:
    ckpt = load_checkpoint(path)
    if ckpt.get("method") != "supervised" or len(ckpt.get("embedders", {})) != 1:
        raise ValueError(f"{path}: the distillation teacher must be a step-I checkpoint (method 'supervised' "
                         f"with one modality), got method {ckpt.get('method')!r}")
    (modality, e), = ckpt["embedders"].items()
    net = ReIDNet.from_config(e["config"])
    net.load_state_dict(e["state_dict"], strict=True)
    return net, modality, Preprocess.from_dict(e["preprocess"])


def build_method(cfg: TrainConfig, num_classes: int) -> tuple[nn.Module, dict[str, Preprocess]]:
    """The method of ``cfg`` and the preprocessing of each modality it reads."""
    m, mc, d = cfg.method, cfg.model, cfg.data

    mean, std = normalisation(mc.pretrained, mc.arch)

    def prep(modality: str, channels: int = 3) -> Preprocess:
        return Preprocess(modality=modality, height=d.height, width=d.width, depth_min_m=d.depth_min_m,
                          depth_max_m=d.depth_max_m, depth_window_m=d.depth_window_m, channels=channels,
                          mean=mean, std=std)

    def net(**kw: Any) -> ReIDNet:
        n = ReIDNet(mc.arch, embedding_dim=mc.embedding_dim, width=mc.width, last_stride=mc.last_stride,
                    embedding_relu=mc.embedding_relu, **kw)
        if mc.pretrained:
            load_pretrained(n.backbone, mc.pretrained)
        return n

    if mc.embedding_relu and m.name not in ("supervised", "distill", "one_stream", "zero_padding"):
        raise ValueError(f"model.embedding_relu does not apply to method {m.name!r} (its network has no "
                         f"Linear + BN embedding of Hafner et al.); remove the key")
    if m.name == "supervised":
        method = METHODS["supervised"](net(num_classes=num_classes if m.loss == "softmax" else 0), m.modality,
                                       loss=m.loss, margin=m.margin)
        return method, {m.modality: prep(m.modality)}
    if m.name == "distill":
        teacher, t_mod, t_prep = _teacher(m.teacher)
        t_relu = bool(teacher.config().get("embedding_relu", False))
        if "embedding_relu" in mc.model_fields_set and mc.embedding_relu != t_relu:
            raise ValueError(f"model.embedding_relu is {str(mc.embedding_relu).lower()} but the teacher "
                             f"{m.teacher} was trained with embedding_relu {str(t_relu).lower()}; the student "
                             f"copies the teacher's network (Sec. 3.2): set them alike")
        init = None
        if not m.copy_weights and mc.pretrained:
            init = net().state_dict()
        method = METHODS["distill"].from_teacher(
            teacher, t_mod, m.student_modality, copy_weights=m.copy_weights, freeze_from=m.freeze_from,
            frozen_bn=m.frozen_bn, attention_stage=m.attention_stage, attention_pool=m.attention_pool, init=init)
        return method, {t_mod: t_prep, m.student_modality: prep(m.student_modality)}
    if m.name == "two_stream":
        tsn = TwoStreamNet(mc.arch, modalities=m.modalities, split_stage=m.split_stage,
                           embedding_dim=mc.embedding_dim, num_classes=num_classes, width=mc.width,
                           last_stride=mc.last_stride)
        return METHODS["two_stream"](tsn, m.modalities), {x: prep(x) for x in m.modalities}
    if m.name == "zero_padding":
        return (METHODS["zero_padding"](net(num_classes=num_classes, in_channels=2), m.modalities),
                {x: prep(x, channels=1) for x in m.modalities})
    if m.name in VI_METHODS:
        return _vi_method(cfg, num_classes), {x: prep(x) for x in m.modalities}
    return METHODS["one_stream"](net(num_classes=num_classes), m.modalities), {x: prep(x) for x in m.modalities}


def _vi_method(cfg: TrainConfig, num_classes: int) -> nn.Module:
    """A visible-infrared method on a :class:`VINet` (AGW, LUPI, EAT + CMKD, dual-alignment)."""
    m, mc = cfg.method, cfg.model
    if "embedding_dim" in mc.model_fields_set:
        raise ValueError(f"model.embedding_dim does not apply to method {m.name!r}: its embedding is the pooled "
                         f"layer4 feature (or the concatenated parts); remove the key")
    unused: tuple[str, ...] = ()
    if m.name == "dual_align":
        unused = ("split_stage", "pool", "gem_p")
    elif m.name == "eat" and m.sampler == "tuple":
        unused = ("k",)
    given = sorted(set(unused) & m.model_fields_set)
    if given:
        raise ValueError(f"method.{given[0]} does not apply to method {m.name!r}"
                         + (" (one shared stream, parts average-pooled)" if m.name == "dual_align"
                            else " with sampler 'tuple' (p tuples per batch)") + "; remove the key")
    vis, ir = m.modalities
    branches = {"agw": (vis, ir), "lupi": (vis, ir, "gray"), "eat": (vis, ir), "dual_align": ("vi",)}[m.name]
    net = VINet(mc.arch, branches=branches, split_stage=m.split_stage, non_local=m.non_local, pool=m.pool,
                gem_p=m.gem_p, parts=getattr(m, "parts", 0), part_dim=getattr(m, "part_dim", 256),
                num_classes=num_classes, width=mc.width,
                last_stride=mc.last_stride if "last_stride" in mc.model_fields_set else 1)
    if mc.pretrained:
        for backbone in net.backbones().values():
            load_pretrained(backbone, mc.pretrained)
    if m.name == "agw":
        return METHODS["agw"](net, m.modalities)
    if m.name == "lupi":
        return METHODS["lupi"](net, m.modalities, intermediate="gray", margin=m.margin, lambda_c=m.lambda_c,
                               alpha_c=m.alpha_c, cf_threshold=m.cf_threshold, augment=m.augment, pad=m.pad,
                               triplet_reduction=m.triplet_reduction, seed=cfg.seed)
    if m.name == "eat":
        return METHODS["eat"](net, m.modalities, margin=m.margin, exponential=m.exponential,
                              compactness_term=m.compactness, eat_weight=m.eat_weight, cmkd_weight=m.cmkd_weight,
                              label_smoothing=m.label_smoothing, erasing=m.erasing, seed=cfg.seed, sampler=m.sampler)
    return METHODS["dual_align"](net, m.modalities, alpha=m.alpha, beta=m.beta, gamma=m.gamma)


def build_optimizer(cfg: TrainConfig, method: nn.Module) -> tuple[torch.optim.Optimizer, Any]:
    """SGD with Nesterov momentum for softmax-trained methods, Adam for triplet and distillation (Sec. 4.1).

    With ``optim.backbone_lr_mult != 1`` the "old" parameters learn at ``lr * backbone_lr_mult``
    and the new head at ``lr``. A method with ``head_modules()`` (AGW, LUPI) names its head: as
    in AGW's code, only the BN neck and the classifier are at ``lr`` (0.1) and everything else,
    non-local blocks and per-modality first blocks included, at 0.1 x that (0.01). Otherwise
    the network's ResNet stages (``net.backbones()``) are the old part.
    """
    o = cfg.optim
    params = [p for p in method.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the method has no trainable parameters (everything is frozen)")
    name = o.name
    if name == "auto":
        softmax = cfg.method.name in SGD_METHODS or (cfg.method.name == "supervised" and cfg.method.loss == "softmax")
        name = "sgd" if softmax else "adam"
    groups: list[dict[str, Any]] = [{"params": params}]
    net = getattr(method, "net", None)
    head = getattr(method, "head_modules", None)
    old: set[int] | None = None
    if o.backbone_lr_mult != 1.0 and callable(head):
        new = {id(p) for module in head() for p in module.parameters()}
        old = {id(p) for p in params if id(p) not in new}
    elif o.backbone_lr_mult != 1.0 and hasattr(net, "backbones"):
        old = {id(p) for b in net.backbones().values() for p in b.parameters()}
    if old is not None:
        groups = [{"params": [p for p in params if id(p) in old], "lr": o.lr * o.backbone_lr_mult},
                  {"params": [p for p in params if id(p) not in old]}]
        groups = [g for g in groups if g["params"]]
    if name == "sgd":
        opt = torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov and o.momentum > 0,
                              weight_decay=o.weight_decay)
    else:
        opt = torch.optim.Adam(groups, lr=o.lr, weight_decay=o.weight_decay)
    if o.milestones and o.step_epochs:
        raise ValueError("optim: set either step_epochs or milestones, not both")
    if not (o.warmup_epochs or o.milestones or o.step_epochs):
        return opt, None
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda e: lr_factor(o, e))


SGD_METHODS = ("one_stream", "two_stream", "zero_padding", "agw", "lupi", "dual_align")
"""Methods whose paper trains them with SGD (``optim.name: auto``)."""


def lr_factor(o: Any, epoch: int) -> float:
    """Learning-rate factor of ``epoch`` (0-based): linear warm-up, then step or multi-step decay."""
    if epoch < o.warmup_epochs:
        return (epoch + 1) / o.warmup_epochs
    steps = sum(epoch >= m for m in o.milestones) if o.milestones else (epoch // o.step_epochs if o.step_epochs else 0)
    return o.gamma ** steps


def _device(cfg: TrainConfig, local_rank: int) -> torch.device:
    want = cfg.loop.device
    if want == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("loop.device is 'cuda' but no CUDA device is available; use loop.device=cpu")
    if want == "cuda" or (want == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def train(cfg: TrainConfig, *, resume: str | Path | None = None) -> dict[str, Any]:
    """Trains the run described by ``cfg``; returns the trainer's summary.

    Args:
        cfg: The run.
        resume: Checkpoint to continue from; ``"auto"`` continues from ``<output>/last.pt`` if present.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    device = _device(cfg, local_rank)
    if world > 1:
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    torch.manual_seed(cfg.seed)
    splits = read_splits(cfg)
    train_records = splits["train"]
    pids = sorted({r.pid for r in train_records})
    method, prep = build_method(cfg, len(pids))
    method.to(device)
    mods = method.modalities
    vi = method.sampler in ("cross_modal", "tuple")
    if vi:
        train_records = unpair(train_records, mods)
    elif cfg.data.paired_only:
        splits = {k: paired(v, mods) for k, v in splits.items()}
        train_records = splits["train"]
    train_set = ReIDDataset(train_records, mods, prep, augment=cfg.data.augment, seed=cfg.seed,
                            color_p=cfg.data.color_augment if cfg.data.augment else 0.0, require_all=not vi)
    m = cfg.method
    collate = None
    if vi:
        item_mods = item_modalities(train_set.records, mods)
        if method.sampler == "tuple":
            sampler = TupleBatchSampler(train_set.labels, item_mods, mods, tuples=m.p, seed=cfg.seed, rank=rank,
                                        world_size=world)
        else:
            sampler = CrossModalPKSampler(train_set.labels, item_mods, mods, p=m.p, k=m.k, seed=cfg.seed, rank=rank,
                                          world_size=world)
        collate = functools.partial(collate_cross_modal, modalities=mods)
    elif method.sampler == "pk":
        sampler = PKBatchSampler(train_set.labels, p=m.p, k=m.k, seed=cfg.seed, rank=rank, world_size=world)
    else:
        sampler = PairedBatchSampler(list(range(len(train_set))), m.batch_size, seed=cfg.seed, rank=rank,
                                     world_size=world)
    loader = DataLoader(train_set, batch_sampler=sampler, num_workers=cfg.data.workers, collate_fn=collate,
                        persistent_workers=False, pin_memory=device.type == "cuda")
    val_set = ReIDDataset(splits["val"], mods, prep, augment=False, require_all=not vi) if splits.get("val") else None
    model: nn.Module = method
    if world > 1:
        model = nn.parallel.DistributedDataParallel(
            method, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True)
    opt, sched = build_optimizer(cfg, method)
    protocol = cfg.data.layout if cfg.data.layout in ("sysu", "regdb") else "hafner"

    def validate(meth: nn.Module) -> dict[str, float]:
        return validation_metrics(meth, val_set, device=device, repeats=cfg.loop.eval_repeats, seed=cfg.seed,
                                  batch_size=max(2, getattr(m, "batch_size", 64)), protocol=protocol)

    def extra(meth: nn.Module) -> dict[str, Any]:
        return {"method": m.name, "config": json.dumps(cfg.to_dict()), "space": cfg.space,
                "embedders": embedder_entries(meth, prep), "num_classes": len(pids),
                "train_pids": pids}

    if val_set is None:
        print("reid-train: no validation identities (set data.val_identities or use a split with 'val'); "
              "early stopping is off and best.pt is the last epoch", flush=True)
    lc = cfg.loop
    trainer = Trainer(model, opt, sched, loader, out_dir=cfg.output, validate=validate if val_set else None,
                      checkpoint_extra=extra, device=device, rank=rank,
                      options=LoopOptions(epochs=lc.epochs, patience=lc.patience, eval_every=lc.eval_every,
                                          checkpoint_every=lc.checkpoint_every,
                                          max_steps_per_epoch=lc.max_steps_per_epoch, progress=lc.progress,
                                          tensorboard=lc.log == "tensorboard"))
    out = Path(cfg.output)
    if resume == "auto":
        resume = out / "last.pt" if (out / "last.pt").is_file() else None
    if resume is not None:
        trainer.resume(resume)
    if rank == 0 and (trainer.finished() is None or not (out / "config.yaml").is_file()):
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(cfg.to_yaml())  # a finished run keeps the config it ran with
    try:
        summary = trainer.fit()
        if world > 1:
            # Ranks leave together: a rank that tears down gloo while another still talks to it aborts.
            torch.distributed.barrier()
        return summary
    finally:
        if world > 1:
            # Free the DDP reducer and its pending gloo work while the interpreter is fully alive;
            # left to interpreter shutdown, gloo's threads can abort the process (SIGABRT).
            trainer = model = None
            gc.collect()
            torch.distributed.destroy_process_group()
