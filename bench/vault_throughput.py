"""Vault throughput: backup and restore MB/s and peak RSS for N MB of checkpoint data.

Runs against a moto S3 server (its own process, so its memory is not counted) and a local
folder, each next to a baseline measured in the same run: plain tar streamed to the same
storage with no encryption, no hashing and no read-back (backup), and plain tar extraction
(restore). Every scenario runs in a fresh subprocess; peak RSS is that process's ru_maxrss.

    PYTHONPATH=src .venv/bin/python bench/vault_throughput.py [--size-mb 1024]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FILE_MB = 256


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_data(root: Path, size_mb: int) -> int:
    ck = root / "bench" / "runs" / "r1" / "checkpoint-1"
    ck.mkdir(parents=True)
    left, i = size_mb, 0
    chunk = os.urandom(2**20)
    while left > 0:
        n = min(FILE_MB, left)
        with open(ck / f"shard-{i:03d}.bin", "wb") as fh:
            for j in range(n):
                # distinct, incompressible-looking content without paying urandom for every MB
                fh.write(j.to_bytes(8, "little") + i.to_bytes(8, "little") + chunk[16:])
        left -= n
        i += 1
    return size_mb * 2**20


# ----------------------------------------------------------------------------- scenarios (child side)


def child(scenario: str, dest: str, root: str, out_root: str, ident: str) -> dict:
    import fsspec
    import tarfile

    from mailvoice.vault import backup, restore, storage_options

    opts = storage_options(dest) if dest.startswith("s3://") else {}
    t0 = time.perf_counter()
    if scenario == "baseline-backup":
        fs, path = fsspec.core.url_to_fs(dest, **opts)
        target = f"{path}/baseline/archive.tar"
        if not dest.startswith("s3://"):
            os.makedirs(os.path.dirname(target), exist_ok=True)
        with fs.open(target, "wb", block_size=32 * 2**20) as fh, tarfile.open(fileobj=fh, mode="w|") as tar:
            tar.add(Path(root) / "bench" / "runs", arcname="runs")
    elif scenario == "baseline-restore":
        from mailvoice.vault.store import Store  # same transport as the vault: one streamed GET

        fh = Store(dest, opts).open_read("baseline/archive.tar")
        with tarfile.open(fileobj=fh, mode="r|") as tar:
            tar.extractall(Path(out_root) / "baseline", filter="data")
        fh.close()
    elif scenario == "vault-backup":
        pub = Path(ident + ".pub").read_text().strip()
        backup("bench", dest, parts=("checkpoints",), recipients=[pub], root=root, storage_options=opts or None)
    elif scenario == "vault-backup-noenc":
        import warnings

        warnings.simplefilter("ignore")
        backup("bench", dest + "-plain", parts=("checkpoints",), no_encrypt=True, root=root,
               storage_options=opts or None)
    elif scenario == "vault-restore":
        restore("bench", dest, identity_file=ident, root=out_root, storage_options=opts or None)
    else:
        raise SystemExit(f"unknown scenario {scenario}")
    secs = time.perf_counter() - t0
    return {"seconds": secs, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_child(scenario, dest, root, out_root, ident, env) -> dict:
    cmd = [sys.executable, __file__, "--child", scenario, dest, str(root), str(out_root), str(ident)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"{scenario} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- driver


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--child", nargs=5, metavar=("SCENARIO", "DEST", "ROOT", "OUT", "IDENT"))
    ap.add_argument("--only", choices=["s3", "local"], default=None)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return

    from mailvoice.vault import new_identity

    work = Path(tempfile.mkdtemp(prefix="vault-bench-"))
    moto = None
    try:
        root = work / "root"
        nbytes = make_data(root, args.size_mb)
        ident = work / "id.txt"
        (work / "id.txt.pub").write_text(new_identity(ident))
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
               "AWS_DEFAULT_REGION": "us-east-1"}
        env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1] / "src") + os.pathsep + env.get("PYTHONPATH", "")
        targets = []
        if args.only in (None, "s3"):
            port = _free_port()
            moto = subprocess.Popen([sys.executable, "-c", "from moto.server import main; main()",
                                     "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
            import boto3

            for _ in range(100):
                try:
                    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                                 aws_access_key_id="bench", aws_secret_access_key="bench").create_bucket(Bucket="bench")
                    break
                except Exception:
                    time.sleep(0.2)
            targets.append(("moto-s3", "s3://bench/vault"))
        if args.only in (None, "local"):
            targets.append(("local-fs", str(work / "store")))

        rows = []
        for label, dest in targets:
            for scenario in ("baseline-backup", "vault-backup-noenc", "vault-backup", "baseline-restore", "vault-restore"):
                out_root = work / f"out-{label}-{scenario}"
                r = run_child(scenario, dest, root, out_root, ident, env)
                r.update(target=label, scenario=scenario, mb_s=nbytes / 2**20 / r["seconds"])
                rows.append(r)
                print(f"{label:9s} {scenario:19s} {r['mb_s']:8.1f} MB/s {r['seconds']:7.1f} s "
                      f"peak RSS {r['peak_rss_mb']:7.1f} MB", flush=True)
                shutil.rmtree(out_root, ignore_errors=True)
        print(json.dumps({
            "date": time.strftime("%Y-%m-%d"),
            "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.python_implementation()} "
                       f"{platform.python_version()}",
            "size_mb": args.size_mb,
            "rows": rows,
        }))
    finally:
        if moto is not None:
            moto.terminate()
            moto.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
