"""What people read: the report, the terminal watch, generated docs and PromQL queries."""
