"""The runtime package runs on the Pi's own Python, numpy and Pillow.

Raspberry Pi OS bullseye (armhf) has Python 3.9, numpy 1.19.5 and Pillow 8.1.2; bookworm has
Python 3.11, numpy 1.24.2 and Pillow 9.4.0. The fast tests read every module of `app/` with
`ast` and fail on what those cannot run (3.10+ syntax and builtins, Pillow >= 9.1 enums, numpy
>= 1.20 API), so CI catches a regression without a 3.9 interpreter. The slow test runs the
package under Python 3.9 with exactly bullseye's numpy and Pillow when a python3.9 is there.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from handpose.compat import _zip_strict_py39

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app"
SOURCES = sorted((APP / "handpose").rglob("*.py")) + [APP / "main"]


def _words(text: str) -> set[str]:
    return set(text.split())


#: Pillow >= 9.1 enums (Pillow 8.1 has only the module constants: Image.BILINEAR ...)
PILLOW_ENUMS = _words("Resampling Transform Transpose Dither Palette Quantize")
#: text measuring that Pillow < 9.2's bitmap default font lacks (only overlay._text_box may)
PILLOW_TEXT_BOX = _words("textbbox textlength getbbox getlength")
#: builtins, modules and module attributes newer than Python 3.9
PY310_NAMES = _words("aiter anext EncodingWarning ExceptionGroup BaseExceptionGroup")
PY310_MODULES = _words("tomllib wsgiref.types")
PY310_FROM = {
    "typing": _words(
        "TypeAlias ParamSpec Concatenate TypeGuard Self Never LiteralString assert_never "
        "assert_type reveal_type dataclass_transform override Required NotRequired Unpack "
        "TypeVarTuple is_typeddict get_overloads TypeIs ReadOnly"
    ),
    "itertools": _words("pairwise batched"),
    "enum": _words("StrEnum ReprEnum verify member nonmember global_enum"),
    "datetime": _words("UTC"),
    "contextlib": _words("chdir aclosing"),
    "hashlib": _words("file_digest"),
    "math": _words("cbrt exp2"),
    "operator": _words("call"),
}
PY310_METHODS = _words("bit_count")  # int.bit_count
#: numpy newer than bullseye's 1.19.5, or gone from bookworm's 1.24.2 (np.bool, np.int ...)
NUMPY_NEWER = _words(
    "typing exceptions dtypes astype isdtype concat permute_dims pow vecdot matrix_transpose "
    "unstack cumulative_sum cumulative_prod trapezoid acos acosh asin asinh atan atanh atan2 "
    "bitwise_left_shift bitwise_right_shift bitwise_invert unique_all unique_counts "
    "unique_inverse unique_values sliding_window_view bool int float object str long complex "
    "unicode"
)
#: numpy function -> keywords it gained after numpy 1.19
NUMPY_NEWER_KEYWORDS = {
    **dict.fromkeys(["percentile", "quantile", "nanpercentile", "nanquantile"], {"method"}),
    **dict.fromkeys(["mean", "any", "all", "std", "var"], {"where"}),
    "unique": {"equal_nan"},
    "concatenate": {"dtype", "casting"},
}
BUILTIN_TYPES = _words("int float str bytes bool list dict tuple set type")
#: allowed on purpose: (file name, line text) that the checks would flag
ALLOWED = {("compat.py", "return zip(*iterables, strict=True)")}


def _has_future_annotations(tree: ast.Module) -> bool:
    return any(
        isinstance(node, ast.ImportFrom)
        and node.module == "__future__"
        and any(alias.name == "annotations" for alias in node.names)
        for node in tree.body
    )


def _union_of_types(node: ast.AST) -> bool:
    """`X | Y` evaluated at run time where X or Y is a type (3.10+), not numpy's `a | b`."""
    if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr)):
        return False

    def typeish(side: ast.AST) -> bool:
        return (
            (isinstance(side, ast.Constant) and side.value is None)
            or (isinstance(side, ast.Name) and side.id in BUILTIN_TYPES)
            or (
                isinstance(side, ast.Subscript)
                and isinstance(side.value, ast.Name)
                and side.value.id in BUILTIN_TYPES
            )
            or _union_of_types(side)
        )

    return typeish(node.left) or typeish(node.right)


