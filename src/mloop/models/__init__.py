"""Models: flavours (how a kind of model is saved, loaded and asked for predictions) and signatures (what
a model takes and gives, checked before every prediction).

>>> from mloop.models import flavour_for, infer
>>> flavour = flavour_for(model)              # doctest: +SKIP
>>> signature = infer(X_test, flavour.predict(model, X_test))   # doctest: +SKIP
"""

from mloop.models.flavours import FLAVOURS, Flavour, flavour_for, get_flavour
from mloop.models.signature import ColumnSpec, FieldProblem, Signature, SignatureError, infer

__all__ = [
    "FLAVOURS",
    "ColumnSpec",
    "FieldProblem",
    "Flavour",
    "Signature",
    "SignatureError",
    "flavour_for",
    "get_flavour",
    "infer",
]
