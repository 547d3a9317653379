"""Config composition, the registry behind every group, and one-line errors for bad input."""

from __future__ import annotations

import pytest
import yaml

from conftest import PRESET_METHOD, REPO
from kit import required_overrides
from omegaconf import MISSING

from ssltrain.compose import compose_settings, preflight
from ssltrain.config import REGISTRY_GROUPS, code_defaults
from ssltrain.errors import UserError
from ssltrain.groups import CONFIG_DIR, GROUPS, group_choices
from ssltrain.registry import DATASETS, ENCODERS, EVALUATORS, METHODS, OPTIMIZERS, Registry

REGISTRIES = {"method": METHODS, "encoder": ENCODERS, "dataset": DATASETS, "optimizer": OPTIMIZERS, "eval": EVALUATORS}
# what some choices need besides their name to compose: a root, or a method taking their views
REQUIRED = {("dataset", "imagefolder"): ["dataset.root=/tmp"], ("dataset", "webdataset"): ["dataset.shards=/tmp"],
            **{("augmentation", preset): [f"method={method}"] for preset, method in PRESET_METHOD.items()},
            ("augmentation", "multicrop_imagenet"): ["method=swav", "dataset.image_size=224"],  # 96 px local crops
            **{("method", method): required_overrides(method) for method in METHODS.names()}}
CHOSEN = [(group, choice) for group in GROUPS if group != "experiment" for choice in group_choices(group)]


@pytest.mark.parametrize("group,choice", CHOSEN)
def test_every_choice_of_every_group_composes_into_typed_settings(group, choice):
    settings = compose_settings([f"{group}={choice}", *REQUIRED.get((group, choice), [])])
    assert getattr(settings, group).name == choice


@pytest.mark.parametrize("group", REGISTRIES)
def test_config_files_of_a_group_are_exactly_its_registry_names(group):
    assert group_choices(group) == REGISTRIES[group].names()


@pytest.mark.parametrize("group", [group for group in GROUPS if group != "experiment"])
def test_each_config_file_names_itself(group):
    paths = sorted((CONFIG_DIR / group).glob("*.yaml"))
    assert paths, f"no configs/{group}/*.yaml"
    for path in paths:
        content = yaml.safe_load(path.read_text())
        node = content[group] if group == "method" else content  # methods are `# @package _global_`
        assert node["name"] == path.stem, path


@pytest.mark.parametrize("group,choice", [(group, choice) for group in REGISTRIES for choice in group_choices(group)])
def test_no_yaml_file_repeats_a_default_the_code_holds(group, choice):
    content = yaml.safe_load((CONFIG_DIR / group / f"{choice}.yaml").read_text())
    node = content[group] if group == "method" else content
    in_code = {key for key, value in code_defaults(group, choice).items() if value != MISSING and key != "name"}
    assert not in_code & set(node), f"{group}/{choice}.yaml repeats the code's defaults of {sorted(in_code & set(node))}"


@pytest.mark.parametrize("method", group_choices("method"))
def test_a_method_file_chooses_its_recipe_and_sets_no_other_groups_values(method):
    content = yaml.safe_load((CONFIG_DIR / "method" / f"{method}.yaml").read_text())
    assert set(content) <= {"defaults", "method", "trainer"}, "optimizer values belong in recipe/<method>/<optimizer>.yaml"
    assert content["method"] == {"name": method}, "a method's hyperparameters take their defaults from its code"
    assert all(key.startswith("override /") for entry in content.get("defaults", []) for key in entry), \
        "a method's defaults only choose other groups' entries"


def test_every_recipe_file_is_for_a_registered_method_and_optimizer():
    paths = [path for path in (CONFIG_DIR / "recipe").glob("*/*.yaml") if path.parent.name != "shared"]
    assert paths, "no configs/recipe/<method>/<optimizer>.yaml"
    for path in paths:
        assert path.parent.name in METHODS.names() and path.stem in OPTIMIZERS.names(), path


