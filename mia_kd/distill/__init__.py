"""Distilling a student (:mod:`.trainer`, with the loss of :mod:`.loss`), and saving, reloading and ensembling
students (docs/architecture.md §2, §6). A privacy method acts on distillation only through its hooks, called in
:func:`mia_kd.distill.trainer.distill`. Import the modules themselves: this package imports nothing."""
