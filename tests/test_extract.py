"""ssltrain-extract: an encoder's features for every image of a folder, aligned row by row
with an index of paths and labels, written whole or not at all."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from conftest import REPO, run_cli, smoke
from ssltrain.data.sources import NORMALISATION
from ssltrain.extract import main
from ssltrain.registry import DATASETS, ENCODERS
from ssltrain.runtime.feature_folder import FeatureFolder

SYNTHETIC_MEAN, SYNTHETIC_STD = (0.5,) * 3, (0.25,) * 3  # the training run's dataset=synthetic
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A finished run (0 epochs: random weights) of the small CNN on 32 px synthetic images."""
    cwd = tmp_path_factory.mktemp("run")
    result = run_cli(smoke("trainer.epochs=0", "eval=none", "dataset.num_images=64"), cwd)
    assert result.returncode == 0, result.stderr
    return next(cwd.glob("outputs/*/*"))


def write_images(root, names):
    """PNGs of different sizes and seeded random content at `root`/name."""
    generator = np.random.default_rng(0)
    for number, name in enumerate(names):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        pixels = generator.integers(0, 256, (30 + 9 * number, 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / name)
    return root


@pytest.fixture
def labelled(tmp_path):
    return write_images(tmp_path / "pets", ["dog/a.png", "cat/b.png", "cat/a.png", "eel/x/deep.png"])


def extract(*args):
    main([*map(str, args), "--device", "cpu", "--workers", "0"])


def written(output):
    features = np.load(output / "features.npy", mmap_mode="r")
    index = list(csv.DictReader(open(output / "index.csv")))
    return features, index, json.loads((output / "meta.json").read_text())


def encoder_output(encoder, paths, mean, std, size=32):
    """The encoder on each image, prepared by hand: resize the short side to size * 256 / 224,
    centre-crop, scale to [0, 1], normalise."""
    batch = []
    for path in paths:
        pixels = torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)  # [3, H, W]
        pixels = TF.center_crop(TF.resize(pixels, [round(size * 256 / 224)], antialias=True), [size, size])
        batch.append((pixels.float() / 255 - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1))
    with torch.no_grad():
        return encoder.eval()(torch.stack(batch))


def run_encoder(run_dir):
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    encoder = ENCODERS.build("small_cnn", context={"image_size": 32}, channels=[8, 16])
    encoder.load_state_dict({key[len("encoder."):]: value for key, value in state["method"].items()
                             if key.startswith("encoder.")})
    return encoder


def test_features_of_a_labelled_folder_equal_the_encoders_output_on_the_same_images(run_dir, labelled, tmp_path):
    extract(run_dir, labelled, "--output", tmp_path / "out")
    features, index, meta = written(tmp_path / "out")
    expected = encoder_output(run_encoder(run_dir), [labelled / row["path"] for row in index], SYNTHETIC_MEAN,
                              SYNTHETIC_STD)
    assert features.dtype == np.float32 and features.shape == (4, 16) == tuple(expected.shape)
    torch.testing.assert_close(torch.from_numpy(np.array(features)), expected, rtol=1e-4, atol=1e-5)
    assert (meta["encoder"], meta["image_size"], meta["mean"], meta["std"]) == ("small_cnn", 32, [0.5] * 3, [0.25] * 3)


def test_the_index_gives_each_row_its_path_and_its_class_by_sorted_name(run_dir, labelled, tmp_path):
    extract(run_dir, labelled, "--output", tmp_path / "out")
    _, index, meta = written(tmp_path / "out")
    assert [(row["row"], row["path"], row["label"], row["class"]) for row in index] == [
        ("0", "cat/a.png", "0", "cat"), ("1", "cat/b.png", "0", "cat"), ("2", "dog/a.png", "1", "dog"),
        ("3", "eel/x/deep.png", "2", "eel")]
    assert (meta["classes"], meta["count"], meta["skipped"]) == (["cat", "dog", "eel"], 4, [])


