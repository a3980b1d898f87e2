"""Delivery: the outbox, one upload and what its answer means, the receipts ledger, which files `upload
--file` may send, the daily budget and who may block a delivery.
"""
