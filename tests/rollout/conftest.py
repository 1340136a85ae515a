"""Fixtures of the rollout tests."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """Tiny models gain nothing from a second thread, and on a shared, loaded machine two OpenMP threads
    wait on each other at every op (seconds instead of milliseconds): run these tests on one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
