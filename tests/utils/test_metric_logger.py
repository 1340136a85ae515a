"""MetricLogger: JSON Lines plus TensorBoard, and a resume that shows every step once."""

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cagsr.utils.logging import MetricLogger


def test_a_resumed_logger_hides_the_steps_logged_after_the_checkpoint(tmp_path):
    killed = MetricLogger(tmp_path)
    for step in (1, 2, 3):  # a run checkpointed at step 1, then logged 2 and 3 and was killed
        killed.log(step, {"reward/reward": float(step)})
    killed.close()
    resumed = MetricLogger(tmp_path, resume_step=1)
    for step in (2, 3):
        resumed.log(step, {"reward/reward": 10.0 + step})
    resumed.close()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("reward/reward")] == [(1, 1.0), (2, 12.0), (3, 13.0)]
