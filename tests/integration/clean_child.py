"""Run a saved plan through ``run_clean`` in its own process (the crash hook ends it).

    python -m tests.integration.clean_child PLAN.json TARGET CA_FILE BATCH_SIZE [TLS]

The password comes from ``QUOTATOOL_PASSWORD``, the state directory from
``QUOTATOOL_STATE_DIR``; errors print as the command line prints them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from quotatool.cli.errors import print_error
from quotatool.cli.execute import run_clean
from quotatool.cli.options import TlsChoice
from quotatool.cli.wiring import ConnectionOptions
from quotatool.config.accounts import Config
from quotatool.core.plan import plan_from_json
from quotatool.errors import QuotatoolError


def main(argv: list[str]) -> int:
    plan_path, target, ca_file, batch = argv[:4]
    tls = TlsChoice(argv[4]) if len(argv) > 4 else None
    plan = plan_from_json(Path(plan_path).read_text(encoding="utf-8"))
    options = ConnectionOptions(ca_file=Path(ca_file), tls=tls, timeout=20)
    try:
        return run_clean(
            plan,
            target,
            options,
            Config(path=None),
            yes=True,
            max_messages=None,
            max_bytes=None,
            json_=True,
            batch_size=int(batch),
        )
    except QuotatoolError as exc:
        print_error(exc.message, exc.hint)
        return int(exc.exit_code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
