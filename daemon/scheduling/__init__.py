"""Scheduling: one APScheduler that runs the auto-mode job and housekeeping (rotation by policy, local
retention).
"""
