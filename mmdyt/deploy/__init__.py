"""Deploy steps applied to a trained model before inference."""
from .cpu import (MIN_MULTIPLY_ADDS, FuseReport, OneDNNLinear, fuse_for_cpu, onednn_available,
                  probe_onednn)

__all__ = [
    'MIN_MULTIPLY_ADDS', 'FuseReport', 'OneDNNLinear', 'fuse_for_cpu', 'onednn_available',
    'probe_onednn'
]
