"""Campaigns: subscriber lists, suppression, templates and message building."""