def test_images_directly_in_the_folder_are_unlabelled(run_dir, tmp_path):
    folder = write_images(tmp_path / "loose", ["b.jpg", "a.png"])
    extract(run_dir, folder, "--output", tmp_path / "out")
    _, index, meta = written(tmp_path / "out")
    assert [(row["path"], row["label"], row["class"]) for row in index] == [("a.png", "-1", ""), ("b.jpg", "-1", "")]
    assert meta["classes"] == []


def test_an_unreadable_image_is_left_out_and_listed_and_the_rows_stay_aligned(run_dir, labelled, tmp_path):
    extract(run_dir, labelled, "--output", tmp_path / "clean")
    (labelled / "cat" / "broken.png").write_bytes(b"not a png")
    extract(run_dir, labelled, "--output", tmp_path / "out", "--batch-size", "2")
    features, index, meta = written(tmp_path / "out")
    clean_features, clean_index, _ = written(tmp_path / "clean")
    assert [row["path"] for row in index] == [row["path"] for row in clean_index]  # broken.png sorts among them
    assert [row["row"] for row in index] == ["0", "1", "2", "3"] and features.shape == (4, 16)
    np.testing.assert_allclose(features, clean_features, rtol=1e-5, atol=1e-6)
    assert (meta["count"], meta["skipped"]) == (4, ["cat/broken.png"])


def test_a_bare_backbone_is_built_as_named_and_fed_imagenet_normalised_images(tmp_path, labelled):
    torch.manual_seed(0)
    encoder = ENCODERS.build("small_cnn", context={"image_size": 24})
    torch.save(encoder.state_dict(), tmp_path / "backbone.pt")
    extract(tmp_path / "backbone.pt", labelled, "--encoder", "small_cnn", "--image-size", "24")
    features, index, meta = written(tmp_path / "features" / "pets")  # beside the backbone by default
    expected = encoder_output(encoder, [labelled / row["path"] for row in index], IMAGENET_MEAN, IMAGENET_STD, 24)
    torch.testing.assert_close(torch.from_numpy(np.array(features)), expected, rtol=1e-4, atol=1e-5)
    assert meta["checkpoint"] == str((tmp_path / "backbone.pt").resolve())


def test_a_runs_backbone_file_is_fed_as_in_its_run(run_dir, labelled, tmp_path):
    extract(run_dir, labelled, "--output", tmp_path / "from-run")
    extract(run_dir / "backbone.pt", labelled, "--output", tmp_path / "from-backbone")
    np.testing.assert_array_equal(written(tmp_path / "from-run")[0], written(tmp_path / "from-backbone")[0])


def test_the_readme_lines_load_what_was_written(run_dir, labelled, tmp_path):
    extract(run_dir, labelled, "--output", tmp_path / "out")
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Extract features for any folder"):]
    lines = [line for line in section.splitlines() if "np.load(" in line or "csv.DictReader(" in line][:2]
    namespace = {"np": np, "csv": csv}
    exec("\n".join(lines).replace("DIR", str(tmp_path / "out")), namespace)
    assert namespace["features"].shape == (4, 16) and len(namespace["index"]) == 4


def test_an_extraction_shows_its_folder_only_when_whole_and_a_stopped_one_leaves_nothing(run_dir, labelled, tmp_path,
                                                                                          monkeypatch, capsys):
    output = tmp_path / "runs" / "out"
    extract(run_dir, labelled, "--output", output)
    before = (output / "features.npy").read_bytes()
    seen = []

    def append_then_stop(self, features, entries):  # the second extraction, after its first batch
        append(self, features, entries)
        seen.append((sorted(os.listdir(output)), sorted(path.name for path in output.parent.glob(".out.*.partial/*"))))
        raise KeyboardInterrupt

    append = FeatureFolder.append
    monkeypatch.setattr(FeatureFolder, "append", append_then_stop)
    with pytest.raises(SystemExit) as stopped:
        extract(run_dir, labelled, "--output", output, "--batch-size", "2")
    assert stopped.value.code == 130 and "stopped by Ctrl-C" in capsys.readouterr().err
    # while it ran, the earlier extraction stood whole and the new rows went to a hidden folder
    assert seen == [(["features.npy", "index.csv", "meta.json"], ["features.npy", "index.csv"])]
    assert os.listdir(output.parent) == ["out"] and (output / "features.npy").read_bytes() == before


