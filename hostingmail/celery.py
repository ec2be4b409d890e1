import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hostingmail.settings")

app = Celery("hostingmail")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.conf.beat_schedule = {}
