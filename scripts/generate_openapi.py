"""Write the OpenAPI document generated from the marshmallow schemas.

    PYTHONPATH=. python scripts/generate_openapi.py [OUTPUT]   (default: openapi.json)

No server, no database and no network: the app is built in memory and its
flask-smorest spec serialised with sorted keys, so two runs are byte-identical.
"""

import sys
import warnings
from pathlib import Path

from app.web.openapi import render_openapi

DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "openapi.json"


def main(argv: list[str]) -> int:
    if len(argv) > 2:
        print(__doc__, file=sys.stderr)
        return 2
    output = Path(argv[1]) if len(argv) == 2 else DEFAULT_OUTPUT
    warnings.simplefilter("error")
    output.write_text(render_openapi(), encoding="utf-8")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
