"""Local runs: kfp.local drives the graph in a driver process, a supervisor starts and ends the
tasks, and the runner in the caller's process watches, reports and cleans up.

    caller (run_local / `kfp-mlflow run`)      watches status records, fails fast, closes runs
     ├─ driver      (own session)              kfp.local: the DAG, loops, artifacts
     │    └─ sh → python -m kfp_mlflow.executor  a client: hands the task to the supervisor
     └─ supervisor  (own session)              forks each task warm, deadlines, exit facts
          └─ task   (own process group)        the step itself

Both children hold a lifeline pipe from the caller: whichever way the caller dies, every task
ends within seconds.
"""
