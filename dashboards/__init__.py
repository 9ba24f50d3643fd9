"""Views of the search store (reads :mod:`nas.store` only): static matplotlib figures in :mod:`dashboards.plots`.

The interactive dashboard is optuna-dashboard on the same database (``nas search dashboard``).
"""

from dashboards.plots import SearchPlotData, plot_data, plot_search

__all__ = ["SearchPlotData", "plot_data", "plot_search"]
