"""Segmentation task glue for mmsegmentation (imported only when mmseg is
installed): the DyT segmentor."""
from .encoder_decoder import DyTEncoderDecoder

__all__ = ['DyTEncoderDecoder']
