"""One codec per feature type, and the registry that finds a feature's.

Adding a type (integer, boolean, date) is a module here with a FeatureCodec subclass, and its
name in FeatureType and CODECS; nothing else in the function or the build tests a feature's type.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

from serving.codecs.base import FeatureCodec
from serving.codecs.category import CategoryCodec
from serving.codecs.number import NumberCodec

if TYPE_CHECKING:
    from serving.manifest import Feature

FeatureType = Literal["number", "category"]
"""A feature's `type` in the spec and the manifest: one per codec."""
CODECS: dict[str, type[FeatureCodec]] = {codec.type_name: codec for codec in (NumberCodec, CategoryCodec)}


def codec_for(feature: Feature) -> FeatureCodec:
    """The codec of `feature`, bound to it."""
    return CODECS[feature.type](feature)


def all_numeric(features: Iterable[Feature]) -> bool:
    """Whether every feature reaches the model as float64: the model then takes one float64 matrix."""
    return all(CODECS[feature.type].numeric for feature in features)


__all__ = ["CODECS", "FeatureCodec", "FeatureType", "all_numeric", "codec_for"]
