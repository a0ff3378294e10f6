"""Transfer strategies behind one interface: ``fit(encoder, head, train, val, target_unlabeled)``
returns a Classifier; ``fit_with_context(..., context=FitContext(...))`` a :class:`FitResult`."""

# mlm: dapt, udalm
from textransfer.strategies import coral, dann, finetune, frozen, mlm, self_train, zero_shot  # noqa: F401
from textransfer.strategies.base import (
    STRATEGIES,
    CapabilityError,
    FitContext,
    FitResult,
    Strategy,
    create_strategy,
    list_strategies,
    register_strategy,
)

__all__ = ["STRATEGIES", "CapabilityError", "FitContext", "FitResult", "Strategy", "create_strategy", "list_strategies", "register_strategy"]
