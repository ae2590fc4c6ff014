#!/usr/bin/env bash
# Execute every notebook headlessly against the installed wheel (outputs go to
# build/artifacts/notebooks, the notebooks in git stay stripped) and type-check
# their code with mypy --strict.
set -euo pipefail
VENV="$1"
cd "$(dirname "$0")/.."
OUT=build/artifacts/notebooks
rm -rf "$OUT" build/notebooks-py
mkdir -p "$OUT" build/notebooks-py
"$VENV/bin/python" - "$OUT" <<'PY'
import pathlib, sys, time
import nbformat
from nbclient import NotebookClient

out = pathlib.Path(sys.argv[1])
for path in sorted(pathlib.Path("notebooks").glob("*.ipynb")):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count")):
            sys.exit(f"{path}: outputs must be stripped before committing")
    t = time.time()
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": "notebooks"}}).execute()
    nbformat.write(nb, out / path.name)
    code = "\n\n".join(c.source for c in nb.cells if c.cell_type == "code")
    # Jupyter's display-the-last-expression idiom is fine for mypy; keep the code as is.
    (pathlib.Path("build/notebooks-py") / (path.stem.replace("-", "_") + ".py")).write_text(code + "\n")
    print(f"{path.name}: {len(nb.cells)} cells executed in {time.time() - t:.1f}s")
PY
"$VENV/bin/python" -m mypy --strict --ignore-missing-imports build/notebooks-py
