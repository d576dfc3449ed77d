import pytest
import torch

from dataset_writers import write_video_lists


@pytest.fixture
def one_thread():
    """Two shared cores: several threads per process only slow the
    in-process train / test runs down."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def k400_dir(tmp_path):
    """Tiny video lists over real clips (``write_video_lists``)."""
    write_video_lists(str(tmp_path))
    return tmp_path
