"""Run life scripts for ``FakeKfpApi.run_script``: (run state, {task: state}) per poll."""

SUCCESS = [
    ("PENDING", {}),
    ("RUNNING", {"preprocess": "RUNNING"}),
    ("RUNNING", {"preprocess": "SUCCEEDED", "train": "RUNNING"}),
    ("SUCCEEDED", {"preprocess": "SUCCEEDED", "train": "SUCCEEDED"}),
]
FAILURE = [
    ("RUNNING", {"preprocess": "RUNNING"}),
    ("FAILED", {"preprocess": "SUCCEEDED", "train": "FAILED"}),
]