def test_the_defaults_are_simclr_resnet18_cifar10_with_a_linear_probe():
    settings = compose_settings([])
    assert (settings.method.name, settings.encoder.name, settings.dataset.name, settings.eval.name) == (
        "simclr", "resnet18", "cifar10", "linear")
    assert settings.augmentation.name == "simclr" and settings.optimizer.name == "lars"


def test_a_method_recipe_sets_its_optimizer_values_and_the_command_line_wins():
    assert compose_settings([]).optimizer.lr == 0.4
    assert compose_settings(["optimizer.lr=0.6"]).optimizer.lr == 0.6


def test_another_optimizer_gets_its_own_values_not_the_recipes_optimizers():
    adamw = compose_settings(["method=byol", "optimizer=adamw"]).optimizer
    assert (adamw.name, adamw.lr, adamw.weight_decay) == ("adamw", 1.0e-3, 0.05)  # configs/optimizer/adamw.yaml
    assert set(adamw.options) == {"betas", "eps"}


def test_another_optimizer_gets_the_recipes_values_for_it_where_the_recipe_has_some():
    optimizer = compose_settings(["method=dino", "optimizer=adamw"]).optimizer
    assert (optimizer.lr, optimizer.weight_decay, optimizer.weight_decay_end) == (5.0e-4, 0.04, 0.4)


@pytest.mark.parametrize("overrides", [["method=rotation", "optimizer=adamw"], ["method=mae", "optimizer=sgd"],
                                       ["method=barlow_twins", "optimizer=sgd"]])
def test_switching_the_optimizer_leaves_no_key_of_the_recipes_optimizer(overrides):
    recipes = compose_settings(overrides[:1]).optimizer
    chosen = compose_settings(overrides).optimizer
    assert chosen.name == overrides[1].split("=")[1] != recipes.name
    assert set(chosen.options) <= set(code_defaults("optimizer", chosen.name)), "a key of the recipe's optimizer"


def test_an_optimizer_setting_of_a_recipe_lives_with_the_optimizer():
    assert compose_settings(["method=barlow_twins"]).optimizer.bias_lr_scale == pytest.approx(0.0048 / 0.2)
    assert compose_settings(["method=barlow_twins", "optimizer=adamw"]).optimizer.bias_lr_scale == 1.0
    assert compose_settings(["method=rotation"]).optimizer.options["nesterov"] is True


def test_an_experiment_sets_method_encoder_optimizer_and_trainer_together():
    settings = compose_settings(["experiment=dino_vit_small"])
    assert (settings.method.name, settings.encoder.name, settings.optimizer.name) == ("dino", "vit_small", "adamw")
    assert settings.trainer.clip_grad == 3.0 and settings.optimizer.lr == 5.0e-4
    assert settings.method.options["out_dim"] == 65536


