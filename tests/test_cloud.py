"""Cloud jobs without a cloud: the task YAML (loaded by SkyPilot's own loader when it is around),
keys passed by name only, the estimate, and the managed-job calls against a stand-in `sky`."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest
import yaml

from mailvoice.cli import main
from mailvoice.cloud import build_task, dump_task, estimate_cost, launch_many, read_users_file, status
from mailvoice.cloud import sky as skymod
from mailvoice.cloud.estimate import record_throughput
from mailvoice.cloud.jobs import dest_url, job_name
from mailvoice.cloud.task import TaskSpec
from mailvoice.errors import MailvoiceError
from mailvoice.train.config import validate_config
from mailvoice.vault import new_identity
from mailvoice.workspace import user_space

ROOT = Path(__file__).resolve().parents[1]

FAKE_SKY = r'''#!{python}
"""Stand-in for the `sky` CLI: logs each call (argv + which secret names had values), answers
from a JSON state file next to it."""
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
state_p = os.path.join(here, "state.json")
state = json.load(open(state_p)) if os.path.exists(state_p) else {{"jobs": [], "enabled": ["vast"]}}
argv = sys.argv[1:]
secrets = [argv[i + 1] for i, a in enumerate(argv) if a == "--secret"]
with open(os.path.join(here, "calls.jsonl"), "a") as fh:
    fh.write(json.dumps({{"argv": argv, "secret_values_set": {{s: bool(os.environ.get(s)) for s in secrets}},
                         "identity_fingerprint": (os.environ.get("MAILVOICE_AGE_IDENTITY") or "")[:16]}}) + "\n")
if argv[:1] == ["check"]:
    print(json.dumps({{"default": {{c.capitalize(): ["compute", "storage"] for c in state["enabled"]}}}}))
elif argv[:2] == ["jobs", "launch"]:
    name = argv[argv.index("--name") + 1]
    jid = len(state["jobs"]) + 1
    state["jobs"].append({{"job_id": jid, "job_name": name, "status": "RUNNING"}})
    json.dump(state, open(state_p, "w"))
    print("\x1b[1mManaged Job ID: %d\x1b[0m" % jid)
elif argv[:2] == ["jobs", "queue"]:
    print(json.dumps(state["jobs"]))
elif argv[:2] == ["jobs", "cancel"]:
    name = argv[argv.index("--name") + 1]
    for j in state["jobs"]:
        if j["job_name"] == name:
            j["status"] = "CANCELLED"
    json.dump(state, open(state_p, "w"))
elif argv[:2] == ["jobs", "logs"]:
    print("log line")
else:
    sys.exit("unexpected: %r" % argv)
'''


@pytest.fixture
def fake_sky(tmp_path, monkeypatch):
    d = tmp_path / "fakesky"
    d.mkdir()
    exe = d / "sky"
    exe.write_text(FAKE_SKY.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("MAILVOICE_SKY", str(exe))
    monkeypatch.delenv("MAILVOICE_SKY_PYTHON", raising=False)

    class Fake:
        dir = d

        def calls(self):
            p = d / "calls.jsonl"
            return [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []

        def set_state(self, **kw):
            p = d / "state.json"
            s = json.loads(p.read_text()) if p.exists() else {"jobs": [], "enabled": ["vast"]}
            s.update(kw)
            p.write_text(json.dumps(s))

        def state(self):
            return json.loads((d / "state.json").read_text())

    return Fake()


def _sky_loader_available() -> bool:
    try:
        return skymod.sky_python() is not None or __import__("importlib").util.find_spec("sky") is not None
    except MailvoiceError:
        return False


@pytest.fixture
def user(workspace, tmp_path, monkeypatch):
    """A user with a small prepared dataset, a host identity, and the env a launch reads."""
    space = user_space("dana_1", workspace).ensure()
    rows = [{"messages": [{"role": "system", "content": "You write as Dana."},
                          {"role": "user", "content": f"Write an email to Sam.\nSubject: visit {i}"},
                          {"role": "assistant", "content": "Hi Sam! " * 30 + "Cheers,\nDana"}]} for i in range(40)]
    (space.data / "train_chat.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    # what prepare leaves beside the training files: raw mail, IMAP state, the dataset manifest
    (space.data / "records.jsonl").write_text(json.dumps({"body": "my ssn: 536-22-8421, card 4111 1111 1111 1111"}) + "\n")
    (space.data / "imap-state.json").write_text("{}")
    (space.data / "dataset_alpaca.json").write_text("{}")
    ident = tmp_path / "host.key"
    pub = new_identity(ident)
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "HF_TOKEN",
              "MAILVOICE_AGE_IDENTITY", "MAILVOICE_AGE_RECIPIENTS", "MAILVOICE_BACKUP_PASSPHRASE"):
        monkeypatch.delenv(k, raising=False)
    return space, pub, ident


def _spec(**kw):
    base = dict(job="mv-dana-1-x", user_id="dana_1", bucket="s3://b/mailvoice", config_rel="configs/mv-dana-1-x.yaml",
                data_backup="0123456789ab", gpu="H100", install="mailvoice==0.1.0",
                secrets=["MAILVOICE_AGE_IDENTITY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
                envs={"MAILVOICE_AGE_RECIPIENTS": "age1example"}, base_model="meta-llama/Llama-3.1-8B-Instruct")
    base.update(kw)
    return TaskSpec(**base)


def test_task_yaml_shape_secrets_by_name_only(tmp_path):
    task = build_task(_spec())
    text = dump_task(task)
    data = yaml.safe_load(text)
    assert data["resources"]["accelerators"] == "H100:1" and data["resources"]["infra"] == "vast"
    assert data["resources"]["disk_size"] == 100
    assert data["resources"]["job_recovery"]["recover_on_exit_codes"] == [75]
    assert data["secrets"] == {"MAILVOICE_AGE_IDENTITY": None, "AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None}
    assert "mailvoice==0.1.0" in data["setup"] and "torch==2.13.0" in data["setup"]
    run = data["run"].split()
    assert run[1:3] == ["-m", "mailvoice.cloud.onhost"]
    assert run[run.index("--data-backup") + 1] == "0123456789ab"
    assert "AGE-SECRET-KEY" not in text
    # the run line parses with the on-host script's own argument parser
    from mailvoice.cloud import onhost

    with pytest.raises(SystemExit) as e:
        onhost.main(run[3:] + ["--help"])
    assert e.value.code == 0
    assert build_task(_spec(base_model="meta-llama/Llama-3.3-70B-Instruct", spot=True))["resources"]["disk_size"] == 300
    with pytest.raises(MailvoiceError, match="unknown --gpu"):
        build_task(_spec(gpu="V100"))


@pytest.mark.skipif(not _sky_loader_available(), reason="SkyPilot not found (set MAILVOICE_SKY_PYTHON or put sky on PATH)")
def test_skypilot_own_loader_accepts_the_yaml(tmp_path):
    p = tmp_path / "task.yaml"
    p.write_text(dump_task(build_task(_spec(spot=True, wheel_path=str(tmp_path / "mailvoice-0.1.0-py3-none-any.whl"),
                                            install=None))))
    t = skymod.load_task(p)
    assert t["name"] == "mv-dana-1-x"
    assert any("H100" in r for r in t["resources"]) and any("Vast" in r for r in t["resources"])
    assert sorted(t["secret_refs"]) == ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MAILVOICE_AGE_IDENTITY"]
    assert t["inline_secrets"] == []  # nothing inlined
    assert "MAILVOICE_AGE_RECIPIENTS" in t["envs"]
    assert t["file_mounts"] == ["~/mailvoice-dist/mailvoice-0.1.0-py3-none-any.whl"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nresources:\n  accelerators: H100:1\n  no_such_field: 1\nrun: echo\n")
    with pytest.raises(MailvoiceError, match="SkyPilot rejects"):
        skymod.load_task(bad)


def test_sky_missing_or_cloud_disabled_is_one_clear_line(monkeypatch, fake_sky, tmp_path):
    monkeypatch.setenv("MAILVOICE_SKY", str(tmp_path / "nowhere" / "sky"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(MailvoiceError, match="SkyPilot is not installed"):
        skymod.check_cloud("vast")
    monkeypatch.setenv("MAILVOICE_SKY", str(fake_sky.dir / "sky"))
    fake_sky.set_state(enabled=["aws"])
    with pytest.raises(MailvoiceError, match="no enabled cloud 'vast'"):
        skymod.check_cloud("vast")
    skymod.check_cloud("aws")


def test_estimate_counts_tokens_and_uses_measured_throughput(user, tiny_model, workspace):
    space, _, _ = user
    cfg = validate_config({"base_model": "meta-llama/Llama-3.1-8B-Instruct", "num_train_epochs": 3})
    e = estimate_cost(cfg, space.data, "h100", price_per_hour=3.0)
    assert e.token_count == "approx" and e.rows == 40 and e.tokens_total == 3 * e.tokens_per_epoch
    assert e.tokens_per_s_source == "prior" and e.price_source == "given"
    assert e.gpu_hours == pytest.approx(e.tokens_total / e.tokens_per_s / 3600 + e.overhead_hours, abs=1e-3)
    assert e.cost_usd == pytest.approx(e.gpu_hours * 3.0, abs=0.01)
    big = estimate_cost(validate_config({"base_model": "meta-llama/Llama-3.3-70B-Instruct"}), space.data, "H100")
    assert big.tokens_per_s == pytest.approx(e.tokens_per_s * 8 / 70, rel=1e-3)
    record_throughput("H100", cfg.base_model, 4000.0, "job-a", workspace)
    record_throughput("H100", cfg.base_model, 6000.0, "job-b", workspace)
    m = estimate_cost(cfg, space.data, "H100")
    assert m.tokens_per_s == 5000.0 and m.tokens_per_s_source == "measured (2 runs)"
    exact = estimate_cost(validate_config({"base_model": str(tiny_model), "max_steps": 10}), space.data, "RTX4090",
                          tokens_per_s=100)
    assert exact.token_count == "exact" and exact.tokens_per_s_source == "given"
    assert exact.tokens_total == int(10 * 4 * exact.tokens_per_epoch / 40)


def test_dry_run_writes_yaml_and_records_estimate_uploads_nothing(user, workspace, fake_sky, capsys, monkeypatch):
    space, pub, ident = user
    bucket = space.root.parent / "bucket"
    rc = main(["cloud", "launch", "--user-id", "dana_1", "--config", str(ROOT / "configs" / "lora-config-8b.yaml"),
               "--bucket", str(bucket), "--gpu", "A100", "--recipient", pub, "--identity", str(ident),
               "--price-per-hour", "1.5", "--dry-run"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "estimate:" in out and "A100" in out and "dry run" in out
    (rec_path,) = space.path.glob("cloud/*/job.json")
    rec = json.loads(rec_path.read_text())
    assert rec["dry_run"] and rec["estimate"]["price_per_hour"] == 1.5 and rec["estimate"]["gpu"] == "A100"
    text = (rec_path.parent / "task.yaml").read_text()
    assert "AGE-SECRET-KEY" not in text and "AGE-SECRET-KEY" not in rec_path.read_text()
    assert not bucket.exists()
    assert [c["argv"][0] for c in fake_sky.calls()] == []  # a dry run asks SkyPilot nothing


def test_launch_queue_status_logs_cancel_with_a_stand_in_sky(user, workspace, fake_sky, tmp_path, capsys, monkeypatch):
    space, pub, ident = user
    other = user_space("marcus", workspace).ensure()
    (other.data / "train_chat.jsonl").write_text((space.data / "train_chat.jsonl").read_text())
    bucket = str(tmp_path / "bucket")
    users = tmp_path / "users.txt"
    users.write_text("# who\ndana_1\nmarcus  # second\n")
    assert read_users_file(users) == ["dana_1", "marcus"]

    waits = []

    def sleep(s):  # the first job finishes while we wait
        waits.append(s)
        st = fake_sky.state()
        for j in st["jobs"]:
            j["status"] = "SUCCEEDED"
        fake_sky.set_state(jobs=st["jobs"])

    plans = launch_many(["dana_1", "marcus"], ROOT / "configs" / "lora-config-8b.yaml", bucket, max_concurrent=1,
                        poll_s=5, on_event=lambda m: None, sleep=sleep, recipients=[pub], identity_file=ident,
                        install="mailvoice==0.1.0", workspace=workspace)
    assert [p.job_id for p in plans] == [1, 2] and waits == [5]
    calls = fake_sky.calls()
    launches = [c for c in calls if c["argv"][:2] == ["jobs", "launch"]]
    assert calls[0]["argv"][0] == "check" and len(launches) == 2
    for c in launches:
        assert c["secret_values_set"] == {"MAILVOICE_AGE_IDENTITY": True}
        assert c["identity_fingerprint"] == "AGE-SECRET-KEY-1"  # handed over in the environment …
        assert not any("AGE-SECRET-KEY" in a for a in c["argv"])  # … never on the command line
    # each user's dataset went to the bucket, encrypted, before its job
    from mailvoice.vault import list_backups

    for p in plans:
        (b,) = list_backups(p.user_id, bucket)
        assert b.backup_id == p.data_backup and b.manifest["encrypted"]
        # only the scrubbed training file goes to the rented host: no records.jsonl, nothing else
        assert {f["path"] for f in b.manifest["files"]} == {"data/train_chat.jsonl", f"configs/{p.job}.yaml"}

    rows, err = status(workspace=workspace)
    assert err is None and [r.sky_status for r in rows] == ["SUCCEEDED", "RUNNING"]
    assert main(["cloud", "status", "--user-id", "marcus"]) == 0
    assert "sky=RUNNING" in capsys.readouterr().out
    assert main(["cloud", "logs", "--user-id", "marcus", "--no-follow"]) == 0
    assert main(["cloud", "cancel", "--user-id", "marcus"]) == 0
    assert fake_sky.state()["jobs"][1]["status"] == "CANCELLED"
    assert main(["cloud", "fetch", "--user-id", "marcus"]) == 1  # not finished: one error line
    assert "has not finished" in capsys.readouterr().err


def test_launch_refuses_before_uploading_when_keys_are_missing(user, workspace, fake_sky, tmp_path, capsys):
    space, pub, ident = user
    bucket = tmp_path / "bucket"
    args = ["cloud", "launch", "--user-id", "dana_1", "--config", str(ROOT / "configs" / "lora-config-8b.yaml"),
            "--bucket", str(bucket), "--install", "mailvoice==0.1.0"]
    assert main(args) == 1
    assert "no recipient" in capsys.readouterr().err
    assert main(args + ["--recipient", pub]) == 1  # no identity for the host
    assert "MAILVOICE_AGE_IDENTITY" in capsys.readouterr().err
    wrong = tmp_path / "other.key"
    new_identity(wrong)
    assert main(args + ["--recipient", pub, "--identity", str(wrong)]) == 1
    assert "matches none of the recipients" in capsys.readouterr().err
    assert main(args + ["--recipient", "AGE-SECRET-KEY-1QQQ"]) == 1
    assert "AGE-SECRET-KEY-1QQQ" not in capsys.readouterr().err
    assert not bucket.exists()


def test_names_and_buckets():
    n = job_name("Dana_1")
    assert n.startswith("mv-dana-1-") and n == n.lower()
    assert dest_url("s3://bkt") == "s3://bkt/mailvoice" and dest_url("s3://bkt/p/q") == "s3://bkt/p/q"


def test_the_default_install_is_a_wheel_of_this_checkout(tmp_path):
    import zipfile

    from mailvoice.cloud.jobs import build_wheel

    before = (ROOT / "build").exists()
    w = build_wheel(tmp_path / "dist")
    names = zipfile.ZipFile(w).namelist()
    assert "mailvoice/cloud/onhost.py" in names and "mailvoice/vault/core.py" in names
    assert (ROOT / "build").exists() == before  # built from a copy: the checkout stays clean
