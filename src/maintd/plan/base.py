"""The base of every plan model, and the sharing of equal immutable parts between models.

A plan of 10,000 tasks and targets holds ~50,000 model instances. Each one had its own
``__pydantic_fields_set__`` (a 216-byte set) and its own empty dict for every ``params``,
``labels``, ``connection`` or ``secrets`` left out, and each task its own ``Schedule`` even
when all are alike: ~20 MB of the ~31 MB the plan's objects take. Models are frozen, so
equal parts can be one object; what is shared must be immutable, or a change made through
one model would show in all the others.
"""

from __future__ import annotations

import weakref
from datetime import timedelta
from enum import Enum
from typing import Any, NoReturn, Self, TypeVar

from pydantic import BaseModel, ConfigDict, model_validator

M = TypeVar("M", bound=BaseModel)


class _EmptyMapping(dict[Any, Any]):
    """The one empty dict of every frozen model's empty mapping field: it refuses changes.

    A ``dict`` still (serialised, compared and type-checked as one); ``EMPTY == {}``.
    """

    def _refuse(self, *_args: Any, **_kwargs: Any) -> NoReturn:
        raise TypeError("a plan model's mapping cannot be changed (the models are frozen)")

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, _memo: dict[int, Any]) -> Self:
        return self

    def __reduce__(self) -> tuple[type[dict[Any, Any]], tuple[()]]:
        return dict, ()


EMPTY: dict[Any, Any] = _EmptyMapping()

# One set per distinct set of field names given (a handful per model class). pydantic itself
# never changes a frozen model's set: model_copy copies it before adding the updated names.
_FIELDS_SETS: dict[frozenset[str], set[str]] = {}
# Equal frozen models whose values are all hashable (immutable), while any one is in use.
_SHARED: weakref.WeakValueDictionary[Any, BaseModel] = weakref.WeakValueDictionary()


class StrictModel(BaseModel):
    """Every plan model: unknown keys are errors (with a hint), and a loaded plan is immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _share_immutable_parts(self) -> Self:
        if not self.model_config.get("frozen"):  # a subclass that can change must own its parts
            return self
        values = self.__dict__
        for key, value in values.items():
            if type(value) is dict and not value:
                values[key] = EMPTY
        given = self.__pydantic_fields_set__
        object.__setattr__(self, "__pydantic_fields_set__", _FIELDS_SETS.setdefault(frozenset(given), given))
        return self


def shared(model: M) -> M:
    """An equal model already in use instead of ``model``, when it is frozen and holds only
    immutable scalars (so nothing in it can change); otherwise ``model`` itself."""
    key = _key(model) if model.model_config.get("frozen") else None
    if key is None:
        return model
    return _SHARED.setdefault(key, model)  # type: ignore[return-value]  # keyed by type(model)


def _key(model: BaseModel) -> tuple[Any, ...] | None:
    """What makes two models interchangeable: class, the fields given, and each value with
    its type (``True == 1`` and ``0.0 == -0.0``, yet they are not the same value)."""
    parts: list[tuple[Any, ...]] = []
    for name, value in model.__dict__.items():
        kind = type(value)
        if value is None or value is EMPTY:
            parts.append((name, kind))
        elif kind is float:
            parts.append((name, kind, value.hex()))
        elif isinstance(value, str | int | timedelta | Enum):  # str and int subclasses: the type tells
            parts.append((name, kind, value))
        else:  # a list, a dict with items, a nested model, a datetime (equal across time zones)...
            return None
    return (type(model), frozenset(model.model_fields_set), tuple(parts))
