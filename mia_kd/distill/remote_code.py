"""Makes an exported folder load through transformers' remote code, or fail loudly without it.

A student whose privacy method acts when it is loaded (serve-stage transforms, ``bottleneck``, ``nonorm``)
and an ensemble are not models transformers can build from a stock ``config.json``: plain
``from_pretrained`` would load another model (the protection dropped) without a warning. Their exported
``config.json`` is rewritten here to ``model_type: mia_kd`` with an ``auto_map`` to ``modeling_mia_kd.py``
(a copy of :mod:`mia_kd.distill._modeling_mia_kd`): transformers then refuses to load the folder unless
``trust_remote_code=True``, and with it builds the model through mia_kd (``load_student``/``load_ensemble``).
The student's own config is kept inside, as ``student_config``. Torch-free: ensembles are exported beside the
analysis commands.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from mia_kd.errors import UserError

MODEL_TYPE = "mia_kd"
MODELING_FILE = "modeling_mia_kd.py"
AUTO_MAP = {
    "AutoConfig": "modeling_mia_kd.MiaKdConfig",
    "AutoModelForCausalLM": "modeling_mia_kd.MiaKdForCausalLM",
}


def write_remote_code(folder: str | Path, kind: Literal["student", "ensemble"]) -> None:
    """Rewrite ``folder/config.json`` to the mia_kd wrapper (the student's own config nested inside) and add
    ``modeling_mia_kd.py``."""
    folder = Path(folder)
    config: dict[str, Any] = {
        "model_type": MODEL_TYPE, "kind": kind, "architectures": ["MiaKdForCausalLM"], "auto_map": AUTO_MAP,
    }
    if kind == "student":
        own = json.loads((folder / "config.json").read_text())
        if "auto_map" in own:
            raise UserError(
                f"student {str(folder)!r} runs its own remote code ({own['auto_map']}), which mia_kd cannot wrap; "
                "load it with mia_kd.distill.student.load_student from the sweep's students/ folder"
            )
        config["student_config"] = own
    code = resources.files("mia_kd.distill").joinpath("_modeling_mia_kd.py").read_text()
    (folder / MODELING_FILE).write_text(code)
    (folder / "config.json").write_text(json.dumps(config, indent=2))


def wrapped_student_config(folder: str | Path) -> dict[str, Any] | None:
    """The student's own config (a dict) when ``folder/config.json`` is the mia_kd wrapper, else None."""
    path = Path(folder) / "config.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None  # no wrapper here: transformers reports a missing or broken config itself
    if not isinstance(data, dict) or data.get("model_type") != MODEL_TYPE:
        return None
    if not isinstance(data.get("student_config"), dict):
        raise UserError(f"{path}: a mia_kd {data.get('kind')!r} export, not one student; load it with its own loader")
    return data["student_config"]
