"""Encoders: TF-IDF (no transfer), static word vectors, transformers, sentence encoders.

Each module registers its encoder; heavy libraries are imported inside the encoders, on use.
"""

from textransfer.encoders import sentence, static, tfidf, transformer  # noqa: F401
from textransfer.encoders.base import (
    ENCODERS,
    Encoder,
    FittableEncoder,
    TrainableEncoder,
    create_encoder,
    list_encoders,
    register_encoder,
)

__all__ = [
    "ENCODERS",
    "Encoder",
    "FittableEncoder",
    "TrainableEncoder",
    "create_encoder",
    "list_encoders",
    "register_encoder",
]
