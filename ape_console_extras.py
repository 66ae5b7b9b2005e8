"""`ape console` loads this file: it puts a `treasury` object in the namespace.

    treasury                      # the configured treasuries
    ops = treasury.load("ops")    # every Treasury method; proposals print as one line
    ops.show(proposal)            # what `treasury show` prints

See treasury/console.py.
"""


def ape_init_extras():
    from treasury.console import TreasuryConsole

    return {"treasury": TreasuryConsole()}
