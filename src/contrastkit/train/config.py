r"""Run configurations: a TOML file (or the defaults), overridden from the command line.

A configuration has five tables; every key is optional (the defaults are the demo's)::

    [data]
    name = "digits"          # an id of contrastkit.data.DATASETS
    test_fraction = 0.25     # held-out split (stratified when there are labels)
    limit = 0                # keep at most this many items (0: all)
    views = ["pix", "fou"]   # paired data: the two views (query side first)
    options = {}             # keyword arguments of the loader

    [model]
    encoder = "cnn"          # "cnn" | "mlp" (images); paired views choose by type
    out_features = 128       # representation width
    hidden = [256]           # MLP hidden widths
    width = 16               # CNN channels (first block; then 2x, 4x)
    head = 64                # projection head width for image runs (0: none)

    [loss]
    name = "ntxent"          # any trainable catalog id (`contrastkit losses --trainable`)
    supervised = true        # give class labels to losses over labelled embeddings
    temperature = 0.2        # every other key is an option of the loss

    [augment]                # image runs: options of contrastkit.data.augment.ImageAugment
    rotate = 15.0

    [train]                  # contrastkit.train.TrainConfig
    epochs = 100
    batch_size = 256

Overrides are ``section.key=value`` with a TOML value (``train.epochs=50``,
``loss.temperature=0.1``, ``data.views=["pix","kar"]``); a bare word is taken as a string.
"""

from __future__ import annotations

import copy
import inspect
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from contrastkit import data as ckdata
from contrastkit import models
from contrastkit.data.augment import ImageAugment
from contrastkit.losses import REGISTRY
from contrastkit.train.objectives import build_loss, trainable_losses
from contrastkit.train.tasks import PairedTask, ViewsTask, evaluate_features
from contrastkit.train.trainer import Task, TrainConfig

SECTIONS = ("data", "model", "loss", "augment", "train")

DEFAULTS: dict[str, dict[str, Any]] = {
    "data": {"name": "digits", "test_fraction": 0.25, "limit": 0, "views": [], "options": {}},
    "model": {"encoder": "cnn", "out_features": 128, "hidden": [256], "width": 16, "head": 64},
    "loss": {"name": "ntxent", "supervised": True, "temperature": 0.2},
    "augment": {},
    "train": {"epochs": 100, "batch_size": 256, "lr": 2e-3, "weight_decay": 1e-4},
}
"""The demo's configuration: SimCLR (NT-Xent, tau 0.2) with a small CNN on scikit-learn's digits."""

_MODEL_KEYS = set(DEFAULTS["model"])
_DATA_KEYS = set(DEFAULTS["data"])


class ConfigError(ValueError):
    """A configuration value is wrong; the message says which and how to fix it."""


def _merge(base: dict[str, Any], extra: Mapping[str, Any], where: str) -> None:
    for key, value in extra.items():
        if key not in SECTIONS:
            raise ConfigError(
                f"{where}: unknown table [{key}]; the tables are {', '.join(SECTIONS)}"
            )
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: [{key}] must be a table, got {value!r}")
        base[key].update(copy.deepcopy(dict(value)))


