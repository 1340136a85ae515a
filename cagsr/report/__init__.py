"""Self-contained HTML reports of runs: curves, tables, validity plots and attention heatmaps."""
