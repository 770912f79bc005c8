"""One module per paper table, each a :class:`~reproduce.runner.TableSpec` named ``SPEC``, for the shared runner."""
NAMES = ('detection', 'classification', 'ablation', 'panoptic')


def all_specs() -> dict:
    """``{name: spec}`` of every table (imported on demand, so that ``python -m reproduce.tables.<name>`` runs
    its module once)."""
    import importlib
    return {name: importlib.import_module(f'{__name__}.{name}').SPEC for name in NAMES}
