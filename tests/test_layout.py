"""The house's one-way rules, read from the source with `ast` (no imports, no models):

- methods (featureviz, circuits, ddpm; attribution, editing, sae once they exist) never import
  `keras_sd_interp.io`, `keras_sd_interp.plotting` or `keras_sd_interp.reports`: they return
  arrays and JSON-ready results, and reports/ writes them;
- circuits does not import featureviz (a caller that needs both passes one's result in);
- only lens/ and models/ touch model internals: Keras' private `_inbound_nodes`, or anything
  kept in an object's `__dict__` (the per-model cache is `lens.cache.model_cache`).
"""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "keras_sd_interp"
METHODS = ("featureviz", "circuits", "ddpm", "attribution", "editing", "sae")
FORBIDDEN_IN_METHODS = ("keras_sd_interp.io", "keras_sd_interp.plotting", "keras_sd_interp.reports")
INTERNALS_ALLOWED = ("lens", "models")


def python_files(folder):
    return sorted((PACKAGE / folder).rglob("*.py"))


def imported_modules(source, package):
    """Every module `source` imports, as absolute dotted names (`from a import b` gives a and
    a.b, since b may be a module); relative imports are resolved against `package`."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            names.append(base)
            names += [f"{base}.{alias.name}" for alias in node.names]
    return names


def file_imports(path):
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    return imported_modules(path.read_text(), package)


def matches(name, prefixes):
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def test_the_rules_see_every_kind_of_import():
    """The checker itself: absolute, from-package and relative imports are all caught."""
    source = "\n".join(["import keras_sd_interp.io", "from keras_sd_interp import reports",
                        "from .. import plotting", "from ..featureviz.targets import conv_target"])
    found = imported_modules(source, "keras_sd_interp.circuits")
    assert [name for name in found if matches(name, FORBIDDEN_IN_METHODS)] == [
        "keras_sd_interp.io", "keras_sd_interp.reports", "keras_sd_interp.plotting"]
    assert matches(found[-2], ("keras_sd_interp.featureviz",))


@pytest.mark.parametrize("method", [m for m in METHODS if (PACKAGE / m).is_dir()])
def test_methods_never_import_io_plotting_or_reports(method):
    offences = [
        f"{path.relative_to(PACKAGE.parent)} imports {name}"
        for path in python_files(method)
        for name in file_imports(path)
        if matches(name, FORBIDDEN_IN_METHODS)
    ]
    assert not offences, "methods return arrays; reports/ writes files:\n" + "\n".join(offences)


def test_circuits_does_not_import_featureviz():
    offences = [
        f"{path.relative_to(PACKAGE.parent)} imports {name}"
        for path in python_files("circuits")
        for name in file_imports(path)
        if matches(name, ("keras_sd_interp.featureviz",))
    ]
    assert not offences, "\n".join(offences)


def internals_used(path):
    """(line, what) for every `_inbound_nodes` attribute and every `__dict__` access."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        (node.lineno, node.attr)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in ("_inbound_nodes", "__dict__")
    ]


def test_only_the_lens_and_models_touch_model_internals():
    offences = [
        f"{path.relative_to(PACKAGE.parent)}:{line} uses {what}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.relative_to(PACKAGE).parts[0] not in INTERNALS_ALLOWED
        for line, what in internals_used(path)
    ]
    assert not offences, (
        "read the graph through lens.graph and cache through lens.cache.model_cache:\n"
        + "\n".join(offences)
    )
    assert internals_used(PACKAGE / "lens" / "graph.py"), "the graph reading moved: update me"


def module_path(dotted):
    """The file of a keras_sd_interp module (package: its __init__.py), or None."""
    path = PACKAGE.parent.joinpath(*dotted.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def top_level_names(path):
    """Names a module defines or imports at its top level; None if it has a lazy __getattr__."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            if node.name == "__getattr__":
                return None
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, (ast.If, ast.Try)):
            names |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    return names


def stale_imports(path):
    """`from keras_sd_interp.x import y` lines in `path` whose module or name does not exist
    (a file moved by the layout change and a caller left behind)."""
    bad = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.ImportFrom) and node.module
                and node.module.startswith("keras_sd_interp") and not node.level):
            continue
        target = module_path(node.module)
        if target is None:
            bad.append(f"{node.module} (no such module)")
            continue
        names = top_level_names(target)
        for alias in node.names:
            if names is not None and alias.name not in names \
                    and module_path(f"{node.module}.{alias.name}") is None:
                bad.append(f"{node.module}.{alias.name}")
    return bad


@pytest.mark.parametrize("folder", ["keras_sd_interp", "scripts", "benchmarks", "tests"])
def test_every_import_of_the_package_resolves(folder):
    """Scripts and benchmarks import lazily inside main(), so a moved module breaks them only
    when they run; this reads every file's imports instead."""
    files = sorted((PACKAGE.parent / folder).rglob("*.py"))
    found = {str(path.relative_to(PACKAGE.parent)): stale_imports(path) for path in files}
    assert {name: bad for name, bad in found.items() if bad} == {}