def parse_value(text: str) -> Any:
    """A command-line value as TOML (``3``, ``0.1``, ``true``, ``[1, 2]``), else a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def load_config(
    path: str | Path | None = None,
    overrides: Sequence[str] = (),
    *,
    extra: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """The defaults, updated by the TOML file ``path``, then ``extra``, then ``overrides``.

    Args:
        path: A TOML file with any of the tables ``data``, ``model``, ``loss``, ``augment``,
            ``train``.
        overrides: ``"section.key=value"`` strings.
        extra: Tables applied after the file (the command line's own flags).

    Returns:
        The configuration, one dict per table.

    Raises:
        ConfigError: For a missing or malformed file, an unknown table or a malformed override.

    Example:
        >>> cfg = load_config(overrides=["train.epochs=3", "loss.temperature=0.5"])
        >>> cfg["train"]["epochs"], cfg["loss"]["temperature"]
        (3, 0.5)
    """
    cfg = copy.deepcopy(DEFAULTS)
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config: no file {p}")
        try:
            _merge(cfg, tomllib.loads(p.read_text()), str(p))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config: {p} is not valid TOML: {exc}") from exc
    if extra:
        _merge(cfg, extra, "command line")
    for item in overrides:
        key, sep, value = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise ConfigError(f"--set: {item!r} is not section.key=value (e.g. train.epochs=50)")
        _merge(cfg, {section: {name: parse_value(value.strip())}}, "--set")
    return cfg


def train_config(cfg: Mapping[str, Mapping[str, Any]], *, seed: int) -> TrainConfig:
    """The :class:`TrainConfig` of the ``[train]`` table (``seed`` from the command line)."""
    table = dict(cfg["train"])
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(
            f"[train]: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    table["seed"] = seed
    try:
        return TrainConfig(**table)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[train]: {exc}") from exc


@dataclass
class Built:
    """A ready run: the task, and what the baselines need."""

    task: Task
    kind: str
    train: ckdata.ImageData | ckdata.PairedData
    test: ckdata.ImageData | ckdata.PairedData
    augment: ImageAugment | None

    def raw_metrics(self) -> dict[str, float]:
        """The task's metrics on the raw inputs (flattened pixels / features), no encoder."""
        if isinstance(self.train, ckdata.ImageData) and isinstance(self.test, ckdata.ImageData):
            assert self.augment is not None
            return evaluate_features(
                lambda x: x.flatten(1), self.train, self.test, self.augment.two_views
            )
        raise ConfigError("raw features: only image data sets have a raw-pixel baseline")


def _check_keys(table: Mapping[str, Any], known: set[str], name: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(
            f"[{name}]: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )


def _image_encoder(model: Mapping[str, Any], sample: torch.Tensor) -> nn.Module:
    name = model["encoder"]
    if name == "mlp":
        return models.MLP(
            int(sample[0].numel()), int(model["out_features"]), hidden=list(model["hidden"])
        )
    if name == "cnn":
        return models.SmallCNN(
            int(sample.shape[1]), int(model["out_features"]), width=int(model["width"])
        )
    raise ConfigError(f"[model]: encoder {name!r} is not one of mlp, cnn for image data")


def _view_encoder(model: Mapping[str, Any], view: torch.Tensor | list[str]) -> nn.Module:
    out = int(model["out_features"])
    if isinstance(view, list):
        return models.NGramTower(out, buckets=2**16)
    if view.dim() == 4:
        return models.SmallCNN(int(view.shape[1]), out, width=int(model["width"]))
    return models.MLP(int(view[0].numel()), out, hidden=list(model["hidden"]))


def build(cfg: Mapping[str, Mapping[str, Any]], *, seed: int) -> Built:
    """Load the data, split it, and make the encoders, the loss and the task.

    Parameters are initialized from ``seed`` (the same seed gives the same initial weights).

    Raises:
        ConfigError: For unknown keys, an unknown data set, encoder or loss, or a loss that
            cannot train on two views.
        contrastkit.data.DataSourceMissingError: When the data set's package is not installed.
    """
    data_t, model_t = cfg["data"], cfg["model"]
    _check_keys(data_t, _DATA_KEYS, "data")
    _check_keys(model_t, _MODEL_KEYS, "model")
    _check_types(cfg)
    loss_id = str(cfg["loss"]["name"])
    supervised = bool(cfg["loss"].get("supervised", True))
    if loss_id not in REGISTRY:
        raise ConfigError(
            f"[loss]: unknown catalog id {loss_id!r}; `contrastkit losses` lists them"
        )
    if loss_id not in trainable_losses():
        raise ConfigError(
            f"[loss]: {loss_id!r} cannot be trained by the command line; choose one of "
            f"{', '.join(trainable_losses())} (`contrastkit losses` says why)"
        )
    loss_t = loss_options(loss_id, cfg["loss"])
    try:
        dataset = ckdata.load(str(data_t["name"]), **dict(data_t["options"]))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[data]: {exc}") from exc
    limit = int(data_t["limit"])
    if limit:
        keep = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
        dataset = dataset.subset(keep[:limit])
    train, test = dataset.split(float(data_t["test_fraction"]), seed=seed)
    torch.manual_seed(seed)
    if isinstance(train, ckdata.ImageData) and isinstance(test, ckdata.ImageData):
        try:
            augment = ImageAugment(**dict(cfg["augment"]))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"[augment]: {exc}") from exc
        encoder = _image_encoder(model_t, train.images[:1])
        head_width = int(model_t["head"])
        out = int(model_t["out_features"])
        head: nn.Module = (
            models.ProjectionHead(out, head_width) if head_width > 0 else nn.Identity()
        )
        dim = head_width if head_width > 0 else out
        classes = len(train.classes) if supervised else 0
        loss = _loss(loss_id, loss_t, len(train), classes, dim)
        task: Task = ViewsTask(
            train, test, encoder, head, loss, augment.two_views, supervised=supervised
        )
        return Built(task, "images", train, test, augment)
    assert isinstance(train, ckdata.PairedData)
    assert isinstance(test, ckdata.PairedData)
    views = list(data_t["views"]) or list(train.views)[:2]
    if len(views) != 2 or any(name not in train.views for name in views):
        raise ConfigError(f"[data]: views must name two of {sorted(train.views)}, got {views}")
    encoders = [_view_encoder(model_t, train.views[name]) for name in views]
    classes = len(train.classes) if supervised and train.labels is not None else 0
    loss = _loss(loss_id, loss_t, len(train), classes, int(model_t["out_features"]))
    task = PairedTask(train, test, views, encoders, loss, supervised=supervised)
    return Built(task, "paired", train, test, None)


def loss_options(loss_id: str, table: Mapping[str, Any]) -> dict[str, Any]:
    """The options of ``[loss]`` that go to the loss ``loss_id``.

    ``name`` and ``supervised`` are the command line's own. A default option (the demo's
    ``temperature = 0.2``) goes to every loss that takes it and is left out for the others; an
    option the user set that the loss does not take is an error.

    Raises:
        ConfigError: For an option set by the user that the loss does not accept.
    """
    accepted = set(inspect.signature(REGISTRY[loss_id].__init__).parameters) - {"self"}
    options: dict[str, Any] = {}
    for key, value in table.items():
        if key in ("name", "supervised"):
            continue
        if key in accepted:
            options[key] = value
        elif DEFAULTS["loss"].get(key, _MISSING) != value:
            raise ConfigError(
                f"[loss]: {loss_id!r} takes no option {key!r}; it accepts: "
                f"{', '.join(sorted(accepted))}"
            )
    return options


_MISSING = object()


def _check_types(cfg: Mapping[str, Mapping[str, Any]]) -> None:
    data_t, model_t = cfg["data"], cfg["model"]
    checks: list[tuple[str, object, bool, str]] = [
        ("data.name", data_t["name"], isinstance(data_t["name"], str), "a data set id"),
        ("data.options", data_t["options"], isinstance(data_t["options"], Mapping), "a table"),
        ("data.views", data_t["views"], isinstance(data_t["views"], list), "a list of names"),
        (
            "data.limit",
            data_t["limit"],
            type(data_t["limit"]) is int and data_t["limit"] >= 0,
            "an int >= 0 (0: all)",
        ),
        (
            "data.test_fraction",
            data_t["test_fraction"],
            isinstance(data_t["test_fraction"], float | int) and 0 < data_t["test_fraction"] < 1,
            "a number in (0, 1)",
        ),
        (
            "model.hidden",
            model_t["hidden"],
            isinstance(model_t["hidden"], list)
            and all(type(h) is int and h > 0 for h in model_t["hidden"]),
            "a list of positive ints, e.g. [256]",
        ),
        (
            "loss.supervised",
            cfg["loss"].get("supervised", True),
            isinstance(cfg["loss"].get("supervised", True), bool),
            "true or false",
        ),
    ]
    for key in ("out_features", "width", "head"):
        value = model_t[key]
        minimum = 0 if key == "head" else 1
        ok = type(value) is int and value >= minimum
        checks.append((f"model.{key}", value, ok, f"an int >= {minimum}"))
    for name, value, ok, what in checks:
        if not ok:
            raise ConfigError(f"{name}: must be {what}; got {value!r}")


def _loss(loss_id: str, options: dict[str, Any], n: int, classes: int, dim: int) -> Any:
    params = inspect.signature(REGISTRY[loss_id].__init__).parameters
    if "num_classes" in params and classes < 2:
        raise ConfigError(
            f"[loss]: {loss_id!r} learns one prototype or proxy per class and needs class "
            "labels: use labelled data with loss.supervised = true"
        )
    try:
        return build_loss(loss_id, options, num_samples=n, num_classes=classes, embedding_dim=dim)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[loss]: {exc}") from exc


def to_toml(cfg: Mapping[str, Mapping[str, Any]]) -> str:
    """The configuration as TOML text (for the report folder)."""
    lines: list[str] = []
    for section in SECTIONS:
        lines.append(f"[{section}]")
        for key, value in cfg[section].items():
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, Sequence):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise ConfigError(f"config: cannot write {value!r} as TOML")
