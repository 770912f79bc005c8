"""One module per paper table, each a :class:`~reproduce.runner.TableSpec` (``SPEC``) for the shared runner."""
from . import detection

SPECS = {spec.name: spec for spec in (detection.SPEC, )}
