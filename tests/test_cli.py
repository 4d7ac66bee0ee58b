"""Bad input: one line naming the problem, exit code 2, no traceback, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from mia_kd.cli import main


def _write(tmp_path, raw: dict) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def _run(tmp_path, capsys, raw: dict, *extra: str) -> tuple[int, str]:
    out = tmp_path / "out"
    code = main(["trial", _write(tmp_path, raw), "--out", str(out), *extra])
    err = capsys.readouterr().err
    assert not out.exists(), "a failed trial must write nothing"
    assert "Traceback" not in err
    # Progress lines may come first; the error itself is exactly one line.
    errors = [line for line in err.splitlines() if line.startswith("mia-kd: error: ")]
    assert len(errors) <= 1
    return code, errors[0] if errors else err.strip()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"teacher": {"trian": {}}}, "unknown key 'trian' under 'teacher'; allowed: config, model_type"),
        ({"teacher": {"train": {"epochs": "many"}}}, "teacher.train.epochs"),
        ({"data": {"calib_fraction": 1.5}}, "data.calib_fraction"),
        ({"data": {"source": "pythn-docs"}}, "unknown data source 'pythn-docs' (did you mean 'python-docs'?)"),
        ({"attacks": ["loss", "lss"]}, "unknown attack 'lss' (did you mean 'loss'?)"),
        ({"attacks": [{"name": "min_k", "k": 1.5}]}, "min_k.k"),
        ({"metrics": {"privacy_objective": "acc"}}, "metrics.privacy_objective"),
    ],
)
def test_bad_config_values_give_one_line_and_exit_2(tmp_path, capsys, ci_raw, change, expected):
    raw = {**ci_raw, **{k: {**ci_raw.get(k, {}), **v} if isinstance(v, dict) else v for k, v in change.items()}}
    code, err = _run(tmp_path, capsys, raw)
    assert code == 2
    assert err.startswith("mia-kd: error: ") and len(err.splitlines()) == 1
    assert expected in err


def test_missing_data_file(tmp_path, capsys, ci_raw):
    ci_raw["data"]["source"] = {"name": "files", "path": str(tmp_path / "nope.jsonl")}
    code, err = _run(tmp_path, capsys, ci_raw)
    assert code == 2 and "data.source.path" in err and "nope.jsonl" in err
    assert len(err.splitlines()) == 1


def test_unreadable_data_file(tmp_path, capsys, ci_raw):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"this is not parquet")
    ci_raw["data"]["source"] = {"name": "files", "path": str(bad)}
    code, err = _run(tmp_path, capsys, ci_raw)
    assert code == 2 and "bad.parquet" in err and len(err.splitlines()) == 1


def test_a_library_logging_its_own_error_adds_no_lines(tmp_path, capsys, ci_raw):
    """datasets logs an unreadable Parquet file's error before raising; the CLI's one line says it. A handler
    another library left on the root logger with a closed stream (as Ray's did in CI) made that log a
    "--- Logging error ---" traceback on stderr."""
    import io
    import logging

    stale = io.StringIO()
    handler = logging.StreamHandler(stale)
    stale.close()
    logging.root.addHandler(handler)
    try:
        test_unreadable_data_file(tmp_path, capsys, ci_raw)
    finally:
        logging.root.removeHandler(handler)


def test_missing_text_column(tmp_path, capsys, ci_raw):
    data = tmp_path / "data.csv"
    data.write_text("body,label\nhello there friend,1\n")
    ci_raw["data"]["source"] = {"name": "files", "path": str(data), "text_column": "text"}
    code, err = _run(tmp_path, capsys, ci_raw)
    assert code == 2 and "text_column" in err and "'text'" in err and "body" in err


def test_bad_override_and_missing_config(tmp_path, capsys, ci_raw):
    code, err = _run(tmp_path, capsys, ci_raw, "--set", "teacher.train.epochs=-3")
    assert code == 2 and "teacher.train.epochs" in err
    code, err = _run(tmp_path, capsys, ci_raw, "--set", "novalue")
    assert code == 2 and "key.path=value" in err
    assert main(["trial", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_invalid_yaml(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("data: {members: [\n")
    assert main(["trial", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "not valid YAML" in err and len(err.strip().splitlines()) == 1


def test_console_entry_point_exits_2_without_traceback(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("seed: -1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "mia_kd", "trial", str(path), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "seed" in proc.stderr


def test_shifted_split_exits_2_and_writes_nothing(tmp_path, capsys, ci_raw):
    other = tmp_path / "other.txt"
    other.write_text("\n".join(f"Rain and storm number {i} over the cloudy garlic fields." for i in range(600)))
    ci_raw["data"]["nonmember_source"] = {"name": "files", "path": str(other)}
    code, err = _run(tmp_path, capsys, ci_raw)
    assert code == 2 and "blind check failed" in err and "allow_shifted_split" in err


@pytest.mark.parametrize(
    ("privacy", "expected"),
    [
        ({"method": "red_lst", "strength": 1.0}, "unknown privacy method 'red_lst' (did you mean 'red_list'?)"),
        ({"method": "red_list", "strength": 9.0}, "privacy.strength: got 9.0, red_list allows [0, 8]"),
        ({"method": "temperature", "strength": -0.1}, "temperature allows [0, 0.95]"),
        ({"method": "bottleneck", "strength": 0.5, "stage": "serve"}, "privacy.stage"),
        ({"method": "dp_sgd", "strength": 1.0, "max_grad_nrm": 1.0}, "unknown parameter 'max_grad_nrm'"),
    ],
)
def test_bad_privacy_config_gives_one_line_and_exit_2(tmp_path, capsys, ci_raw, privacy, expected):
    code, err = _run(tmp_path, capsys, {**ci_raw, "privacy": privacy})
    assert code == 2 and expected in err and len(err.splitlines()) == 1


def test_methods_lists_every_method_with_range_and_neutral(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    for name, bounds in [
        ("none", "[0, 0]"), ("red_list", "[0, 8]"), ("temperature", "[0, 0.95]"), ("vulnerable_filter", "[0, 1]"),
        ("bottleneck", "[0, 0.9]"), ("nonorm", "[0, 128] integer"), ("output_noise", "[0, 5]"), ("topk_targets", "[0, 1]"),
        ("dp_sgd", "[0, 10]"),
    ]:
        line = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert bounds in line


# ---- speed and unexpected errors (issue 16): parsing loads nothing heavy, `methods` no torch; a bug is one line

HEAVY = {"torch", "transformers", "ray", "optuna", "opacus", "pandas", "pyarrow", "moocore"}
LIGHT_COMMANDS = {  # command: (libraries it must not load, what its output shows)
    # argument parsing alone: no library beyond the standard one
    "--help": (HEAVY | {"numpy", "pydantic", "yaml"}, "methods"),
    "--version": (HEAVY | {"numpy", "pydantic", "yaml"}, "mia-kd 0."),
    # the methods' metadata (pydantic for their Params, numpy), every method listed, not the libraries that run them
    "methods": (HEAVY, "dp_sgd"),
}


@pytest.mark.parametrize("command", sorted(LIGHT_COMMANDS))
def test_light_commands_import_no_heavy_library(command):
    heavy, shown = LIGHT_COMMANDS[command]
    code = (
        "import sys\nfrom mia_kd.cli import main\n"
        f"try:\n    code = main([{command!r}])\nexcept SystemExit as exit:\n    code = exit.code\n"
        f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(heavy)!r}))\n"
        "print('loaded:', heavy, 'exit:', code, file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stderr.strip().splitlines()[-1] == "loaded: [] exit: 0", proc.stderr
    assert shown in proc.stdout


def test_frontier_help_states_the_analysis_default_margin():
    from mia_kd.analysis.frontier import DEFAULT_MARGIN
    from mia_kd.cli import FRONTIER_DEFAULT_MARGIN, _parser

    assert FRONTIER_DEFAULT_MARGIN == DEFAULT_MARGIN
    frontier = _parser()._subparsers._group_actions[0].choices["frontier"]
    assert f"(default {DEFAULT_MARGIN};" in " ".join(frontier.format_help().split())


def _broken(args):
    raise RuntimeError("the disk is on fire\nsecond line of the message")


def test_an_unexpected_error_is_one_line_and_exit_1(monkeypatch, capsys):
    monkeypatch.setattr("mia_kd.cli._cmd_methods", _broken)
    assert main(["methods"]) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "mia-kd: error: RuntimeError: the disk is on fire (rerun with -v for the traceback)"
    ]


def test_an_unexpected_error_shows_its_traceback_with_v(monkeypatch, capsys):
    monkeypatch.setattr("mia_kd.cli._cmd_methods", _broken)
    assert main(["methods", "-v"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "Traceback (most recent call last):" and any("_broken" in line for line in lines)
    assert lines[-1] == "mia-kd: error: RuntimeError: the disk is on fire"


def test_a_user_error_is_still_exit_2_not_1(monkeypatch, capsys):
    from mia_kd.errors import ConfigError

    def refuse(args):
        raise ConfigError("privacy.method: unknown")

    monkeypatch.setattr("mia_kd.cli._cmd_methods", refuse)
    assert main(["methods"]) == 2
    assert capsys.readouterr().err.splitlines() == ["mia-kd: error: privacy.method: unknown"]


def test_a_closed_output_pipe_is_not_reported_as_an_error():
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written (`mia-kd methods | head -0`)
    try:
        proc = subprocess.run([sys.executable, "-m", "mia_kd", "methods"], stdout=write, stderr=subprocess.PIPE,
                              text=True, timeout=120)
    finally:
        os.close(write)
    assert proc.stderr == "" and proc.returncode == 1
