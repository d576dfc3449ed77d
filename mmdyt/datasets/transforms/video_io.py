"""Decord loading that never turns an unreadable video into a silent wrong
label: the error names the file, or, with ``skip_corrupt=True``, the sample
is dropped with a warning that names it."""
import warnings

from mmaction.datasets.transforms import DecordDecode, DecordInit
from mmaction.registry import TRANSFORMS


class _CheckedVideoTransform:
    """Mix-in: run the decord transform, turn its failures into an error (or
    a warning and ``None``) that names the video file."""

    def __init__(self, *args, skip_corrupt=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.skip_corrupt = skip_corrupt

    def _check(self, results):
        """Raise if the decoded result is unusable."""

    def transform(self, results):
        filename = results.get('filename', '<no filename>')
        try:
            results = super().transform(results)
            self._check(results)
        except Exception as err:
            message = f'cannot read video {filename}: {type(err).__name__}: {err}'
            if not self.skip_corrupt:
                raise ValueError(message) from err
            warnings.warn(f'skipping corrupt video: {message}')
            return None
        return results


@TRANSFORMS.register_module()
class CheckedDecordInit(_CheckedVideoTransform, DecordInit):
    """:class:`DecordInit` whose errors name the file; a video without frames
    is an error too.

    Args:
        skip_corrupt (bool): warn and return None instead of raising. In
            training mmengine's dataset then draws another video; a test
            pipeline cannot drop samples, so mmengine raises there.
        **kwargs: :class:`DecordInit` arguments.
    """

    def _check(self, results):
        if results['total_frames'] <= 0:
            raise ValueError('the video has no frames')


@TRANSFORMS.register_module()
class CheckedDecordDecode(_CheckedVideoTransform, DecordDecode):
    """:class:`DecordDecode` whose errors (e.g. a truncated stream) name the
    file. ``skip_corrupt`` as in :class:`CheckedDecordInit`."""
