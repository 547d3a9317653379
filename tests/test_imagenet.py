"""dataset=imagenet: train/ and val/ class folders, a class-list file for ImageNet-100, and
the ImageNet presets (views, experiments) composing."""

from __future__ import annotations

import pytest

from kit import write_image_folder
from ssltrain.compose import compose_settings
from ssltrain.data.sources import imagenet
from ssltrain.errors import UserError


def _imagenet(root, train_classes=("n01", "n02", "n03"), val_classes=("n01", "n02", "n03")):
    write_image_folder(root, classes=train_classes, per_class=2, size=8, corrupt=False)
    write_image_folder(root / "v", classes=val_classes, per_class=1, size=8, corrupt=False)
    (root / "v" / "train").rename(root / "val")


def test_imagenet_evaluates_on_val_with_the_training_sets_labels(tmp_path):
    _imagenet(tmp_path, val_classes=("n02", "n03"))  # a class without validation images keeps the others' labels
    source = imagenet(str(tmp_path), image_size=8)
    assert source.class_names == ["n01", "n02", "n03"] and source.num_classes == 3
    assert source.test.labels.tolist() == [1, 2]


def test_a_class_list_file_keeps_only_its_classes_in_its_order(tmp_path):
    _imagenet(tmp_path)
    listed = tmp_path / "imagenet100.txt"
    listed.write_text("# two of them\nn03\n\nn01\n")
    source = imagenet(str(tmp_path), image_size=8, classes_file=str(listed))
    assert source.class_names == ["n03", "n01"] and len(source.train) == 4
    assert sorted(source.test.labels.tolist()) == [0, 1]


def test_an_imagenet_root_without_val_says_what_it_needs(tmp_path):
    write_image_folder(tmp_path, per_class=1, corrupt=False)
    with pytest.raises(UserError, match=r"has no val/; ImageNet needs train/<wnid>/\*.JPEG and val/<wnid>/\*.JPEG"):
        imagenet(str(tmp_path))


def test_a_missing_class_list_file_is_one_line(tmp_path):
    _imagenet(tmp_path)
    with pytest.raises(UserError, match="dataset.classes_file=.* does not exist"):
        imagenet(str(tmp_path), classes_file=str(tmp_path / "nope.txt"))


def test_the_imagenet_multicrop_preset_makes_two_224_and_six_96_pixel_crops():
    settings = compose_settings(["experiment=swav_resnet50_imagenet", "dataset.root=/data/imagenet"])
    assert settings.augmentation.view_sizes(settings.dataset.options["image_size"]) == [224] * 2 + [96] * 6
