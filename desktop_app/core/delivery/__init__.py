"""Delivery policy and machinery: classification, rate limits, breakers, routing, retries."""
