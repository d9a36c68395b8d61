"""Training on a rented GPU as one command: SkyPilot managed jobs, our encrypted bucket as state.

``launch`` uploads the user's dataset encrypted, writes a SkyPilot task YAML whose run step is
``python -m mailvoice.cloud.onhost`` (restore → train with every checkpoint uploaded → upload
the adapter), and submits it with ``sky jobs launch``; after a preemption SkyPilot re-provisions
and restarts the command, and the on-host script resumes from the newest uploaded checkpoint.
See docs/rented-gpu.md.
"""

from .estimate import GPUS, Estimate, estimate_cost
from .jobs import (
    FetchResult,
    JobStatus,
    LaunchPlan,
    cancel,
    dest_url,
    fetch,
    launch,
    launch_many,
    list_records,
    logs,
    prepare,
    read_users_file,
    status,
    submit,
)
from .task import TaskSpec, build_task, dump_task

__all__ = [
    "GPUS",
    "Estimate",
    "FetchResult",
    "JobStatus",
    "LaunchPlan",
    "TaskSpec",
    "build_task",
    "cancel",
    "dest_url",
    "dump_task",
    "estimate_cost",
    "fetch",
    "launch",
    "launch_many",
    "list_records",
    "logs",
    "prepare",
    "read_users_file",
    "status",
    "submit",
]
