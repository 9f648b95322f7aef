"""The command-line tools' code; ``scripts/*.py`` and the console entry points call ``main`` here.

May import all of ``mnistlite``; the library raises exceptions, and these add the flag that fixes them.
"""
