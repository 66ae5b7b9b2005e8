"""Files other people's tools write and read: a payroll CSV, Safe{Wallet}'s Transaction Builder JSON.

Each reader turns a foreign file into the same plain items or calls the project's own batch files
give (treasury.proposal.batchfile), so every amount, address and argument still goes through the
one parser of each; nothing here builds calldata by other rules. Each refusal is one line naming
the file (and, for a CSV, the line), raised before anything is stored.
"""
