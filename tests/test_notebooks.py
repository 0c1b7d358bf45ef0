"""Every notebook in notebooks/ runs top to bottom (nbclient), as CI runs it."""

import glob
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")))


def test_every_tool_has_a_notebook():
    names = {os.path.basename(p) for p in NOTEBOOKS}
    assert {"daam.ipynb", "causal_tracing_and_editing.ipynb",
            "feature_visualization_and_sae.ipynb", "taps_and_interventions.ipynb",
            "prompt_to_prompt.ipynb"} <= names


# First cell of every notebook here: a clean namespace, so a name the notebook does not define
# itself is still an error, and no figure left open by the notebook before.
RESET_CELL = "import matplotlib.pyplot\nmatplotlib.pyplot.close('all')\n%reset -f"


@pytest.fixture(scope="module")
def kernel():
    """One Jupyter kernel for every notebook: it imports TensorFlow and keras-cv once (about 15 s
    on an idle CPU, a minute on a loaded one) instead of once per notebook. Each notebook starts
    with RESET_CELL; only imported modules carry over."""
    from jupyter_client.manager import KernelManager

    env = dict(os.environ, MPLBACKEND="Agg", TF_CPP_MIN_LOG_LEVEL="2",
               # every notebook reads it in its first code cell: fewer steps and images, the
               # same calls (CI runs them all; unset, they run the sizes their text describes)
               KERAS_SD_INTERP_QUICK="1",
               # the notebook imports this checkout, not an installed copy
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(env=env, cwd=ROOT)
    yield manager
    manager.shutdown_kernel(now=True)


def _notebook_param(path):
    """A notebook that loads the real Fashion-MNIST is marked `fashion_mnist` (it skips where no
    copy can be reached, as tests/conftest.py says)."""
    with open(path) as f:
        reads_data = "load_fashion_mnist(" in f.read()
    return pytest.param(path, id=os.path.basename(path),
                        marks=[pytest.mark.fashion_mnist] if reads_data else [])


@pytest.mark.parametrize("path", [_notebook_param(p) for p in NOTEBOOKS])
def test_notebook_runs(path, kernel):
    import nbclient
    import nbformat

    if not kernel.is_alive():  # an earlier notebook killed it
        kernel.restart_kernel(now=True)
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.insert(0, nbformat.v4.new_code_cell(RESET_CELL))
    client = nbclient.NotebookClient(notebook, km=kernel, timeout=300,
                                     resources={"metadata": {"path": ROOT}})
    client.execute()
    client.kc.stop_channels()
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    errors = [out for cell in code_cells for out in cell.get("outputs", [])
              if out.get("output_type") == "error"]
    assert not errors
    assert sum(bool(cell.get("outputs")) for cell in code_cells[1:]) >= 2  # it showed something
