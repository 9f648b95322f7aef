"""Data sources: IDX files, the MNIST loader, folders of PNGs, S3 and fetching weekly folders from it.

May import ``images``, ``nn`` and the top-level ``files`` and ``metrics``; the data gate is ``quality``.
"""
