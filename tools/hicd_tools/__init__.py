"""Helpers shared by the command-line tools (not part of the ``hicd_mm`` library).

Scripts in ``tools/`` import this package with ``tools/`` on ``sys.path`` (it is when a script
of ``tools/`` runs; scripts in subfolders add it).
"""
