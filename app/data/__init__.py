"""Persistence plumbing: connection settings, the unit of work, reads without a
transaction, running totals, the change feed, seeding and resetting."""
