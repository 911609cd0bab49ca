"""Celery edge of videogen: the app and its thin task shells."""
