"""Remote code of a mia_kd export: ``AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True)``.

mia_kd copies this file into an exported folder as ``modeling_mia_kd.py`` and names its classes in that
folder's ``config.json`` (``auto_map``), for the exports that plain ``from_pretrained`` would load as another
model than the one whose leakage was measured: a student whose privacy method transforms its logits when it
is served (``privacy.stage: serve``) or changed its modules (``bottleneck``, ``nonorm``), and an ensemble of
students. That ``config.json``'s ``model_type`` is ``mia_kd``, which transformers does not know, so loading
without ``trust_remote_code=True`` raises instead of silently dropping the protection.

The model is built by mia_kd itself (``pip install mia-kd``): :func:`mia_kd.distill.student.load_student`
for a student (its serve transform applied in ``forward``), :func:`mia_kd.distill.ensemble.load_ensemble`
for an ensemble (``forward``'s logits are the mixture's log-probs). mia_kd never imports this module.
"""

from __future__ import annotations

import os

import torch
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutput


class MiaKdConfig(PretrainedConfig):
    """``kind``: ``student`` or ``ensemble``; ``student_config``: a student's own ``config.json`` (a dict)."""

    model_type = "mia_kd"

    def __init__(self, kind: str = "student", student_config: dict | None = None, **kwargs) -> None:
        self.kind = kind
        self.student_config = student_config
        super().__init__(**kwargs)


class MiaKdForCausalLM(PreTrainedModel):
    """A mia_kd student with its privacy method, or an ensemble of students, as a causal LM.

    ``forward(input_ids, attention_mask)`` returns ``logits`` of shape ``(batch, seq, vocab)``: the student's
    logits after its serve transform, or the ensemble's mixture log-probs (a softmax of them is the mixture).
    """

    config_class = MiaKdConfig
    base_model_prefix = "inner"
    main_input_name = "input_ids"

    def __init__(self, config: MiaKdConfig, inner: torch.nn.Module | None = None, transform=None) -> None:
        super().__init__(config)
        if inner is None:
            raise ValueError("a mia_kd export is loaded, not built: from_pretrained(folder, trust_remote_code=True)")
        self.inner = inner
        self.transform = transform  # the serve-stage logits transform, or None

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, config=None, **kwargs):
        """The export at a local folder or a hub id (downloaded whole: mia_kd reads its files), in eval mode,
        float32, on the CPU (move it with ``.to``)."""
        folder = str(pretrained_model_name_or_path)
        if not os.path.isdir(folder):
            from huggingface_hub import snapshot_download

            hub = {k: kwargs[k] for k in ("revision", "cache_dir", "token", "local_files_only") if k in kwargs}
            folder = snapshot_download(folder, **hub)
        if config is None:
            config = cls.config_class.from_pretrained(folder)
        if config.kind == "ensemble":
            from mia_kd.distill.ensemble import load_ensemble

            return cls(config, load_ensemble(folder)).eval()
        from mia_kd.distill.student import load_student

        model, _, transform = load_student(folder)
        return cls(config, model, transform).eval()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, labels=None, **kwargs):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if self.config.kind == "ensemble":
            logits = self.inner(input_ids, attention_mask)
        else:
            logits = self.inner(input_ids=input_ids, attention_mask=attention_mask).logits
            if self.transform is not None:
                logits = self.transform(logits, input_ids, attention_mask)
        loss = None
        if labels is not None:  # next-token cross-entropy, -100 ignored, as transformers' causal LMs compute it
            loss = torch.nn.functional.cross_entropy(
                logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten().to(logits.device), ignore_index=-100
            )
        return CausalLMOutput(loss=loss, logits=logits)
