"""Small helpers without a domain: atomic file writes, secrets in URLs and shell hints, bounded input files,
field-name checks."""
