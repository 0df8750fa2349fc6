"""Routing: the router model client, parts, plans, the route policy and its calibration, strategies."""
