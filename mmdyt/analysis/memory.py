"""The process's resident set size (Linux ``/proc``), for the CPU memory
figures of :func:`~mmdyt.analysis.training_step_cost`."""
import resource


def rss_bytes():
    """Current resident size in bytes."""
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def reset_peak_rss():
    """Reset the process's peak resident size to the current one (Linux >=
    4.0, ``/proc/self/clear_refs``); False where that is not possible."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def peak_rss_bytes():
    """Peak resident size: ``VmHWM`` where /proc has it, else ``ru_maxrss``."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
