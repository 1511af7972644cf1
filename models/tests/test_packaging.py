"""The exporter as a package (models/pyproject.toml): a wheel built from this
folder, installed into a fresh directory, imports from there and carries the
`veil-export` command, whose help lists the three subcommands."""

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

MODELS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _pip(*args, cwd):
    return subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          cwd=cwd, capture_output=True, text=True)


@pytest.mark.exporter
def test_wheel_installs_and_runs(tmp_path):
    try:
        import setuptools  # noqa: F401  (the build backend, offline: no build isolation)
    except ImportError:
        pytest.skip("setuptools is not in this environment: the wheel cannot be built offline")
    # built from a copy: setuptools writes build/ and *.egg-info beside the sources
    src = tmp_path / "src"
    src.mkdir()
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(MODELS, f), src / f)
    shutil.copytree(os.path.join(MODELS, "veil_export"), src / "veil_export",
                    ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    r = _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(src),
             cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    built = list(wheels.glob("veil_export-*.whl"))
    assert len(built) == 1, built
    from veil_export import __version__
    assert built[0].name.startswith("veil_export-%s-" % __version__)
    with zipfile.ZipFile(built[0]) as z:
        names = z.namelist()
        entry = [n for n in names if n.endswith("entry_points.txt")]
        assert entry and "veil-export = veil_export.__main__:main" in z.read(entry[0]).decode()
    # the package only: no training script, sample model or test in the wheel
    assert all(n.startswith(("veil_export/", "veil_export-")) for n in names), names
    sources = sorted(f for f in os.listdir(src / "veil_export") if f.endswith(".py"))
    assert sources and all("veil_export/" + f in names for f in sources), (sources, names)

    site = tmp_path / "site"
    r = _pip("install", "--no-deps", "--no-index", "--target", str(site), str(built[0]),
             cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    # run from elsewhere with only the install on the path: not this checkout
    env = dict(os.environ, PYTHONPATH=str(site))
    r = subprocess.run([sys.executable, "-c", "import veil_export; print(veil_export.__file__)"],
                       cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith(str(site)), r.stdout
    script = site / "bin" / "veil-export"
    assert script.exists(), sorted(os.listdir(site))
    r = subprocess.run([sys.executable, str(script), "--help"], cwd=tmp_path, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # its usage names the command typed, not `python -m veil_export`
    assert r.stdout.startswith("usage: veil-export "), r.stdout
    # the subcommand list and each one's line (the program name, veil_export,
    # and the description hold "export" and "check" whatever the parser has)
    assert "{export,info,check}" in r.stdout, r.stdout
    for line in ("export a Brevitas model", "print the layers, ranges and bit widths",
                 "validate a model file against schema v1"):
        assert line in r.stdout, r.stdout
    r = subprocess.run([sys.executable, str(script), "info", os.path.join(MODELS, "tiny.h5")],
                       cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # read from the file (the path alone holds "tiny"): its layers and their sources
    assert "0001_lut [4] <- 0000_linear" in r.stdout and "'act1' (QuantReLU)" in r.stdout, \
        r.stdout