class _Checker(ast.NodeVisitor):
    def __init__(self, path: Path, lines: list[str], future_annotations: bool) -> None:
        self.path, self.lines, self.future = path, lines, future_annotations
        self.problems: list[str] = []
        self.function: list[str] = []

    def flag(self, node: ast.AST, why: str) -> None:
        line = self.lines[node.lineno - 1].strip()
        if (self.path.name, line) not in ALLOWED:
            self.problems.append(f"{self.path.relative_to(ROOT)}:{node.lineno}: {why}: {line}")

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        args = node.args
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            self._annotation(arg.annotation if arg is not None else None)
        self._annotation(node.returns)
        for child in [*node.decorator_list, *args.defaults, *args.kw_defaults]:
            if child is not None:
                self.visit(child)
        self.function.append(node.name)
        for child in node.body:
            self.visit(child)
        self.function.pop()

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:  # noqa: N802
        self.visit_FunctionDef(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._annotation(node.annotation)
        if node.value is not None:
            self.visit(node.value)

    def _annotation(self, node: ast.AST | None) -> None:
        # evaluated at definition time (dataclass fields too) without `from __future__ ...`
        if node is None or self.future:
            return
        for sub in ast.walk(node):
            if isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.BitOr):
                self.flag(sub, "`X | Y` annotation needs 3.10 (add __future__ annotations)")
                return

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if _union_of_types(node):
            self.flag(node, "`X | Y` of types at run time needs Python 3.10")
            return
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        keywords = {k.arg for k in node.keywords}
        name = func.id if isinstance(func, ast.Name) else None
        attr = func.attr if isinstance(func, ast.Attribute) else None
        if name == "zip" and "strict" in keywords:
            self.flag(node, "zip(strict=) needs Python 3.10: use handpose.compat.zip_strict")
        if name in ("isinstance", "issubclass") and any(
            isinstance(sub, ast.BinOp) for arg in node.args[1:] for sub in ast.walk(arg)
        ):
            self.flag(node, f"{name}(x, A | B) needs Python 3.10: use a tuple")
        if (name or attr) == "dataclass" and keywords & {"slots", "kw_only", "match_args"}:
            self.flag(node, "dataclass(slots= / kw_only= / match_args=) needs Python 3.10")
        if (name or attr) in ("bisect", "bisect_left", "bisect_right", "insort") and (
            "key" in keywords
        ):
            self.flag(node, "bisect(key=) needs Python 3.10")
        if attr in PY310_METHODS:
            self.flag(node, f".{attr}() needs Python 3.10")
        if attr in PILLOW_TEXT_BOX and self.function[-1:] != ["_text_box"]:
            self.flag(node, f".{attr}() fails on Pillow < 9.2's default font: overlay._text_box")
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == "np"
            and keywords & NUMPY_NEWER_KEYWORDS.get(attr or "", set())
        ):
            self.flag(node, f"np.{attr}({sorted(keywords)}) keyword newer than numpy 1.19")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        base = node.value
        if isinstance(base, ast.Name):
            if base.id == "Image" and node.attr in PILLOW_ENUMS:
                self.flag(node, f"Image.{node.attr} needs Pillow >= 9.1 (bullseye has 8.1)")
            if base.id == "np" and node.attr in NUMPY_NEWER:
                self.flag(node, f"np.{node.attr}: not in numpy 1.19.5 or gone in 1.24")
            if node.attr in PY310_FROM.get(base.id, ()):
                self.flag(node, f"{base.id}.{node.attr} needs Python >= 3.10")
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in PY310_NAMES:
            self.flag(node, f"{node.id} needs Python >= 3.10")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name in PY310_MODULES or alias.name == "numpy.typing":
                self.flag(node, f"import {alias.name}: not on Python 3.9 / numpy 1.19")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        names = {alias.name for alias in node.names}
        if module in PY310_MODULES or module == "numpy.typing":
            self.flag(node, f"from {module}: not on Python 3.9 / numpy 1.19")
        if names & PY310_FROM.get(module, set()):
            self.flag(node, f"from {module} import {sorted(names & PY310_FROM[module])}: 3.10+")
        if module == "numpy" and names & NUMPY_NEWER:
            self.flag(node, f"from numpy import {sorted(names & NUMPY_NEWER)}: numpy version")
        if module == "PIL.Image" and names & PILLOW_ENUMS:
            self.flag(node, "Pillow >= 9.1 enums")


def check_source(path: Path, source: str) -> list[str]:
    """What in `source` Python 3.9 / numpy 1.19.5 / Pillow 8.1.2 cannot run (empty: nothing)."""
    try:
        tree = ast.parse(source, str(path), feature_version=(3, 9))
    except SyntaxError as error:
        return [f"{path.relative_to(ROOT)}:{error.lineno}: not Python 3.9 syntax: {error.msg}"]
    checker = _Checker(path, source.splitlines(), _has_future_annotations(tree))
    checker.visit(tree)
    return checker.problems


def test_every_runtime_module_is_python39_numpy119_pillow81_clean():
    assert len(SOURCES) > 30
    problems = [p for path in SOURCES for p in check_source(path, path.read_text())]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "snippet",
    [
        "match x:\n    case 1:\n        pass\n",
        "for a, b in zip(x, y, strict=True):\n    pass\n",
        "ok = isinstance(v, int | float)\n",
        "from PIL import Image\nm = Image.Resampling.BILINEAR\n",
        "Alias = int | None\n",
        "import dataclasses\n@dataclasses.dataclass(slots=True)\nclass A:\n    x: int\n",
        "class A:\n    x: int | None = None\n",
        "import numpy as np\nm = np.percentile(a, 5, method='linear')\n",
        "import numpy as np\nb = np.bool(1)\n",
        "from itertools import pairwise\n",
        "import tomllib\n",
        "box = draw.textbbox((0, 0), 'a', font=f)\n",
    ],
)
def test_the_checker_catches_what_bullseye_cannot_run(snippet):
    assert check_source(APP / "handpose" / "example.py", snippet)


