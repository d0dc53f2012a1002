"""Type aliases shared across layers."""

import logging
from typing import Any

Logger = logging.Logger | logging.LoggerAdapter[Any]
"""What Kopf hands to handlers as `logger`."""
