"""The check use case: read an account's quota (and folder sizes) and give its status.

Only what the policy needs is read: GETQUOTAROOT always, folder metadata only for the folders
a folder limit names. The thresholds themselves live in :mod:`quotatool.core.thresholds`.
"""

from __future__ import annotations

from collections.abc import Callable

from quotatool.core.thresholds import (
    AccountCheck,
    CheckPolicy,
    evaluate,
    unknown,
)
from quotatool.errors import QuotatoolError
from quotatool.ports import MailSource
from quotatool.services.scan import folder_matches, scan

__all__ = ["check_account", "check_source"]


def check_source(
    source: MailSource, *, account: str, policy: CheckPolicy, now: int
) -> AccountCheck:
    """Return the status of the mailbox ``source`` reads.

    Errors of the source (server down, login refused) propagate; :func:`check_account` turns
    them into UNKNOWN.
    """
    quota = source.quota()
    totals: dict[str, int] = {}
    sizes: dict[str, int] = {}
    if policy.folder_limits:
        patterns = [f.folder for f in policy.folder_limits]
        # The MailSource port has no per-folder size call, so the named folders are scanned
        # (metadata only); the rest of the mailbox is not read.
        inventory = scan(source, now=now, include=patterns)
        sizes = {f.status.name: sum(m.size for m in f.messages) for f in inventory.folders}
        for limit in policy.folder_limits:
            # A glob's limit holds for the matching folders together (Archive/* = 10GiB).
            totals[limit.folder] = sum(
                size for name, size in sizes.items() if folder_matches(name, [limit.folder])
            )
    return evaluate(account, quota, policy, now=now, folder_totals=totals, folder_sizes=sizes)


def check_account(
    account: str,
    open_source: Callable[[], MailSource],
    policy: CheckPolicy,
    *,
    now: int,
) -> AccountCheck:
    """Open, check and close one account; any quotatool error becomes UNKNOWN with its reason.

    One failing account must not stop the others in a run over many accounts.
    """
    try:
        source = open_source()
    except QuotatoolError as exc:
        return unknown(account, exc.message, now=now)
    try:
        return check_source(source, account=account, policy=policy, now=now)
    except QuotatoolError as exc:
        return unknown(account, exc.message, now=now)
    finally:
        source.close()
