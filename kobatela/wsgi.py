import os
import sys

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kobatela.settings")

application = get_wsgi_application()

# Refuse to serve with unsafe production settings (kobatela.core.checks):
# gunicorn does not run system checks by itself.
from django.core import checks  # noqa: E402

_found = checks.run_checks(include_deployment_checks=False)
for _warning in (e for e in _found if not e.is_serious()):
    print(f"warning: {_warning.id}: {_warning.msg}", file=sys.stderr)
_errors = [e for e in _found if e.is_serious()]
if _errors:
    raise SystemExit("Refusing to start:\n" + "\n".join(f"  {e.id}: {e.msg}" for e in _errors))
