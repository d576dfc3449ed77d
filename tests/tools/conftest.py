import pytest
import torch


@pytest.fixture
def one_thread():
    """Two shared cores: several threads per process only slow the
    in-process train / test runs down."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
