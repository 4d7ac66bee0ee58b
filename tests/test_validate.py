"""``mia-kd validate`` refuses what ``mia-kd trial`` would crash on, every problem on its own line, exit 2;
prints one line for a valid config (the resolved config only with --print-config); imports no torch without
pretrained models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mia_kd.cli import main

REPO = Path(__file__).resolve().parents[1]
# Sizes a 40-record file can hold; one attack keeps the plug-in checks quick.
SMALL = {"data": {"members": 10, "nonmembers": 10, "utility": 4, "public": 8}, "attacks": ["loss"]}


def _jsonl(path: Path, n: int, column: str = "text") -> Path:
    path.write_text("".join(json.dumps({column: f"Record number {i} says something."}) + "\n" for i in range(n)))
    return path


def _validate(tmp_path: Path, capsys, raw: dict, *extra: str) -> tuple[int, str, str]:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    code = main(["validate", str(path), *extra])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def _data(**source) -> dict:
    return {**SMALL, "data": {**SMALL["data"], "source": {"name": "files", **source}}}


def _with(section: str, **values) -> dict:
    return {**SMALL, section: values}


def _bad_utf8(tmp_path: Path, suffix: str) -> Path:
    path = tmp_path / f"latin1{suffix}"
    lines = [f"Record number {i} says something." for i in range(40)]
    lines[3] = "Caf\xe9 au lait is served here."
    if suffix == ".jsonl":
        body = "".join(json.dumps({"text": line}, ensure_ascii=False) + "\n" for line in lines)
    else:
        body = "".join(line + "\n" for line in lines)
    path.write_bytes(body.encode("latin-1"))
    return path


# Each case: the config (given the test's temp folder) and the line validate must print for it.
CASES = {
    "wrong text_column": (
        lambda tmp: _data(path=str(_jsonl(tmp / "d.jsonl", 40)), text_column="txt"),
        "data.source.text_column: no column 'txt' in {tmp}/d.jsonl; columns: text",
    ),
    "too few records": (
        lambda tmp: _data(path=str(_jsonl(tmp / "d.jsonl", 20))),
        "data: the source (data.source) has 20 distinct records, the split asks for 10 members + 10 nonmembers "
        "+ 4 utility + 8 public = 32; lower these sizes or use a larger source",
    ),
    "non-UTF-8 jsonl": (
        lambda tmp: _data(path=str(_bad_utf8(tmp, ".jsonl"))),
        "data.source.text_column: column 'text' of row 4 in {tmp}/latin1.jsonl is not valid UTF-8",
    ),
    "non-UTF-8 txt": (
        lambda tmp: _data(path=str(_bad_utf8(tmp, ".txt"))),
        "data.source.path: cannot read {tmp}/latin1.txt: UnicodeDecodeError",
    ),
    "relative model folder": (
        lambda tmp: _with("teacher", pretrained="./models/x", train={"epochs": 0}),
        "teacher.pretrained: './models/x' does not exist; give the folder a model was saved to",
    ),
    "absolute model folder": (
        lambda tmp: _with("student", pretrained=str(tmp / "nope")),
        "student.pretrained: '{tmp}/nope' does not exist",
    ),
    "seed overflows": (lambda tmp: {**SMALL, "seed": 2**32}, "seed: must be below 2**32 = 4294967296"),
    "heads do not divide width": (
        lambda tmp: _with("student", config={"n_layer": 1, "n_embd": 100, "n_head": 3}),
        "student.config.n_embd: 100 is not divisible by n_head 3; make it a multiple of n_head (e.g. 99 or 102)",
    ),
    "unknown device": (
        lambda tmp: _with("runtime", device="tpu9"),
        "runtime.device: must be auto, cpu, cuda, cuda:N (N a GPU index) or mps; got 'tpu9'",
    ),
    "cache_dir is a file": (
        lambda tmp: _with("runtime", cache_dir=str(tmp / "config.yaml")),
        "runtime.cache_dir: '{tmp}/config.yaml' is a file; give a folder",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_problem_is_one_line_and_exit_2(tmp_path, capsys, case):
    make, expected = CASES[case]
    code, out, err = _validate(tmp_path, capsys, make(tmp_path))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("mia-kd: error: ")
    assert expected.format(tmp=tmp_path) in err


def test_every_problem_of_a_config_is_listed_at_once(tmp_path, capsys):
    raw = {
        **SMALL,
        "seed": 2**40,
        "data": {
            **SMALL["data"],
            "source": {"name": "files", "path": str(_jsonl(tmp_path / "few.jsonl", 20))},
            "nonmember_source": {"name": "files", "path": str(_jsonl(tmp_path / "other.jsonl", 40)), "text_column": "txt"},
            "allow_shifted_split": True,
        },
        "teacher": {"pretrained": "./models/x"},
        "student": {"config": {"n_embd": 100, "n_head": 3}},
        "runtime": {"device": "tpu9", "cache_dir": str(tmp_path / "config.yaml")},
    }
    code, out, err = _validate(tmp_path, capsys, raw)
    assert code == 2 and out == ""
    head, *lines = err.splitlines()
    keys = sorted(line.strip().split(":")[0] for line in lines)
    assert head == f"mia-kd: error: {tmp_path / 'config.yaml'}: {len(lines)} problems"
    assert keys == [
        "data", "data.nonmember_source.text_column", "runtime.cache_dir", "runtime.device", "seed",
        "student.config.n_embd", "teacher.pretrained",
    ]
    # The member source supplies members, utility and public in a shifted split: 22 of its 20 records.
    assert any("the member source (data.source) has 20 distinct records" in line and "= 22" in line for line in lines)


def test_schema_problems_are_all_listed_too(tmp_path, capsys):
    code, _, err = _validate(tmp_path, capsys, {**SMALL, "tokenizer": {"vocab_size": 1}, "distill": {"alpha": 2}})
    assert code == 2
    assert [line.strip().split(":")[0] for line in err.splitlines()[1:]] == ["tokenizer.vocab_size", "distill.alpha"]


def test_plugin_problems_are_all_listed(tmp_path, capsys):
    raw = {**SMALL, "attacks": ["loss", "lss", {"name": "min_k", "k": 1.5}], "privacy": {"method": "nope"}}
    code, _, err = _validate(tmp_path, capsys, raw)
    assert code == 2
    lines = err.splitlines()[1:]
    assert len(lines) == 3, err
    assert "unknown attack 'lss'" in lines[0] and "min_k.k" in lines[1] and "nope" in lines[2]


def test_valid_config_is_one_line_and_prints_the_config_on_request(tmp_path, capsys):
    raw = _data(path=str(_jsonl(tmp_path / "d.jsonl", 40)))
    code, out, _ = _validate(tmp_path, capsys, raw)
    assert code == 0 and out == f"{tmp_path / 'config.yaml'}: valid (trial config)\n"
    code, out, _ = _validate(tmp_path, capsys, raw, "-q")
    assert code == 0 and out.count("\n") == 1
    code, out, _ = _validate(tmp_path, capsys, raw, "--print-config")
    resolved = yaml.safe_load(out.split("# resolved config", 1)[1])
    assert code == 0 and resolved["data"]["source"]["path"] == str(tmp_path / "d.jsonl")
    assert resolved["privacy"]["strength"] is not None  # the neutral strength, filled in


def test_the_quickstart_validates_in_one_line_without_torch():
    code = (
        "import sys\nfrom mia_kd.cli import main\n"
        "code = main(['validate', 'sweeps/quickstart.yaml'])\n"
        "print('torch' in sys.modules, code, file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.stderr.strip().splitlines()[-1] == "False 0", proc.stderr
    assert proc.stdout.startswith("sweeps/quickstart.yaml: valid (sweep config); methods: none, ")
    assert proc.stdout.count("\n") == 1


def test_existing_model_folder_is_not_a_hub_id(tmp_path, capsys):
    # A folder that exists is opened (and found to hold no model), never looked up on the hub.
    (tmp_path / "empty").mkdir()
    code, _, err = _validate(tmp_path, capsys, _with("teacher", pretrained=str(tmp_path / "empty")))
    assert code == 2 and "cannot load the local folder" in err and "hub" not in err


def test_an_invalid_key_standing_at_its_default_adds_no_problem_of_its_own(tmp_path, capsys):
    raw = _data(path=str(_jsonl(tmp_path / "d.jsonl", 40)))
    raw["data"]["members"] = "many"  # at its default, 1000, the file would be too small
    raw["privacy"] = {"method": ["dp_sgd"], "max_grad_norm": 0.5}  # at its default, none has no max_grad_norm
    code, _, err = _validate(tmp_path, capsys, raw)
    assert code == 2
    assert [line.strip().split(":")[0] for line in err.splitlines()[1:]] == ["data.members", "privacy.method"], err
