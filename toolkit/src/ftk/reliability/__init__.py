"""`make reliability`: the ledger the reliability tests write, and the report that sums it up."""