def test_the_checker_lets_through_what_runs_on_bullseye():
    source = (
        "from __future__ import annotations\n"
        "import numpy as np\n"
        "def f(a: int | None, m: np.ndarray) -> list[int] | None:\n"
        "    both = m | (m > 2)\n"
        "    return [n for n in zip_strict(a, m)] if isinstance(a, (int, float)) else None\n"
    )
    assert check_source(APP / "handpose" / "example.py", source) == []


def test_zip_strict_on_python39():
    assert list(_zip_strict_py39([1, 2], "ab")) == [(1, "a"), (2, "b")]
    assert list(_zip_strict_py39(iter([]), [])) == []
    with pytest.raises(ValueError, match="different lengths"):
        list(_zip_strict_py39([1, 2], (c for c in "abc")))
    with pytest.raises(ValueError, match="different lengths"):
        list(_zip_strict_py39([1, 2, 3], "ab"))


def test_overlay_text_box_with_pillow_81s_bitmap_font():
    """Pillow < 9.2's default font has `getsize` and no `getbbox`: the box comes from the size."""
    from PIL import Image, ImageDraw

    from handpose.overlay import _text_box

    class BitmapFont81:
        def getsize(self, text):
            return 6 * len(text), 11

    draw = ImageDraw.Draw(Image.new("RGB", (64, 64)))
    assert _text_box(draw, (3, 4), "left", BitmapFont81()) == (3, 4, 27, 15)


# ----------------------------------------------------------------- under Python 3.9 (slow)

#: bullseye's apt numpy and Pillow, and the interpreter its Python 3.9 can install (setup.py)
PY39_PACKAGES = ["numpy==1.19.5", "Pillow==8.1.2", "tflite-runtime==2.11.0", "actfw-core>=2.21,<3"]

RUN_PY39 = """
import importlib, pathlib, sys
import handpose.faults
# tflite-runtime's x86 int8 kernels take seconds per crop on a busy CI machine (the Pi's ARM
# build has NEON kernels): a longer stall timeout than the app's
handpose.faults.DEFAULT_STALL_TIMEOUT = 300.0
import numpy, PIL
root = pathlib.Path(sys.argv[1])
names = []
for path in sorted(root.rglob("*.py")):
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
for name in names:
    importlib.import_module(name)
print("python", sys.version.split()[0], "numpy", numpy.__version__, "Pillow", PIL.__version__,
      "modules", len(names), file=sys.stderr)
from handpose.cli import main
sys.exit(main(["run", "--source", sys.argv[2], "--max-frames", "3", "--save", sys.argv[3]]))
"""


def _python39(tmp_path_factory) -> str:
    """HANDPOSE_PY39 (a python3.9 with PY39_PACKAGES), else a venv made from a python3.9 (on
    PATH or in pyenv's versions) with PY39_PACKAGES from the package index; skip when neither
    can be had."""
    given = os.environ.get("HANDPOSE_PY39")
    if given:
        return given
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [shutil.which("python3.9"), *map(str, sorted(pyenv.glob("3.9*/bin/python3.9")))]
    working = [
        c
        for c in candidates
        if c and subprocess.run([c, "-c", "pass"], capture_output=True).returncode == 0
    ]
    if not working:
        pytest.skip("no python3.9 on PATH or in pyenv (or set HANDPOSE_PY39)")
    base = working[0]
    venv = tmp_path_factory.mktemp("py39") / "venv"
    subprocess.run([base, "-m", "venv", str(venv)], check=True, capture_output=True)
    python = str(venv / "bin" / "python")
    done = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--only-binary=:all:", *PY39_PACKAGES],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode:
        pytest.skip(f"cannot install {PY39_PACKAGES} for python3.9: {done.stderr[-300:]}")
    return python


@pytest.mark.slow
def test_the_app_runs_under_python39_with_bullseyes_numpy_and_pillow(tmp_path, tmp_path_factory):
    from PIL import Image

    from handpose.capture import VideoFileSource
    from handpose.paths import SAMPLE_CLIP

    python = _python39(tmp_path_factory)
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    source = VideoFileSource(SAMPLE_CLIP)  # 3 frames of the sample clip (hands in them) as PNGs
    try:
        for i in range(3):
            image, _ = source.read()
            Image.fromarray(image).save(frames_dir / f"{i:03d}.png")
    finally:
        source.close()
    env = {**os.environ, "PYTHONPATH": str(APP)}
    done = subprocess.run(
        [python, "-c", RUN_PY39, str(APP / "handpose"), str(frames_dir), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "python 3.9." in done.stderr and "numpy 1.19.5 Pillow 8.1.2" in done.stderr
    assert "processed 3 frames" in done.stderr and "no frame dropped" in done.stderr
    records = [
        r for line in done.stdout.splitlines() if line.startswith("[") for r in json.loads(line)
    ]
    assert {"hand_enter", "appeared"} <= {r["event"] for r in records}  # the clip's hands found
    assert len(list((tmp_path / "out").glob("*.png"))) == 3
