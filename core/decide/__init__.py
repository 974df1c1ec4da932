"""Deciding: the paired statistics, the KPIs and the gate's verdict (a value; nothing here publishes)."""
