"""Runs the locker contract suite against every rig in ``tests/contract/rig_*.py``.

Each rig module lists factories in ``RIGS``; the ``rig`` fixture is parametrised over all
of them (ids: the factory's ``name`` attribute or ``__name__``). A rig module that fails
to import shows up as one failing parameter, not as a broken test session.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.contract.rig import Rig, wait_ready

RigFactory = Callable[[], Rig]


def _broken(module: str, error: BaseException) -> RigFactory:
    def factory() -> Rig:
        raise RuntimeError(f"rig module {module} is unusable: {error!r}") from error

    factory.__name__ = f"{module}-BROKEN"
    return factory


def _factory_id(module: str, factory: RigFactory) -> str:
    name = getattr(factory, "name", None) or getattr(factory, "__name__", None)
    return str(name or f"{module}[{id(factory):x}]")


def discover_rigs() -> list[tuple[str, RigFactory]]:
    """Every (id, factory) from the rig modules next to this file, sorted by module name."""
    found: list[tuple[str, RigFactory]] = []
    for path in sorted(Path(__file__).parent.glob("rig_*.py")):
        module_name = f"{__package__}.{path.stem}"
        try:
            module = importlib.import_module(module_name)
            factories = list(module.RIGS)
        except Exception as exc:  # show the broken rig as a failing test, keep the others
            found.append((f"{path.stem}-BROKEN", _broken(path.stem, exc)))
            continue
        found.extend((_factory_id(path.stem, f), f) for f in factories)
    return found


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise ``rig_factory`` (and through it ``rig``) over every discovered rig."""
    if "rig_factory" in metafunc.fixturenames:
        rigs = discover_rigs()
        metafunc.parametrize(
            "rig_factory", [f for _, f in rigs], ids=[i for i, _ in rigs], scope="function"
        )


@pytest.fixture
def rig(rig_factory: RigFactory) -> Iterator[Rig]:
    """A started rig whose locker has seen every door closed; closed after the test."""
    built = rig_factory()
    try:
        wait_ready(built.locker)
        yield built
    finally:
        built.close()
