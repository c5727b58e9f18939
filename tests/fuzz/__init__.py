"""Fuzzing of the decoder and the capture readers: shared checks and the atheris campaign."""
