"""Config composition, the registry behind every group, and one-line errors for bad input."""

from __future__ import annotations


import pytest
import yaml

from conftest import REPO
from ssltrain.cli import CONFIG_DIR, GROUPS, compose_settings, group_choices, preflight
from ssltrain.errors import UserError
from ssltrain.registry import DATASETS, ENCODERS, EVALUATORS, METHODS, OPTIMIZERS, Registry

REGISTRIES = {"method": METHODS, "encoder": ENCODERS, "dataset": DATASETS, "optimizer": OPTIMIZERS, "eval": EVALUATORS}
# what some choices need besides their name to compose
REQUIRED = {("dataset", "imagefolder"): ["dataset.root=/tmp"]}


@pytest.mark.parametrize("group,choice", [(g, c) for g in GROUPS for c in group_choices(g)])
def test_every_choice_of_every_group_composes_into_typed_settings(group, choice):
    settings = compose_settings([f"{group}={choice}", *REQUIRED.get((group, choice), [])])
    assert getattr(settings, group).name == choice


@pytest.mark.parametrize("group", REGISTRIES)
def test_config_files_of_a_group_are_exactly_its_registry_names(group):
    assert group_choices(group) == REGISTRIES[group].names()


@pytest.mark.parametrize("group", GROUPS)
def test_each_config_file_names_itself(group):
    for path in (CONFIG_DIR / group).glob("*.yaml"):
        content = yaml.safe_load(path.read_text())
        node = content[group] if group == "method" else content  # methods are `# @package _global_`
        assert node["name"] == path.stem, path


def test_the_defaults_are_simclr_resnet18_cifar10_with_a_linear_probe():
    settings = compose_settings([])
    assert (settings.method.name, settings.encoder.name, settings.dataset.name, settings.eval.name) == (
        "simclr", "resnet18", "cifar10", "linear")
    assert settings.augmentation.name == "simclr" and settings.optimizer.name == "lars"


def test_a_method_recipe_sets_its_optimizer_values_and_the_command_line_wins():
    assert compose_settings([]).optimizer.lr == 0.4
    assert compose_settings(["optimizer.lr=0.6"]).optimizer.lr == 0.6
    assert compose_settings(["optimizer=sgd"]).optimizer.name == "sgd"


def test_builder_arguments_become_typed_options():
    settings = compose_settings(["method.temperature=0.5", "encoder=small_cnn", "encoder.channels=[4,8]"])
    assert settings.method.options["temperature"] == 0.5
    assert settings.encoder.options["channels"] == [4, 8]


@pytest.mark.parametrize("overrides,expected", [
    (["method=simclrr"], "unknown method 'simclrr'; valid choices: "),
    (["trainer.epochz=3"], "unknown key 'trainer.epochz'; valid keys in trainer: epochs"),
    (["trainer.epochs=many"], "'trainer.epochs': Value 'many' of type 'str' could not be converted to Integer"),
    (["trainer.device=gpu"], "trainer.device='gpu' is not valid; choose one of: auto, cpu, cuda"),
    (["+method.temprature=0.1"], "unknown key 'method.temprature'; valid keys: name, temperature"),
    (["dataset=imagefolder"], "'dataset.root' is required"),
    (["optimizer.lr=0.1,oops"], "'optimizer.lr': Value 'oops' of type 'str' could not be converted to Float"),
    (["eval=linear,knm"], "unknown eval 'knm'; valid choices: finetune, knn, linear, none"),
    (["dataset.holdout_fraction=1.5"], "dataset.holdout_fraction=1.5 must be in (0, 1)"),
])
def test_bad_overrides_fail_with_one_line_naming_the_fix(overrides, expected):
    with pytest.raises(UserError) as error:
        preflight(overrides)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(expected), message


def test_an_unknown_registry_name_lists_the_registered_ones():
    with pytest.raises(UserError, match="unknown encoder 'resnet19'; valid choices: resnet18, resnet34"):
        ENCODERS.get("resnet19")


def test_registering_a_name_twice_fails():
    registry = Registry("thing", "ssltrain.errors")
    registry.register("a")(lambda: 1)
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("a")(lambda: 2)


def test_build_passes_only_the_context_a_builder_declares():
    registry = Registry("thing", "ssltrain.errors", context=frozenset({"image_size", "encoder"}))
    registry.register("sized")(lambda image_size, width=1: (image_size, width))
    assert registry.build("sized", context={"image_size": 32, "encoder": object()}, width=2) == (32, 2)
    assert list(registry.user_parameters("sized")) == ["width"]


def test_the_readme_lists_every_method_and_every_choice_of_every_group():
    readme = (REPO / "README.md").read_text()
    for name in METHODS.names():
        assert f"| `{name}` |" in readme, f"README's method table lacks {name}"
    for group in ("encoder", "dataset", "augmentation", "optimizer", "eval"):
        for choice in group_choices(group):
            assert f"`{choice}`" in readme, f"README does not mention {group} {choice}"
