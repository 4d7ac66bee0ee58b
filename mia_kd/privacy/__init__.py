"""Privacy-preserving distillation methods: one file per method, registered by file name and discovered on
first lookup (docs/architecture.md §6)."""

from mia_kd.privacy._base import (
    METHODS,
    MethodContext,
    MethodParams,
    PrivacyMethod,
    StrengthSpace,
    Vulnerability,
)
from mia_kd.privacy._methods import build_method, check_method, method_class, method_classes, methods_markdown
from mia_kd.privacy._vulnerability import (
    compute_vulnerability,
    vulnerability_file,
    vulnerability_from_json,
    vulnerability_to_json,
    vulnerable_subset,
)

__all__ = [
    "METHODS",
    "MethodContext",
    "MethodParams",
    "PrivacyMethod",
    "StrengthSpace",
    "Vulnerability",
    "build_method",
    "check_method",
    "compute_vulnerability",
    "method_class",
    "method_classes",
    "methods_markdown",
    "vulnerability_file",
    "vulnerability_from_json",
    "vulnerability_to_json",
    "vulnerable_subset",
]
