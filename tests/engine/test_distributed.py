"""Leaving a gloo process group without its teardown (exit_cpu_distributed)."""
import subprocess
import sys
import textwrap

from mmdyt.engine.distributed import exit_cpu_distributed

SCRIPT = textwrap.dedent('''
    import logging, sys
    import torch.distributed as dist
    from mmdyt.engine.distributed import exit_cpu_distributed
    dist.init_process_group('gloo', init_method='file://{store}', rank=0, world_size=1)
    handler = logging.FileHandler({log!r})
    logger = logging.getLogger('run')
    logger.addHandler(handler)
    logger.warning('run finished')
    print('stdout line', end='')
    exit_cpu_distributed()
    print('not reached')
    sys.exit(3)
''')


def test_exit_flushes_logs_and_leaves_with_status_zero(tmp_path):
    log = tmp_path / 'run.log'
    script = SCRIPT.format(store=tmp_path / 'store', log=str(log))
    proc = subprocess.run([sys.executable, '-c', script], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == 'stdout line'
    assert log.read_text() == 'run finished\n'


def test_without_process_group_it_returns():
    assert exit_cpu_distributed() is None
