"""Webhook subscriptions, in delivery order: ``matching`` (does an event match a subscription's
filter), ``outbox`` (write delivery rows in the transaction of the change they announce),
``signing`` (Standard Webhooks signatures) and ``delivery`` (the worker that sends and retries)."""
