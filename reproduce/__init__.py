"""The paper's tables: one entry script per table (table_<name>.sh), the shared runner, the table specs, compare.py."""
