"""The house's one-way rules, read from the source with `ast` (no imports, no models):

- methods (featureviz, circuits, ddpm, attribution, editing, sae, scoring, atlas and sweeps:
  its runner, engines and jobs) never import
  `keras_sd_interp.io`, `keras_sd_interp.plotting`, `keras_sd_interp.reports`, the scripts'
  `keras_sd_interp.cli` or absl: they return arrays and JSON-ready results, and reports/ writes
  them;
- circuits does not import featureviz (a caller that needs both passes one's result in);
- only lens/ and models/ touch model internals: Keras' private `_inbound_nodes`, anything kept in
  an object's `__dict__` (the per-model cache is `lens.cache.model_cache`), or a layer's
  sub-layers (`transformer_block`, `attn2`, `clip_attn`, `to_k`, ...; `lens.weights` reaches the
  kernels edits need);
- models/ never import the lens (the ground floor, `hook_points`, is all they report through),
  no module imports its way back to itself, and no block of six lines stands twice.
"""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "keras_sd_interp"
# sweeps (the runner, its engines and jobs) compute shards and hand them to a store its caller
# built (reports.shards), so they are methods too.
METHODS = ("featureviz", "circuits", "ddpm", "attribution", "editing", "sae", "scoring", "atlas",
           "sweeps")
FORBIDDEN_IN_METHODS = ("keras_sd_interp.io", "keras_sd_interp.plotting", "keras_sd_interp.reports",
                        "keras_sd_interp.cli", "absl")
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


LAYER_INSIDES = ("_inbound_nodes", "__dict__", "transformer_block", "attn1", "attn2",
                 "clip_attn", "out_proj", "to_q", "to_k", "to_v", "conv1", "conv2", "conv2d",
                 "site_name")


def internals_used(path):
    """(line, what) for every attribute access that reaches inside a model: Keras' private
    `_inbound_nodes`, `__dict__`, and the rebuilt layers' sub-layers (LAYER_INSIDES)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        (node.lineno, node.attr)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in LAYER_INSIDES
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
    assert internals_used(PACKAGE / "lens" / "weights.py"), "the kernel access moved: update me"


def package_modules():
    """{dotted module name: path} of every module of the package (packages by __init__)."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def import_graph():
    """{module: set of package modules it imports} (imports inside functions count too: a lazy
    import still ties the two files). `from a import b` counts as importing a.b when b is a
    module, else a."""
    modules = package_modules()
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                for alias in node.names:
                    targets.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules
                                else base)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph):
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_no_import_circle_in_the_package():
    graph = import_graph()
    # A package's own modules importing the package itself (`from keras_sd_interp.lens import
    # taps` inside lens/) is how Python loads siblings, not a circle through __init__.
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    assert cycles(graph) == []


def test_models_never_import_the_lens_and_the_ground_floor_imports_nothing():
    graph = import_graph()
    upward = sorted(f"{name} imports {target}" for name, targets in graph.items()
                    if name.startswith("keras_sd_interp.models") for target in targets
                    if target.startswith("keras_sd_interp.lens"))
    assert upward == [], "models report through keras_sd_interp.hook_points only:\n" + \
        "\n".join(upward)
    assert graph["keras_sd_interp.hook_points"] == set()


def code_lines(path):
    """(line number, stripped text) of the lines that carry code or prose worth comparing:
    blank lines and lines of brackets and punctuation only are left out."""
    kept = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        text = line.strip()
        if text and any(char.isalnum() for char in text):
            kept.append((number, text))
    return kept


def repeated_blocks(paths, size=6):
    """Places where `size` consecutive code lines stand again elsewhere, to the letter:
    a list of "file:line ~ file:line"."""
    first_seen, repeats = {}, []
    for path in paths:
        lines = code_lines(path)
        last_end = {}
        for start in range(len(lines) - size + 1):
            block = tuple(text for _, text in lines[start:start + size])
            place = (path, start)
            if block in first_seen:
                other_path, other_start = first_seen[block]
                if other_path != path or other_start + size <= start:
                    if last_end.get(block) is None:
                        repeats.append(f"{other_path.relative_to(PACKAGE.parent)}:"
                                       f"{lines[other_start][0]} ~ "
                                       f"{path.relative_to(PACKAGE.parent)}:{lines[start][0]}")
                        last_end[block] = start
            else:
                first_seen[block] = place
    return repeats


def test_the_repeat_finder_finds_a_block(tmp_path):
    body = "\n".join(f"value_{i} = compute({i})" for i in range(6))
    (tmp_path / "a.py").write_text(body + "\n")
    (tmp_path / "b.py").write_text("x = 1\n" + body + "\n")
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path
    try:
        found = repeated_blocks([tmp_path / "a.py", tmp_path / "b.py"])
    finally:
        PACKAGE = saved
    assert found == [f"{tmp_path.name}/a.py:1 ~ {tmp_path.name}/b.py:2"]


def test_no_block_of_six_lines_stands_twice_in_the_package():
    assert repeated_blocks(sorted(PACKAGE.rglob("*.py"))) == []


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


OUTPUT_FLAGS = ("output", "out", "out_dir", "output_dir", "export_dir", "bundle_dir", "clip_dir")
# Flags of those names that a script only reads (the shipped files are the right default there).
READ_ONLY_FLAGS = {("eval_tiny.py", "bundle_dir"), ("train_tiny.py", "clip_dir")}


def test_no_script_defaults_to_writing_into_the_package_assets():
    """A trial run must not overwrite what ships: a default pointing into assets/ is refused
    (shipping is asked for by passing the assets path explicitly)."""
    offences = []
    for path in sorted((PACKAGE.parent / "scripts").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "DEFINE_string"
                    and len(node.args) > 1 and node.args[0].value in OUTPUT_FLAGS):
                continue
            default = node.args[1]
            literal = isinstance(default, ast.Constant) and isinstance(default.value, str) \
                and "assets" in default.value
            # A constant such as bundled.ASSETS_DIR or ASSET_DIR points into the assets too.
            constant = "ASSET" in ast.unparse(default).upper()
            if (literal or constant) and (path.name, node.args[0].value) not in READ_ONLY_FLAGS:
                offences.append(f"{path.name}: --{node.args[0].value}={ast.unparse(default)}")
    assert offences == []