@pytest.mark.parametrize("experiment", group_choices("experiment"))
def test_every_experiment_composes(experiment):
    assert compose_settings([f"experiment={experiment}"]).method.name


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
    (["eval=linear,knm"], "unknown eval 'knm'; valid choices: embedding, finetune, kmeans, knn, layers, linear, none, retrieval, suite"),
    (["dataset.holdout_fraction=1.5"], "dataset.holdout_fraction=1.5 must be in (0, 1)"),
    (["augmentation=byol", "augmentation.views.2.solarize_p=0.0"], "unknown key 'augmentation.views.2.solarize_p'; valid keys in augmentation.views: indices 0 to 1"),
    (["augmentation=weak"], "method simclr trains on 2 views but the augmentation makes 1; choose another augmentation"),
    (["method=mae", "encoder=resnet18"], "method mae needs a vit encoder; choose encoder= one of: vit_small, vit_tiny"),
    (["trainer.clip_grad=-1"], "trainer.clip_grad=-1.0 must be > 0"),
    (["augmentation.backend=fast"], "augmentation.backend='fast' is not valid; choose one of: auto, batched, per_sample, streamed"),
    (["augmentation.views.0.size=16"], "augmentation.views.0 does not set 'size' (its default applies); "
                                       "add it with +augmentation.views.0.size=VALUE"),
    (["encoder=vit_tiny", "+augmentation.views.0.size=18"], "method simclr cannot encode view 0 (18 px): 18 px inputs "
                                                            "do not fit the ViT's 4 px patches"),
    (["method=mae", "+augmentation.views.0.size=16"], "method mae reconstructs the 64 patches of 32 px views, got 16 px"),
    (["optimizer.lr=-1"], "optimizer.lr=-1.0 must be >= 0"),
    (["optimizer.weight_decay=-5"], "optimizer.weight_decay=-5.0 must be >= 0"),
    (["trainer.resume=maybe"], "trainer.resume=maybe: no such file or folder; valid values are auto, never, or the path"),
    (["trainer.checkpoint_every=soon"], "trainer.checkpoint_every=soon is not an interval; give steps (500), a time"),
    (["checkpoint=/no/such/run"], "checkpoint=/no/such/run does not exist; give a run's folder or the path of its"),
    (["eval.label_fraction=0"], "eval.label_fraction=0.0 must be in (0, 1]"),
    (["eval=finetune", "eval.label_fraction=1.5"], "eval.label_fraction=1.5 must be in (0, 1]"),
    (["eval=[knn,foo]"], "unknown eval 'foo' in eval.protocols; valid choices: embedding, finetune, kmeans, knn, layers, linear, retrieval"),
    (["eval=[knn]", "+eval.settings.linear.epochs=5"], "eval.settings.linear sets a protocol that does not run"),
    (["eval=[linear]", "+eval.settings.linear.epochz=5"], "unknown key 'eval.settings.linear.epochz'; valid keys: name"),
    (["trainer.epochs=interval(-5,2)"], "trainer.epochs=-5 must be >= 0"),
    (["method.temperature=choice(0.1,oops)"], "'method.temperature': Value 'oops' of type 'str' could not be converted"),
    (["method=byol", "trainer.accumulate_steps=3"], "trainer.accumulate_steps=3 must divide trainer.batch_size=256"),
    (["trainer.accumulate_steps=2"], "method simclr cannot train with trainer.accumulate_steps=2: its loss couples"),
    (["encoder=resnet18", "encoder.checkpointing=true"], "encoder.checkpointing=true recomputes a ViT's blocks and "
                                                         "encoder resnet18 is a cnn; choose one of vit_small, vit_tiny"),
])
def test_bad_overrides_fail_with_one_line_naming_the_fix(overrides, expected):
    with pytest.raises(UserError) as error:
        preflight(overrides)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(expected), message


def test_an_optuna_search_space_passes_preflight_with_both_ends_checked():
    preflight(["optimizer.lr=interval(0.1,2.0)", "method.temperature=tag(log,interval(0.05,0.5))",
               "trainer.epochs=choice(1,2)"])


@pytest.mark.parametrize("old,new", [("gpu", "batched"), ("cpu", "per_sample")])
def test_the_backends_older_names_still_choose_them(old, new):
    assert compose_settings([f"augmentation.backend={old}"]).augmentation.backend == new


def test_one_view_of_the_augmentation_list_is_set_by_its_index():
    settings = compose_settings(["augmentation=byol", "augmentation.views.1.solarize_p=0.5"])
    assert [view.solarize_p for view in settings.augmentation.views] == [0.0, 0.5]


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


def test_the_light_group_list_names_every_registry():
    """groups.py lists the groups without importing the registries (so --help needs no torch)."""
    assert set(REGISTRY_GROUPS) <= set(GROUPS)


def test_the_schema_cache_composes_the_same_config_as_the_code():
    from ssltrain import schema_cache
    from ssltrain.groups import compose_config

    from_code = compose_config(["method=byol", "encoder=vit_tiny", "optimizer=adamw"])
    schema_cache.store(schema_cache.load())
    assert compose_config(["method=byol", "encoder=vit_tiny", "optimizer=adamw"]) == from_code
