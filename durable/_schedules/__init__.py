"""Schedules: start workflows on a cron expression or an interval (``client.schedule``)."""
