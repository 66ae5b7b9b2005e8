"""Risk review of a proposal before signing: rules over gathered facts, an optional advisory model summary."""
