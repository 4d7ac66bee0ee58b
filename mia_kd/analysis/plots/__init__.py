"""Figures of a sweep: the privacy/utility frontier, teacher-vs-student asymmetry, ROC curves (one module each).

Static figures are PNGs from matplotlib; they are drawn on a bare :class:`matplotlib.figure.Figure` (Agg
canvas, no pyplot), so nothing needs a display and no global figure state is kept. Interactive figures are
plotly ``Figure`` objects. Every function takes the analysis tables described in its docstring, checks
their columns (a missing one is a ``ValueError`` naming it) and creates the parent folders of ``path``.

Both frontier objectives are minimised: x = utility (task loss, nats/token), y = privacy (e.g. the
worst-case attack AUC); the better corner is the lower left. Which points are on a front is decided on the
calib selection objective; y shows each point's eval value (the reported one), so a front drawn through
them need not be a perfect staircase. The axes hold the data, the teacher and the chance level; the
hypervolume reference point (past the worst point by construction) is an annotation at their edge. The
``*_axes`` functions return the drawn matplotlib axes, which the ``*_png`` functions save, and tests read.
"""

from mia_kd.analysis.plots._common import CHANCE, MARGIN, TEACHER_COLUMNS, Curve
from mia_kd.analysis.plots.asymmetry import PANELS, asymmetry_axes, asymmetry_png, no_signal
from mia_kd.analysis.plots.frontier import frontier_axes, frontier_figure, frontier_limits, frontier_png
from mia_kd.analysis.plots.roc import roc_figure, roc_png

__all__ = [
    "CHANCE",
    "MARGIN",
    "PANELS",
    "TEACHER_COLUMNS",
    "Curve",
    "asymmetry_axes",
    "asymmetry_png",
    "frontier_axes",
    "frontier_figure",
    "frontier_limits",
    "frontier_png",
    "no_signal",
    "roc_figure",
    "roc_png",
]
