"""The pure KPI read core: stored components, formulas, KPI definitions and the scorecard."""
