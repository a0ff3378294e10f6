"""Transfer strategies behind one interface: ``fit(encoder, head, train, val, target_unlabeled)``."""

# mlm: dapt, udalm
from textransfer.strategies import coral, dann, finetune, frozen, mlm, self_train, zero_shot  # noqa: F401
from textransfer.strategies.base import (
    STRATEGIES,
    CapabilityError,
    Strategy,
    create_strategy,
    list_strategies,
    register_strategy,
)

__all__ = ["STRATEGIES", "CapabilityError", "Strategy", "create_strategy", "list_strategies", "register_strategy"]
