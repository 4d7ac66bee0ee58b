"""Language models: tokenizers, building, the training loop, the content-addressed cache, the scorer and its
plan, and the mixture of models an exported ensemble runs (docs/architecture.md §2, §4).

Nothing here knows about privacy methods or analysis: saved students and ensembles, which rebuild a
student's method, live in :mod:`mia_kd.distill`. Import the modules themselves; this package imports
nothing, so ``import mia_kd.models.cache`` does not load the scorer.
"""
