"""The container's health check: the API answers GET /healthz on its own port ($PORT)."""

import os
import sys
import urllib.request

try:
    with urllib.request.urlopen(f"http://127.0.0.1:{os.environ.get('PORT', '8080')}/healthz", timeout=2):
        pass
except OSError as error:
    sys.exit(f"unhealthy: {error}")
