"""Constructor-argument checks for components."""

from amaranth import Shape

__all__ = ["require", "require_shape"]


def require(component, ok: bool, error: Exception) -> None:
    """Raise ``error`` unless ``ok``, marking ``component`` as deliberately unused first.

    Amaranth warns at garbage collection about every elaboratable that was created but never
    elaborated; a component whose constructor rejected its arguments is not such a mistake, and
    the warning would add a second, confusing message to the one clear error.
    """
    if not ok:
        component._MustUse__silence = True
        raise error


def require_shape(component, shape) -> None:
    """Raise ``TypeError`` (through :func:`require`) unless ``shape`` is shape-castable."""
    try:
        Shape.cast(shape)
    except TypeError as e:
        require(component, False, TypeError(f"shape must be shape-castable, not {shape!r}: {e}"))
