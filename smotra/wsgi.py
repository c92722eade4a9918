"""WSGI entry point for gunicorn (started by `manage.py serve`)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smotra.settings")

application = get_wsgi_application()
