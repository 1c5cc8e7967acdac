"""The `>>>` examples in policydiff's docstrings run, and they keep covering the package.

The examples are the package's usage documentation (a Chinese sentence-level change through each
entry point and each renderer); this runs them as tests so they cannot drift from what the code
does, and fails if they vanish: every module and every public function and renderer needs one.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

from policywatch import policydiff

SUBMODULES = sorted(
    info.name for info in pkgutil.walk_packages(policydiff.__path__, prefix="policywatch.policydiff.")
)
MODULES = ["policywatch.policydiff", *SUBMODULES]
# Fewer than this many examples across the package means examples were lost (69 when written).
MIN_EXAMPLES = 60


def run_examples(module: ModuleType) -> doctest.TestResults:
    # No option flags: the examples show whole outputs, indentation of the text format included.
    return doctest.testmod(module, report=False)


@pytest.mark.parametrize("name", MODULES)
def test_the_examples_of_each_module_pass(name: str) -> None:
    result = run_examples(importlib.import_module(name))
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (above)"
    assert result.attempted >= 1, f"{name} has no examples"


def test_the_examples_are_still_there() -> None:
    attempted = sum(run_examples(importlib.import_module(name)).attempted for name in MODULES)
    assert attempted >= MIN_EXAMPLES, f"only {attempted} policydiff examples ran (at least {MIN_EXAMPLES})"


def test_every_public_function_and_renderer_has_an_example() -> None:
    missing = []
    for name in MODULES:
        module = importlib.import_module(name)
        for attr, obj in vars(module).items():
            if attr.startswith("_") or not inspect.isfunction(obj) or obj.__module__ != name:
                continue
            if ">>>" not in (inspect.getdoc(obj) or ""):
                missing.append(f"{name}.{attr}")
    for renderer in policydiff.renderers.values():
        if ">>>" not in (inspect.getdoc(type(renderer)) or ""):
            missing.append(f"renderer {renderer.name!r} ({type(renderer).__qualname__})")
    assert not missing, f"no >>> example: {', '.join(missing)}"
