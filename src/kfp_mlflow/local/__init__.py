"""Local runs: the runner in the caller's process, the local MLflow server, ``predict --watch``.

A local run is three processes (the task side lives in :mod:`kfp_mlflow.runtime`):

    caller (run_local / `kfp-mlflow run`)      checks, starts the server, watches, closes runs
     ├─ driver      (own session)              kfp.local: the DAG, loops, artifacts
     │    └─ sh → python -m kfp_mlflow.runtime.executor   a client: hands the task over
     └─ supervisor  (own session)              forks each task warm, deadlines, exit facts
          └─ task   (own process group)        the step itself

Both children hold a lifeline pipe from the caller: whichever way the caller dies, every task
ends within seconds.
"""
