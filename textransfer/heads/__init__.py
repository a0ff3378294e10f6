"""Classifier heads: logistic regression (scikit-learn) and linear / MLP (torch)."""

from textransfer.heads import logreg, torch_heads  # noqa: F401
from textransfer.heads.base import (
    HEADS,
    ArrayHead,
    Head,
    TorchHead,
    create_head,
    list_heads,
    register_head,
)

__all__ = ["HEADS", "ArrayHead", "Head", "TorchHead", "create_head", "list_heads", "register_head"]
