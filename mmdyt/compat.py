"""Work-arounds for upstream problems of the OpenMMLab 2.x stack (filled by the foundation work)."""


def apply_compat_fixes():
    """Apply every fix; idempotent."""
