"""Segmentation task glue for mmsegmentation: the DyT segmentor. Importing it
imports mmseg; ``import mmdyt`` does not, it registers ``DyTEncoderDecoder``
lazily (:mod:`mmdyt.registry`)."""
from .encoder_decoder import DyTEncoderDecoder

__all__ = ['DyTEncoderDecoder']