def test_a_second_extraction_to_the_same_folder_replaces_the_first(run_dir, labelled, tmp_path):
    extract(run_dir, labelled, "--output", tmp_path / "out")
    shutil.rmtree(labelled / "cat")
    extract(run_dir, labelled, "--output", tmp_path / "out")
    features, index, meta = written(tmp_path / "out")
    assert features.shape == (2, 16) and meta["count"] == len(index) == 2
    assert sorted(os.listdir(tmp_path)) == ["out", "pets"]


BAD_INPUTS = {
    "no checkpoint": (lambda run, folder, tmp: [tmp / "nowhere", folder], r"checkpoint=.*nowhere does not exist"),
    "no folder": (lambda run, folder, tmp: [run, tmp / "nothing"], r"nothing is not a folder"),
    "no images": (lambda run, folder, tmp: [run, tmp / "empty"], r"no images \(.*\) under .*empty"),
    "output under a file": (lambda run, folder, tmp: [run, folder, "--output", tmp / "a-file" / "sub" / "out"],
                            r"cannot write the output folder .*a-file/sub/out \(Not a directory\); choose another"),
    "output holding other files": (lambda run, folder, tmp: [run, folder, "--output", tmp],
                                   r"holds other files than an extraction's \(a-file, backbone.pt, empty\)"),
    "bare backbone without encoder": (lambda run, folder, tmp: [tmp / "backbone.pt", folder],
                                      r"bare backbone.pt .* --encoder resnet18 --image-size 224"),
    "encoder given for a run": (lambda run, folder, tmp: [run, folder, "--image-size", "64"],
                                r"comes with its run's config .* drop --encoder and --image-size"),
    "unknown encoder": (lambda run, folder, tmp: [tmp / "backbone.pt", folder, "--encoder", "nope", "--image-size", "8"],
                        r"unknown encoder 'nope'; valid choices: "),
    "zero batch": (lambda run, folder, tmp: [run, folder, "--batch-size", "0"], r"--batch-size=0 must be > 0"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_stops_in_one_line_before_any_work(case, run_dir, labelled, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "a-file").write_text("")
    torch.save(ENCODERS.build("small_cnn", context={"image_size": 8}).state_dict(), tmp_path / "backbone.pt")
    arguments, message = BAD_INPUTS[case]
    with pytest.raises(SystemExit) as stopped:
        extract(*arguments(run_dir, labelled, tmp_path))
    error = capsys.readouterr().err
    assert stopped.value.code == 2 and error.count("\n") == 1 and error.startswith("ssltrain-extract: error: ")
    assert re.search(message, error), error
    assert not (run_dir / "features").exists() and sorted(os.listdir(tmp_path)) == ["a-file", "backbone.pt", "empty",
                                                                                     "pets"]


def test_the_command_is_installed_and_runs_as_a_module_without_torch_for_its_version():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["ssltrain-extract"] == "ssltrain.extract:main"
    check = "import sys; sys.argv[1:] = ['--version']; import runpy; runpy.run_module('ssltrain.extract', run_name='__main__')"
    result = subprocess.run([sys.executable, "-c", f"{check}\n"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert (result.returncode, result.stdout) == (0, "ssltrain 0.1.0\n") and "torch" not in result.stderr


def test_every_registered_dataset_has_its_normalisation_known_by_name():
    assert sorted(NORMALISATION) == DATASETS.names()
