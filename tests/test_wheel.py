"""The installed wheel, not the checkout: a user who runs `pip install deae-aug` has no recipes/
folder, so the shipped recipes must come with the package and resolve by name from any folder.

The wheel is built from a copy of the sources (no build litter in the checkout) and installed into
a fresh virtualenv that borrows this environment's packages through a .pth file: no network."""

import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "deae_aug", "recipes")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """bin/ of a fresh virtualenv holding only the built wheel (its dependencies borrowed)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--wheel-dir", str(root / "dist"), str(source)],
        check=True, capture_output=True,
    )  # fmt: skip
    wheel = next((root / "dist").glob("deae_aug-*.whl"))
    env = root / "env"
    venv.create(env, with_pip=False)
    python = env / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    borrowed = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site) / "borrowed.pth").write_text("\n".join(sorted(borrowed)) + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
         "--no-index", str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    return env / "bin"


def run(bin_dir: Path, folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd=folder, capture_output=True, text=True)


def test_the_wheel_lists_shows_and_loads_every_shipped_recipe_from_an_empty_folder(installed, tmp_path):
    listed = run(installed, tmp_path, "deae-aug", "recipes")
    assert listed.returncode == 0, listed.stderr
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert names == sorted(p.name for p in (REPO / "recipes").glob("*.yaml"))
    shown = run(installed, tmp_path, "deae-aug", "recipes", "show", "fonts_small")
    assert yaml.safe_load(shown.stdout) == yaml.safe_load((REPO / "recipes" / "fonts_small.yaml").read_text())
    script = (
        "import deae_aug; from deae_aug.recipes import load_recipe, shipped_recipes\n"
        "print(deae_aug.__file__)\n"
        "for name in shipped_recipes(): print(load_recipe(name).name, load_recipe(name[:-5]).name)\n"
    )
    loaded = run(installed, tmp_path, "python", "-c", script)
    assert loaded.returncode == 0, loaded.stderr
    where, *pairs = loaded.stdout.splitlines()
    assert Path(where).is_relative_to(installed.parent)  # the wheel's package, not the checkout's
    assert [p.split() for p in pairs] == [[n[:-5], n[:-5]] for n in names]
    assert not any(tmp_path.iterdir())  # listing and loading write nothing


def test_the_wheel_trains_a_shipped_recipe_by_name_in_an_empty_folder(installed, tmp_path):
    sets = ["--set", "train.steps=2"]
    trained = run(installed, tmp_path, "deae-aug", "train", "--recipe", "fonts_small.yaml", "--out", "run",
                  "--quiet", *sets)  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert (tmp_path / "run" / "checkpoints" / "step_0000002" / "model.safetensors").is_file()
    missing = run(installed, tmp_path, "deae-aug", "train", "--recipe", "fonts_smal.yaml")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "neither a file nor a shipped recipe" in missing.stderr and "fonts_small.yaml" in missing.stderr
