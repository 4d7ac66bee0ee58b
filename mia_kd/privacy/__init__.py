"""Privacy-preserving distillation methods: one file per method, registered by file name (docs/architecture.md §6)."""

from mia_kd.privacy._base import (
    METHODS,
    MethodContext,
    MethodParams,
    PrivacyMethod,
    StrengthSpace,
    Vulnerability,
)
from mia_kd.privacy._methods import build_method, check_method, method_class, method_classes
from mia_kd.privacy._vulnerability import compute_vulnerability
from mia_kd.privacy import none  # noqa: F401  (registers; every method module is imported in _methods)

__all__ = ["METHODS", "MethodContext", "MethodParams", "PrivacyMethod", "StrengthSpace", "Vulnerability", "build_method", "check_method", "compute_vulnerability", "method_class", "method_classes"]
