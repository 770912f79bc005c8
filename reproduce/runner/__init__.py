"""The table runner every ``reproduce/table_<name>.sh`` shares (see :mod:`.cli`); a table is a :class:`TableSpec`."""
from .spec import Arm, Borrow, Scale, TableSpec

__all__ = ['Arm', 'Borrow', 'Scale', 'TableSpec']
