"""Finding a student's modules from its config and module types (never from attribute names or paths).

Shared by the ``architecture`` methods (``bottleneck``, ``nonorm``). Attribute names are used only to
*put back* a replacement into its parent (``setattr``), never to decide which module to replace.
torch and transformers are imported inside the functions: the methods' metadata is read without them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from mia_kd.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from torch import nn
    from transformers import PretrainedConfig


def text_config(model: nn.Module, method: str) -> PretrainedConfig:
    """The model's (text) config: what every size below is read from."""
    from transformers import PretrainedConfig

    config = getattr(model, "config", None)
    if not isinstance(config, PretrainedConfig):
        raise ConfigError(f"{method}: the student {type(model).__name__} has no transformers config to read sizes from")
    return config.get_text_config()


def student_config(config: Any) -> PretrainedConfig:
    """The transformers config of the student a trial ``config`` (a ``TrialConfig``) describes, no weights.

    Built from ``student.model_type``/``student.config`` as the trial builds it, or read from a pretrained
    student's ``config.json``. Raises :class:`ConfigError` where it cannot be read (an unknown type, or a
    hub id that is not cached while offline).
    """
    student = config.student
    if student.pretrained is not None:
        from mia_kd.models.pretrained import model_config

        return model_config(student.pretrained, what="student model", trust_remote_code=student.trust_remote_code)
    from transformers import AutoConfig

    try:
        return AutoConfig.for_model(student.model_type, **student.config)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"student.model_type/student.config: {str(exc).splitlines()[0]}") from None


def meta_model(config: Any) -> nn.Module:
    """The student a trial ``config`` describes, built on the meta device: its modules and shapes, no weights."""
    import torch
    from transformers import AutoModelForCausalLM

    model_cfg = student_config(config)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(model_cfg, trust_remote_code=config.student.trust_remote_code)


def hidden_size(config: PretrainedConfig) -> int:
    return int(config.hidden_size)


def intermediate_size(config: PretrainedConfig) -> int:
    """Feed-forward width: ``intermediate_size`` (Llama family), else ``n_inner`` (GPT-2), else GPT-2's 4·H."""
    for key in ("intermediate_size", "n_inner"):
        value = getattr(config, key, None)
        if value is not None:
            return int(value)
    return 4 * hidden_size(config)


def num_layers(config: PretrainedConfig) -> int:
    return int(config.num_hidden_layers)  # GPT-2 maps this onto n_layer


def projection_dims(module: nn.Module) -> tuple[int, int] | None:
    """``(in, out)`` features of a dense projection (``nn.Linear`` or GPT-2's transposed ``Conv1D``), else None."""
    from torch import nn
    from transformers.pytorch_utils import Conv1D

    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    if isinstance(module, Conv1D):
        return module.nx, module.nf
    return None


def children_of(model: nn.Module) -> Iterator[tuple[nn.Module, str, nn.Module]]:
    """Every ``(parent, attribute, child)`` triple, parents in module order (snapshot: safe to replace)."""
    return iter([(parent, attr, child) for parent in model.modules() for attr, child in parent.named_children()])


def replace_child(parent: nn.Module, attr: str, new: nn.Module) -> None:
    setattr(parent, attr, new)


def layer_stack(model: nn.Module, method: str) -> nn.ModuleList:
    """The transformer layers: the one outermost ``nn.ModuleList`` whose length is the config's layer count."""
    from torch import nn

    n = num_layers(text_config(model, method))
    found = [m for m in model.modules() if isinstance(m, nn.ModuleList) and len(m) == n]
    inner = {id(sub) for m in found for sub in m.modules() if sub is not m}
    outer = [m for m in found if id(m) not in inner]
    if len(outer) != 1:
        raise ConfigError(
            f"{method}: expected one stack of {n} layers (config.num_hidden_layers) in {type(model).__name__}, "
            f"found {len(outer)} nn.ModuleList of that length"
        )
    return outer[0]


def probe_dtype_device(module: nn.Module) -> tuple[torch.dtype, torch.device]:
    import torch

    tensor = next(iter(module.parameters()), None)
    if tensor is None:
        return torch.get_default_dtype(), torch.device("cpu")
    return tensor.dtype, tensor.device
