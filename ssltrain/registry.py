"""Name -> builder registries for every config group.

Each builder is registered with a decorator next to its definition::

    @METHODS.register("simclr")
    class SimCLR(SSLMethod): ...

The config schema of a group entry is derived from the builder's signature (see
config.py), so a registered name, its YAML file and its keyword arguments can never drift
apart. Arguments that come from the run rather than from the user (the encoder a method
wraps, the image size an encoder is built for) are *context*: `build` passes them only to
builders whose signature asks for them, and they never appear in a YAML file.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
from typing import Any, Callable, Generic, TypeVar

from ssltrain.errors import UserError

T = TypeVar("T")

class Registry(Generic[T]):
    """A named collection of builders (classes or functions) for one config group."""

    def __init__(self, group: str, package: str, context: frozenset[str] = frozenset()):
        self.group = group
        self._package: str | None = package  # imported lazily so every entry registers itself
        self.context = context  # argument names the run fills in, never a config file
        self._builders: dict[str, Callable[..., T]] = {}
        self._extras: dict[str, tuple[str, tuple[str, ...]]] = {}  # name -> (extra, modules it needs)
        self._metrics: dict[str, tuple[str, ...]] = {}  # name -> the results it may write (evaluators)

    def register(self, name: str, extra: str | None = None, modules: tuple[str, ...] = (),
                 metrics: tuple[str, ...] = ()) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """`extra`: the optional install (pyproject's optional-dependencies) that provides the
        `modules` this entry imports beyond the core dependencies; `metrics`: the names of the
        numbers an evaluator may return (shell patterns where a setting names them, as
        `stage*_top1`), which trainer.objective is checked against before any work."""
        def decorator(builder: Callable[..., T]) -> Callable[..., T]:
            if name in self._builders:
                raise ValueError(f"{self.group} '{name}' is registered twice")
            self._builders[name] = builder
            self._metrics[name] = metrics
            if extra:
                self._extras[name] = (extra, modules)
            return builder

        return decorator

    def check_installed(self, name: str) -> None:
        """One line saying which extra to install when the entry's modules are missing."""
        self.get(name)
        extra, modules = self._extras.get(name, (None, ()))
        missing = [module for module in modules if importlib.util.find_spec(module) is None]
        if missing:
            raise UserError(f"{self.group}={name} needs {', '.join(missing)}; install it with "
                            f"pip install 'ssltrain[{extra}]'")

    def _load(self) -> None:
        if self._package is None:
            return
        package = importlib.import_module(self._package)
        for module in pkgutil.iter_modules(getattr(package, "__path__", [])):
            importlib.import_module(f"{self._package}.{module.name}")
        self._package = None

    def names(self) -> list[str]:
        self._load()
        return sorted(self._builders)

    def get(self, name: str) -> Callable[..., T]:
        self._load()
        if name not in self._builders:
            raise UserError(
                f"unknown {self.group} '{name}'; valid choices: {', '.join(self.names())}"
            )
        return self._builders[name]

    def metrics(self, name: str) -> tuple[str, ...]:
        """The names (or patterns) of the numbers entry `name` may return; see register."""
        self.get(name)
        return self._metrics[name]

    def user_parameters(self, name: str) -> dict[str, inspect.Parameter]:
        """The builder's keyword arguments that a config file may set."""
        signature = inspect.signature(self.get(name))
        return {
            param.name: param
            for param in signature.parameters.values()
            if param.name not in self.context
            and param.name != "self"
            and param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD)
        }

    def accepts(self, name: str, argument: str) -> bool:
        """Whether the builder takes `argument` (a context entry such as an evaluator's data)."""
        return argument in inspect.signature(self.get(name)).parameters

    def build(self, name: str, context: dict[str, Any] | None = None, **kwargs: Any) -> T:
        """Call the builder with `kwargs` plus the context entries it declares."""
        builder = self.get(name)
        accepted = inspect.signature(builder).parameters
        wanted = {key: value for key, value in (context or {}).items() if key in accepted}
        return builder(**wanted, **kwargs)


METHODS: Registry = Registry("method", "ssltrain.methods",
                             context=frozenset({"encoder", "image_size", "mean", "std", "num_classes", "num_images"}))
ENCODERS: Registry = Registry("encoder", "ssltrain.encoders", context=frozenset({"image_size"}))
DATASETS: Registry = Registry("dataset", "ssltrain.data.sources")
OPTIMIZERS: Registry = Registry("optimizer", "ssltrain.optim", context=frozenset({"params"}))
EVALUATORS: Registry = Registry("eval", "ssltrain.eval", context=frozenset({"encoder", "data", "device", "logger"}))
