"""What `mailvoice train` imports, measured: one tiny training step under ``python -X importtime``,
each imported top-level module mapped to its installed distribution.

    python bench/gpu/imports.py --image bench/gpu/image-packages.txt

prints, one per line, ``name==version`` (the version installed here, i.e. the one the tests ran)
of every distribution the import graph needs that the GPU image lacks; the full graph goes to
``--json``. It exits non-zero when a needed distribution is neither in the image nor known
here (below), so a new import cannot slip past ``prepare.sh`` unnoticed.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Imported only when installed, each behind a try/except by the library that asks for it:
# accelerate's SageMaker config helper (boto3 and its stack), huggingface_hub ≥ 2 (httpx2,
# httpcore2, truststore; the image's hub 1.33 uses httpx), anyio's optional sniffio.
OPTIONAL = {"boto3", "botocore", "s3transfer", "jmespath", "httpx2", "httpcore2", "truststore", "sniffio"}
# Needed and not in the image: what prepare.sh downloads. A name outside this set fails the check.
CARRIED = {"trl", "datasets", "dill", "multiprocess", "pydantic", "pydantic-core", "annotated-types", "typing-inspection"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def import_graph() -> set[str]:
    sys.path.insert(0, str(ROOT / "src"))
    sys.path.insert(0, str(ROOT / "tests"))
    from mailvoice.models import build_tiny_model
    from test_train_tiny import _write_data

    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        build_tiny_model(t / "model")
        _write_data(t / "data", n=8)
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
               "MAILVOICE_NO_PROGRESS": "1", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
        r = subprocess.run([sys.executable, "-X", "importtime", "-m", "mailvoice", "train", "--config",
                            str(ROOT / "configs" / "lora-config-cpu.yaml"), "--base-model", str(t / "model"),
                            "--data", str(t / "data"), "--output", str(t / "run"), "--max-steps", "1"],
                           capture_output=True, text=True, env=env, cwd=tmp)
        if r.returncode != 0:
            sys.exit(f"error: the tiny `mailvoice train` failed:\n{r.stderr[-2000:]}")
    mods = {m.group(1).split(".")[0] for m in re.finditer(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", r.stderr, re.M)}
    owners = md.packages_distributions()
    return {_norm(d) for m in mods for d in owners.get(m, [])}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", type=Path, default=ROOT / "bench" / "gpu" / "image-packages.txt")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    image = {_norm(x) for x in args.image.read_text().split("\n") if x.strip() and not x.startswith("#")}
    graph = import_graph() - {"mailvoice"}  # ours travels as source (src/ on PYTHONPATH)
    missing = sorted(graph - image - OPTIONAL)
    unknown = [d for d in missing if d not in CARRIED]
    if args.json:
        args.json.write_text(json.dumps({"imported": sorted(graph), "missing_from_image": missing,
                                         "optional_skipped": sorted(graph & OPTIONAL)}, indent=2))
    for d in missing:
        print(f"{d}=={md.version(d)}")
    if unknown:
        print(f"error: `mailvoice train` now imports {', '.join(unknown)}, not in the GPU image: carry it "
              "(CARRIED in bench/gpu/imports.py) or make the import lazy", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
