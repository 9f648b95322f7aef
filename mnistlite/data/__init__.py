"""Data sources: IDX files, folders of weekly PNGs, the MNIST loader, validation and S3."""
