"""Every Lambda bundle imports cleanly with only the dependencies layer's requirements installed.

The synth's layer asset lists its requirements (the marker written instead of running pip); the distributions they
need, and the distributions those need in turn, are linked from this virtualenv into a folder of their own. Each
function's synthesized bundle then imports every one of its modules in an isolated interpreter (`-I -S -B`: no site
packages, no editable installs, no PYTHONPATH, no .pyc written into the asset) that sees only the bundle, that
folder and the standard library.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from infra.bundling import NOT_INSTALLED_MARKER
from tests.infra.conftest import Synthesized

IMPORT_EVERY_MODULE = """
import importlib, json, pathlib, sys
root = pathlib.Path(sys.argv[1])
failures = {}
for path in sorted(root.rglob("*.py")):
    parts = path.relative_to(root).with_suffix("").parts
    name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    try:
        importlib.import_module(name)
    except Exception as error:
        failures[name] = f"{type(error).__name__}: {error}"
print(json.dumps(failures))
"""


def _distribution_closure(requirements: list[str]) -> set[str]:
    """Names of the installed distributions the requirements need, with their extras and markers."""
    needed: set[str] = set()
    pending = [Requirement(r) for r in requirements]
    while pending:
        requirement = pending.pop()
        distribution = metadata.distribution(requirement.name)
        name = distribution.metadata["Name"].lower()
        key = f"{name}[{','.join(sorted(requirement.extras))}]"
        if key in needed:
            continue
        needed.update({name, key})
        for text in distribution.requires or []:
            dependency = Requirement(text)
            environments = [{"extra": extra} for extra in requirement.extras] or [{"extra": ""}]
            if dependency.marker is None or any(dependency.marker.evaluate(e) for e in environments):
                pending.append(dependency)
    return {n for n in needed if "[" not in n}


def _link_distributions(names: set[str], target: Path) -> None:
    """Symlink each distribution's top-level packages, modules and metadata into `target` (a layer's layout)."""
    for name in names:
        distribution = metadata.distribution(name)
        for file in distribution.files or []:
            top = file.parts[0]
            if top in ("..", "__pycache__") or top.endswith(".pth"):
                continue
            source = Path(str(distribution.locate_file(top)))
            link = target / top
            if source.exists() and not link.exists():
                link.symlink_to(source)


def _layer_requirements(dev: Synthesized) -> list[str]:
    (layer,) = dev.of_type("AWS::Lambda::LayerVersion").values()
    marker = dev.outdir / layer["Metadata"]["aws:asset:path"] / "python" / NOT_INSTALLED_MARKER
    return [line for line in marker.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def layer_only(dev: Synthesized, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("layer")
    _link_distributions(_distribution_closure(_layer_requirements(dev)), target)
    return target


def _function_bundles(dev: Synthesized) -> dict[str, Path]:
    bundles = {}
    for function in dev.of_type("AWS::Lambda::Function").values():
        handler = function["Properties"].get("Handler", "")
        match = re.fullmatch(r"functions\.(\w+)\.handler\.handler", handler)
        if match:
            bundles[match.group(1)] = dev.outdir / function["Metadata"]["aws:asset:path"]
    return bundles


def test_the_layer_leaves_out_what_only_local_tools_use(dev: Synthesized) -> None:
    # Given the layer's requirements
    names = {Requirement(r).name for r in _layer_requirements(dev)}
    # Then neither the CLI's, the local server's nor the browser's packages are in it
    assert names.isdisjoint({"typer", "rich", "uvicorn", "playwright"})


def test_every_function_bundle_imports_with_only_the_layer(dev: Synthesized, layer_only: Path) -> None:
    # Given each function's synthesized bundle and only the layer's distributions
    bundles = _function_bundles(dev)
    assert set(bundles) == {"api", "ingest", "deliver", "retry_scheduler", "cleanup"}
    for name, bundle in bundles.items():
        # When an isolated interpreter imports every module in the bundle
        path_setup = f"import sys; sys.path[:0] = [{str(bundle)!r}, {str(layer_only)!r}]\n"
        result = subprocess.run(
            [sys.executable, "-I", "-S", "-B", "-c", path_setup + IMPORT_EVERY_MODULE, str(bundle)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=bundle,
        )
        # Then every module imports, and the bundle holds no local runner or CLI
        assert result.returncode == 0, result.stderr[-4000:]
        assert json.loads(result.stdout) == {}, f"{name}: {result.stdout}"
        assert not (bundle / "wagw_local").exists()
        assert (bundle / "functions" / name / "handler.py").is_file()
