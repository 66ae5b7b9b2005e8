"""`treasury serve`: the Safe Transaction Service API over the treasury store, with the policy in front."""
