"""Lambda packaging without Docker: local bundling of the code and of one dependencies layer.

- Each function's asset holds `shared/` and `functions/<name>/` (plus `functions/__init__.py` when present),
  so the handler is `functions.<name>.handler.handler`.
- One layer holds the runtime dependencies of `pyproject.toml` ([project.dependencies] minus what only the CLI,
  the local server and the session workers use), installed by pip for Lambda's platform (arm64, CPython 3.11)
  from binary wheels only. Its asset hash is the requirement list, so it is built once per outdir.
- The layer's bytecode is compiled at bundling, as unchecked-hash .pyc files: Lambda mounts layers read-only at
  `/opt`, so without them every cold start compiles the dependencies again (and cannot keep the result);
  unchecked-hash files stay valid whatever timestamps the asset zip gives the sources.
- `install=False` (context `wagw:installDependencies=false`, used by the tests) puts a marker file in the layer
  instead of running pip: everything else synthesizes the same, in seconds and offline.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

REPO_ROOT = Path(__file__).resolve().parent.parent

# Lambda's platform: arm64 (Graviton), CPython 3.11.
PIP_PLATFORM = "manylinux2014_aarch64"
PYTHON_VERSION = "3.11"

# Not used by any Lambda: the CLI (typer, rich), the local HTTP server (uvicorn), the browser (playwright).
NOT_IN_LAMBDA = frozenset({"playwright", "typer", "rich", "uvicorn", "cryptography"})

# Never used: local bundling always succeeds or raises. CDK requires an image in BundlingOptions.
_UNUSED_IMAGE = DockerImage.from_registry("local-bundling-only")

_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".mypy_cache", ".pytest_cache")

NOT_INSTALLED_MARKER = ".dependencies-not-installed"


def _requirement_name(requirement: str) -> str:
    name = requirement
    for sep in ("[", "=", "<", ">", "~", "!", ";", " "):
        name = name.split(sep, 1)[0]
    return name.strip().lower().replace("_", "-")


def lambda_requirements(pyproject: Path = REPO_ROOT / "pyproject.toml") -> list[str]:
    """The pinned runtime dependencies the Lambdas need, in pyproject order."""
    data = tomllib.loads(pyproject.read_text())
    requirements: list[str] = data["project"]["dependencies"]
    return [r for r in requirements if _requirement_name(r) not in NOT_IN_LAMBDA]


def compile_command(target: Path) -> list[str]:
    """Compile every module under `target` for this interpreter (Lambda's 3.11), valid without a source check."""
    return [
        sys.executable,
        "-m",
        "compileall",
        "-q",
        "-j",
        "0",
        "--invalidation-mode",
        "unchecked-hash",
        str(target),
    ]


def pip_command(target: Path, requirements_file: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        str(target),
        "--platform",
        PIP_PLATFORM,
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        "--only-binary=:all:",
        "--requirement",
        str(requirements_file),
    ]


@jsii.implements(ILocalBundling)
class FunctionCodeBundler:
    """Copies `shared/` and one `functions/<name>/` package into the asset directory."""

    def __init__(self, function: str, repo_root: Path) -> None:
        self.function = function
        self.repo_root = repo_root

    def try_bundle(self, output_dir: str, *_options: Any, **_kw_options: Any) -> bool:
        out = Path(output_dir)
        package = self.repo_root / "functions" / self.function
        if not (package / "handler.py").is_file():
            raise FileNotFoundError(f"{package}/handler.py is missing: every function needs a handler module")
        shutil.copytree(self.repo_root / "shared", out / "shared", ignore=_IGNORED, dirs_exist_ok=True)
        shutil.copytree(package, out / "functions" / self.function, ignore=_IGNORED, dirs_exist_ok=True)
        init = self.repo_root / "functions" / "__init__.py"
        if init.is_file():
            shutil.copy2(init, out / "functions" / "__init__.py")
        return True


@jsii.implements(ILocalBundling)
class DependenciesBundler:
    """Installs the Lambda requirements into `python/` (the layer layout) with pip, for arm64."""

    def __init__(self, requirements: list[str], *, install: bool) -> None:
        self.requirements = requirements
        self.install = install

    def try_bundle(self, output_dir: str, *_options: Any, **_kw_options: Any) -> bool:
        target = Path(output_dir) / "python"
        target.mkdir(parents=True, exist_ok=True)
        if not self.install:
            (target / NOT_INSTALLED_MARKER).write_text("\n".join(self.requirements) + "\n")
            return True
        requirements_file = Path(output_dir) / "requirements.txt"
        requirements_file.write_text("\n".join(self.requirements) + "\n")
        if sys.version_info[:2] != tuple(int(part) for part in PYTHON_VERSION.split(".")):
            raise RuntimeError(f"the layer's bytecode must be compiled by Python {PYTHON_VERSION} (Lambda's runtime)")
        try:
            subprocess.run(pip_command(target, requirements_file), check=True)
        finally:
            requirements_file.unlink(missing_ok=True)
        subprocess.run(compile_command(target), check=True)
        return True


def function_code(function: str) -> lambda_.Code:
    # The source path is the function's own package: CDK caches bundling per (source path, options), so a shared
    # path would hand every function the first one's bundle. OUTPUT: hash what was bundled (shared/ included).
    return lambda_.Code.from_asset(
        str(REPO_ROOT / "functions" / function),
        asset_hash_type=AssetHashType.OUTPUT,
        bundling=BundlingOptions(image=_UNUSED_IMAGE, local=FunctionCodeBundler(function, REPO_ROOT)),
    )


def dependencies_code(*, install: bool) -> lambda_.Code:
    requirements = lambda_requirements()
    fingerprint = "\n".join([PIP_PLATFORM, PYTHON_VERSION, f"install={install}", "bytecode", *requirements])
    return lambda_.Code.from_asset(
        str(Path(__file__).resolve().parent),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=hashlib.sha256(fingerprint.encode()).hexdigest(),
        bundling=BundlingOptions(image=_UNUSED_IMAGE, local=DependenciesBundler(requirements, install=install)),
    )
