"""Data: local readers, length-bucketed batching, and the base DataModule."""

from nlpkit.data.batching import BucketBatchSampler, pad, unpad
from nlpkit.data.module import TextDataModule
from nlpkit.data.readers import Record, detect_format, read_records

__all__ = ["BucketBatchSampler", "Record", "TextDataModule", "detect_format", "pad", "read_records", "unpad"]
