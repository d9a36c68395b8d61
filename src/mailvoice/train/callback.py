"""The trainer hook of the recipe: step log, ETA and time budget, checkpoint marker, upload, clean stops.

Its own module because it subclasses ``transformers.TrainerCallback``: importing it loads
transformers and torch, which ``train/run.py``'s light helpers (``parse_duration``, the
tokenizer for ``cloud estimate``) must not pay for.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable
from pathlib import Path

from transformers import TrainerCallback

from ..workspace import privatise_tree, write_json
from .run import COMPLETE_MARKER


class CheckpointCallback(TrainerCallback):
    """Progress, a completeness marker on every checkpoint, the upload hook, clean stops.

    ``step_log`` holds ``[step, seconds since training started, tokens seen]`` per step: the
    per-step speed without a profiler. ``stopped_by`` names the signal that stopped the run."""

    def __init__(self, run_dir: Path, clock, *, on_checkpoint: Callable[[Path], None] | None = None,
                 progress: Callable[[int, int, dict], None] | None = None,
                 notice: Callable[[str], None] = print, sync: Callable[[], None] = lambda: None):
        self.run_dir, self.clock, self.on_checkpoint = Path(run_dir), clock, on_checkpoint
        self.progress, self.notice, self.sync = progress, notice, sync
        self.step_log: list[list] = []
        self.stopped_by: str | None = None
        self.t0 = time.perf_counter()

    @contextlib.contextmanager
    def stop_on_signals(self):
        """SIGINT/SIGTERM during training: save a checkpoint at the end of the step and stop."""
        def _on_signal(signum, frame):
            self.stopped_by = signal.Signals(signum).name

        old = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def on_log(self, a, state, control, logs=None, **kw):
        if self.progress:
            self.progress(state.global_step, state.max_steps, dict(logs or {}))

    def on_train_begin(self, a, state, control, **kw):
        self.t0 = time.perf_counter()

    def on_step_begin(self, a, state, control, **kw):
        self.clock.begin(state.global_step)

    def on_step_end(self, a, state, control, **kw):
        self.sync()  # the GPU's queue, not the Python side, sets the step time
        self.step_log.append([state.global_step, round(time.perf_counter() - self.t0, 4),
                              int(state.num_input_tokens_seen or 0)])
        if self.progress:
            self.progress(state.global_step, state.max_steps, {})
        eta = self.clock.end(state.global_step)
        if eta is not None:
            self.notice(eta)
        if self.stopped_by or self.clock.out_of_time(state.global_step):
            control.should_save = True
            control.should_training_stop = True

    def on_save(self, a, state, control, **kw):
        ckpt = self.run_dir / f"checkpoint-{state.global_step}"
        if ckpt.is_dir():
            privatise_tree(ckpt)
            write_json(ckpt / COMPLETE_MARKER, {"step": state.global_step, "complete": True})
            if self.on_checkpoint:
                self.on_checkpoint(ckpt)
