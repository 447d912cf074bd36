"""The web dashboard at ``/ui`` (docs/dashboard.md): server-rendered pages over the ledger, the
deployments, the access layer and the rollouts, with charts drawn by the browser (uPlot)."""
