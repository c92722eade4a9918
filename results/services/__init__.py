"""Writes from agents, split by concern: vitals (heartbeats, status reports), ingest (result batches),
adoption (unknown endpoints)."""

from results.services.adoption import unknown_endpoint_adopt
from results.services.ingest import IngestOutcome, Rejection, batch_items, results_ingest
from results.services.vitals import heartbeat_store, heartbeat_values, status_fields, status_report_record

__all__ = [
    "IngestOutcome",
    "Rejection",
    "batch_items",
    "heartbeat_store",
    "heartbeat_values",
    "results_ingest",
    "status_fields",
    "status_report_record",
    "unknown_endpoint_adopt",
]
