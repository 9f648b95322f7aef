"""Data sources: IDX files, folders of weekly PNGs, the MNIST loader and S3 (validation is in ``quality``)."""
