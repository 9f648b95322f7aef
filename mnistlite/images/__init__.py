"""Images: decoding user uploads, turning them into MNIST form (ink, preprocess), training-time augmentation.

May import ``nn`` and the top-level ``files`` and ``metrics``.
"""
