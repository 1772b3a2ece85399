"""The public surface: one import namespace, sorted, documented, no private names leaking."""

from __future__ import annotations

import inspect

import durable
import durable.errors
import durable.testing


def _public(module: object) -> set[str]:
    # pytest rewrites asserts in a plugin's distribution (durable registers one), which adds
    # "@py_builtins" / "@pytest_ar" to module globals: not identifiers, not API.
    return {n for n in dir(module) if n.isidentifier() and not n.startswith("_")}


def test_all_is_sorted_and_complete() -> None:
    assert durable.__all__ == sorted(durable.__all__)
    assert set(durable.__all__) == _public(durable) - {"annotations"}


def test_no_private_names_exported() -> None:
    names = durable.__all__ + durable.errors.__all__ + durable.testing.__all__
    assert not [n for n in names if n.startswith("_")]


def test_testing_namespace_is_sorted_documented_and_its_own() -> None:
    assert durable.testing.__all__ == sorted(durable.testing.__all__)
    assert set(durable.testing.__all__) == _public(durable.testing)
    for name in durable.testing.__all__:
        obj = getattr(durable.testing, name)
        assert inspect.getdoc(obj), f"durable.testing.{name} has no docstring"
        assert obj.__module__ == "durable.testing", (name, obj.__module__)
        assert not hasattr(durable, name), f"{name} is exported from two namespaces"


def test_public_names_are_documented_and_live_in_durable() -> None:
    for name in durable.__all__:
        obj = getattr(durable, name)
        assert inspect.getdoc(obj), f"durable.{name} has no docstring"
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__ in ("durable", "durable.errors"), (name, obj.__module__)


def test_every_error_derives_from_durable_error_and_pickles() -> None:
    import pickle

    for name in durable.errors.__all__:
        cls = getattr(durable.errors, name)
        assert issubclass(cls, durable.errors.DurableError)
        err = cls("message", detail=1)
        copy = pickle.loads(pickle.dumps(err))
        assert type(copy) is cls and str(copy) == "message" and copy.detail == 1


def test_errors_namespace_is_sorted_and_complete() -> None:
    assert durable.errors.__all__ == sorted(durable.errors.__all__)
    assert set(durable.errors.__all__) == _public(durable.errors) - {"annotations", "Any"}


def _drawn_tree() -> dict[str, str]:
    """Each error's parent, as the tree in ``durable.errors``' docstring draws it."""
    parents: dict[str, str] = {}
    path = ["DurableError"]
    for line in (durable.errors.__doc__ or "").splitlines():
        if "── " in line:
            depth = (line.index("── ") - 5) // 4 + 1
            name = line.split("── ")[1].split()[0]
            parents[name] = path[depth - 1]
            path[depth:] = [name]
    return parents


def test_the_drawn_error_tree_is_the_class_tree() -> None:
    parents = _drawn_tree()
    assert set(parents) | {"DurableError"} == set(durable.errors.__all__)
    for name, parent in parents.items():
        assert getattr(durable.errors, name).__bases__[0].__name__ == parent, name


def test_errors_are_grouped_by_remedy_and_keep_their_builtin_bases() -> None:
    e = durable.errors
    groups = (e.InputError, e.CodeError, e.RequestError, e.InfrastructureError, e.OutcomeError)
    for name in e.__all__:
        cls = getattr(e, name)
        if cls is not e.DurableError and not issubclass(cls, e.NonRetryable):
            assert any(issubclass(cls, g) for g in groups), name
    assert issubclass(e.InvalidArgumentError, ValueError)
    assert issubclass(e.ArgumentTypeError, TypeError)
    assert issubclass(e.ServerStoppedError, RuntimeError)
    assert issubclass(e.UnknownQueryError, e.InputError)
    assert issubclass(e.UnknownUpdateError, e.InputError)
    assert issubclass(e.StoreConfigurationError, e.InfrastructureError)
    assert not issubclass(e.StoreConfigurationError, e.StoreUnavailableError)  # not "retry"
