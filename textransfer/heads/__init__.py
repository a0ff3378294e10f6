"""Classifier heads: logistic regression (scikit-learn), linear / MLP (torch), cosine prototypes."""

from textransfer.heads import cosine, logreg, torch_heads  # noqa: F401
from textransfer.heads.base import (
    HEADS,
    ArrayHead,
    Head,
    PrototypeHead,
    TorchHead,
    create_head,
    list_heads,
    register_head,
)

__all__ = ["HEADS", "ArrayHead", "Head", "PrototypeHead", "TorchHead", "create_head", "list_heads", "register_head"]
