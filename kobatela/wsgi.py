import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kobatela.settings")

application = get_wsgi_application()

# Refuse to serve with unsafe production settings (kobatela.core.checks):
# gunicorn does not run system checks by itself.
from django.core import checks  # noqa: E402

_errors = [e for e in checks.run_checks(include_deployment_checks=False) if e.is_serious()]
if _errors:
    raise SystemExit("Refusing to start:\n" + "\n".join(f"  {e.id}: {e.msg}" for e in _errors))
